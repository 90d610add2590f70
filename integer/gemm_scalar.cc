// Portable GEMM micro-kernels: the same loops as the SIMD tiers, one lane at a time. The tier every
// SIMD kernel is tested against (besides the reference).
#include <algorithm>

#include "integer/gemm_kernel.h"

namespace qv::integer {

namespace {

// One granule product: Q8 sums 4 u8*s8 products, Q16 2 s16*s16 products. Exact in int32 (|.| <= 2^31
// only for Q16 with both pairs at -32768, which the planner excludes through its int32 proof).
inline int32_t dot_q8(uint32_t a, uint32_t w) {
  int32_t s = 0;
  for (int j = 0; j < 4; ++j)
    s += static_cast<int32_t>(static_cast<uint8_t>(a >> (8 * j))) * static_cast<int32_t>(static_cast<int8_t>(w >> (8 * j)));
  return s;
}
inline int32_t dot_q16(uint32_t a, uint32_t w) {
  return static_cast<int32_t>(static_cast<int16_t>(a)) * static_cast<int16_t>(w) +
         static_cast<int32_t>(static_cast<int16_t>(a >> 16)) * static_cast<int16_t>(w >> 16);
}

template <bool kQ8>
void tile(const MicroTile& t) {
  int32_t acc[8][64] = {};
  int64_t kk = t.k_begin;
  while (kk < t.k_end) {
    const int64_t tap = kk / t.cq;
    const int64_t c0 = kk - tap * t.cq, c1 = std::min(t.cq, c0 + (t.k_end - kk));
    for (int i = 0; i < t.mr; ++i) {
      const uint32_t* a = t.pixel[i] + t.tap_offset[tap];
      for (int j = 0; j < t.nv; ++j) {
        const uint32_t* w = t.weight + j * t.block_stride + kk * 16;
        for (int64_t c = c0; c < c1; ++c, w += 16)
          for (int l = 0; l < 16; ++l) acc[i][j * 16 + l] += kQ8 ? dot_q8(a[c], w[l]) : dot_q16(a[c], w[l]);
      }
    }
    kk += c1 - c0;
  }
  for (int i = 0; i < t.mr; ++i) std::copy(acc[i], acc[i] + t.nv * 16, t.out + i * t.nv * 16);
}

}  // namespace

const GemmKernel kGemmQ8Scalar{&tile<true>, Packing::q8, 8, 4, Path::gemm_q8_scalar};
const GemmKernel kGemmQ16Scalar{&tile<false>, Packing::q16, 8, 4, Path::gemm_q16_scalar};

}  // namespace qv::integer
