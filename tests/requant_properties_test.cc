// Properties of the requantization forms, over random per-channel parameters with edge values:
//  - thresholds derived from an exact requant give the exact output for every accumulator in range;
//  - mul_add_shift and fixed_point (single and double rounding) equal the unbounded-arithmetic model
//    of themselves, and stay within their proven distance of the exact form;
//  - the proven distance is not vacuous: for well-scaled layers it is at most one LSB.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <set>

#include "ir/rational.h"
#include "ir/requant.h"

namespace qv {
namespace {

// A float32-like scale: +-m * 2^e with a 24-bit mantissa, or an exact power of two (many ties),
// or an arbitrary rational with a large odd denominator, or zero.
rc::Gen<Rational> gen_alpha(bool allow_zero) {
  auto float_like = rc::gen::apply([](uint32_t m, int e, bool neg) {
    const Rational v = Rational(BigInt((m & 0xFFFFFF) | 0x800000)) * (e >= 0 ? Rational(BigInt(1) << e) : Rational(BigInt(1), BigInt(1) << -e));
    return neg ? Rational(-v) : v;
  }, rc::gen::arbitrary<uint32_t>(), rc::gen::inRange(-50, -10), rc::gen::arbitrary<bool>());
  auto pow2 = rc::gen::apply([](int e, bool neg) {
    const Rational v(BigInt(1), BigInt(1) << e);
    return neg ? Rational(-v) : v;
  }, rc::gen::inRange(0, 20), rc::gen::arbitrary<bool>());
  auto odd_rational = rc::gen::apply([](int n, int d) { return Rational(n, 2 * d + 1); },
                                     rc::gen::inRange(-1000, 1000), rc::gen::inRange(1, 5000));
  if (allow_zero) return rc::gen::weightedOneOf<Rational>({{4, float_like}, {3, pow2}, {2, odd_rational}, {1, rc::gen::just(Rational(0))}});
  return rc::gen::weightedOneOf<Rational>({{4, float_like}, {3, pow2}, {2, rc::gen::suchThat(odd_rational, [](const Rational& q) { return q != 0; })}});
}

rc::Gen<Rational> gen_delta() {
  return rc::gen::oneOf(rc::gen::just(Rational(0)),
                        rc::gen::apply([](int n, int k) { return Rational(BigInt(n), BigInt(1) << k); },
                                       rc::gen::inRange(-4096, 4096), rc::gen::inRange(0, 12)),
                        rc::gen::apply([](int n, int d) { return Rational(n, d); },
                                       rc::gen::inRange(-300, 300), rc::gen::inRange(1, 97)));
}

struct Layer {
  Requant exact;
  int64_t acc_lo, acc_hi;
};

// Output ranges of real activation types (unsigned/signed 2..8 and 16 bit, narrow or not).
rc::Gen<std::pair<int64_t, int64_t>> gen_output_range(bool allow_16bit) {
  return rc::gen::apply([](int bits, bool is_signed, bool narrow) {
    const int64_t hi = is_signed ? (int64_t{1} << (bits - 1)) - 1 : (int64_t{1} << bits) - 1;
    const int64_t lo = is_signed ? -(int64_t{1} << (bits - 1)) + (narrow ? 1 : 0) : 0;
    return std::make_pair(lo, hi);
  }, allow_16bit ? rc::gen::element(1, 2, 3, 4, 5, 8, 16) : rc::gen::element(1, 2, 3, 4, 5, 8),
     rc::gen::arbitrary<bool>(), rc::gen::arbitrary<bool>());
}

// An accumulator range around zero whose ends sit on edge values 2^i + {-2..2}.
rc::Gen<std::pair<int64_t, int64_t>> gen_acc_range(int max_log2) {
  return rc::gen::apply([](int i_lo, int i_hi, int d_lo, int d_hi) {
    return std::make_pair(-((int64_t{1} << i_lo) + d_lo), (int64_t{1} << i_hi) + d_hi);
  }, rc::gen::inRange(2, max_log2), rc::gen::inRange(2, max_log2), rc::gen::inRange(-2, 3), rc::gen::inRange(-2, 3));
}

// Threshold tables hold one entry per output level, so 16-bit outputs get one channel.
Layer gen_layer(bool allow_zero_alpha, int max_log2_acc, bool allow_16bit) {
  const auto [lo, hi] = *gen_output_range(allow_16bit);
  const int channels = hi - lo > 255 ? 1 : *rc::gen::inRange(1, 5);
  ExactRequant ex;
  ex.rounding = *rc::gen::elementOf(kAllRoundings);
  for (int o = 0; o < channels; ++o) {
    ex.alpha.push_back(*gen_alpha(allow_zero_alpha));
    ex.delta.push_back(*gen_delta());
  }
  const auto [acc_lo, acc_hi] = *gen_acc_range(max_log2_acc);
  return Layer{Requant{ex, lo, hi}, acc_lo, acc_hi};
}

// Accumulators worth checking: the range ends, random points, and every threshold and its predecessor.
std::vector<int64_t> probe_points(const Layer& l, const std::vector<int64_t>& extra) {
  std::vector<int64_t> pts = {l.acc_lo, l.acc_lo + 1, l.acc_hi - 1, l.acc_hi, 0};
  for (int64_t v : extra)
    for (int64_t d : {-1, 0, 1})
      if (v + d >= l.acc_lo && v + d <= l.acc_hi) pts.push_back(v + d);
  const auto random = *rc::gen::container<std::vector<int64_t>>(64, rc::gen::inRange(l.acc_lo, l.acc_hi + 1));
  pts.insert(pts.end(), random.begin(), random.end());
  return pts;
}

RC_GTEST_PROP(RequantProperties, ThresholdsEqualExactEverywhereInRange, ()) {
  const Layer l = gen_layer(/*allow_zero_alpha=*/true, /*max_log2_acc=*/40, /*allow_16bit=*/true);
  const Conversion c = to_thresholds(l.exact, l.acc_lo, l.acc_hi);
  RC_ASSERT(c.max_lsb_error == 0);
  const auto& th = std::get<ThresholdRequant>(c.requant.form);
  for (size_t o = 0; o < l.exact.channels(); ++o) {
    RC_ASSERT(std::is_sorted(th.thresholds[o].begin(), th.thresholds[o].end()));
    // Both forms are monotone step functions of acc (in the direction of sign); the threshold form is
    // constant between consecutive thresholds. Agreement at every threshold, its predecessor and the
    // range ends therefore proves agreement on the whole range.
    // For 16-bit outputs (65535 thresholds) a random sample of 400 thresholds is probed, to keep the
    // run short; outputs up to 8 bits are probed at every threshold.
    std::vector<int64_t> edges;
    const auto& ts = th.thresholds[o];
    if (ts.size() <= 255) {
      edges = ts;
    } else {
      for (size_t k : *rc::gen::container<std::vector<size_t>>(400, rc::gen::inRange<size_t>(0, ts.size())))
        edges.push_back(ts[k]);
    }
    for (int64_t& t : edges) t = th.sign[o] >= 0 ? t : -t;
    for (int64_t acc : probe_points(l, edges)) {
      const int64_t want = requant_ref(l.exact, o, acc);
      RC_ASSERT(requant_fixed(c.requant, o, acc) == want);
      RC_ASSERT(requant_ref(c.requant, o, acc) == want);
    }
  }
}

RC_GTEST_PROP(RequantProperties, ThresholdsExhaustiveOnSmallRanges, ()) {
  const Layer l = gen_layer(true, 9, false);
  const Conversion c = to_thresholds(l.exact, l.acc_lo, l.acc_hi);
  for (size_t o = 0; o < l.exact.channels(); ++o)
    for (int64_t acc = l.acc_lo; acc <= l.acc_hi; ++acc)
      RC_ASSERT(requant_fixed(c.requant, o, acc) == requant_ref(l.exact, o, acc));
}

void check_approximation(const Layer& l, const Conversion& c) {
  std::vector<int64_t> pts = probe_points(l, {});
  for (size_t o = 0; o < l.exact.channels(); ++o) {
    for (int64_t acc : pts) {
      const int64_t fixed = requant_fixed(c.requant, o, acc);
      // The fixed-width implementation is its own definition in unbounded arithmetic.
      RC_ASSERT(fixed == requant_ref(c.requant, o, BigInt(acc)));
      const int64_t exact = requant_ref(l.exact, o, acc);
      RC_ASSERT(std::abs(fixed - exact) <= c.max_lsb_error);
    }
  }
}

RC_GTEST_PROP(RequantProperties, MulAddShiftWithinItsBound, ()) {
  const Layer l = gen_layer(true, 30, true);
  const int shift = *rc::gen::inRange(0, 33);
  Conversion c;
  try {
    c = to_mul_add_shift(l.exact, shift, l.acc_lo, l.acc_hi);
  } catch (const std::invalid_argument&) {
    RC_DISCARD("multiplier does not fit at this shift");
  }
  RC_TAG(c.max_lsb_error);
  check_approximation(l, c);
}

RC_GTEST_PROP(RequantProperties, FixedPointWithinItsBound, (bool double_rounding)) {
  const Layer l = gen_layer(false, 24, true);
  Conversion c;
  try {
    c = to_fixed_point(l.exact, double_rounding, l.acc_lo, l.acc_hi);
  } catch (const std::invalid_argument&) {
    RC_DISCARD("accumulator or bias outside int32");
  }
  RC_TAG(c.max_lsb_error);
  check_approximation(l, c);
}

// Against the whole int32 input range of the gemmlowp primitives, not just converted layers.
RC_GTEST_PROP(RequantProperties, FixedPointPrimitivesMatchTheirDefinition, (int32_t x, int32_t m, bool double_rounding)) {
  const int shift = *rc::gen::inRange(-31, double_rounding ? 1 : 31);
  FixedPointRequant f;
  f.bias = {0};
  f.multiplier = {m};
  f.shift = {shift};
  f.double_rounding = double_rounding;
  const Requant rq{f, INT64_MIN, INT64_MAX};
  RC_ASSERT(requant_fixed(rq, 0, x) == requant_ref(rq, 0, BigInt(x)));
}

// Non-vacuity: for a typical layer (8-bit output, |acc| < 2^20, 24-bit scale, d = 30 or a Q31
// multiplier) the proven bound is a single LSB, and with half_up it is met exactly somewhere only at ties.
RC_GTEST_PROP(RequantProperties, BoundsAreTightForWellScaledLayers, ()) {
  ExactRequant ex;
  ex.rounding = Rounding::half_even;
  ex.alpha = {*gen_alpha(false)};
  ex.delta = {*gen_delta()};
  RC_PRE(abs(ex.alpha[0]) < Rational(1, 64) && abs(ex.alpha[0]) > Rational(BigInt(1), BigInt(1) << 40));
  RC_PRE(abs(ex.delta[0] / ex.alpha[0]) < Rational(1 << 24));  // a bias that fits int32 next to acc
  const Requant rq{ex, -128, 127};
  const int64_t lo = -(int64_t{1} << 20), hi = int64_t{1} << 20;
  RC_ASSERT(to_mul_add_shift(rq, 62 - 21 - 1, lo, hi).max_lsb_error <= 1);
  RC_ASSERT(to_fixed_point(rq, false, lo, hi).max_lsb_error <= 1);
}

}  // namespace
}  // namespace qv
