// AMX tile configuration shared by the AMX kernels (gemm_amx.cc, conv_rows.cc) and the peak loop.
//
// Both kernels use the same eight tiles: tmm0..3 the 16x16 int32 sums, tmm4/5 two 16-row tiles of ks
// granules (4*ks bytes per row), tmm6/7 two ks-row tiles of 16 granules (64 bytes per row). ks, the K
// step, is the largest divisor of Cq up to 16, so a step never crosses a tap.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace qv::integer {

// The 64-byte operand of ldtilecfg / sttilecfg (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

inline int amx_step_for(int64_t cq) {
  for (int ks = 16; ks > 1; --ks)
    if (cq % ks == 0) return ks;
  return 1;
}

// Loads the configuration for step ks unless the thread's tiles already have it. Compared with the live
// configuration (sttilecfg), not a cached one: another library on the same thread (oneDNN in the
// benchmarks) may have loaded its own in between.
__attribute__((target("amx-tile"))) inline void amx_configure(int ks) {
  TileConfig want;
  for (int t = 0; t < 4; ++t) want.rows[t] = 16, want.colsb[t] = 64;
  for (int t = 4; t < 6; ++t) want.rows[t] = 16, want.colsb[t] = static_cast<uint16_t>(ks * 4);
  for (int t = 6; t < 8; ++t) want.rows[t] = static_cast<uint8_t>(ks), want.colsb[t] = 64;
  TileConfig have;
  _tile_storeconfig(&have);
  if (std::memcmp(&have, &want, sizeof want) != 0) _tile_loadconfig(&want);
}

}  // namespace qv::integer
