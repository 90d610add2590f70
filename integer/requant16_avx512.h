// The 16-lane shift route: int32 sums straight to bytes, y = clamp(((((t*mul + bias) << lshift) >> 32) >> rshift),
// with the parameters FusedRequant::high_mul_params proved exact for the sums' range. Two vpmuldq (even
// and odd lanes) form the 64-bit products; the high dword of each is already the first shift, so one
// blend brings the 16 results back into int32 lanes. Against the 8-lane int64 route (requant8_avx512.h)
// this halves the lanes' width and drops the per-element rounding decisions.
// requant_high_mul16_scalar is the reference twin, for tests and tails of other tiers.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <climits>

#include "integer/output_stage.h"
#include "integer/requant_stage.h"

namespace qv::integer {

inline uint8_t requant_high_mul_scalar(int32_t t, const FusedRequant::HighMulParams& p, int32_t lo, int32_t hi) {
  const int64_t num = static_cast<int64_t>(static_cast<uint64_t>(static_cast<int64_t>(t) * p.mul + p.bias) << p.lshift);  // proven to fit
  const int32_t y = static_cast<int32_t>((num >> 32) >> p.rshift);  // arithmetic shifts: floor
  return static_cast<uint8_t>(std::clamp(y, lo, hi));
}

inline void requant_high_mul16_scalar(const int32_t* t, int64_t n, const FusedRequant::HighMulParams& p, int32_t lo, int32_t hi,
                                      uint8_t* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = requant_high_mul_scalar(t[i], p, lo, hi);
}

// Running ranges of 16 int32 lanes: the accumulators t + add and the outputs y.
struct Ranges32 {
  __m512i acc_lo, acc_hi, y_lo, y_hi;
};

__attribute__((target("avx512f"))) inline void init_ranges32(Ranges32& r) {
  r.acc_lo = r.y_lo = _mm512_set1_epi32(INT32_MAX);
  r.acc_hi = r.y_hi = _mm512_set1_epi32(INT32_MIN);
}

// Widens mm by the lanes' ranges (lanes that no value reached are skipped).
__attribute__((target("avx512f"))) inline void merge_ranges32(const Ranges32& r, MinMax& mm) {
  alignas(64) int32_t a0[16], a1[16], y0[16], y1[16];
  _mm512_store_si512(a0, r.acc_lo), _mm512_store_si512(a1, r.acc_hi), _mm512_store_si512(y0, r.y_lo), _mm512_store_si512(y1, r.y_hi);
  for (int j = 0; j < 16; ++j) {
    if (a0[j] > a1[j]) continue;
    mm.acc_min = std::min<int64_t>(mm.acc_min, a0[j]), mm.acc_max = std::max<int64_t>(mm.acc_max, a1[j]);
    mm.y_min = std::min<int64_t>(mm.y_min, y0[j]), mm.y_max = std::max<int64_t>(mm.y_max, y1[j]);
  }
}

// How a channel's 16 sums become outputs: the shift route (with or without the left shift of the 64-bit
// sums) or the fma form of the same channel (requant_fma16.h), where the planner proved one.
enum class Form16 : uint8_t { shift, shift_left, fma };

inline Form16 form16(const HighMulChannel& c) { return c.fma ? Form16::fma : c.params.lshift != 0 ? Form16::shift_left : Form16::shift; }

// The loop-invariant operands of the 16-lane route for one channel (f and b: the fma form's, zero without).
struct HighMul16 {
  __m512i mul, bias, add, lo, hi;
  __m128i rshift, lshift;
  __m512 f, b;
};

__attribute__((target("avx512f"), always_inline)) inline HighMul16 high_mul16(const FusedRequant::HighMulParams& p, int32_t add, int32_t lo,
                                                                           int32_t hi) {
  // mul as 16 dwords: vpmuldq reads only the low dword of each qword, sign-extended, and a dword
  // broadcast is one load where the qword one took a sign extension and a move first (per channel).
  return HighMul16{_mm512_set1_epi32(p.mul),  _mm512_set1_epi64(p.bias),  _mm512_set1_epi32(add), _mm512_set1_epi32(lo),
                   _mm512_set1_epi32(hi),     _mm_cvtsi32_si128(p.rshift), _mm_cvtsi32_si128(p.lshift), _mm512_setzero_ps(),
                   _mm512_setzero_ps()};
}

__attribute__((target("avx512f"), always_inline)) inline HighMul16 high_mul16(const HighMulChannel& c, int32_t lo, int32_t hi) {
  HighMul16 h = high_mul16(c.params, c.add, lo, hi);
  h.f = _mm512_set1_ps(c.fma_f), h.b = _mm512_set1_ps(c.fma_b);
  return h;
}

// The fma form before the clamp: floor(x*f + b) on 16 lanes (the fma and the conversion both round down:
// requant_fma16.h proves why that is exact).
__attribute__((target("avx512f"), always_inline)) inline __m512i requant_fma16_unclamped(__m512i x, __m512 f, __m512 b) {
  constexpr int kDown = _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC;
  // maskz forms: GCC 12 warns on the unmasked ones' undefined source under -Werror.
  return _mm512_maskz_cvt_roundps_epi32(0xFFFF, _mm512_maskz_fmadd_round_ps(0xFFFF, _mm512_maskz_cvtepi32_ps(0xFFFF, x), f, b, kDown), kDown);
}

// y before the clamp on 16 lanes: ((((x*mul + bias) << lshift) >> 32) >> rshift), or the fma form.
template <Form16 kForm>
__attribute__((target("avx512f,avx512bw"), always_inline)) inline __m512i requant_high_mul16_unclamped(__m512i x, const HighMul16& h) {
  if constexpr (kForm == Form16::fma) return requant_fma16_unclamped(x, h.f, h.b);
  // maskz forms throughout: GCC 12 warns on the unmasked ones' undefined source under -Werror.
  __m512i even = _mm512_add_epi64(_mm512_maskz_mul_epi32(0xFF, x, h.mul), h.bias);
  __m512i odd = _mm512_add_epi64(_mm512_maskz_mul_epi32(0xFF, _mm512_maskz_srli_epi64(0xFF, x, 32), h.mul), h.bias);
  if constexpr (kForm == Form16::shift_left) even = _mm512_maskz_sll_epi64(0xFF, even, h.lshift), odd = _mm512_maskz_sll_epi64(0xFF, odd, h.lshift);
  // Lane 2j: the high dword of even product j; lane 2j+1: the high dword of odd product j (in place).
  // (One vpermt2d instead of the shift and the blend measured slower on Zen 4.)
  const __m512i high = _mm512_mask_mov_epi32(_mm512_maskz_srli_epi64(0xFF, even, 32), 0xAAAA, odd);
  return _mm512_maskz_sra_epi32(0xFFFF, high, h.rshift);
}

// The outputs y of 16 sums x as int32 lanes, widening the ranges by x + add (the accumulator: the
// caller proved |add| + max|x| < 2^31) and y over the lanes in `mask`. kTrack false: the ranges are left
// alone, for a layer whose plan proved both inside their declared types (NodePlan::ranges_proven), which
// saves 5 of ~17 operations.
template <Form16 kForm, bool kTrack = true>
__attribute__((target("avx512f,avx512bw"), always_inline)) inline __m512i requant_high_mul16_value(__m512i x, __mmask16 mask,
                                                                                                const HighMul16& h, Ranges32& r) {
  if constexpr (kTrack) {
    const __m512i acc = _mm512_maskz_add_epi32(0xFFFF, x, h.add);
    r.acc_lo = _mm512_mask_min_epi32(r.acc_lo, mask, r.acc_lo, acc), r.acc_hi = _mm512_mask_max_epi32(r.acc_hi, mask, r.acc_hi, acc);
  }
  const __m512i y = _mm512_maskz_min_epi32(0xFFFF, _mm512_maskz_max_epi32(0xFFFF, requant_high_mul16_unclamped<kForm>(x, h), h.lo), h.hi);
  if constexpr (kTrack) r.y_lo = _mm512_mask_min_epi32(r.y_lo, mask, r.y_lo, y), r.y_hi = _mm512_mask_max_epi32(r.y_hi, mask, r.y_hi, y);
  return y;
}

// requant_high_mul16_unclamped with the channel's form decided at run time.
__attribute__((target("avx512f,avx512bw"), always_inline)) inline __m512i requant_high_mul16_unclamped(__m512i x, const HighMul16& h,
                                                                                                   Form16 form) {
  switch (form) {
    case Form16::fma: return requant_high_mul16_unclamped<Form16::fma>(x, h);
    case Form16::shift_left: return requant_high_mul16_unclamped<Form16::shift_left>(x, h);
    default: return requant_high_mul16_unclamped<Form16::shift>(x, h);
  }
}

// Four vectors of unclamped outputs narrowed into 64 bytes at once, where the clamp range [lo, hi] lies
// inside a byte pack's saturation range: two vpackssdw (saturating to int16: monotone, so clamping after
// is the same as before) and one vpackuswb or vpacksswb, then the clamp on bytes (vpmaxub/vpminub or
// the signed pair). The packs interleave their sources per 128-bit lane (lane k holds dwords
// a_k, b_k, c_k, d_k); one vpermd puts them back in order. Bytes [16m, 16m + 16) of the result are
// vector m of (a, b, c, d). Against four clamps in int32 and four vpmovdb: 7 operations instead of 16.
enum class BytePack : uint8_t { none, unsigned_bytes, signed_bytes };

inline BytePack byte_pack_for(int64_t lo, int64_t hi) {
  if (lo > hi) return BytePack::none;
  if (lo >= 0 && hi <= 255) return BytePack::unsigned_bytes;
  if (lo >= -128 && hi <= 127) return BytePack::signed_bytes;
  return BytePack::none;
}

struct ByteClamp {
  __m512i lo, hi, order;
};

__attribute__((target("avx512f,avx512bw"), always_inline)) inline ByteClamp byte_clamp(int32_t lo, int32_t hi) {
  return ByteClamp{_mm512_set1_epi8(static_cast<char>(lo)), _mm512_set1_epi8(static_cast<char>(hi)),
                   _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)};
}

template <BytePack P>
__attribute__((target("avx512f,avx512bw"), always_inline)) inline __m512i pack4_bytes(__m512i a, __m512i b, __m512i c, __m512i d,
                                                                                    const ByteClamp& k) {
  static_assert(P != BytePack::none);
  const __m512i ab = _mm512_packs_epi32(a, b), cd = _mm512_packs_epi32(c, d);
  __m512i v;
  if constexpr (P == BytePack::unsigned_bytes) v = _mm512_min_epu8(_mm512_max_epu8(_mm512_packus_epi16(ab, cd), k.lo), k.hi);
  else v = _mm512_min_epi8(_mm512_max_epi8(_mm512_packs_epi16(ab, cd), k.lo), k.hi);
  return _mm512_maskz_permutexvar_epi32(0xFFFF, k.order, v);
}

// The same 16 sums to bytes at dst (lanes in `mask`).
template <Form16 kForm, bool kTrack = true>
__attribute__((target("avx512f,avx512bw"), always_inline)) inline void requant_high_mul16_step(__m512i x, __mmask16 mask, const HighMul16& h,
                                                                                            uint8_t* dst, Ranges32& r) {
  _mm512_mask_cvtepi32_storeu_epi8(dst, mask, requant_high_mul16_value<kForm, kTrack>(x, mask, h, r));
}

// The same with the channel's form decided at run time.
template <bool kTrack = true>
__attribute__((target("avx512f,avx512bw"), always_inline)) inline void requant_high_mul16_step(__m512i x, __mmask16 mask, const HighMul16& h,
                                                                                            Form16 form, uint8_t* dst, Ranges32& r) {
  switch (form) {
    case Form16::fma: return requant_high_mul16_step<Form16::fma, kTrack>(x, mask, h, dst, r);
    case Form16::shift_left: return requant_high_mul16_step<Form16::shift_left, kTrack>(x, mask, h, dst, r);
    default: return requant_high_mul16_step<Form16::shift, kTrack>(x, mask, h, dst, r);
  }
}

// dst[i] = requant_high_mul_scalar(t[i]) for i in [0, n), any n (masked tail), widening the ranges by
// t[i] + add and y[i] (kTrack).
template <Form16 kForm, bool kTrack>
__attribute__((target("avx512f,avx512bw"), always_inline)) inline void requant_high_mul16_loop(const int32_t* t, int64_t n, const HighMul16& h,
                                                                                        uint8_t* dst, Ranges32& r) {
  // The ranges in registers for the loop: the byte stores may alias `r` as far as the compiler knows,
  // which would keep it in memory, a store-to-load chain through every iteration.
  Ranges32 local = r;
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask = static_cast<__mmask16>(n - i >= 16 ? 0xFFFF : (1u << (n - i)) - 1);
    requant_high_mul16_step<kForm, kTrack>(_mm512_maskz_loadu_epi32(mask, t + i), mask, h, dst + i, local);
  }
  r = local;
}

// The shift route of `p` (the fma form is a property of a planned channel, below).
__attribute__((target("avx512f,avx512bw"), always_inline)) inline void requant_high_mul16(const int32_t* t, int64_t n,
                                                                                        const FusedRequant::HighMulParams& p,
                                                                                        int32_t add, int32_t lo, int32_t hi,
                                                                                        uint8_t* dst, Ranges32& r, bool track = true) {
  const HighMul16 h = high_mul16(p, add, lo, hi);
  if (track && p.lshift == 0) requant_high_mul16_loop<Form16::shift, true>(t, n, h, dst, r);
  else if (track) requant_high_mul16_loop<Form16::shift_left, true>(t, n, h, dst, r);
  else if (p.lshift == 0) requant_high_mul16_loop<Form16::shift, false>(t, n, h, dst, r);
  else requant_high_mul16_loop<Form16::shift_left, false>(t, n, h, dst, r);
}

// A planned channel in its form (the fma form where the planner proved one).
__attribute__((target("avx512f,avx512bw"), always_inline)) inline void requant_high_mul16(const int32_t* t, int64_t n, const HighMulChannel& c,
                                                                                        int32_t lo, int32_t hi, uint8_t* dst, Ranges32& r,
                                                                                        bool track = true) {
  if (!c.fma) return requant_high_mul16(t, n, c.params, c.add, lo, hi, dst, r, track);
  const HighMul16 h = high_mul16(c, lo, hi);
  if (track) requant_high_mul16_loop<Form16::fma, true>(t, n, h, dst, r);
  else requant_high_mul16_loop<Form16::fma, false>(t, n, h, dst, r);
}

}  // namespace qv::integer
