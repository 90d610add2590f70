#include "integer/requant_fma16.h"

#include <algorithm>
#include <cmath>
#include <optional>

namespace qv::integer {

namespace {

using I128 = __int128;

I128 floor_div(I128 a, I128 d) {  // d > 0
  const I128 q = a / d;
  return q * d > a ? q - 1 : q;
}
I128 pow2(int e) { return static_cast<I128>(1) << e; }
// floor(a / 2^e) and ceil(a / 2^e): arithmetic shifts (the planner runs these for every step of every
// channel, and an __int128 division costs tens of nanoseconds).
I128 floor_shift(I128 a, int e) { return a >> e; }
I128 ceil_shift(I128 a, int e) { return -((-a) >> e); }
I128 abs128(I128 v) { return v < 0 ? -v : v; }
int bit_width(I128 v) {
  int n = 0;
  for (v = abs128(v); v != 0; v >>= 1) ++n;
  return n;
}

// The shift route's output before the clamp, as requant16_avx512.h computes it (arithmetic shifts are floors).
I128 shift_route_unclamped(const FusedRequant::HighMulParams& s, int64_t t) {
  return ((static_cast<I128>(t) * s.mul + s.bias) * pow2(s.lshift)) >> (32 + s.rshift);
}

// A multiple of a power of two in [lo_b, hi_b] with at most 24 significant bits (B/2^p is then a float32),
// the coarsest one there is.
std::optional<I128> float_grid_point(I128 lo_b, I128 hi_b) {
  for (int j = std::max(bit_width(lo_b), bit_width(hi_b)) + 1; j >= 0; --j) {
    const I128 m = ceil_shift(lo_b, j);
    if (m * pow2(j) > hi_b) continue;
    if (abs128(m) >= pow2(24)) return std::nullopt;  // finer grids only need more bits
    return m * pow2(j);
  }
  return std::nullopt;
}

bool is_float_exactly(float x, I128 num, int p) {  // x == num / 2^p
  int e = 0;
  const double m = std::frexp(static_cast<double>(x), &e);  // x = m * 2^e, m in [0.5, 1): m * 2^53 is an integer
  const I128 scaled = static_cast<I128>(std::ldexp(m, 53));
  const int shift = e - 53 + p;  // num = scaled * 2^shift
  if (x == 0) return num == 0;
  if (shift >= 0) return shift < 100 && scaled * pow2(shift) == num;
  return -shift < 120 && num * pow2(-shift) == scaled;
}

}  // namespace

int32_t fma_form_exact(const FmaForm& form, int64_t t, int32_t lo, int32_t hi) {
  const I128 y = floor_shift(static_cast<I128>(form.F) * t + form.B, form.p);
  return static_cast<int32_t>(std::clamp<I128>(y, lo, hi));
}

bool fma_form_for(const FusedRequant::HighMulParams& shift, int64_t t_lo, int64_t t_hi, int32_t lo, int32_t hi, FmaForm& form) {
  constexpr int64_t kExactInt = int64_t{1} << 24;  // float(t) exact
  if (shift.mul <= 0 || t_lo > t_hi || t_lo < -kExactInt || t_hi > kExactInt || lo >= hi || lo < -kExactInt || hi > kExactInt)
    return false;
  const int s = 32 + shift.rshift - shift.lshift;  // the route is floor((t*mul + bias) / 2^s)
  if (s < 0) return false;
  // tau[v - lo - 1]: the first t with an output >= v (the route is non-decreasing, mul > 0), that is
  // ceil((v*2^s - bias) / mul). One division; then the numerator grows by 2^s = q*mul + r per step, and
  // the quotient by q and a carry from the remainders.
  std::vector<I128> tau(static_cast<size_t>(hi - lo));
  const I128 step_q = floor_div(pow2(s), shift.mul), step_r = pow2(s) - step_q * shift.mul;
  const I128 first = static_cast<I128>(lo + 1) * pow2(s) - shift.bias;
  I128 q = floor_div(first, shift.mul), r = first - q * shift.mul;  // first = q*mul + r, 0 <= r < mul
  for (int32_t v = lo + 1; v <= hi; ++v) {
    if (v > lo + 1) {
      q += step_q, r += step_r;
      if (r >= shift.mul) ++q, r -= shift.mul;
    }
    const I128 t = r == 0 ? q : q + 1;
    // The formula is the proof's premise, so it is checked where it is used.
    if (t >= t_lo && t <= t_hi && (shift_route_unclamped(shift, static_cast<int64_t>(t)) < v || shift_route_unclamped(shift, static_cast<int64_t>(t) - 1) >= v))
      return false;
    tau[static_cast<size_t>(v - lo - 1)] = t;
  }
  // The slope's float neighbours: F in [2^23, 2^24) with f = F/2^p next to mul/2^s.
  const int nb = bit_width(shift.mul);
  const int p = s + 24 - nb;
  if (p < 0 || p > 120) return false;
  const I128 F0 = nb <= 24 ? static_cast<I128>(shift.mul) << (24 - nb) : floor_div(static_cast<I128>(shift.mul) + pow2(nb - 25), pow2(nb - 24));
  // 33 candidates: on MobileNetV2 under pact.json every channel that has a form has one within 16 units
  // of the rounded slope (16104 of 17004 channels), and the 129 tried before found no more while taking
  // twice as long to plan (each refused channel tries them all).
  for (int k = 0; k <= 32; ++k) {
    const I128 F = F0 + (k % 2 == 0 ? k / 2 : -(k + 1) / 2);  // 0, -1, 1, -2, 2, ...
    if (F <= 0 || F >= pow2(24)) continue;
    // Every step v asks floor((F*t + B)/2^p) >= v at its first t and < v just before it (inside the range).
    std::optional<I128> lo_b, hi_b;
    for (int32_t v = lo + 1; v <= hi; ++v) {
      const I128 t = tau[static_cast<size_t>(v - lo - 1)];
      if (t <= t_hi) {
        const I128 need = static_cast<I128>(v) * pow2(p) - F * std::max<I128>(t, t_lo);
        lo_b = lo_b ? std::max(*lo_b, need) : need;
      }
      if (t > t_lo) {
        const I128 need = static_cast<I128>(v) * pow2(p) - F * (std::min<I128>(t, static_cast<I128>(t_hi) + 1) - 1) - 1;
        hi_b = hi_b ? std::min(*hi_b, need) : need;
      }
    }
    if (!lo_b && !hi_b) return false;
    if (!lo_b) lo_b = *hi_b - pow2(p + 4);
    if (!hi_b) hi_b = *lo_b + pow2(p + 4);
    if (*lo_b > *hi_b) continue;
    const std::optional<I128> B = float_grid_point(*lo_b, *hi_b);
    if (!B) continue;
    // t*f + b inside (-2^30, 2^30) at both ends (it is affine in t): vcvtps2dq cannot overflow.
    if (abs128(F * t_lo + *B) >= pow2(p + 30) || abs128(F * t_hi + *B) >= pow2(p + 30)) continue;
    FmaForm c;
    c.F = static_cast<int64_t>(F), c.B = *B, c.p = p;
    c.f = std::ldexp(static_cast<float>(c.F), -p);
    const int bj = bit_width(*B) > 24 ? bit_width(*B) - 24 : 0;  // B = m * 2^bj exactly (float_grid_point)
    c.b = std::ldexp(static_cast<float>(static_cast<int64_t>(*B / pow2(bj))), bj - p);
    if (!std::isnormal(c.f) || (c.b != 0 && !std::isnormal(c.b)) || !is_float_exactly(c.f, F, p) || !is_float_exactly(c.b, *B, p)) continue;
    // The check itself, independent of how the interval was built: both sides of every step.
    bool equal = true;
    for (int32_t v = lo + 1; v <= hi && equal; ++v) {
      const I128 t = tau[static_cast<size_t>(v - lo - 1)];
      if (t <= t_hi) equal = fma_form_exact(c, static_cast<int64_t>(std::max<I128>(t, t_lo)), lo, hi) >= v;
      if (equal && t > t_lo) equal = fma_form_exact(c, static_cast<int64_t>(std::min<I128>(t, static_cast<I128>(t_hi) + 1) - 1), lo, hi) < v;
    }
    if (!equal) continue;
    form = c;
    return true;
  }
  return false;
}

}  // namespace qv::integer
