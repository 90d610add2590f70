// The int64 shift route of FusedRequant on 8 lanes (AVX-512), shared by the output stages that requantize
// straight from an int32 tile into bytes (conv_gemm.cc, conv_amx.cc): y = clamp(round(mul*acc + add, 2^-shift))
// with the rounding mode R, the same decisions as shift_avx512 in requant_stage.cc. Include only from
// translation units whose callers carry the matching target attribute.
#pragma once

#include <immintrin.h>

#include "integer/requant_stage.h"
#include "ir/rounding.h"

namespace qv::integer {

// The shift routes of a run of channels and the output type's clamp range.
struct Requant8 {
  const FusedRequant::ShiftParams* params;  // [channels]
  int64_t lo, hi;
};

template <Rounding R>
__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw"), always_inline)) inline __m512i requant_shift8(
    __m512i acc, const FusedRequant::ShiftParams& p, __m512i vlo, __m512i vhi) {
  const __mmask8 all = 0xFF;
  const __m512i one = _mm512_set1_epi64(1), zero = _mm512_setzero_si512();
  const __m512i vmul = _mm512_set1_epi64(p.mul);
  const __m512i prod = p.mul32 ? _mm512_maskz_mul_epi32(all, vmul, acc) : _mm512_maskz_mullo_epi64(all, vmul, acc);
  const __m512i num = _mm512_add_epi64(prod, _mm512_set1_epi64(p.add));
  __m512i v = num;
  if (p.shift > 0) {
    const __m128i count = _mm_cvtsi32_si128(p.shift);
    const __m512i vmask = _mm512_set1_epi64((int64_t{1} << p.shift) - 1), vhalf = _mm512_set1_epi64(int64_t{1} << (p.shift - 1));
    const __m512i q = _mm512_maskz_sra_epi64(all, num, count), rem = _mm512_and_si512(num, vmask);
    __mmask8 inc = 0;
    if constexpr (R == Rounding::ceil) inc = _mm512_cmpneq_epi64_mask(rem, zero);
    if constexpr (R == Rounding::trunc) inc = _mm512_cmpneq_epi64_mask(rem, zero) & _mm512_cmplt_epi64_mask(q, zero);
    if constexpr (R == Rounding::half_up) inc = _mm512_cmpge_epi64_mask(rem, vhalf);
    if constexpr (R == Rounding::half_down) inc = _mm512_cmpgt_epi64_mask(rem, vhalf);
    if constexpr (R == Rounding::half_even)
      inc = _mm512_cmpgt_epi64_mask(rem, vhalf) | (_mm512_cmpeq_epi64_mask(rem, vhalf) & _mm512_test_epi64_mask(q, one));
    if constexpr (R == Rounding::half_away)
      inc = _mm512_cmpgt_epi64_mask(rem, vhalf) | (_mm512_cmpeq_epi64_mask(rem, vhalf) & _mm512_cmpge_epi64_mask(q, zero));
    v = _mm512_mask_add_epi64(q, inc, q, one);
  }
  return _mm512_maskz_min_epi64(all, _mm512_maskz_max_epi64(all, v, vlo), vhi);
}

}  // namespace qv::integer
