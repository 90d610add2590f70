// Rounding modes and exact rationals: hand-computed cases, then properties against the definitions.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cmath>
#include <cstring>
#include <cstdint>
#include <limits>

#include "ir/rational.h"
#include "ir/rounding.h"

namespace qv {
namespace {

struct Case {
  int64_t num, den;
  // expected results for half_even, half_up, half_away, half_down, floor, ceil, trunc
  int64_t expected[7];
};

// Written out by hand from the definitions in ir/rounding.h.
const Case kCases[] = {
    {5, 2, {2, 3, 3, 2, 2, 3, 2}},         // 2.5
    {-5, 2, {-2, -2, -3, -3, -3, -2, -2}},  // -2.5
    {7, 2, {4, 4, 4, 3, 3, 4, 3}},         // 3.5
    {-7, 2, {-4, -3, -4, -4, -4, -3, -3}},  // -3.5
    {7, 4, {2, 2, 2, 2, 1, 2, 1}},         // 1.75
    {-7, 4, {-2, -2, -2, -2, -2, -1, -1}},  // -1.75
    {5, 4, {1, 1, 1, 1, 1, 2, 1}},         // 1.25
    {-5, 4, {-1, -1, -1, -1, -2, -1, -1}},  // -1.25
    {1, 2, {0, 1, 1, 0, 0, 1, 0}},         // 0.5
    {-1, 2, {0, 0, -1, -1, -1, 0, 0}},      // -0.5
    {6, 3, {2, 2, 2, 2, 2, 2, 2}},         // exact
    {-6, -4, {2, 2, 2, 1, 1, 2, 1}},       // 1.5 with a negative denominator
};

TEST(Rounding, HandComputedCases) {
  for (const Case& c : kCases) {
    for (size_t i = 0; i < kAllRoundings.size(); ++i) {
      const Rounding r = kAllRoundings[i];
      EXPECT_EQ(round_div(c.num, c.den, r), c.expected[i]) << c.num << "/" << c.den << " " << to_string(r);
      if (c.den > 0 && (c.den & (c.den - 1)) == 0) {
        const int shift = c.den == 1 ? 0 : static_cast<int>(std::log2(c.den));
        EXPECT_EQ(round_shift_right(c.num, shift, r), c.expected[i]) << c.num << ">>" << shift << " " << to_string(r);
      }
    }
  }
}

TEST(Rounding, NamesRoundTrip) {
  for (Rounding r : kAllRoundings) EXPECT_EQ(parse_rounding(to_string(r)), r);
  EXPECT_FALSE(parse_rounding("nearest").has_value());
  EXPECT_FALSE(parse_rounding("").has_value());
}

// Edge integers: +-2^i + {-2..2}, min, max.
rc::Gen<int64_t> edge_int64() {
  return rc::gen::oneOf(
      rc::gen::arbitrary<int64_t>(),
      rc::gen::apply([](int i, int d, bool neg) {
        const int64_t p = int64_t{1} << i;
        const int64_t v = p + d;
        return neg ? -v : v;
      }, rc::gen::inRange(0, 62), rc::gen::inRange(-2, 3), rc::gen::arbitrary<bool>()),
      rc::gen::element(std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::min() + 1,
                       std::numeric_limits<int64_t>::max() - 1, std::numeric_limits<int64_t>::max()));
}

RC_GTEST_PROP(RoundingProperties, ShiftRightEqualsDivision, ()) {
  const int64_t num = *edge_int64();
  const int shift = *rc::gen::inRange(0, 63);
  const Rounding r = *rc::gen::elementOf(kAllRoundings);
  RC_ASSERT(BigInt(round_shift_right(num, shift, r)) == round_div(num, BigInt(1) << shift, r));
}

RC_GTEST_PROP(RoundingProperties, Int64DivisionEqualsDivision, ()) {
  const int64_t num = *edge_int64();
  // Positive divisors: edge values, small odd and even ones (ties at half), and 2*|num| + 1 (no tie).
  const int64_t den = *rc::gen::oneOf(rc::gen::suchThat(edge_int64(), [](int64_t d) { return d > 0; }),
                                      rc::gen::inRange<int64_t>(1, 65), rc::gen::just(std::max<int64_t>(1, (num / 4) * 2 + 1)));
  const Rounding r = *rc::gen::elementOf(kAllRoundings);
  RC_ASSERT(BigInt(round_div_int64(num, den, r)) == round_div(num, den, r));
}

RC_GTEST_PROP(RoundingProperties, ResultIsANeighbourAndTiesFollowTheMode, ()) {
  const int64_t num = *edge_int64();
  const int64_t den = *rc::gen::suchThat(edge_int64(), [](int64_t d) { return d != 0; });
  const Rounding r = *rc::gen::elementOf(kAllRoundings);
  const Rational x = make_rational(num, den);
  const BigInt y = round_div(num, den, r);
  const BigInt fl = round_div(num, den, Rounding::floor);
  RC_ASSERT(Rational(fl) <= x);
  RC_ASSERT(x < Rational(fl + 1));
  RC_ASSERT(y == fl || y == fl + 1);
  const Rational dist = abs(Rational(y) - x);
  if (is_nearest(r)) RC_ASSERT(dist <= Rational(1, 2));
  if (r == Rounding::floor) RC_ASSERT(Rational(y) <= x);
  if (r == Rounding::ceil) RC_ASSERT(Rational(y) >= x);
  if (r == Rounding::trunc) RC_ASSERT(abs(Rational(y)) <= abs(x));
  if (x - Rational(fl) == Rational(1, 2)) {  // an exact tie between fl and fl+1
    switch (r) {
      case Rounding::half_even: RC_ASSERT(y % 2 == 0); break;
      case Rounding::half_up: RC_ASSERT(y == fl + 1); break;
      case Rounding::half_down: RC_ASSERT(y == fl); break;
      case Rounding::half_away: RC_ASSERT(abs(Rational(y)) > abs(x)); break;
      default: break;
    }
  }
}

RC_GTEST_PROP(RoundingProperties, StepBoundaryDescribesTheStep, ()) {
  const int64_t v = *rc::gen::inRange<int64_t>(-1000, 1000);
  const Rounding r = *rc::gen::elementOf(kAllRoundings);
  const StepBoundary b = step_boundary(v, r);
  // Probe the boundary itself and points just around it.
  for (const Rational& z : {b.boundary, b.boundary - Rational(1, 1000003), b.boundary + Rational(1, 1000003)}) {
    const bool reached = round_rational(z, r) >= v;
    const bool predicted = b.inclusive ? z >= b.boundary : z > b.boundary;
    RC_ASSERT(reached == predicted);
  }
}

TEST(Rational, ExactValuesOfFloats) {
  // 0.1 as a double is 3602879701896397 / 2^55.
  EXPECT_EQ(to_string(*exact_rational(0.1)), "3602879701896397/36028797018963968");
  // 0.1f is 13421773 / 2^27.
  EXPECT_EQ(to_string(*exact_rational(0.1f)), "13421773/134217728");
  EXPECT_EQ(to_string(*exact_rational(-6.0)), "-6");
  EXPECT_EQ(to_string(*exact_rational(std::ldexp(1.0, -1074))), "1/" + (BigInt(1) << 1074).str());
  EXPECT_FALSE(exact_rational(std::nan("")).has_value());
  EXPECT_FALSE(exact_rational(std::numeric_limits<double>::infinity()).has_value());
}

TEST(Rational, Parsing) {
  EXPECT_EQ(*parse_rational("3/6"), Rational(1, 2));
  EXPECT_EQ(*parse_rational("-7"), Rational(-7));
  EXPECT_EQ(*parse_rational("0.25"), Rational(1, 4));
  EXPECT_EQ(*parse_rational("0x1.8p-3"), Rational(3, 16));
  EXPECT_EQ(*parse_rational("4/-8"), Rational(-1, 2));
  for (const char* bad : {"", "nan", "NaN", "inf", "-inf", "1/0", "1/", "/2", "a/b", "1.5/2", "3 ", "0x"})
    EXPECT_FALSE(parse_rational(bad).has_value()) << bad;
}

RC_GTEST_PROP(RationalProperties, DoublesRoundTripThroughExactRationals, (uint64_t bits)) {
  double x;
  std::memcpy(&x, &bits, sizeof x);
  RC_PRE(std::isfinite(x));
  const Rational q = *exact_rational(x);
  RC_ASSERT(to_double_nearest(q) == x);
  RC_ASSERT(*parse_rational(to_string(q)) == q);
}

RC_GTEST_PROP(RationalProperties, NearestDoubleIsNearest, (int64_t num, int64_t den)) {
  RC_PRE(den != 0);
  const Rational q = make_rational(num, den);
  const double d = to_double_nearest(q);
  const Rational dq = *exact_rational(d);
  // No double strictly closer: compare against both neighbours.
  for (double n : {std::nextafter(d, -INFINITY), std::nextafter(d, INFINITY)}) {
    RC_ASSERT(abs(*exact_rational(n) - q) >= abs(dq - q));
  }
}

}  // namespace
}  // namespace qv
