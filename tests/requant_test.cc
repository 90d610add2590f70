// Requantization forms on hand-computed cases: the numbers here are worked out on paper from the
// definitions in ir/requant.h, not produced by the code under test.
#include <gtest/gtest.h>

#include "ir/requant.h"

namespace qv {
namespace {

Requant exact_one(Rational alpha, Rational delta, Rounding r, int64_t lo, int64_t hi) {
  return Requant{ExactRequant{{alpha}, {delta}, r}, lo, hi};
}

TEST(ExactRequant, HalfEvenTiesAndClamp) {
  const Requant rq = exact_one(Rational(1, 2), Rational(0), Rounding::half_even, -2, 3);
  // z = acc/2: acc 1 -> 0.5 -> 0; acc 3 -> 1.5 -> 2; acc 5 -> 2.5 -> 2; acc -3 -> -1.5 -> -2; acc 9 -> 4.5 -> 4 -> clamp 3
  EXPECT_EQ(requant_ref(rq, 0, 1), 0);
  EXPECT_EQ(requant_ref(rq, 0, 3), 2);
  EXPECT_EQ(requant_ref(rq, 0, 5), 2);
  EXPECT_EQ(requant_ref(rq, 0, -3), -2);
  EXPECT_EQ(requant_ref(rq, 0, 9), 3);
  EXPECT_EQ(requant_ref(rq, 0, -100), -2);
}

TEST(ThresholdRequant, PerParityRuleForHalfEven) {
  // z = acc/2, half_even, outputs 0..3.
  //   v=1: boundary 1/2, v odd -> exclusive: acc/2 > 1/2 <=> acc >= 2
  //   v=2: boundary 3/2, v even -> inclusive: acc/2 >= 3/2 <=> acc >= 3
  //   v=3: boundary 5/2, odd -> exclusive: acc >= 6
  const Requant rq = exact_one(Rational(1, 2), Rational(0), Rounding::half_even, 0, 3);
  const Conversion c = to_thresholds(rq, -100, 100);
  const auto& t = std::get<ThresholdRequant>(c.requant.form);
  ASSERT_EQ(t.thresholds.size(), 1u);
  EXPECT_EQ(t.sign[0], 1);
  EXPECT_EQ(t.thresholds[0], (std::vector<int64_t>{2, 3, 6}));
  EXPECT_EQ(c.max_lsb_error, 0);
}

TEST(ThresholdRequant, HalfUpIsFinnsGreaterEqual) {
  // half_up: every boundary inclusive: acc/2 >= 1/2, 3/2, 5/2 <=> acc >= 1, 3, 5
  const Requant rq = exact_one(Rational(1, 2), Rational(0), Rounding::half_up, 0, 3);
  const Conversion conv = to_thresholds(rq, -100, 100);
  const auto& t = std::get<ThresholdRequant>(conv.requant.form);
  EXPECT_EQ(t.thresholds[0], (std::vector<int64_t>{1, 3, 5}));
}

TEST(ThresholdRequant, NegativeAlphaCountsDownward) {
  // z = -acc/4 + 1, floor, outputs 0..2: y >= 1 <=> z >= 1 <=> acc <= 0 <=> -acc >= 0;
  // y >= 2 <=> z >= 2 <=> acc <= -4 <=> -acc >= 4.
  const Requant rq = exact_one(Rational(-1, 4), Rational(1), Rounding::floor, 0, 2);
  const Conversion conv = to_thresholds(rq, -50, 50);
  const auto& t = std::get<ThresholdRequant>(conv.requant.form);
  EXPECT_EQ(t.sign[0], -1);
  EXPECT_EQ(t.thresholds[0], (std::vector<int64_t>{0, 4}));
}

TEST(ThresholdRequant, ZeroAlphaIsAConstant) {
  // z = 7/4 constant, half_even -> 2 for every acc.
  const Requant rq = exact_one(Rational(0), Rational(7, 4), Rounding::half_even, 0, 3);
  const Conversion c = to_thresholds(rq, -10, 10);
  for (int64_t acc : {-10, 0, 10}) EXPECT_EQ(requant_fixed(c.requant, 0, acc), 2);
}

TEST(ThresholdRequant, ThresholdsArePinnedToTheAccumulatorRange) {
  // z = acc * 2^-20, outputs 0..255: every level above acc_hi's is pinned to acc_hi + 1.
  const Requant rq = exact_one(Rational(1, 1 << 20), Rational(0), Rounding::floor, 0, 255);
  const Conversion conv = to_thresholds(rq, -1000, 1000);
  const auto& t = std::get<ThresholdRequant>(conv.requant.form);
  EXPECT_EQ(t.thresholds[0].front(), 1001);
  EXPECT_EQ(t.thresholds[0].back(), 1001);
}

TEST(MulAddShift, ConversionOfADyadicScaleIsExactExceptTies) {
  // alpha = 3/8, delta = 0, d = 4: mul = 6, add = 8 (the half offset). y = floor((6*acc + 8)/16).
  const Requant rq = exact_one(Rational(3, 8), Rational(0), Rounding::half_up, -128, 127);
  const Conversion c = to_mul_add_shift(rq, 4, -1000, 1000);
  const auto& m = std::get<MulAddShiftRequant>(c.requant.form);
  EXPECT_EQ(m.mul[0], 6);
  EXPECT_EQ(m.add[0], 8);
  EXPECT_EQ(m.shift, 4);
  EXPECT_EQ(c.max_real_error, 0);
  EXPECT_EQ(c.max_lsb_error, 0);  // same rounding (half_up), no approximation error
  EXPECT_EQ(requant_fixed(c.requant, 0, 4), 2);   // 1.5 -> 2
  EXPECT_EQ(requant_fixed(c.requant, 0, -4), -1);  // -1.5 -> -1 (half_up)
  // Under half_even the exact form gives -2 at -1.5: the form is one LSB off at ties, and says so.
  const Conversion ce = to_mul_add_shift(exact_one(Rational(3, 8), Rational(0), Rounding::half_even, -128, 127), 4, -1000, 1000);
  EXPECT_EQ(ce.max_lsb_error, 1);
}

TEST(MulAddShift, DoubleRoundingBugIsOneLsbHigh) {
  // QuantLib's pinned commit computed floor((acc*mul + add)/D + 0.5) with add already holding D/2.
  // For alpha = 1/4, acc = 1: exact half_up of 0.25 is 0; the double-rounded value is floor(0.25+0.5+0.5) = 1.
  const Requant rq = exact_one(Rational(1, 4), Rational(0), Rounding::half_up, 0, 255);
  const Conversion c = to_mul_add_shift(rq, 8, 0, 1000);
  const auto& m = std::get<MulAddShiftRequant>(c.requant.form);
  EXPECT_EQ(requant_fixed(c.requant, 0, 1), 0);
  EXPECT_EQ(round_div(BigInt(1) * m.mul[0] + m.add[0] + (1 << 7), BigInt(1) << 8, Rounding::floor), 1);
}

TEST(FixedPoint, GemmlowpPrimitives) {
  // SaturatingRoundingDoublingHighMul(a, b) ~ a*b/2^31.
  EXPECT_EQ(saturating_rounding_doubling_high_mul(1 << 30, 1 << 30), 1 << 29);
  EXPECT_EQ(saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN), INT32_MAX);  // the only saturation
  // Ties: a*b/2^31 = +0.5 -> 1, -0.5 -> 0. The nudge 1 - 2^30 for negative products makes negative ties
  // go toward zero, so this primitive rounds ties toward +inf (half_up), not away from zero.
  EXPECT_EQ(saturating_rounding_doubling_high_mul(1 << 15, 1 << 15), 1);
  EXPECT_EQ(saturating_rounding_doubling_high_mul(-(1 << 15), 1 << 15), 0);
  // RoundingDivideByPOT rounds half away from zero.
  EXPECT_EQ(rounding_divide_by_pot(5, 1), 3);
  EXPECT_EQ(rounding_divide_by_pot(-5, 1), -3);
  EXPECT_EQ(rounding_divide_by_pot(-6, 2), -2);  // -1.5 -> -2
  EXPECT_EQ(rounding_divide_by_pot(-5, 2), -1);  // -1.25 -> -1
}

TEST(FixedPoint, QuantizedMultiplierOfAHalf) {
  // TFLite QuantizeMultiplier(0.5) = (2^30, shift 0); of 0.75 = (round(0.75*2^31), 0);
  // of 1/3 ~ 0.6667 * 2^-1 -> (round(2^32/3) = 1431655765, -1).
  const Requant rq{ExactRequant{{Rational(1, 2), Rational(3, 4), Rational(1, 3)}, {0, 0, 0}, Rounding::half_up}, -128, 127};
  const Conversion c = to_fixed_point(rq, true, -1000, 1000);
  const auto& f = std::get<FixedPointRequant>(c.requant.form);
  EXPECT_EQ(f.multiplier, (std::vector<int32_t>{1 << 30, 1610612736, 1431655765}));
  EXPECT_EQ(f.shift, (std::vector<int>{0, 0, -1}));
}

TEST(FixedPoint, RefusesWhatItCannotRepresent) {
  const Requant zero{ExactRequant{{Rational(0)}, {Rational(1)}, Rounding::half_even}, 0, 255};
  EXPECT_THROW(to_fixed_point(zero, true, 0, 100), std::invalid_argument);
  const Requant wide{ExactRequant{{Rational(1, 1 << 20)}, {Rational(0)}, Rounding::half_even}, 0, 255};
  EXPECT_THROW(to_fixed_point(wide, false, 0, int64_t{1} << 40), std::invalid_argument);
}

// The running example of docs/requantization.md, every number worked out by hand there.
TEST(RequantDocs, RunningExample) {
  const Requant rq = exact_one(Rational(3, 1024), Rational(5, 8), Rounding::half_even, 0, 15);
  EXPECT_EQ(requant_ref(rq, 0, -100), 0);
  EXPECT_EQ(requant_ref(rq, 0, 299), 2);
  EXPECT_EQ(requant_ref(rq, 0, 640), 2);
  EXPECT_EQ(requant_ref(rq, 0, 641), 3);
  EXPECT_EQ(requant_ref(rq, 0, 1000), 4);

  const Conversion th = to_thresholds(rq, -4096, 4096);
  const auto& t = std::get<ThresholdRequant>(th.requant.form).thresholds[0];
  EXPECT_EQ(std::vector<int64_t>(t.begin(), t.begin() + 4), (std::vector<int64_t>{-42, 299, 641, 982}));

  const Conversion mas = to_mul_add_shift(rq, 10, -4096, 4096);
  const auto& m = std::get<MulAddShiftRequant>(mas.requant.form);
  EXPECT_EQ(m.mul[0], 3);
  EXPECT_EQ(m.add[0], 1152);
  EXPECT_EQ(requant_fixed(mas.requant, 0, 640), 3);
  EXPECT_EQ(mas.max_real_error, 0);
  EXPECT_EQ(mas.max_lsb_error, 1);

  for (bool double_rounding : {false, true}) {
    const Conversion fp = to_fixed_point(rq, double_rounding, -4096, 4096);
    const auto& f = std::get<FixedPointRequant>(fp.requant.form);
    EXPECT_EQ(f.multiplier[0], 1610612736);
    EXPECT_EQ(f.shift[0], -8);
    EXPECT_EQ(f.bias[0], 213);
    // x = 853: 853*3/1024 = 2.499. Single rounding gives 2. Double rounding first rounds
    // 853*M/2^31 = 639.75 to 640 = 2.5 * 2^8, then RoundingDivideByPOT sends the tie away: 3.
    EXPECT_EQ(requant_fixed(fp.requant, 0, 640), double_rounding ? 3 : 2);
  }
}

}  // namespace
}  // namespace qv
