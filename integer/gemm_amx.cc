// AMX GEMM micro-kernel (avx512amx tier, Q8): tdpbusd multiplies a tile of 16 pixels x ks granules (u8)
// by a tile of ks granules x 16 channels (s8) into a 16x16 tile of int32 sums. Every int32 it forms is a
// partial sum of one output's reduction, which the planner proved to stay inside int32 whatever the
// order and subset of terms, so it is exact (the kernel runs only on layers with that proof, acc32).
//
// Tiles: tmm0..3 hold the sums of pixel half a (pixels 0-15, 16-31) and channel block b at 2a + b; tmm4/5
// the A tiles of the two pixel halves; tmm6/7 the B tiles of the two blocks. The K step ks is the largest
// divisor of cq up to 16, so a step never crosses a tap: an A row is ks consecutive granules of one pixel,
// a B tile is ks rows of the [Kg][16] weight panel (64 bytes each: the packed panel already is the
// layout tdpbusd wants for B).
// A rows are read straight from the packed image (tileloadd with a row stride) when the 16 pixels are
// equally spaced, as within one output row; otherwise (a strip across rows, a short last strip) they
// are copied into a 16 x 64-byte staging buffer per step.
//
// Function-level target attributes keep AMX code inside this file's functions.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "integer/amx_tiles.h"
#include "integer/gemm_kernel.h"

#define QV_TARGET_AMX __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw")))

namespace qv::integer {

namespace {

// Rows of pixels that are not equally spaced: ks granules each into a 64-byte-aligned staging tile.
QV_TARGET_AMX inline void stage_rows(uint8_t (*stage)[64], const uint32_t* const* px, int64_t rows, int64_t off, __mmask16 lanes) {
  for (int64_t i = 0; i < rows; ++i) _mm512_store_si512(stage[i], _mm512_maskz_loadu_epi32(lanes, px[i] + off));
}

template <int NA, int NB>
QV_TARGET_AMX void tile(const MicroTile& t) {
  const int ks = amx_step_for(t.cq);
  amx_configure(ks);
  const __mmask16 lanes = static_cast<__mmask16>((1u << ks) - 1);
  alignas(64) uint8_t stage[NA][16][64];
  bool direct[NA];
  int64_t stride[NA], rows[NA];
  for (int a = 0; a < NA; ++a) {
    const uint32_t* const* px = t.pixel + 16 * a;
    rows[a] = std::min<int64_t>(16, t.mr - 16 * a);
    stride[a] = rows[a] > 1 ? px[1] - px[0] : 0;
    direct[a] = rows[a] == 16 && stride[a] > 0;
    for (int i = 2; i < 16 && direct[a]; ++i) direct[a] = px[i] - px[0] == i * stride[a];
    if (!direct[a]) std::memset(stage[a], 0, sizeof stage[a]);
  }
  _tile_zero(0);
  if constexpr (NB == 2) _tile_zero(1);
  if constexpr (NA == 2) _tile_zero(2);
  if constexpr (NA == 2 && NB == 2) _tile_zero(3);
  for (int64_t kk = t.k_begin; kk < t.k_end; kk += ks) {
    const int64_t tap = kk / t.cq;
    const int64_t off = t.tap_offset[tap] + (kk - tap * t.cq);
    if (direct[0]) {
      _tile_loadd(4, t.pixel[0] + off, stride[0] * 4);
    } else {
      stage_rows(stage[0], t.pixel, rows[0], off, lanes);
      _tile_loadd(4, stage[0], 64);
    }
    if constexpr (NA == 2) {
      if (direct[1]) {
        _tile_loadd(5, t.pixel[16] + off, stride[1] * 4);
      } else {
        stage_rows(stage[1], t.pixel + 16, rows[1], off, lanes);
        _tile_loadd(5, stage[1], 64);
      }
    }
    const uint32_t* w = t.weight + kk * 16;
    _tile_loadd(6, w, 64);
    if constexpr (NB == 2) _tile_loadd(7, w + t.block_stride, 64);
    _tile_dpbusd(0, 4, 6);
    if constexpr (NB == 2) _tile_dpbusd(1, 4, 7);
    if constexpr (NA == 2) _tile_dpbusd(2, 5, 6);
    if constexpr (NA == 2 && NB == 2) _tile_dpbusd(3, 5, 7);
  }
  // out is [mr][nv*16] pixel-major; rows past mr land in the caller's buffer and are not read.
  const int64_t row = NB * 16, row_bytes = row * 4;
  _tile_stored(0, t.out, row_bytes);
  if constexpr (NB == 2) _tile_stored(1, t.out + 16, row_bytes);
  if constexpr (NA == 2) _tile_stored(2, t.out + 16 * row, row_bytes);
  if constexpr (NA == 2 && NB == 2) _tile_stored(3, t.out + 16 * row + 16, row_bytes);
}

void dispatch(const MicroTile& t) {
  if (t.mr > 16) return t.nv > 1 ? tile<2, 2>(t) : tile<2, 1>(t);
  return t.nv > 1 ? tile<1, 2>(t) : tile<1, 1>(t);
}

}  // namespace

const GemmKernel kGemmQ8Amx{&dispatch, Packing::q8, 32, 2, Path::gemm_q8_amx};

}  // namespace qv::integer
