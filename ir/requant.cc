#include "ir/requant.h"

#include <algorithm>
#include <cassert>
#include <stdexcept>

#include "ir/rational.h"

namespace qv {

std::string_view to_string(RequantForm f) {
  switch (f) {
    case RequantForm::exact: return "exact";
    case RequantForm::mul_add_shift: return "mul_add_shift";
    case RequantForm::thresholds: return "thresholds";
    case RequantForm::fixed_point: return "fixed_point";
  }
  return "?";
}

size_t Requant::channels() const {
  return std::visit(
      [](const auto& f) -> size_t {
        using F = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<F, ExactRequant>) return f.alpha.size();
        if constexpr (std::is_same_v<F, MulAddShiftRequant>) return f.mul.size();
        if constexpr (std::is_same_v<F, ThresholdRequant>) return f.sign.size();
        if constexpr (std::is_same_v<F, FixedPointRequant>) return f.multiplier.size();
      },
      form);
}

namespace {

BigInt pow2(int k) { return BigInt(1) << k; }

int64_t clamp_big(const BigInt& v, int64_t lo, int64_t hi) {
  if (v < lo) return lo;
  if (v > hi) return hi;
  return static_cast<int64_t>(v);
}

// gemmlowp's SaturatingRoundingDoublingHighMul as a definition: trunc((a*b + nudge) / 2^31).
BigInt srdhm_ref(const BigInt& a, const BigInt& b) {
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  const BigInt ab = a * b;
  const BigInt nudge = ab >= 0 ? BigInt(1) << 30 : BigInt(1) - (BigInt(1) << 30);
  return round_div(ab + nudge, pow2(31), Rounding::trunc);
}

}  // namespace

int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  const int64_t ab = static_cast<int64_t>(a) * b;
  const int64_t nudge = ab >= 0 ? (int64_t{1} << 30) : (1 - (int64_t{1} << 30));
  return static_cast<int32_t>((ab + nudge) / (int64_t{1} << 31));  // C++ division truncates
}

int32_t rounding_divide_by_pot(int32_t x, int exponent) {
  assert(exponent >= 0 && exponent <= 31);
  const int64_t mask = (int64_t{1} << exponent) - 1;
  const int64_t remainder = static_cast<int64_t>(x) & mask;
  const int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return static_cast<int32_t>((static_cast<int64_t>(x) >> exponent) + (remainder > threshold ? 1 : 0));
}

int64_t requant_ref(const Requant& rq, size_t o, const BigInt& acc) {
  switch (rq.kind()) {
    case RequantForm::exact: {
      // R(an/ad * acc + dn/dd) = R((an*dd*acc + dn*ad) / (ad*dd)): integer operations only, no gcd.
      const auto& f = std::get<ExactRequant>(rq.form);
      using boost::multiprecision::denominator;
      using boost::multiprecision::numerator;
      const BigInt& ad = denominator(f.alpha[o]);
      const BigInt& dd = denominator(f.delta[o]);
      return clamp_big(round_div(numerator(f.alpha[o]) * dd * acc + numerator(f.delta[o]) * ad, ad * dd, f.rounding),
                       rq.lo, rq.hi);
    }
    case RequantForm::mul_add_shift: {
      const auto& f = std::get<MulAddShiftRequant>(rq.form);
      return clamp_big(round_div(acc * f.mul[o] + f.add[o], pow2(f.shift), Rounding::floor), rq.lo, rq.hi);
    }
    case RequantForm::thresholds: {
      const auto& f = std::get<ThresholdRequant>(rq.form);
      const BigInt s = acc * f.sign[o];
      int64_t count = 0;
      for (int64_t t : f.thresholds[o]) count += (s >= t) ? 1 : 0;
      return rq.lo + count;
    }
    case RequantForm::fixed_point: {
      const auto& f = std::get<FixedPointRequant>(rq.form);
      const BigInt x = acc + f.bias[o];
      const int shift = f.shift[o];
      BigInt y;
      if (!f.double_rounding) {
        const int total = 31 - shift;
        y = round_div(x * f.multiplier[o] + pow2(total - 1), pow2(total), Rounding::floor);
      } else {
        const int left = std::max(shift, 0), right = std::max(-shift, 0);
        y = round_div(srdhm_ref(x * pow2(left), f.multiplier[o]), pow2(right), Rounding::half_away);
      }
      return clamp_big(y + f.zero_point, rq.lo, rq.hi);
    }
  }
  return 0;
}

int64_t requant_fixed(const Requant& rq, size_t o, int64_t acc) {
  switch (rq.kind()) {
    case RequantForm::exact:
      return requant_ref(rq, o, BigInt(acc));  // the exact form has no fixed-width twin
    case RequantForm::mul_add_shift: {
      const auto& f = std::get<MulAddShiftRequant>(rq.form);
      const __int128 num = static_cast<__int128>(acc) * f.mul[o] + f.add[o];
      const __int128 y = num >> f.shift;  // arithmetic shift: floor division by 2^d
      return y < rq.lo ? rq.lo : y > rq.hi ? rq.hi : static_cast<int64_t>(y);
    }
    case RequantForm::thresholds: {
      const auto& f = std::get<ThresholdRequant>(rq.form);
      // |acc| < 2^62 so the product with sign in {-1, 0, 1} cannot overflow.
      const int64_t s = acc * f.sign[o];
      const auto& t = f.thresholds[o];
      // thresholds are non-decreasing: the count is the position of the first one above s.
      return rq.lo + (std::upper_bound(t.begin(), t.end(), s) - t.begin());
    }
    case RequantForm::fixed_point: {
      const auto& f = std::get<FixedPointRequant>(rq.form);
      const int64_t x = acc + f.bias[o];
      assert(x >= INT32_MIN && x <= INT32_MAX);
      const int shift = f.shift[o];
      int64_t y;
      if (!f.double_rounding) {
        const int total = 31 - shift;
        y = (x * f.multiplier[o] + (int64_t{1} << (total - 1))) >> total;
      } else {
        const int left = std::max(shift, 0), right = std::max(-shift, 0);
        const int64_t xl = x * (int64_t{1} << left);
        assert(xl >= INT32_MIN && xl <= INT32_MAX);
        y = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(static_cast<int32_t>(xl), f.multiplier[o]),
                                   right);
      }
      y += f.zero_point;
      return std::clamp(y, rq.lo, rq.hi);
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------------
// Conversions.

namespace {

const ExactRequant& exact_of(const Requant& rq) {
  if (rq.kind() != RequantForm::exact) throw std::invalid_argument("conversion needs an exact requantization");
  return std::get<ExactRequant>(rq.form);
}

void check_acc_range(int64_t acc_lo, int64_t acc_hi) {
  constexpr int64_t kLimit = int64_t{1} << 62;
  if (acc_lo > acc_hi || acc_lo <= -kLimit || acc_hi >= kLimit)
    throw std::invalid_argument("accumulator range [" + std::to_string(acc_lo) + ", " + std::to_string(acc_hi) +
                                "] must be ordered and within +-2^62 for a fixed-width requantization form");
}

BigInt ceil_rat(const Rational& q) { return round_rational(q, Rounding::ceil); }
BigInt floor_rat(const Rational& q) { return round_rational(q, Rounding::floor); }

// Largest |z_form - z_exact| of an affine error e(acc) = a*acc + b over [lo, hi]: at an endpoint.
Rational affine_sup(const Rational& a, const Rational& b, int64_t lo, int64_t hi) {
  return std::max(abs(a * Rational(lo) + b), abs(a * Rational(hi) + b));
}

// Proven bound on |R(z) - R'(z')| when |z - z'| <= e.
//   |R(z) - R(z')| <= (e == 0 ? 0 : floor(e) + 1)   (R steps by one at points spaced exactly 1 apart)
//   |R(z') - R'(z')| <= (same function ? 0 : 1)       (any two modes pick floor(z') or ceil(z'))
// and the cruder triangle bound dev(R) + e + dev(R') (dev 1/2 for nearest, < 1 for directed) when tighter.
int64_t lsb_bound(const Rational& e, Rounding exact_mode, Rounding form_mode) {
  const BigInt steps = (e == 0) ? BigInt(0) : BigInt(floor_rat(e) + 1);
  BigInt bound = steps + (exact_mode == form_mode ? 0 : 1);
  const Rational dev_sum = Rational(is_nearest(exact_mode) ? Rational(1, 2) : Rational(1)) + e +
                           Rational(is_nearest(form_mode) ? Rational(1, 2) : Rational(1));
  const bool strict = !(is_nearest(exact_mode) && is_nearest(form_mode));
  const BigInt triangle = strict ? BigInt(ceil_rat(dev_sum) - 1) : floor_rat(dev_sum);
  bound = std::min(bound, triangle);
  return static_cast<int64_t>(bound);
}

int64_t to_int64_checked(const BigInt& v, const std::string& what) {
  if (v < INT64_MIN || v > INT64_MAX) throw std::invalid_argument(what + " does not fit int64");
  return static_cast<int64_t>(v);
}

}  // namespace

Conversion to_thresholds(const Requant& rq, int64_t acc_lo, int64_t acc_hi) {
  const ExactRequant& ex = exact_of(rq);
  check_acc_range(acc_lo, acc_hi);
  ThresholdRequant th;
  const size_t channels = ex.alpha.size();
  th.sign.resize(channels);
  th.thresholds.resize(channels);
  for (size_t o = 0; o < channels; ++o) {
    const Rational& alpha = ex.alpha[o];
    const Rational& delta = ex.delta[o];
    const int sign = alpha > 0 ? 1 : alpha < 0 ? -1 : 0;
    th.sign[o] = static_cast<int8_t>(sign);
    // Range of s = sign*acc; a threshold outside it is pinned just beyond, where it acts the same.
    const int64_t s_lo = sign >= 0 ? (sign == 0 ? 0 : acc_lo) : -acc_hi;
    const int64_t s_hi = sign >= 0 ? (sign == 0 ? 0 : acc_hi) : -acc_lo;
    auto& t = th.thresholds[o];
    // alpha = an/ad, delta = dn/dd, boundary b = tb/2. For sign != 0:
    //   z >(=) b  <=>  sign*acc >(=) q,  q = (b - delta)/alpha = ((tb*dd - 2*dn)*ad) / (2*dd*|an|)
    // (sign*an = |an|), all in integers so that 65535-level tables stay cheap.
    const BigInt& an = boost::multiprecision::numerator(alpha);
    const BigInt& ad = boost::multiprecision::denominator(alpha);
    const BigInt& dn = boost::multiprecision::numerator(delta);
    const BigInt& dd = boost::multiprecision::denominator(delta);
    const BigInt q_den = 2 * dd * abs(an);
    for (int64_t v = rq.lo + 1; v <= rq.hi; ++v) {
      const TwiceStepBoundary b = twice_step_boundary(v, ex.rounding);  // R(z) >= v  <=>  z >(=) b
      BigInt threshold;
      if (sign == 0) {
        const BigInt lhs = 2 * dn, rhs = BigInt(b.twice_boundary) * dd;  // delta vs b, scaled by 2*dd
        const bool reached = b.inclusive ? lhs >= rhs : lhs > rhs;
        threshold = reached ? 0 : 1;  // compared against s = 0
      } else {
        const BigInt q_num = (BigInt(b.twice_boundary) * dd - 2 * dn) * ad;
        threshold = b.inclusive ? round_div(q_num, q_den, Rounding::ceil)
                                : BigInt(round_div(q_num, q_den, Rounding::floor) + 1);
      }
      if (threshold < s_lo) threshold = s_lo;
      if (threshold > s_hi + 1) threshold = BigInt(s_hi) + 1;
      t.push_back(static_cast<int64_t>(threshold));
    }
  }
  return Conversion{Requant{std::move(th), rq.lo, rq.hi}, 0, Rational(0)};
}

Conversion to_mul_add_shift(const Requant& rq, int shift, int64_t acc_lo, int64_t acc_hi) {
  const ExactRequant& ex = exact_of(rq);
  check_acc_range(acc_lo, acc_hi);
  if (shift < 0 || shift > 62) throw std::invalid_argument("mul_add_shift: shift must be in [0, 62], got " + std::to_string(shift));
  const Rational D(pow2(shift));
  // floor((N + offset)/D) with N/D ~ z: offset D/2 gives half_up, 0 gives floor, D-1 gives ceil
  // (N is an integer, so floor((N + D - 1)/D) = ceil(N/D)). trunc has no affine form: floor stands in.
  Rounding form_mode;
  BigInt offset;
  if (is_nearest(ex.rounding) && shift >= 1) {
    form_mode = Rounding::half_up;
    offset = pow2(shift - 1);
  } else if (ex.rounding == Rounding::ceil) {
    form_mode = Rounding::ceil;
    offset = pow2(shift) - 1;
  } else {
    form_mode = Rounding::floor;
    offset = 0;
  }
  MulAddShiftRequant m;
  m.shift = shift;
  Rational worst(0);
  int64_t bound = 0;
  for (size_t o = 0; o < ex.alpha.size(); ++o) {
    const BigInt mul = round_rational(ex.alpha[o] * D, Rounding::half_even);
    const BigInt add_base = round_rational(ex.delta[o] * D, Rounding::half_even);
    if (abs(mul) >= pow2(62)) throw std::invalid_argument("mul_add_shift: channel " + std::to_string(o) + ": multiplier alpha*2^" + std::to_string(shift) + " reaches 2^62; use a smaller shift");
    m.mul.push_back(to_int64_checked(mul, "mul_add_shift: channel " + std::to_string(o) + ": multiplier"));
    m.add.push_back(to_int64_checked(add_base + offset, "mul_add_shift: channel " + std::to_string(o) + ": addend"));
    // z_form = (acc*mul + add_base)/D, z_exact = alpha*acc + delta
    const Rational err = affine_sup(Rational(mul) / D - ex.alpha[o], Rational(add_base) / D - ex.delta[o], acc_lo, acc_hi);
    worst = std::max(worst, err);
    bound = std::max(bound, lsb_bound(err, ex.rounding, form_mode));
  }
  return Conversion{Requant{std::move(m), rq.lo, rq.hi}, bound, worst};
}

Conversion to_fixed_point(const Requant& rq, bool double_rounding, int64_t acc_lo, int64_t acc_hi) {
  const ExactRequant& ex = exact_of(rq);
  check_acc_range(acc_lo, acc_hi);
  FixedPointRequant f;
  f.double_rounding = double_rounding;
  f.zero_point = 0;
  Rational worst(0);
  int64_t bound = 0;
  for (size_t o = 0; o < ex.alpha.size(); ++o) {
    const std::string ch = "fixed_point: channel " + std::to_string(o) + ": ";
    const Rational& alpha = ex.alpha[o];
    if (alpha == 0) throw std::invalid_argument(ch + "alpha = 0 has no multiplier-and-shift form (use thresholds or exact)");
    const BigInt bias = round_rational(ex.delta[o] / alpha, Rounding::half_even);
    // |alpha| = m * 2^e with m in [1/2, 1); M = round_half_away(m * 2^31) (TFLite QuantizeMultiplier, but
    // from the exact rational instead of its double approximation).
    long e = floor_log2_abs(alpha) + 1;
    BigInt M = round_rational(e <= 31 ? alpha * Rational(pow2(static_cast<int>(31 - e))) : alpha / Rational(pow2(static_cast<int>(e - 31))), Rounding::half_away);
    if (abs(M) == pow2(31)) {
      M /= 2;
      ++e;
    }
    if (e < -31) {  // TFLite flushes such tiny multipliers to zero
      M = 0;
      e = 0;
    }
    if (!double_rounding && e > 30) {  // single rounding caps the shift (TFLite)
      e = 30;
      M = M < 0 ? -(pow2(31) - 1) : pow2(31) - 1;
    }
    if (e > 31) throw std::invalid_argument(ch + "|alpha| >= 2^31 cannot be represented");
    const int shift = static_cast<int>(e);
    const int left = std::max(shift, 0);
    const BigInt x_lo = BigInt(acc_lo) + bias, x_hi = BigInt(acc_hi) + bias;
    const BigInt lim_lo = BigInt(INT32_MIN), lim_hi = BigInt(INT32_MAX);
    if (x_lo < lim_lo || x_hi > lim_hi)
      throw std::invalid_argument(ch + "acc + bias spans [" + x_lo.str() + ", " + x_hi.str() + "], outside int32");
    if (double_rounding && (x_lo * pow2(left) < lim_lo || x_hi * pow2(left) > lim_hi))
      throw std::invalid_argument(ch + "(acc + bias) * 2^" + std::to_string(left) + " overflows int32");
    f.bias.push_back(static_cast<int64_t>(bias));
    f.multiplier.push_back(static_cast<int32_t>(M));
    f.shift.push_back(shift);
    // z_form = (acc + bias) * M * 2^(shift-31)
    const Rational alpha_form = shift >= 31 ? Rational(M * pow2(shift - 31)) : Rational(M) / Rational(pow2(31 - shift));
    const Rational err = affine_sup(alpha_form - alpha, alpha_form * Rational(bias) - ex.delta[o], acc_lo, acc_hi);
    worst = std::max(worst, err);
    // Single rounding is half_up of z_form. Double rounding rounds half_up to a multiple of 2^-right,
    // then half_away: half_away of a value within 2^-(right+1) of z_form.
    const int right = std::max(-shift, 0);
    if (double_rounding && right > 0)
      bound = std::max(bound, lsb_bound(err + Rational(BigInt(1), pow2(right + 1)), ex.rounding, Rounding::half_away));
    else
      bound = std::max(bound, lsb_bound(err, ex.rounding, Rounding::half_up));
  }
  return Conversion{Requant{std::move(f), rq.lo, rq.hi}, bound, worst};
}

}  // namespace qv
