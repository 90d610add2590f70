// AVX2 GEMM micro-kernel on Q16 granules: vpmaddwd (2 s16*s16 products per int32 lane, modulo 2^32 in
// the one case both pairs are -32768) then vpaddd. AVX2 has no exact u8*s8 instruction (vpmaddubsw
// saturates at int16), so 8-bit data is packed as Q16 on this tier. MR pixels x one block of 16
// channels = 2 ymm per pixel: 12 accumulators, 2 weight registers, 1 broadcast.
#include <immintrin.h>

#include <algorithm>

#include "integer/gemm_kernel.h"

#define QV_TARGET_AVX2 __attribute__((target("avx2")))

namespace qv::integer {

namespace {

template <int MR>
QV_TARGET_AVX2 void tile(const MicroTile& t) {
  __m256i acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
  int64_t kk = t.k_begin;
  while (kk < t.k_end) {
    const int64_t tap = kk / t.cq;
    const int64_t c0 = kk - tap * t.cq, c1 = std::min(t.cq, c0 + (t.k_end - kk));
    const uint32_t* a[MR];
    for (int i = 0; i < MR; ++i) a[i] = t.pixel[i] + t.tap_offset[tap];
    const uint32_t* w = t.weight + kk * 16;
    for (int64_t c = c0; c < c1; ++c, w += 16) {
      const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
      const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 8));
      for (int i = 0; i < MR; ++i) {
        const __m256i x = _mm256_set1_epi32(static_cast<int>(a[i][c]));
        acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(x, w0));
        acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(x, w1));
      }
    }
    kk += c1 - c0;
  }
  for (int i = 0; i < MR; ++i) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(t.out + i * 16), acc[i][0]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(t.out + i * 16 + 8), acc[i][1]);
  }
}

void dispatch(const MicroTile& t) {
  switch (t.mr) {
    case 1: return tile<1>(t);
    case 2: return tile<2>(t);
    case 3: return tile<3>(t);
    case 4: return tile<4>(t);
    case 5: return tile<5>(t);
    default: return tile<6>(t);
  }
}

}  // namespace

const GemmKernel kGemmQ16Avx2{&dispatch, Packing::q16, 6, 1, Path::gemm_q16_avx2};

}  // namespace qv::integer
