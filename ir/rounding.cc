#include "ir/rounding.h"

#include <cassert>

namespace qv {

std::string_view to_string(Rounding r) {
  switch (r) {
    case Rounding::half_even: return "half_even";
    case Rounding::half_up: return "half_up";
    case Rounding::half_away: return "half_away";
    case Rounding::half_down: return "half_down";
    case Rounding::floor: return "floor";
    case Rounding::ceil: return "ceil";
    case Rounding::trunc: return "trunc";
  }
  return "?";
}

std::optional<Rounding> parse_rounding(std::string_view s) {
  for (Rounding r : kAllRoundings)
    if (to_string(r) == s) return r;
  return std::nullopt;
}

namespace {

// floor(num / den) and the remainder num - q*den, in [0, |den|) sign-adjusted so that den > 0.
void floor_divmod(BigInt num, BigInt den, BigInt& q, BigInt& rem) {
  assert(den != 0);
  if (den < 0) {
    num = -num;
    den = -den;
  }
  q = num / den;  // truncates toward zero
  rem = num - q * den;
  if (rem < 0) {
    q -= 1;
    rem += den;
  }
  // Now 0 <= rem < den, num = q*den + rem, den > 0 (caller's den may have been negated).
}

}  // namespace

BigInt round_div(const BigInt& num_in, const BigInt& den_in, Rounding r) {
  BigInt num = num_in, den = den_in;
  if (den < 0) {
    num = -num;
    den = -den;
  }
  BigInt q, rem;
  floor_divmod(num, den, q, rem);  // x = q + rem/den, 0 <= rem/den < 1
  if (rem == 0) return q;
  const BigInt twice = 2 * rem;  // compare the fraction with 1/2: twice <=> den
  switch (r) {
    case Rounding::floor: return q;
    case Rounding::ceil: return q + 1;
    case Rounding::trunc: return q < 0 ? q + 1 : q;  // x not integral: q < 0 means x < 0
    case Rounding::half_up: return twice >= den ? q + 1 : q;
    case Rounding::half_down: return twice > den ? q + 1 : q;
    case Rounding::half_even:
      if (twice != den) return twice > den ? q + 1 : q;
      return (q % 2 == 0) ? q : q + 1;
    case Rounding::half_away:
      if (twice != den) return twice > den ? q + 1 : q;
      return q < 0 ? q : q + 1;  // tie at q + 1/2: away from zero is q+1 when q >= 0
  }
  return q;
}

BigInt round_rational(const Rational& x, Rounding r) {
  return round_div(boost::multiprecision::numerator(x), boost::multiprecision::denominator(x), r);  // den > 0
}

int64_t round_shift_right(int64_t num, int shift, Rounding r) {
  assert(shift >= 0 && shift <= 62);
  if (shift == 0) return num;
  const int64_t q = num >> shift;  // arithmetic shift: floor
  const int64_t rem = num - q * (int64_t{1} << shift);  // in [0, 2^shift), no overflow: |q*2^s| <= |num|+2^s
  if (rem == 0) return q;
  const int64_t half = int64_t{1} << (shift - 1);
  switch (r) {
    case Rounding::floor: return q;
    case Rounding::ceil: return q + 1;
    case Rounding::trunc: return q < 0 ? q + 1 : q;
    case Rounding::half_up: return rem >= half ? q + 1 : q;
    case Rounding::half_down: return rem > half ? q + 1 : q;
    case Rounding::half_even:
      if (rem != half) return rem > half ? q + 1 : q;
      return (q & 1) == 0 ? q : q + 1;
    case Rounding::half_away:
      if (rem != half) return rem > half ? q + 1 : q;
      return q < 0 ? q : q + 1;
  }
  return q;
}

int64_t round_div_int64(int64_t num, int64_t den, Rounding r) {
  assert(den > 0);
  int64_t q = num / den, rem = num % den;
  if (rem < 0) q -= 1, rem += den;  // floor: 0 <= rem < den
  if (rem == 0) return q;
  const int64_t twice_minus_den = rem - (den - rem);  // the sign of 2*rem - den, without overflow
  switch (r) {
    case Rounding::floor: return q;
    case Rounding::ceil: return q + 1;
    case Rounding::trunc: return q < 0 ? q + 1 : q;
    case Rounding::half_up: return twice_minus_den >= 0 ? q + 1 : q;
    case Rounding::half_down: return twice_minus_den > 0 ? q + 1 : q;
    case Rounding::half_even:
      if (twice_minus_den != 0) return twice_minus_den > 0 ? q + 1 : q;
      return (q & 1) == 0 ? q : q + 1;
    case Rounding::half_away:
      if (twice_minus_den != 0) return twice_minus_den > 0 ? q + 1 : q;
      return q < 0 ? q : q + 1;
  }
  return q;
}

TwiceStepBoundary twice_step_boundary(int64_t v, Rounding r) {
  const int64_t at_v = 2 * v, below_half = 2 * v - 1, below_one = 2 * v - 2;
  switch (r) {
    case Rounding::half_even: return {below_half, (v % 2) == 0};  // the tie v-1/2 goes to the even one
    case Rounding::half_up: return {below_half, true};
    case Rounding::half_down: return {below_half, false};
    case Rounding::half_away: return {below_half, v > 0};  // the tie v-1/2 > 0 goes up to v
    case Rounding::floor: return {at_v, true};
    case Rounding::ceil: return {below_one, false};
    case Rounding::trunc: return v > 0 ? TwiceStepBoundary{at_v, true} : TwiceStepBoundary{below_one, false};
  }
  return {at_v, true};
}

StepBoundary step_boundary(int64_t v, Rounding r) {
  const TwiceStepBoundary b = twice_step_boundary(v, r);
  return {Rational(b.twice_boundary, 2), b.inclusive};
}

}  // namespace qv
