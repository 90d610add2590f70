// AVX-512 VNNI GEMM micro-kernels: vpdpbusd (Q8: 4 u8*s8 products per int32 lane) and vpdpwssd (Q16:
// 2 s16*s16 products), MR pixels x NV blocks of 16 channels in zmm accumulators (7 x 3 = 21 registers,
// plus NV weight registers; the pixel granule is an embedded broadcast operand). Both instructions
// add without saturation, modulo 2^32; the planner's int32 proof makes that exact.
//
// Function-level target attributes keep the AVX-512 code inside these functions: nothing here leaks
// into inline functions shared with the other tiers.
#include <immintrin.h>

#include <algorithm>

#include "integer/gemm_kernel.h"

#define QV_TARGET_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

namespace qv::integer {

namespace {

// kSplit (Q8S): each weight vector also against the pixel's high-byte granule (a[i][c + high]), into a
// second set of accumulators; the sets combine as high * 256 + low, wrapping like the additions (exact:
// the planner proved the true sum inside int32). MR x NV x 2 accumulators: 4 x 3 x 2 = 24 registers.
template <int MR, int NV, bool kQ8, bool kSplit = false>
QV_TARGET_VNNI void tile(const MicroTile& t) {
  static_assert(kQ8 || !kSplit);
  constexpr int kSets = kSplit ? 2 : 1;
  __m512i acc[kSets][MR][NV];
  for (int s = 0; s < kSets; ++s)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NV; ++j) acc[s][i][j] = _mm512_setzero_si512();
  int64_t kk = t.k_begin;
  while (kk < t.k_end) {
    const int64_t tap = kk / t.cq;
    const int64_t c0 = kk - tap * t.cq, c1 = std::min(t.cq, c0 + (t.k_end - kk));
    const uint32_t* a[MR];
    for (int i = 0; i < MR; ++i) a[i] = t.pixel[i] + t.tap_offset[tap];
    const uint32_t* w = t.weight + kk * 16;
    for (int64_t c = c0; c < c1; ++c, w += 16) {
      __m512i wv[NV];
      for (int j = 0; j < NV; ++j) wv[j] = _mm512_loadu_si512(w + j * t.block_stride);
      for (int i = 0; i < MR; ++i) {
        const __m512i x = _mm512_set1_epi32(static_cast<int>(a[i][c]));
        if constexpr (kSplit) {
          // Both sets per weight vector, interleaved: each vector is loaded once.
          const __m512i high = _mm512_set1_epi32(static_cast<int>(a[i][c + t.high]));
          for (int j = 0; j < NV; ++j)
            acc[0][i][j] = _mm512_dpbusd_epi32(acc[0][i][j], x, wv[j]), acc[kSets - 1][i][j] = _mm512_dpbusd_epi32(acc[kSets - 1][i][j], high, wv[j]);
        } else {
          for (int j = 0; j < NV; ++j)
            acc[0][i][j] = kQ8 ? _mm512_dpbusd_epi32(acc[0][i][j], x, wv[j]) : _mm512_dpwssd_epi32(acc[0][i][j], x, wv[j]);
        }
      }
    }
    kk += c1 - c0;
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) {
      __m512i sum = acc[0][i][j];
      if constexpr (kSplit) sum = _mm512_add_epi32(_mm512_maskz_slli_epi32(0xFFFF, acc[kSets - 1][i][j], 8), sum);  // maskz: GCC 12
      _mm512_storeu_si512(t.out + (i * t.nv + j) * 16, sum);
    }
}

template <bool kQ8, bool kSplit, int MR>
void by_nv(const MicroTile& t) {
  switch (t.nv) {
    case 1: return tile<MR, 1, kQ8, kSplit>(t);
    case 2: return tile<MR, 2, kQ8, kSplit>(t);
    default: return tile<MR, 3, kQ8, kSplit>(t);
  }
}

// Up to 7 pixels (21 accumulators), 4 for Q8S (its two sets: 24): the kernels' max_mr.
template <bool kQ8, bool kSplit = false>
void dispatch(const MicroTile& t) {
  constexpr int kMaxMr = kSplit ? 4 : 7;
  switch (t.mr) {
    case 1: return by_nv<kQ8, kSplit, 1>(t);
    case 2: return by_nv<kQ8, kSplit, 2>(t);
    case 3: return by_nv<kQ8, kSplit, 3>(t);
    case 4: return by_nv<kQ8, kSplit, 4>(t);
    case 5: return by_nv<kQ8, kSplit, std::min(5, kMaxMr)>(t);
    case 6: return by_nv<kQ8, kSplit, std::min(6, kMaxMr)>(t);
    default: return by_nv<kQ8, kSplit, kMaxMr>(t);
  }
}

}  // namespace

const GemmKernel kGemmQ8Avx512Vnni{&dispatch<true>, Packing::q8, 7, 3, Path::gemm_q8_avx512vnni};
const GemmKernel kGemmQ16Avx512Vnni{&dispatch<false>, Packing::q16, 7, 3, Path::gemm_q16_avx512vnni};
const GemmKernel kGemmQ8SplitAvx512Vnni{&dispatch<true, true>, Packing::q8_split, 4, 3, Path::gemm_q8_split_avx512vnni};

}  // namespace qv::integer
