#include "integer/add_planes_vbmi.h"

#include <immintrin.h>

#include <stdexcept>
#include <string>

namespace qv::integer {

namespace {

// One branch's table row, in registers: entries 0-63, 64-127, 128-191, 192-255 of the low bytes, then of
// the high bytes.
struct PlaneRegs {
  __m512i lo[4], hi[4];
};

__attribute__((target("avx512f,avx512bw,avx512vbmi"), always_inline)) inline PlaneRegs plane_regs(const uint8_t* planes) {
  PlaneRegs t;
  for (int q = 0; q < 4; ++q) {
    t.lo[q] = _mm512_loadu_si512(planes + 64 * q);
    t.hi[q] = _mm512_loadu_si512(planes + 256 + 64 * q);
  }
  return t;
}

// The 256-entry lookup of 64 bytes in one byte plane: the low 7 bits pick among 128 entries (two
// vpermt2b, one per half of the table), the top bit picks the half.
__attribute__((target("avx512f,avx512bw,avx512vbmi"), always_inline)) inline __m512i lookup256(const __m512i* plane, __m512i x, __mmask64 top) {
  return _mm512_mask_blend_epi8(top, _mm512_permutex2var_epi8(plane[0], x, plane[1]), _mm512_permutex2var_epi8(plane[2], x, plane[3]));
}

// Int16 lanes 16h .. 16h+15 of v sign-extended to int32.
__attribute__((target("avx512f,avx512bw"), always_inline)) inline __m512i widen16(__m512i v, int h) {
  return _mm512_maskz_cvtepi16_epi32(0xFFFF, h == 0 ? _mm512_maskz_extracti64x4_epi64(0xFF, v, 0) : _mm512_maskz_extracti64x4_epi64(0xFF, v, 1));
}

template <int kBranches, Form16 kForm, bool kTrack>
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void planes_loop(const uint8_t* const* planes, const uint8_t* const* src, int64_t n,
                                                                        int16_t lo, int16_t hi, const HighMul16& h, uint8_t* dst,
                                                                        Ranges32& r) {
  PlaneRegs t[kBranches];
  const uint8_t* s[kBranches];
  for (int b = 0; b < kBranches; ++b) t[b] = plane_regs(planes[b]), s[b] = src[b];
  const __m512i vlo = _mm512_set1_epi16(lo), vhi = _mm512_set1_epi16(hi);
  Ranges32 local = r;  // in registers (the byte stores may alias r)
  for (int64_t k = 0; k < n; k += 64) {
    const __mmask64 mask = n - k >= 64 ? ~__mmask64{0} : (__mmask64{1} << (n - k)) - 1;
    __m512i sum_a = _mm512_setzero_si512(), sum_b = _mm512_setzero_si512();
    for (int b = 0; b < kBranches; ++b) {
      // Lanes past n load 0: a valid index, its terms are never stored.
      const __m512i x = _mm512_maskz_permutex_epi64(0xFF, _mm512_maskz_loadu_epi8(mask, s[b] + k), 0xD8);
      const __mmask64 top = _mm512_movepi8_mask(x);
      const __m512i low = lookup256(t[b].lo, x, top), high = lookup256(t[b].hi, x, top);
      sum_a = _mm512_add_epi16(sum_a, _mm512_unpacklo_epi8(low, high));
      sum_b = _mm512_add_epi16(sum_b, _mm512_unpackhi_epi8(low, high));
    }
    sum_a = _mm512_min_epi16(_mm512_max_epi16(sum_a, vlo), vhi);
    sum_b = _mm512_min_epi16(_mm512_max_epi16(sum_b, vlo), vhi);
    // maskz forms: GCC 12 warns on the unmasked ones' undefined source under -Werror.
    const __m512i group[4] = {widen16(sum_a, 0), widen16(sum_b, 0), widen16(sum_a, 1), widen16(sum_b, 1)};
    for (int g = 0; g < 4; ++g) {
      const __mmask16 m = static_cast<__mmask16>(mask >> (16 * g));
      if (m == 0) break;
      requant_high_mul16_step<kForm, kTrack>(group[g], m, h, dst + k + 16 * g, local);
    }
  }
  r = local;
}

template <int kBranches>
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void planes_dispatch(const uint8_t* const* planes, const uint8_t* const* src, int64_t n,
                                                                            int16_t lo, int16_t hi, const HighMul16& h, bool shift_left,
                                                                            bool track, uint8_t* dst, Ranges32& r) {
  if (shift_left)
    (track ? planes_loop<kBranches, Form16::shift_left, true> : planes_loop<kBranches, Form16::shift_left, false>)(planes, src, n, lo, hi, h, dst, r);
  else
    (track ? planes_loop<kBranches, Form16::shift, true> : planes_loop<kBranches, Form16::shift, false>)(planes, src, n, lo, hi, h, dst, r);
}

}  // namespace

__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void add_planes16_then_high_mul16(const uint8_t* const* planes, const uint8_t* const* src,
                                                                                          size_t branches, int64_t n, int16_t lo, int16_t hi,
                                                                                          const FusedRequant::HighMulParams& p, int32_t add,
                                                                                          int32_t rq_lo, int32_t rq_hi, uint8_t* dst, Ranges32& r,
                                                                                          bool track) {
  const HighMul16 h = high_mul16(p, add, rq_lo, rq_hi);
  const bool shift_left = p.lshift != 0;
  switch (branches) {
    case 1: planes_dispatch<1>(planes, src, n, lo, hi, h, shift_left, track, dst, r); break;
    case 2: planes_dispatch<2>(planes, src, n, lo, hi, h, shift_left, track, dst, r); break;
    case 3: planes_dispatch<3>(planes, src, n, lo, hi, h, shift_left, track, dst, r); break;
    case 4: planes_dispatch<4>(planes, src, n, lo, hi, h, shift_left, track, dst, r); break;
    default: throw std::invalid_argument("add_planes16_then_high_mul16: " + std::to_string(branches) + " branches (1 to 4)");
  }
}

}  // namespace qv::integer
