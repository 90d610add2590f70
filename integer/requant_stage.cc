#include "integer/requant_stage.h"
#include "integer/requant_fma16.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <type_traits>
#include <stdexcept>

#include "integer/path_counters.h"
#include "integer/requant8_avx512.h"

namespace qv::integer {

namespace {

constexpr __int128 kInt64Limit = static_cast<__int128>(INT64_MAX);

// y = clamp(R((mul*acc + add) / 2^shift)), shift in [0, 62]: round_shift_right of ir/rounding.h with the
// mode fixed at compile time and written without branches, so that the loop vectorizes (vpmullq,
// vpsraq, mask compares on AVX-512). q = floor(num / 2^s) by arithmetic shift, rem in [0, 2^s) the floor
// remainder; the increment is the mode's decision from rem against half = 2^(s-1).
template <Rounding R>
inline __attribute__((always_inline)) void shift_body(int64_t mul, int64_t add, int shift, int64_t lo, int64_t hi,
                                                      const int64_t* __restrict acc, int64_t* __restrict y, int64_t n) {
  if (shift == 0) {
    for (int64_t i = 0; i < n; ++i) {
      y[i] = std::min(std::max(mul * acc[i] + add, lo), hi);
    }
    return;
  }
  const int64_t mask = (int64_t{1} << shift) - 1, half = int64_t{1} << (shift - 1);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t num = mul * acc[i] + add;  // no overflow: proven in the constructor
    const int64_t q = num >> shift, rem = num & mask;
    int64_t inc = 0;
    if constexpr (R == Rounding::floor) inc = 0;
    if constexpr (R == Rounding::ceil) inc = rem != 0;
    if constexpr (R == Rounding::trunc) inc = (rem != 0) & (q < 0);
    if constexpr (R == Rounding::half_up) inc = rem >= half;
    if constexpr (R == Rounding::half_down) inc = rem > half;
    if constexpr (R == Rounding::half_even) inc = (rem > half) | ((rem == half) & (q & 1));
    if constexpr (R == Rounding::half_away) inc = (rem > half) | ((rem == half) & (q >= 0));
    y[i] = std::min(std::max(q + inc, lo), hi);
  }
}

using ShiftRun = void (*)(int64_t, int64_t, int, int64_t, int64_t, const int64_t*, int64_t*, int64_t, int64_t*);  // FusedRequant::ShiftRun

// y_range (may be null): {min, max} widened to cover y[0..n).
inline void widen(const int64_t* y, int64_t n, int64_t* y_range) {
  if (y_range == nullptr) return;
  int64_t lo = y_range[0], hi = y_range[1];
  for (int64_t i = 0; i < n; ++i) lo = std::min(lo, y[i]), hi = std::max(hi, y[i]);
  y_range[0] = lo, y_range[1] = hi;
}

#define QV_SHIFT_TIER(suffix, attr)                                                                                  \
  template <Rounding R>                                                                                            \
  attr void shift_##suffix(int64_t mul, int64_t add, int shift, int64_t lo, int64_t hi, const int64_t* acc, int64_t* y, \
                           int64_t n, int64_t* y_range) {                                                          \
    shift_body<R>(mul, add, shift, lo, hi, acc, y, n);                                                              \
    widen(y, n, y_range);                                                                                          \
  }                                                                                                                \
  ShiftRun shift_run_##suffix(Rounding r) {                                                                        \
    return with_rounding(r, [](auto R) -> ShiftRun { return shift_##suffix<R.value>; });                             \
  }

QV_SHIFT_TIER(scalar, )
QV_SHIFT_TIER(avx2, __attribute__((target("avx2"))))
#undef QV_SHIFT_TIER

// AVX-512: the same decisions as shift_body on 8 lanes (vpmullq, vpsraq, mask compares); the tail runs
// shift_body.
#define QV_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
// Mul32: acc and mul both proven inside int32, so the product is one vpmuldq (signed 32x32 -> 64, exact)
// instead of vpmullq (three uops).
template <Rounding R, bool Mul32 = false>
QV_TARGET_AVX512 void shift_avx512(int64_t mul, int64_t add, int shift, int64_t lo, int64_t hi, const int64_t* acc, int64_t* y,
                                   int64_t n, int64_t* y_range) {
  int64_t i = 0;
  if (shift > 0 && n >= 8) {
    const FusedRequant::ShiftParams p{mul, add, shift, Mul32};
    const __m512i vlo = _mm512_set1_epi64(lo), vhi = _mm512_set1_epi64(hi);
    const __mmask8 all = 0xFF;  // maskz forms: GCC 12's unmasked ones trip -Wmaybe-uninitialized
    __m512i ymin = _mm512_set1_epi64(INT64_MAX), ymax = _mm512_set1_epi64(INT64_MIN);
    for (; i + 8 <= n; i += 8) {
      const __m512i out = requant_shift8<R>(_mm512_loadu_si512(acc + i), p, vlo, vhi);
      _mm512_storeu_si512(y + i, out);
      ymin = _mm512_maskz_min_epi64(all, ymin, out), ymax = _mm512_maskz_max_epi64(all, ymax, out);
    }
    if (y_range != nullptr) {
      alignas(64) int64_t mins[8], maxs[8];
      _mm512_store_si512(mins, ymin), _mm512_store_si512(maxs, ymax);
      for (int j = 0; j < 8; ++j) y_range[0] = std::min(y_range[0], mins[j]), y_range[1] = std::max(y_range[1], maxs[j]);
    }
  }
  shift_body<R>(mul, add, shift, lo, hi, acc + i, y + i, n - i);
  widen(y + i, n - i, y_range);
}

template <bool Mul32>
ShiftRun shift_run_avx512(Rounding r) {
  return with_rounding(r, [](auto R) -> ShiftRun { return shift_avx512<R.value, Mul32>; });
}

// The loop for channels whose mul and accumulator range fit int32 (only AVX-512 has a faster one).
template <Rounding R>
QV_TARGET_AVX512 void narrow_shift_avx512(const FusedRequant::ShiftParams& p, int64_t lo, int64_t hi, const int64_t* acc, uint8_t* dst,
                                          int64_t n, int64_t* y_range) {
  const __m512i vlo = _mm512_set1_epi64(lo), vhi = _mm512_set1_epi64(hi);
  __m512i ylo = _mm512_set1_epi64(INT64_MAX), yhi = _mm512_set1_epi64(INT64_MIN);
  for (int64_t i = 0; i < n; i += 8) {
    const __mmask8 mask = static_cast<__mmask8>(n - i >= 8 ? 0xFF : (1u << (n - i)) - 1);
    const __m512i y = requant_shift8<R>(_mm512_maskz_loadu_epi64(mask, acc + i), p, vlo, vhi);
    ylo = _mm512_mask_min_epi64(ylo, mask, ylo, y), yhi = _mm512_mask_max_epi64(yhi, mask, yhi, y);
    _mm512_mask_cvtepi64_storeu_epi8(dst + i, mask, y);
  }
  alignas(64) int64_t los[8], his[8];  // (GCC 12's _mm512_reduce_* trip -Wuninitialized)
  _mm512_store_si512(los, ylo), _mm512_store_si512(his, yhi);
  for (int j = 0; j < 8; ++j) y_range[0] = std::min(y_range[0], los[j]), y_range[1] = std::max(y_range[1], his[j]);
}

using NarrowShiftRun = void (*)(const FusedRequant::ShiftParams&, int64_t, int64_t, const int64_t*, uint8_t*, int64_t, int64_t*);  // FusedRequant::NarrowShiftRun

NarrowShiftRun narrow_shift_run(Isa isa, Rounding r) {
  if (!uses_avx512(isa)) return nullptr;
  return with_rounding(r, [](auto R) -> NarrowShiftRun { return narrow_shift_avx512<R.value>; });
}

ShiftRun shift_run32(Isa isa, Rounding r) { return uses_avx512(isa) ? shift_run_avx512<true>(r) : nullptr; }

ShiftRun shift_run(Isa isa, Rounding r) {
  switch (isa) {
    case Isa::avx512vnni:
    case Isa::avx512amx: return shift_run_avx512<false>(r);
    case Isa::avx2: return shift_run_avx2(r);
    case Isa::scalar: break;
  }
  return shift_run_scalar(r);
}

bool fits_int64(const BigInt& v) { return v >= INT64_MIN && v <= INT64_MAX; }

// |mul| * max(|acc_lo|, |acc_hi|) + |add| < 2^63: mul*acc + add cannot overflow int64.
bool affine_fits_int64(int64_t mul, int64_t add, int64_t acc_lo, int64_t acc_hi) {
  const __int128 amax = std::max<__int128>(-static_cast<__int128>(acc_lo), static_cast<__int128>(acc_hi));
  const __int128 m = mul < 0 ? -static_cast<__int128>(mul) : mul;
  const __int128 a = add < 0 ? -static_cast<__int128>(add) : add;
  if (m != 0 && amax > (kInt64Limit - a) / m) return false;
  return m * amax + a <= kInt64Limit;
}

// A non-dyadic exact requant y = clamp(R((mul*acc + add) / den), lo, hi) (den > 0, not a power of two:
// alpha and delta of a real network are ratios of float32 scales, with 100-bit numerators) replaced by a
// dyadic function g(acc) = clamp(R((M*acc + A) / 2^k), lo, hi) that is *proven equal* on the whole
// accumulator range [acc_lo, acc_hi], so the int64 shift route can run it:
//   Both are monotone step functions of acc with the same direction (sign M = sign mul). For each output
//   value v in (lo, hi] the exact step position t_v (the first acc with y >= v, found with exact
//   comparisons 2*(mul*acc + add) >(=) 2b*den around a long double estimate, in int128 where they fit,
//   else in BigInt) must satisfy g(t_v) >= v
//   and g(t_v - 1) < v. Then g = y between any two steps, below the first and above the last.
// M and A are mul*2^k/den and add*2^k/den rounded to nearest, for the largest k that keeps M in int32 (the
// vpmuldq loop), else in the int64 route's bound; a candidate that fails the check is not used.
struct Dyadic {
  int64_t mul, add;
  int shift;
};

__int128 to_i128(const BigInt& v) {
  const bool neg = v < 0;
  const BigInt a = neg ? BigInt(-v) : v;
  const __int128 r = (static_cast<__int128>(static_cast<uint64_t>(a >> 64)) << 64) | static_cast<uint64_t>(a & BigInt(UINT64_MAX));
  return neg ? -r : r;
}

int bits(const BigInt& v) { return v == 0 ? 0 : static_cast<int>(msb(v < 0 ? BigInt(-v) : v)) + 1; }

long double to_long_double(__int128 v) { return static_cast<long double>(v); }
long double to_long_double(const BigInt& v) { return v.convert_to<long double>(); }

// The step positions of the exact requant y = clamp(R((mul*acc + add) / den), lo, hi) on the range, in
// s = sign*acc (sign = sign of mul, so that y is non-decreasing in s): steps[v - lo - 1] is the first s in
// [s_lo, s_hi] with y >= v, s_hi + 1 when none, for v in (lo, hi]. Each is found by exact comparisons
// 2*(mul*acc + add) >(=) 2b*den around a long double estimate; false when an estimate is more than 64
// steps off (then nothing is claimed). I: __int128 when the comparisons fit it (the fast case), else BigInt.
struct Steps {
  int sign = 1;
  int64_t s_lo = 0, s_hi = 0;
  std::vector<int64_t> at;
};

template <class I>
bool step_positions_in(const I& mul, const I& add, const I& den, Rounding r, int64_t lo, int64_t hi, int64_t acc_lo, int64_t acc_hi,
                    Steps& out) {
  out.sign = mul > 0 ? 1 : -1;
  const I m = mul > 0 ? I(mul) : I(-mul);
  const int64_t s_lo = out.sign > 0 ? acc_lo : -acc_hi, s_hi = out.sign > 0 ? acc_hi : -acc_lo;
  out.s_lo = s_lo, out.s_hi = s_hi;
  out.at.clear();
  const long double m_ld = to_long_double(m), add_ld = to_long_double(add), den_ld = to_long_double(den);
  for (int64_t v = lo + 1; v <= hi; ++v) {
    const TwiceStepBoundary b = twice_step_boundary(v, r);
    const I target = I(b.twice_boundary) * den;
    const long double target_ld = static_cast<long double>(b.twice_boundary) * den_ld;
    auto reached = [&](int64_t s) {
      if constexpr (std::is_same_v<I, BigInt>) {
        // The sign of p from long double (64-bit mantissa) when |p| clears its rounding error by far;
        // p changes by 2*|mul| (~2^100) per step, so the exact BigInt evaluation is almost never needed.
        const long double ms = m_ld * static_cast<long double>(s);
        const long double p_ld = 2 * (ms + add_ld) - target_ld;
        const long double err = (std::fabs(ms) + std::fabs(add_ld) + std::fabs(target_ld)) * 0x1p-58L;
        if (p_ld > err) return true;
        if (p_ld < -err) return false;
      }
      const I p = I(2) * (m * I(s) + add) - target;
      return b.inclusive ? p >= 0 : p > 0;
    };
    const long double estimate = (target_ld / 2 - add_ld) / m_ld;
    int64_t t = estimate < static_cast<long double>(s_lo) ? s_lo
                : estimate > static_cast<long double>(s_hi) ? s_hi + 1
                                                             : static_cast<int64_t>(std::ceil(estimate));
    int steps = 0;
    while (t > s_lo && reached(t - 1))
      if (--t, ++steps > 64) return false;
    while (t <= s_hi && !reached(t))
      if (++t, ++steps > 64) return false;
    out.at.push_back(t);
  }
  return true;
}

// Both, in int128 when the comparisons fit it, else in BigInt.
bool step_positions(const BigInt& mul, const BigInt& add, const BigInt& den, Rounding r, int64_t lo, int64_t hi, int64_t acc_lo,
                    int64_t acc_hi, Steps& out) {
  const BigInt amax = std::max(-BigInt(acc_lo), BigInt(acc_hi));
  const int tb_bits = bits(BigInt(2) * std::max(-BigInt(lo), BigInt(hi)) + 2);
  const bool fits128 = bits(mul) + bits(amax) <= 122 && bits(add) <= 122 && bits(den) + tb_bits <= 124;
  return fits128 ? step_positions_in(to_i128(mul), to_i128(add), to_i128(den), r, lo, hi, acc_lo, acc_hi, out)
                 : step_positions_in(mul, add, den, r, lo, hi, acc_lo, acc_hi, out);
}

// The dyadic candidate g equals y on the range: g(t_v) >= v and g(t_v - 1) < v at every step position.
bool proven_equal(const Steps& steps, Rounding r, int64_t lo, int64_t hi, const Dyadic& d) {
  auto g = [&](int64_t acc) { return std::clamp(round_shift_right(d.mul * acc + d.add, d.shift, r), lo, hi); };
  for (int64_t v = lo + 1; v <= hi; ++v) {
    const int64_t t = steps.at[static_cast<size_t>(v - lo - 1)];
    if (t <= steps.s_hi && g(steps.sign * t) < v) return false;
    if (t > steps.s_lo && g(steps.sign * (t - 1)) >= v) return false;
  }
  return true;
}

// Outputs of up to 12 bits (one step per output value) and |acc| < 2^62 (sign*acc cannot overflow).
bool steps_fit(int64_t lo, int64_t hi, int64_t acc_lo, int64_t acc_hi) {
  return acc_lo <= acc_hi && hi - lo <= 4096 && lo >= -(int64_t{1} << 40) && hi <= (int64_t{1} << 40) && acc_lo > -(int64_t{1} << 62) &&
         acc_hi < (int64_t{1} << 62);
}

// `steps`: the requant's step positions on the range (step_positions), one check per output step.
std::optional<Dyadic> dyadic_equivalent(const BigInt& mul, const BigInt& add, const BigInt& den, const Steps& steps, Rounding r, int64_t lo,
                                        int64_t hi, int64_t acc_lo, int64_t acc_hi) {
  const double amax = static_cast<double>(std::max(std::abs(static_cast<double>(acc_lo)), std::abs(static_cast<double>(acc_hi))));
  // log2 |mul/den| and |add/den|: the largest k for a target size of M.
  const int mul_vs_den = bits(mul) - bits(den), add_vs_den = bits(add) - bits(den);
  for (const int target : {31, 62}) {
    // |M| < 2^target (int32 for vpmuldq), and |M|*amax + |A| < 2^63 for the int64 route.
    int k = std::min({62, target - 1 - mul_vs_den, 61 - add_vs_den, 61 - mul_vs_den - static_cast<int>(std::ceil(std::log2(amax + 1)))});
    for (; k >= 0; --k) {
      const BigInt scale = BigInt(1) << k;
      const BigInt M = round_div(mul * scale, den, Rounding::half_even), A = round_div(add * scale, den, Rounding::half_even);
      if (!fits_int64(M) || !fits_int64(A) || M == 0) break;
      const Dyadic d{static_cast<int64_t>(M), static_cast<int64_t>(A), k};
      if ((target == 31 && (d.mul < INT32_MIN || d.mul > INT32_MAX)) || !affine_fits_int64(d.mul, d.add, acc_lo, acc_hi)) continue;
      if (proven_equal(steps, r, lo, hi, d)) return d;
      break;  // the most precise candidate of this size failed; try the larger size
    }
  }
  return std::nullopt;
}

// The exact_div64 route's multiply-high division, where the range of n = mul*acc + add allows it.
template <class Channel>
void prepare_magic(Channel& ch, int64_t acc_lo, int64_t acc_hi) {
  const __int128 n1 = static_cast<__int128>(ch.mul) * acc_lo + ch.add, n2 = static_cast<__int128>(ch.mul) * acc_hi + ch.add;
  const __int128 n_lo = std::min(n1, n2), n_hi = std::max(n1, n2), den = ch.den;
  const __int128 q_lo = n_lo >= 0 ? n_lo / den : -((-n_lo + den - 1) / den);  // floor
  const __int128 base = q_lo * den, span = n_hi - base;
  if (span >= (static_cast<__int128>(1) << 63)) return;
  int bits = 1;
  while ((static_cast<__int128>(1) << bits) <= span) ++bits;
  ch.magic = true;
  ch.base = static_cast<uint64_t>(static_cast<unsigned __int128>(base));
  ch.base_q = static_cast<int64_t>(q_lo);
  ch.div = DivByConstant::make(static_cast<uint64_t>(ch.den), bits);
  // For IFMA: the theorem holds for any bound 2^N' above the span, so take N' with N' + l >= 52 (the
  // first shift is then the instruction's own 52) while u < 2^51 and m < 2^52.
  if (ch.den >= 2 && bits <= 51) {
    int l = 0;
    while ((static_cast<__int128>(1) << l) < den) ++l;
    const DivByConstant d52 = DivByConstant::make(static_cast<uint64_t>(ch.den), std::max(bits, 52 - l));
    if (std::max(bits, 52 - l) <= 51 && d52.shift >= 52 && d52.m < (static_cast<unsigned __int128>(1) << 52)) {
      ch.div = d52;
      ch.ifma = true;
    }
  }
}

// y = clamp(R(n / den)) from the floor quotient and remainder, as round_div_int64.
template <Rounding R>
void div64_magic(int64_t mul, int64_t add, uint64_t base, int64_t base_q, const DivByConstant& div, int64_t lo, int64_t hi,
                 const int64_t* acc, int64_t* y, int64_t n) {
  const uint64_t den = div.d;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t u = static_cast<uint64_t>(mul * acc[i] + add) - base;  // exact: the true value is in [0, 2^63)
    const uint64_t qu = div.quotient(u), r = u - qu * den;
    const int64_t q = base_q + static_cast<int64_t>(qu);
    bool up = false;
    if constexpr (R == Rounding::ceil) up = r != 0;
    if constexpr (R == Rounding::trunc) up = r != 0 && q < 0;
    if constexpr (R == Rounding::half_up) up = r >= den - r && r != 0;
    if constexpr (R == Rounding::half_down) up = r > den - r;
    if constexpr (R == Rounding::half_even) up = r > den - r || (r != 0 && r == den - r && (q & 1) != 0);
    if constexpr (R == Rounding::half_away) up = r > den - r || (r != 0 && r == den - r && q >= 0);
    y[i] = std::clamp(q + (up ? 1 : 0), lo, hi);
  }
}

// div64_magic on 8 lanes: vpmullq forms n (exact: its true value fits int64), vpmadd52huq the
// quotient's first 52-bit shift, vpmullq the remainder.
struct Div64Lanes {
  __m512i mul, add, base, m, d, q0, lo, hi;
  __m128i count;
};

template <class Channel>
__attribute__((target("avx512f"), always_inline)) inline Div64Lanes div64_lanes(const Channel& ch, int64_t lo, int64_t hi) {
  return Div64Lanes{_mm512_set1_epi64(ch.mul),
                    _mm512_set1_epi64(ch.add),
                    _mm512_set1_epi64(static_cast<int64_t>(ch.base)),
                    _mm512_set1_epi64(static_cast<int64_t>(static_cast<uint64_t>(ch.div.m))),
                    _mm512_set1_epi64(ch.den),
                    _mm512_set1_epi64(ch.base_q),
                    _mm512_set1_epi64(lo),
                    _mm512_set1_epi64(hi),
                    _mm_cvtsi32_si128(ch.div.shift - 52)};
}

// clamp(R(n / den)) of the 8 accumulators a.
template <Rounding R>
__attribute__((target("avx512f,avx512dq,avx512ifma,avx512vl,avx512bw"), always_inline)) inline __m512i div64_ifma8(const Div64Lanes& k, __m512i a) {
  const __mmask8 all = 0xFF;
  const __m512i one = _mm512_set1_epi64(1), zero = _mm512_setzero_si512();
  const __m512i u = _mm512_sub_epi64(_mm512_add_epi64(_mm512_maskz_mullo_epi64(all, a, k.mul), k.add), k.base);
  const __m512i qu = _mm512_maskz_srl_epi64(all, _mm512_madd52hi_epu64(zero, u, k.m), k.count);
  const __m512i r = _mm512_sub_epi64(u, _mm512_maskz_mullo_epi64(all, qu, k.d));
  const __m512i q = _mm512_add_epi64(qu, k.q0), dr = _mm512_sub_epi64(k.d, r);
  __mmask8 up = 0;
  const __mmask8 nonzero = _mm512_test_epi64_mask(r, r);
  if constexpr (R == Rounding::ceil) up = nonzero;
  if constexpr (R == Rounding::trunc) up = nonzero & _mm512_cmplt_epi64_mask(q, zero);
  if constexpr (R == Rounding::half_up) up = nonzero & _mm512_cmpge_epi64_mask(r, dr);
  if constexpr (R == Rounding::half_down) up = _mm512_cmpgt_epi64_mask(r, dr);
  if constexpr (R == Rounding::half_even)
    up = _mm512_cmpgt_epi64_mask(r, dr) | (nonzero & _mm512_cmpeq_epi64_mask(r, dr) & _mm512_test_epi64_mask(q, one));
  if constexpr (R == Rounding::half_away)
    up = _mm512_cmpgt_epi64_mask(r, dr) | (nonzero & _mm512_cmpeq_epi64_mask(r, dr) & _mm512_cmpge_epi64_mask(q, zero));
  const __m512i v = _mm512_mask_add_epi64(q, up, q, one);
  return _mm512_maskz_min_epi64(all, _mm512_maskz_max_epi64(all, v, k.lo), k.hi);
}

template <Rounding R, class Channel>
__attribute__((target("avx512f,avx512dq,avx512ifma,avx512vl,avx512bw"))) void div64_ifma(const Channel& ch, int64_t lo, int64_t hi,
                                                                                       const int64_t* acc, int64_t* y, int64_t n) {
  const Div64Lanes k = div64_lanes(ch, lo, hi);
  for (int64_t i = 0; i < n; i += 8) {
    const __mmask8 mask = static_cast<__mmask8>(n - i >= 8 ? 0xFF : (1u << (n - i)) - 1);
    _mm512_mask_storeu_epi64(y + i, mask, div64_ifma8<R>(k, _mm512_maskz_loadu_epi64(mask, acc + i)));
  }
}

// The same straight to bytes (the low byte of each output, two's complement), widening y_range.
template <Rounding R, class Channel>
__attribute__((target("avx512f,avx512dq,avx512ifma,avx512vl,avx512bw"))) void div64_ifma_narrow(const Channel& ch, int64_t lo, int64_t hi,
                                                                                              const int64_t* acc, uint8_t* dst, int64_t n,
                                                                                              int64_t* y_range) {
  const Div64Lanes k = div64_lanes(ch, lo, hi);
  __m512i y_lo = _mm512_set1_epi64(y_range[0]), y_hi = _mm512_set1_epi64(y_range[1]);
  for (int64_t i = 0; i < n; i += 8) {
    const __mmask8 mask = static_cast<__mmask8>(n - i >= 8 ? 0xFF : (1u << (n - i)) - 1);
    const __m512i y = div64_ifma8<R>(k, _mm512_maskz_loadu_epi64(mask, acc + i));
    y_lo = _mm512_mask_min_epi64(y_lo, mask, y_lo, y), y_hi = _mm512_mask_max_epi64(y_hi, mask, y_hi, y);
    _mm512_mask_cvtepi64_storeu_epi8(dst + i, mask, y);
  }
  alignas(64) int64_t lo8[8], hi8[8];  // no _mm512_reduce_*: GCC 12 warns on its undefined sources under -Werror
  _mm512_store_si512(lo8, y_lo), _mm512_store_si512(hi8, y_hi);
  y_range[0] = *std::min_element(lo8, lo8 + 8), y_range[1] = *std::max_element(hi8, hi8 + 8);
}

template <class Channel>
auto div64_vector_for(Isa isa, Rounding r) -> void (*)(const Channel&, int64_t, int64_t, const int64_t*, int64_t*, int64_t) {
  if (!uses_avx512(isa) || !__builtin_cpu_supports("avx512ifma")) return nullptr;
  return with_rounding(r, [](auto R) { return &div64_ifma<R.value, Channel>; });
}

template <class Channel>
auto div64_narrow_for(Isa isa, Rounding r) -> void (*)(const Channel&, int64_t, int64_t, const int64_t*, uint8_t*, int64_t, int64_t*) {
  if (!uses_avx512(isa) || !__builtin_cpu_supports("avx512ifma")) return nullptr;
  return with_rounding(r, [](auto R) { return &div64_ifma_narrow<R.value, Channel>; });
}

using Div64Run = void (*)(int64_t, int64_t, uint64_t, int64_t, const DivByConstant&, int64_t, int64_t, const int64_t*, int64_t*, int64_t);

Div64Run div64_run(Rounding r) {
  return with_rounding(r, [](auto R) -> Div64Run { return div64_magic<R.value>; });
}

}  // namespace

FusedRequant::FusedRequant(const Requant& rq, int64_t acc_lo, int64_t acc_hi, Isa isa) : rq_(&rq) {
  const size_t C = rq.channels();
  channels_.resize(C);
  PathCounters& pc = path_counters();
  switch (rq.kind()) {
    case RequantForm::exact: {
      const auto& f = std::get<ExactRequant>(rq.form);
      if (f.delta.size() != f.alpha.size()) throw std::invalid_argument("exact requant: alpha and delta sizes differ");
      shift_ = shift_run(isa, f.rounding);
      shift32_ = shift_run32(isa, f.rounding);
      narrow_shift_ = narrow_shift_run(isa, f.rounding);
      div64_vector_ = div64_vector_for<Channel>(isa, f.rounding);
      div64_narrow_ = div64_narrow_for<Channel>(isa, f.rounding);
      rounding_ = f.rounding;
      bool any_ref = false, any_shift = false, any_equivalent = false, any_div = false, any_steps = false;
      for (size_t o = 0; o < C; ++o) {
        using boost::multiprecision::denominator;
        using boost::multiprecision::numerator;
        const BigInt p = numerator(f.alpha[o]), q = denominator(f.alpha[o]);
        const BigInt r = numerator(f.delta[o]), s = denominator(f.delta[o]);
        BigInt mul = p * s, add = r * q, den = q * s;
        const BigInt g = gcd(gcd(mul, add), den);
        mul /= g, add /= g, den /= g;
        const unsigned long k = msb(den);
        Channel& ch = channels_[o];
        // The exact step positions (outputs of up to 12 bits), found once for the two routes that use them.
        Steps steps;
        bool have_steps = false;
        auto find_steps = [&] {
          return mul != 0 && den > 0 && steps_fit(rq.lo, rq.hi, acc_lo, acc_hi) &&
                 step_positions(mul, add, den, f.rounding, rq.lo, rq.hi, acc_lo, acc_hi, steps);
        };
        if (lsb(den) == k && k <= 62 && fits_int64(mul) && fits_int64(add) &&
            affine_fits_int64(static_cast<int64_t>(mul), static_cast<int64_t>(add), acc_lo, acc_hi)) {
          ch = Channel{Route::exact_shift, static_cast<int64_t>(mul), static_cast<int64_t>(add), static_cast<int>(k)};
          any_shift = true;
        } else if (std::optional<Dyadic> d;
                   (have_steps = find_steps()) && (d = dyadic_equivalent(mul, add, den, steps, f.rounding, rq.lo, rq.hi, acc_lo, acc_hi))) {
          ch = Channel{Route::exact_shift, d->mul, d->add, d->shift};
          any_equivalent = true;
        } else if (den <= INT64_MAX && fits_int64(mul) && fits_int64(add) &&
                   affine_fits_int64(static_cast<int64_t>(mul), static_cast<int64_t>(add), acc_lo, acc_hi)) {
          ch = Channel{Route::exact_div64, static_cast<int64_t>(mul), static_cast<int64_t>(add), 0};
          ch.den = static_cast<int64_t>(den);
          prepare_magic(ch, acc_lo, acc_hi);
          any_div = true;
        } else if (have_steps) {
          // No dyadic function is proven equal and mul*acc + add exceeds int64 (a 100-bit alpha whose
          // steps lie too close to a rounding boundary for the shifts' precision): the exact step positions.
          ch.route = Route::exact_steps;
          ch.sign = steps.sign;
          ch.steps = std::move(steps.at);
          any_steps = true;
        } else {
          any_ref = true;
        }
      }
      if (any_steps) pc.add(Path::requant_exact_steps);
      if (any_div) pc.add(Path::requant_exact_div64);
      if (div64_vector_ != nullptr && std::any_of(channels_.begin(), channels_.end(), [](const Channel& ch) { return ch.ifma; }))
        pc.add(Path::requant_exact_div64_ifma);
      if (any_shift) pc.add(Path::requant_exact_shift);
      if (any_equivalent) pc.add(Path::requant_exact_dyadic_equivalent);
      if (any_ref) pc.add(Path::requant_exact_bigint);
      break;
    }
    case RequantForm::mul_add_shift: {
      const auto& f = std::get<MulAddShiftRequant>(rq.form);
      shift_ = shift_run(isa, Rounding::floor);  // floor((acc*mul + add) / 2^d)
      shift32_ = shift_run32(isa, Rounding::floor);
      narrow_shift_ = narrow_shift_run(isa, Rounding::floor);
      rounding_ = Rounding::floor;
      bool any64 = false, any128 = false, any_ref = false;
      const bool range_ok = acc_lo > -(int64_t{1} << 62) && acc_hi < (int64_t{1} << 62);  // requant_fixed's precondition
      for (size_t o = 0; o < C; ++o) {
        Channel& ch = channels_[o];
        ch.mul = f.mul[o], ch.add = f.add[o], ch.shift = f.shift;
        if (affine_fits_int64(f.mul[o], f.add[o], acc_lo, acc_hi)) {
          ch.route = Route::mul_add_shift_int64;
          any64 = true;
        } else if (range_ok && f.mul[o] > -(int64_t{1} << 62) && f.mul[o] < (int64_t{1} << 62)) {
          ch.route = Route::mul_add_shift_int128;  // |acc*mul| < 2^124, + |add| < 2^63: fits __int128
          any128 = true;
        } else {
          any_ref = true;
        }
      }
      if (any64) pc.add(Path::requant_mul_add_shift_int64);
      if (any128) pc.add(Path::requant_mul_add_shift_int128);
      if (any_ref) pc.add(Path::requant_ref);
      break;
    }
    case RequantForm::thresholds: {
      const bool ok = acc_lo > -(int64_t{1} << 62) && acc_hi < (int64_t{1} << 62);
      for (Channel& ch : channels_) ch.route = ok ? Route::thresholds : Route::reference;
      pc.add(ok ? Path::requant_thresholds : Path::requant_ref);
      break;
    }
    case RequantForm::fixed_point: {
      const auto& f = std::get<FixedPointRequant>(rq.form);
      bool any_ref = false, any_fixed = false;
      for (size_t o = 0; o < C; ++o) {
        const int left = f.double_rounding ? std::max(f.shift[o], 0) : 0;
        const __int128 x_lo = (static_cast<__int128>(acc_lo) + f.bias[o]) * (__int128{1} << left);
        const __int128 x_hi = (static_cast<__int128>(acc_hi) + f.bias[o]) * (__int128{1} << left);
        const bool shift_ok = f.shift[o] >= -31 && f.shift[o] <= (f.double_rounding ? 31 : 30) &&
                              (f.double_rounding ? -f.shift[o] <= 31 : true);
        if (shift_ok && x_lo >= INT32_MIN && x_hi <= INT32_MAX) {
          channels_[o].route = f.double_rounding ? Route::fixed_double : Route::fixed_single;
          any_fixed = true;
        } else {
          any_ref = true;
        }
      }
      if (any_fixed) pc.add(f.double_rounding ? Path::requant_fixed_point_double : Path::requant_fixed_point_single);
      if (any_ref) pc.add(Path::requant_ref);
      break;
    }
  }
  // vpmuldq reads the low 32 bits of each lane as signed: exact when every accumulator of the declared
  // range and the channel's mul lie in int32.
  const bool acc32 = acc_lo >= INT32_MIN && acc_hi <= INT32_MAX;
  for (Channel& ch : channels_)
    ch.mul32 = shift32_ != nullptr && acc32 && ch.mul >= INT32_MIN && ch.mul <= INT32_MAX &&
               (ch.route == Route::exact_shift || ch.route == Route::mul_add_shift_int64);
  shift_table_.resize(C), has_shift_.resize(C);
  for (size_t o = 0; o < C; ++o) has_shift_[o] = shift_params(o, shift_table_[o]), any_shift_ = any_shift_ || has_shift_[o];
}

bool FusedRequant::shift_params(size_t o, ShiftParams& p) const {
  const Channel& ch = channels_[o];
  if (ch.route != Route::exact_shift && ch.route != Route::mul_add_shift_int64) return false;
  p.mul = ch.mul, p.add = ch.add, p.shift = ch.shift, p.mul32 = ch.mul32;
  return true;
}

namespace {

// Whether some t in [t_lo, t_hi] has mul*t + base == 2^(s-1) (mod 2^s): a rounding tie. With z the
// trailing zeros of mul, the congruence has solutions iff 2^z divides the right side, and then they are
// t0 + j*2^(s-z) with t0 from the inverse of the odd part of mul.
bool tie_in_range(int64_t mul, __int128 base, int s, int64_t t_lo, int64_t t_hi) {
  using u128 = unsigned __int128;
  const u128 modulus = u128{1} << s, mask = modulus - 1;
  const u128 c = (u128{1} << (s - 1)) - static_cast<u128>(base);  // wraps mod 2^128; only the low s bits matter
  const u128 m = static_cast<u128>(static_cast<__int128>(mul)) & mask;
  if (m == 0) return (c & mask) == 0;
  int z = 0;
  while (((m >> z) & 1) == 0) ++z;
  if ((c & ((u128{1} << z) - 1)) != 0) return false;
  const u128 odd = m >> z, period = u128{1} << (s - z);
  u128 inv = odd;  // Newton's iteration for the inverse of an odd number mod 2^128: 3, 6, ..., 192 bits
  for (int i = 0; i < 6; ++i) inv *= 2 - odd * inv;
  const u128 t0 = ((c >> z) * inv) & (period - 1);
  // The first solution at or above t_lo.
  const u128 up = (t0 - static_cast<u128>(static_cast<__int128>(t_lo))) & (period - 1);
  return static_cast<__int128>(t_lo) + static_cast<__int128>(up) <= static_cast<__int128>(t_hi);
}

}  // namespace

bool FusedRequant::high_mul_params(size_t o, int64_t acc_add, int64_t t_lo, int64_t t_hi, HighMulParams& p) const {
  const Channel& ch = channels_[o];
  if (ch.route != Route::exact_shift && ch.route != Route::mul_add_shift_int64) return false;
  if (t_lo > t_hi || t_lo < INT32_MIN || t_hi > INT32_MAX || ch.shift < 0 || ch.shift > 62) return false;
  const int s = ch.shift;
  // acc = t + acc_add: mul*acc + add = mul*t + base.
  const __int128 base = static_cast<__int128>(ch.mul) * acc_add + ch.add;
  const __int128 half = s > 0 ? static_cast<__int128>(1) << (s - 1) : 0;
  __int128 offset = 0;
  switch (rounding_) {
    case Rounding::floor: offset = 0; break;
    case Rounding::ceil: offset = (static_cast<__int128>(1) << s) - 1; break;
    case Rounding::half_up: offset = half; break;
    case Rounding::half_down: offset = s > 0 ? half - 1 : 0; break;
    case Rounding::half_even:
    case Rounding::half_away:
      // Off the ties both are round-to-nearest, which is half_up.
      if (s > 0 && tie_in_range(ch.mul, base, s, t_lo, t_hi)) return false;
      offset = half;
      break;
    case Rounding::trunc: return false;
  }
  __int128 mul = ch.mul, bias = base + offset;
  p.lshift = 0;
  if (s < 32) {
    // Bring the shift up to 32: scale mul and bias when mul stays inside int32, else shift the 64-bit
    // sums left in the kernel (exact when they still fit int64).
    if ((mul << (32 - s)) >= INT32_MIN && (mul << (32 - s)) <= INT32_MAX)
      mul <<= 32 - s, bias <<= 32 - s;
    else
      p.lshift = 32 - s;
  }
  if (mul < INT32_MIN || mul > INT32_MAX || bias < INT64_MIN || bias > INT64_MAX) return false;
  for (const int64_t t : {t_lo, t_hi}) {
    const __int128 num = (mul * t + bias) * (static_cast<__int128>(1) << p.lshift);
    if (num < INT64_MIN || num > INT64_MAX) return false;
  }
  p.mul = static_cast<int32_t>(mul), p.bias = static_cast<int64_t>(bias), p.rshift = std::max(s, 32) - 32;
  return true;
}

std::vector<HighMulChannel> high_mul_channels(const FusedRequant& rq, const std::vector<int64_t>& add, const std::vector<int64_t>& bound,
                                              bool fma_forms) {
  std::vector<HighMulChannel> out(add.size());
  bool any = false;
  for (size_t o = 0; o < add.size() && o < rq.channels(); ++o) {
    HighMulChannel& h = out[o];
    h.ok = bound[o] >= 0 && bound[o] <= INT32_MAX && std::abs(add[o]) <= INT32_MAX - bound[o] &&
           rq.high_mul_params(o, add[o], -bound[o], bound[o], h.params);
    h.add = h.ok ? static_cast<int32_t>(add[o]) : 0;
    FmaForm form;
    if (fma_forms && h.ok && fma_form_for(h.params, -bound[o], bound[o], static_cast<int32_t>(rq.lo()), static_cast<int32_t>(rq.hi()), form))
      h.fma = true, h.fma_f = form.f, h.fma_b = form.b;
    any = any || h.ok;
  }
  if (!any) out.clear();
  return out;
}

int64_t FusedRequant::lo() const { return rq_->lo; }
int64_t FusedRequant::hi() const { return rq_->hi; }

void FusedRequant::apply(size_t o, const int64_t* acc, int64_t* y, int64_t n, int64_t& y_lo, int64_t& y_hi) const {
  const Channel& ch = channels_[o];
  int64_t range[2] = {y_lo, y_hi};
  if (ch.route == Route::exact_shift || ch.route == Route::mul_add_shift_int64) {
    (ch.mul32 ? shift32_ : shift_)(ch.mul, ch.add, ch.shift, rq_->lo, rq_->hi, acc, y, n, range);
  } else {
    apply(o, acc, y, n);
    widen(y, n, range);
  }
  y_lo = range[0], y_hi = range[1];
}

void FusedRequant::apply_narrow(size_t o, const int64_t* acc, uint8_t* dst, int64_t n, int64_t& y_lo, int64_t& y_hi) const {
  ShiftParams p;
  if (narrow_shift_ != nullptr && shift_params(o, p)) {
    int64_t range[2] = {y_lo, y_hi};
    narrow_shift_(p, rq_->lo, rq_->hi, acc, dst, n, range);
    y_lo = range[0], y_hi = range[1];
    return;
  }
  const Channel& ch = channels_[o];
  if (ch.route == Route::exact_div64 && ch.ifma && div64_narrow_ != nullptr) {
    int64_t range[2] = {y_lo, y_hi};
    div64_narrow_(ch, rq_->lo, rq_->hi, acc, dst, n, range);
    y_lo = range[0], y_hi = range[1];
    return;
  }
  thread_local std::vector<int64_t> y;
  if (y.size() < static_cast<size_t>(n)) y.resize(static_cast<size_t>(n));
  apply(o, acc, y.data(), n, y_lo, y_hi);
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<uint8_t>(y[static_cast<size_t>(i)]);
}

bool FusedRequant::narrows_by_ifma() const {
  return div64_narrow_ != nullptr &&
         std::any_of(channels_.begin(), channels_.end(), [](const Channel& ch) { return ch.route == Route::exact_div64 && ch.ifma; });
}

std::string FusedRequant::routes() const {
  static constexpr const char* kNames[] = {"exact_shift", "mul_add_shift_int64", "mul_add_shift_int128", "thresholds",
                                           "fixed_single", "fixed_double", "exact_div64", "exact_steps", "reference"};
  int64_t count[std::size(kNames)] = {};
  int64_t ifma = 0;
  for (const Channel& ch : channels_) ++count[static_cast<size_t>(ch.route)], ifma += ch.route == Route::exact_div64 && ch.ifma && div64_vector_;
  std::string s;
  for (size_t r = 0; r < std::size(kNames); ++r)
    if (count[r] > 0) s += (s.empty() ? "" : ", ") + std::string(kNames[r]) + " x" + std::to_string(count[r]);
  if (ifma > 0) s += " (" + std::to_string(ifma) + " by IFMA)";
  return s;
}

void FusedRequant::apply(size_t o, const int64_t* acc, int64_t* y, int64_t n) const {
  const Channel& ch = channels_[o];
  const int64_t lo = rq_->lo, hi = rq_->hi;
  switch (ch.route) {
    case Route::exact_shift:
    case Route::mul_add_shift_int64:
      return (ch.mul32 ? shift32_ : shift_)(ch.mul, ch.add, ch.shift, lo, hi, acc, y, n, nullptr);
    case Route::mul_add_shift_int128:
      for (int64_t i = 0; i < n; ++i) {
        const __int128 v = (static_cast<__int128>(acc[i]) * ch.mul + ch.add) >> ch.shift;
        y[i] = v < lo ? lo : v > hi ? hi : static_cast<int64_t>(v);
      }
      return;
    case Route::thresholds: {
      const auto& f = std::get<ThresholdRequant>(rq_->form);
      const std::vector<int64_t>& t = f.thresholds[o];
      const int64_t sign = f.sign[o];
      for (int64_t i = 0; i < n; ++i) {
        const int64_t s = acc[i] * sign;  // |acc| < 2^62, sign in {-1, 0, 1}
        y[i] = lo + (std::upper_bound(t.begin(), t.end(), s) - t.begin());
      }
      return;
    }
    case Route::fixed_single:
    case Route::fixed_double:
      for (int64_t i = 0; i < n; ++i) y[i] = requant_fixed(*rq_, o, acc[i]);  // preconditions proven above
      return;
    case Route::exact_div64:
      if (ch.ifma && div64_vector_ != nullptr) return div64_vector_(ch, lo, hi, acc, y, n);
      if (ch.magic) return div64_run(rounding_)(ch.mul, ch.add, ch.base, ch.base_q, ch.div, lo, hi, acc, y, n);
      for (int64_t i = 0; i < n; ++i) y[i] = std::clamp(round_div_int64(ch.mul * acc[i] + ch.add, ch.den, rounding_), lo, hi);
      return;
    case Route::exact_steps:
      for (int64_t i = 0; i < n; ++i) {
        const int64_t s = acc[i] * ch.sign;  // |acc| < 2^62
        y[i] = lo + (std::upper_bound(ch.steps.begin(), ch.steps.end(), s) - ch.steps.begin());
      }
      return;
    case Route::reference:
      for (int64_t i = 0; i < n; ++i) y[i] = requant_ref(*rq_, o, BigInt(acc[i]));
      return;
  }
}

}  // namespace qv::integer
