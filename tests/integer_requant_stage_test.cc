// FusedRequant (integer/requant_stage.h) against requant_ref on every tier: random exact
// requantizations (dyadic or not, every rounding mode, alpha of any sign or zero) and their conversions
// to the other three forms, applied to runs of accumulators that include the ends of the declared
// range, zero, and values whose scaled result sits exactly on a rounding tie. Runs are longer than one
// AVX-512 vector so that both the vector body and the scalar tail are checked.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <cmath>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "integer/div_by_constant.h"
#include "integer/isa.h"
#include "integer/path_counters.h"
#include "integer/requant16_avx512.h"
#include "integer/requant_stage.h"
#include "integer/requant_table.h"
#include "ir/requant.h"

namespace qv {
namespace {

using integer::Isa;

int64_t gen_in(int64_t lo, int64_t hi) {
  switch (*rc::gen::inRange(0, 4)) {
    case 0: return *rc::gen::element(lo, hi, int64_t{0} < lo ? lo : int64_t{0} > hi ? hi : int64_t{0});
    case 1: return std::clamp<int64_t>(*rc::gen::inRange<int64_t>(-70000, 70000), lo, hi);
    default: return *rc::gen::inRange(lo, hi == INT64_MAX ? hi : hi + 1);
  }
}

void property(Isa isa) {
  const int wanted = *rc::gen::inRange(0, 5);  // 0 exact, 1 thresholds, 2 mul_add_shift, 3/4 fixed_point
  const int acc_bits = *rc::gen::inRange(2, wanted >= 3 ? 31 : 49);
  const int64_t acc_lo = -(int64_t{1} << (acc_bits - 1)), acc_hi = (int64_t{1} << (acc_bits - 1)) - 1;
  const size_t channels = *rc::gen::inRange<size_t>(1, 4);
  ExactRequant f;
  f.rounding = *rc::gen::elementOf(kAllRoundings);
  const bool dyadic = *rc::gen::inRange(0, 4) != 0;
  for (size_t c = 0; c < channels; ++c) {
    const int k = *rc::gen::inRange(0, wanted >= 3 ? 8 : 50);
    const int den_bits = wanted >= 3 ? 12 : 56;  // fixed_point needs delta/alpha inside int32
    const BigInt den = dyadic ? BigInt(1) << *rc::gen::inRange(0, den_bits) : BigInt(*rc::gen::inRange<int64_t>(1, int64_t{1} << std::min(den_bits, 30)));
    const BigInt num = (wanted < 3 && *rc::gen::inRange(0, 8) == 0) ? BigInt(0) : BigInt(*rc::gen::inRange<int64_t>(-(int64_t{1} << 20), int64_t{1} << 20)) << k;
    f.alpha.push_back(Rational(num, den) / Rational(BigInt(1) << std::max(acc_bits - 8, 0)));
    f.delta.push_back(Rational(*rc::gen::inRange<int64_t>(-4096, 4097), 64));
  }
  Requant exact;
  exact.form = f;
  exact.lo = *rc::gen::inRange<int64_t>(-40000, 1);
  exact.hi = exact.lo + (wanted == 1 ? *rc::gen::inRange<int64_t>(0, 300) : *rc::gen::inRange<int64_t>(0, 70000));
  Requant rq = exact;
  std::string form = "exact";
  try {
    switch (wanted) {
      case 1: rq = to_thresholds(exact, acc_lo, acc_hi).requant, form = "thresholds"; break;
      case 2: rq = to_mul_add_shift(exact, *rc::gen::inRange(0, 63), acc_lo, acc_hi).requant, form = "mul_add_shift"; break;
      case 3: rq = to_fixed_point(exact, true, acc_lo, acc_hi).requant, form = "fixed_point double"; break;
      case 4: rq = to_fixed_point(exact, false, acc_lo, acc_hi).requant, form = "fixed_point single"; break;
      default: break;
    }
  } catch (const std::invalid_argument&) {
  }
  RC_TAG(form);
  const integer::FusedRequant stage(rq, acc_lo, acc_hi, isa);
  for (size_t c = 0; c < channels; ++c) {
    std::vector<int64_t> acc(static_cast<size_t>(*rc::gen::inRange(1, 40)));
    for (int64_t& a : acc) a = gen_in(acc_lo, acc_hi);
    std::vector<int64_t> y(acc.size());
    stage.apply(c, acc.data(), y.data(), static_cast<int64_t>(acc.size()));
    for (size_t i = 0; i < acc.size(); ++i) {
      const int64_t expected = requant_ref(rq, c, BigInt(acc[i]));
      if (y[i] != expected)
        RC_FAIL(std::string(to_string(isa)) + " " + form + " channel " + std::to_string(c) + " acc " + std::to_string(acc[i]) +
                ": expected " + std::to_string(expected) + ", actual " + std::to_string(y[i]) + " (routes " + stage.routes() + ")");
    }
  }
}

class RequantStageTier : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!integer::cpu_supports(GetParam())) GTEST_SKIP() << "this CPU lacks " << to_string(GetParam());
  }
};

TEST_P(RequantStageTier, EqualsRequantRef) {
  const Isa isa = GetParam();
  EXPECT_TRUE(rc::check("FusedRequant == requant_ref on " + std::string(to_string(isa)), [isa] { property(isa); }));
}

// Every rounding mode at exact ties of a dyadic channel: acc*(1/2^k) + 0 lands on v + 1/2 for odd acc
// when k = 1, on quarter points for k = 2; negative and positive, across a vector and its tail.
TEST_P(RequantStageTier, TiesOfEveryMode) {
  const Isa isa = GetParam();
  for (const Rounding r : kAllRoundings)
    for (const int k : {0, 1, 2, 5}) {
      ExactRequant f;
      f.rounding = r;
      f.alpha = {Rational(BigInt(1), BigInt(1) << k)};
      f.delta = {Rational(0)};
      Requant rq{f, -1000, 1000};
      const integer::FusedRequant stage(rq, -5000, 5000, isa);
      std::vector<int64_t> acc;
      for (int64_t a = -77; a <= 77; ++a) acc.push_back(a);
      std::vector<int64_t> y(acc.size());
      stage.apply(0, acc.data(), y.data(), static_cast<int64_t>(acc.size()));
      for (size_t i = 0; i < acc.size(); ++i)
        ASSERT_EQ(y[i], requant_ref(rq, 0, BigInt(acc[i]))) << to_string(r) << " k " << k << " acc " << acc[i];
    }
}

// The requants of a real network: alpha = s_in*s_w/s_out and delta from float32 scales and a bias, so
// their denominators are not powers of two and their numerators have ~100 bits. FusedRequant replaces
// them by a dyadic shift proven equal on the accumulator range (requant_exact_dyadic_equivalent);
// checked here on every accumulator of a 2^17 range, for every rounding mode, both signs of alpha, and
// a channel with exact ties (alpha = 1/3, delta = 1/2), which must stay exact whichever route it takes
// (the dyadic proof fails on half_even's alternating ties; the int64 division takes it).
Rational from_float(float v) {
  int e = 0;
  const double m = std::frexp(static_cast<double>(v), &e);  // v = m * 2^e, |m| in [0.5, 1)
  const BigInt mant(static_cast<int64_t>(std::ldexp(m, 53)));
  return e - 53 >= 0 ? Rational(mant * (BigInt(1) << (e - 53))) : Rational(mant, BigInt(1) << (53 - e));
}

// Every channel of `stage` equals requant_ref on every accumulator of [acc_lo, acc_hi], through apply and
// straight into bytes (the evaluator's output mode) with the outputs' range; an odd count for the tail.
void expect_equal_on_range(const Requant& rq, const integer::FusedRequant& stage, int64_t acc_lo, int64_t acc_hi, std::string_view what) {
  std::vector<int64_t> acc;
  for (int64_t a = acc_lo; a <= acc_hi; ++a) acc.push_back(a);
  std::vector<int64_t> y(acc.size());
  for (size_t c = 0; c < stage.channels(); ++c) {
    stage.apply(c, acc.data(), y.data(), static_cast<int64_t>(acc.size()));
    for (size_t i = 0; i < acc.size(); ++i)
      ASSERT_EQ(y[i], requant_ref(rq, c, BigInt(acc[i]))) << what << " channel " << c << " acc " << acc[i] << " (" << stage.routes() << ")";
    const int64_t n = static_cast<int64_t>(acc.size()) - 3;
    std::vector<uint8_t> bytes(static_cast<size_t>(n));
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    stage.apply_narrow(c, acc.data(), bytes.data(), n, lo, hi);
    EXPECT_EQ(lo, *std::min_element(y.begin(), y.begin() + n)) << what << " channel " << c;
    EXPECT_EQ(hi, *std::max_element(y.begin(), y.begin() + n)) << what << " channel " << c;
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(bytes[static_cast<size_t>(i)], static_cast<uint8_t>(y[static_cast<size_t>(i)])) << what << " channel " << c << " acc "
                                                                                               << acc[static_cast<size_t>(i)];
  }
}

TEST_P(RequantStageTier, NonDyadicRequantOfFloatScalesIsExactOnEveryAccumulator) {
  const Isa isa = GetParam();
  std::mt19937 rng(20261129);
  std::uniform_real_distribution<float> scale(0.001f, 0.1f), bias(-40.0f, 40.0f);
  constexpr int64_t kAccLo = -(int64_t{1} << 16), kAccHi = (int64_t{1} << 16) - 1;
  integer::PathCounters& pc = integer::path_counters();
  const uint64_t before = pc.get(integer::Path::requant_exact_dyadic_equivalent), before_div = pc.get(integer::Path::requant_exact_div64);
  const uint64_t before_ifma = pc.get(integer::Path::requant_exact_div64_ifma);
  bool narrow_ifma = false;
  for (const Rounding r : kAllRoundings) {
    ExactRequant f;
    f.rounding = r;
    for (int c = 0; c < 3; ++c) {
      const float s_in = scale(rng), s_w = scale(rng) * 0.01f, s_out = scale(rng) * 20.0f / 256.0f;
      const Rational alpha = from_float(s_in) * from_float(s_w) / from_float(s_out);
      f.alpha.push_back(c == 1 ? Rational(-1) * alpha : alpha);
      f.delta.push_back(from_float(bias(rng)) / from_float(s_out) * from_float(s_w));
    }
    f.alpha.push_back(Rational(1, 3));
    f.delta.push_back(Rational(1, 2));
    const Requant rq{f, -128, 127};
    const integer::FusedRequant stage(rq, kAccLo, kAccHi, isa);
    narrow_ifma = narrow_ifma || stage.narrows_by_ifma();  // apply_narrow's 8-lane division into bytes, compared below
    expect_equal_on_range(rq, stage, kAccLo, kAccHi, to_string(r));
  }
  EXPECT_GT(pc.get(integer::Path::requant_exact_dyadic_equivalent), before) << "no channel took the proven dyadic route";
  // The tie channel: no dyadic function reproduces half_even's alternating ties, so it divides in int64.
  EXPECT_GT(pc.get(integer::Path::requant_exact_div64), before_div) << "the tie channel did not take the int64 division";
  // On AVX-512 with IFMA that division runs on 8 lanes.
  if (integer::uses_avx512(isa) && __builtin_cpu_supports("avx512ifma")) {
    EXPECT_GT(pc.get(integer::Path::requant_exact_div64_ifma), before_ifma) << "the 8-lane division did not run";
    EXPECT_TRUE(narrow_ifma) << "the 8-lane division into bytes did not run";
  } else if (integer::uses_avx512(isa))
    std::printf("%s: this CPU lacks AVX-512 IFMA, the 8-lane division is not tested here\n", std::string(to_string(isa)).c_str());
}

// Alphas a hair (2^-90) off 1/300 and 1/200, with deltas that put the exact value a hair below the
// rounding boundary at the steps on one side of an output value and a hair above it on the other: no
// dyadic function of int64 width follows that, and mul*acc + add exceeds int64 (100-bit numerators), so
// neither the proven shift nor the int64 division applies. The exact step positions
// (exact_steps) must equal requant_ref on every accumulator of the range, for every rounding mode, and
// leave no channel to the BigInt route.
TEST_P(RequantStageTier, RequantWithStepsAtABoundaryUsesItsExactStepPositions) {
  const Isa isa = GetParam();
  constexpr int64_t kAccLo = -(int64_t{1} << 15), kAccHi = (int64_t{1} << 15) - 1;
  integer::PathCounters& pc = integer::path_counters();
  const Rational hair(BigInt(1), BigInt(1) << 90);
  for (const Rounding r : kAllRoundings) {
    const uint64_t before = pc.get(integer::Path::requant_exact_steps);
    ExactRequant f;
    f.rounding = r;
    // The rounding boundary: integers for floor, ceil and trunc, halves for the others.
    const Rational base = r == Rounding::floor || r == Rounding::ceil || r == Rounding::trunc ? Rational(0) : Rational(1, 2);
    // Channel 0 at acc = 300v: v + (300v - 15000)*hair + base, which crosses the boundary at v = 50.
    f.alpha = {Rational(1, 300) + hair, Rational(-1, 300) - hair, Rational(1, 200) - hair};
    f.delta = {base - Rational(15000) * hair, base + Rational(9000) * hair, base + Rational(-4000) * hair};
    const Requant rq{f, -128, 127};
    const integer::FusedRequant stage(rq, kAccLo, kAccHi, isa);
    EXPECT_GT(pc.get(integer::Path::requant_exact_steps), before) << to_string(r) << ": " << stage.routes();
    EXPECT_EQ(stage.routes().find("reference"), std::string::npos) << to_string(r) << ": " << stage.routes();
    expect_equal_on_range(rq, stage, kAccLo, kAccHi, to_string(r));
  }
}

// The 16-lane route (FusedRequant::high_mul_params, requant16_avx512.h) on every sum of its range:
// dyadic channels with small shifts, so that rounding ties fall inside the range often. Where the route
// is granted, the scalar twin and (on AVX-512) the vector kernel equal requant_ref on every t, and the
// tracked ranges are the true ones. Where it is refused for half_even/half_away, a tie must really lie
// in the range (found here by brute force): the congruence solver neither misses ties nor invents them.
bool is_tie(const Requant& rq, int64_t acc) {
  const auto& f = std::get<ExactRequant>(rq.form);
  const Rational v = f.alpha[0] * Rational(BigInt(acc)) + f.delta[0];
  using boost::multiprecision::denominator;
  using boost::multiprecision::numerator;
  const Rational frac = v - Rational(round_div(numerator(v), denominator(v), Rounding::floor));
  return frac == Rational(1, 2);
}

__attribute__((target("avx512f,avx512bw"))) void run_high_mul16(const int32_t* t, int64_t n, const integer::FusedRequant::HighMulParams& p,
                                                                int32_t add, int32_t lo, int32_t hi, uint8_t* dst, integer::Ranges32& r,
                                                                bool track) {
  integer::requant_high_mul16(t, n, p, add, lo, hi, dst, r, track);
}

void high_mul_property(bool vector) {
  ExactRequant f;
  f.rounding = *rc::gen::elementOf(kAllRoundings);
  // Shifts of 0..50 (under 32 both ways of reaching 32 are taken), multipliers of 1..31 bits.
  const int k = *rc::gen::resize(100, rc::gen::inRange(0, 51));  // full range at every size
  const int m_bits = *rc::gen::inRange(1, 32);
  const int64_t m = *rc::gen::inRange<int64_t>(-(int64_t{1} << (m_bits - 1)) + 1, int64_t{1} << (m_bits - 1));
  f.alpha = {Rational(BigInt(m), BigInt(1) << k)};
  const int j = *rc::gen::inRange(0, k + 1);  // delta = r / 2^j with |delta| < 2^10
  f.delta = {Rational(BigInt(*rc::gen::inRange<int64_t>(-(int64_t{1} << (j + 10)), int64_t{1} << (j + 10))), BigInt(1) << j)};
  const Requant rq{f, *rc::gen::inRange<int64_t>(-128, 1), *rc::gen::inRange<int64_t>(0, 256)};
  const int64_t bound = *rc::gen::element<int64_t>(1, 1000, 1 << 20, (int64_t{1} << 30) - 1);
  RC_CLASSIFY(k < 32, "shift under 32");
  const int64_t add = *rc::gen::inRange<int64_t>(-(int64_t{1} << 30), int64_t{1} << 30);
  const int64_t t_lo = *rc::gen::inRange<int64_t>(-bound, bound + 1);
  const int64_t t_hi = std::min(bound, t_lo + *rc::gen::inRange<int64_t>(0, 3000));
  const integer::FusedRequant stage(rq, add - bound, add + bound, integer::Isa::scalar);
  integer::FusedRequant::HighMulParams p;
  const bool granted = stage.high_mul_params(0, add, t_lo, t_hi, p);
  RC_CLASSIFY(granted, "granted");
  bool tie = false;
  for (int64_t t = t_lo; t <= t_hi && !tie; ++t) tie = is_tie(rq, t + add);
  if (!granted) {
    // Refusals are for trunc, for a multiplier too wide for int32 after scaling, or for a real tie.
    if (f.rounding == Rounding::half_even || f.rounding == Rounding::half_away) {
      integer::FusedRequant::HighMulParams q;
      ExactRequant up = f;
      up.rounding = Rounding::half_up;
      const Requant rq_up{up, rq.lo, rq.hi};
      const integer::FusedRequant stage_up(rq_up, add - bound, add + bound, integer::Isa::scalar);
      if (stage_up.high_mul_params(0, add, t_lo, t_hi, q)) RC_ASSERT(tie);
    }
    return;
  }
  if (f.rounding == Rounding::half_even || f.rounding == Rounding::half_away) RC_ASSERT(!tie);
  std::vector<int32_t> t;
  for (int64_t v = t_lo; v <= t_hi; ++v) t.push_back(static_cast<int32_t>(v));
  const int64_t n = static_cast<int64_t>(t.size());
  std::vector<uint8_t> y(t.size());
  integer::requant_high_mul16_scalar(t.data(), n, p, static_cast<int32_t>(rq.lo), static_cast<int32_t>(rq.hi), y.data());
  int64_t y_lo = INT64_MAX, y_hi = INT64_MIN;
  for (size_t i = 0; i < t.size(); ++i) {
    const int64_t expected = requant_ref(rq, 0, BigInt(t[i] + add));
    y_lo = std::min(y_lo, expected), y_hi = std::max(y_hi, expected);
    if (static_cast<uint8_t>(expected) != y[i])
      RC_FAIL("scalar: acc " + std::to_string(t[i] + add) + " expected " + std::to_string(expected) + " actual " + std::to_string(y[i]));
  }
  if (!vector || std::abs(add) > INT32_MAX - bound) return;
  std::vector<uint8_t> yv(t.size());
  integer::Ranges32 r;
  integer::init_ranges32(r);
  run_high_mul16(t.data(), n, p, static_cast<int32_t>(add), static_cast<int32_t>(rq.lo), static_cast<int32_t>(rq.hi), yv.data(), r, true);
  RC_ASSERT(yv == y);
  // Untracked (a layer whose ranges the plan proved): the same bytes, the ranges left as they were.
  std::vector<uint8_t> yu(t.size());
  integer::Ranges32 u;
  integer::init_ranges32(u);
  run_high_mul16(t.data(), n, p, static_cast<int32_t>(add), static_cast<int32_t>(rq.lo), static_cast<int32_t>(rq.hi), yu.data(), u, false);
  RC_ASSERT(yu == y);
  integer::Ranges32 fresh;
  integer::init_ranges32(fresh);
  RC_ASSERT(std::memcmp(&u, &fresh, sizeof u) == 0);
  alignas(64) int32_t a0[16], a1[16], y0[16], y1[16];
  std::memcpy(a0, &r.acc_lo, 64), std::memcpy(a1, &r.acc_hi, 64), std::memcpy(y0, &r.y_lo, 64), std::memcpy(y1, &r.y_hi, 64);
  RC_ASSERT(*std::min_element(a0, a0 + 16) == t_lo + add);
  RC_ASSERT(*std::max_element(a1, a1 + 16) == t_hi + add);
  RC_ASSERT(*std::min_element(y0, y0 + 16) == y_lo);
  RC_ASSERT(*std::max_element(y1, y1 + 16) == y_hi);
}

TEST(RequantHighMul16, EqualsRequantRefOnItsWholeRange) {
  const bool vector = integer::cpu_supports(Isa::avx512vnni);
  if (!vector) std::printf("this CPU lacks AVX-512: the scalar twin only\n");
  EXPECT_TRUE(rc::check("16-lane route == requant_ref", [vector] { high_mul_property(vector); }));
}

// The tie solver on a case worked by hand: alpha = 3/4, delta = 1/8 under half_even. 3t/4 + 1/8 has
// fraction 1/2 when 6t + 1 == 4 (mod 8), which no integer t satisfies; with delta = 1/4, 3t/4 + 1/4 has
// fraction 1/2 when 3t + 1 == 2 (mod 4), at t = 3 (mod 4) only.
TEST(RequantHighMul16, TieSolverByHand) {
  auto granted = [](const Rational& delta, int64_t t_lo, int64_t t_hi) {
    ExactRequant f;
    f.rounding = Rounding::half_even;
    f.alpha = {Rational(3, 4)};
    f.delta = {delta};
    const Requant rq{f, -128, 127};
    const integer::FusedRequant stage(rq, -1000, 1000, Isa::scalar);
    integer::FusedRequant::HighMulParams p;
    return stage.high_mul_params(0, 0, t_lo, t_hi, p);
  };
  EXPECT_TRUE(granted(Rational(1, 8), -1000, 1000));
  EXPECT_FALSE(granted(Rational(1, 4), -1000, 1000));
  EXPECT_TRUE(granted(Rational(1, 4), 4, 6));
  EXPECT_FALSE(granted(Rational(1, 4), 4, 7));
  EXPECT_FALSE(granted(Rational(1, 4), -1, -1));  // -1 == 3 (mod 4)
  EXPECT_TRUE(granted(Rational(1, 4), 0, 2));
  EXPECT_FALSE(granted(Rational(1, 4), -5, -5));
}

// RequantTable: every entry equals requant_ref for that input value, for random requants of every
// form over input types of up to 12 bits; wider inputs are refused.
TEST(RequantTable, EveryEntryEqualsRequantRef) {
  EXPECT_TRUE(rc::check("tabulated requant == requant_ref", [] {
    const IntType in_type{*rc::gen::resize(100, rc::gen::inRange(1, 13)), *rc::gen::arbitrary<bool>()};
    ExactRequant f;
    f.rounding = *rc::gen::elementOf(kAllRoundings);
    const size_t channels = *rc::gen::inRange<size_t>(1, 4);
    for (size_t c = 0; c < channels; ++c) {
      f.alpha.push_back(Rational(*rc::gen::inRange<int64_t>(-5000, 5001), *rc::gen::inRange<int64_t>(1, 3000)));
      f.delta.push_back(Rational(*rc::gen::inRange<int64_t>(-500, 501), *rc::gen::inRange<int64_t>(1, 64)));
    }
    Requant rq{f, *rc::gen::inRange<int64_t>(-128, 1), *rc::gen::inRange<int64_t>(0, 256)};
    RC_TAG(in_type.name());
    const integer::FusedRequant stage(rq, in_type.min(), in_type.max(), Isa::scalar);
    const auto table = integer::tabulate(stage, in_type);
    RC_ASSERT(table != nullptr);
    for (size_t c = 0; c < channels; ++c)
      for (int64_t x = in_type.min(); x <= in_type.max(); ++x)
        RC_ASSERT(static_cast<int64_t>(table->channel(c)[x - table->in_lo]) == requant_ref(rq, c, BigInt(x)));
  }));
  ExactRequant f;
  f.rounding = Rounding::half_even;
  f.alpha = {Rational(1, 3)};
  f.delta = {Rational(0)};
  const Requant rq{f, -128, 127};
  const IntType wide{13, true};
  EXPECT_EQ(integer::tabulate(integer::FusedRequant(rq, wide.min(), wide.max()), wide), nullptr);
}

// A clamp range wider than int32 does not keep a table out when the values over the input type fit
// int32 (residual-add branches declare wide ranges); values outside int32 take the int64 table, and
// values of 2^60 or more no table at all.
TEST(RequantTable, WideClampRangeTabulatesWhenTheValuesFitInt32) {
  const IntType in_type{8, true};
  for (const int64_t num : {int64_t{3} << 20, int64_t{3} << 30}) {
    ExactRequant f;
    f.rounding = Rounding::half_even;
    f.alpha = {Rational(num, 7)};
    f.delta = {Rational(1, 2)};
    const Requant rq{f, -(int64_t{1} << 40), int64_t{1} << 40};
    const integer::FusedRequant stage(rq, in_type.min(), in_type.max(), Isa::scalar);
    const auto table = integer::tabulate(stage, in_type);
    const bool fits = requant_ref(rq, 0, BigInt(in_type.min())) >= INT32_MIN && requant_ref(rq, 0, BigInt(in_type.max())) <= INT32_MAX;
    if (!fits) {
      // int32 cannot hold the outputs: the int64 table does, entry for entry.
      EXPECT_EQ(table, nullptr) << num;
      const auto wide = integer::tabulate64(stage, in_type);
      ASSERT_NE(wide, nullptr) << num;
      for (int64_t x = in_type.min(); x <= in_type.max(); ++x)
        ASSERT_EQ(wide->channel(0)[x - wide->in_lo], requant_ref(rq, 0, BigInt(x))) << x;
      continue;
    }
    ASSERT_NE(table, nullptr) << num;
    for (int64_t x = in_type.min(); x <= in_type.max(); ++x)
      ASSERT_EQ(static_cast<int64_t>(table->channel(0)[x - table->in_lo]), requant_ref(rq, 0, BigInt(x))) << x;
  }
  ExactRequant f;
  f.rounding = Rounding::half_even;
  f.alpha = {Rational(int64_t{1} << 54)};
  f.delta = {Rational(0)};
  const Requant huge{f, -(int64_t{1} << 62), int64_t{1} << 62};
  EXPECT_EQ(integer::tabulate64(integer::FusedRequant(huge, in_type.min(), in_type.max(), Isa::scalar), in_type), nullptr);
}

// The multiply-high division of the exact_div64 route: floor(u / d) for every u < 2^bits, checked at
// the ends of the range, around multiples of d (where the quotient steps) and at random points, for
// divisors of every size.
TEST(DivByConstant, EqualsDivisionOnItsWholeRange) {
  EXPECT_TRUE(rc::check("multiply-high quotient == u / d", [] {
    const int bits = *rc::gen::resize(100, rc::gen::inRange(1, 64));
    const int d_bits = *rc::gen::resize(100, rc::gen::inRange(1, 64));
    const uint64_t d = std::max<uint64_t>(1, *rc::gen::resize(100, rc::gen::arbitrary<uint64_t>()) >> (64 - d_bits));
    const integer::DivByConstant div = integer::DivByConstant::make(d, bits);
    const uint64_t top = (uint64_t{1} << bits) - 1;
    std::vector<uint64_t> u = {0, 1, top, top - 1, *rc::gen::resize(100, rc::gen::arbitrary<uint64_t>()) & top};
    for (int k = 0; k < 20; ++k) {
      const uint64_t q = *rc::gen::resize(100, rc::gen::arbitrary<uint64_t>()) % (top / d + 1);
      for (const uint64_t delta : {uint64_t{0}, uint64_t{1}, d - 1})
        if (q * d <= top - std::min(top, delta)) u.push_back(q * d + delta);
      if (q * d >= 1) u.push_back(q * d - 1);
    }
    for (const uint64_t v : u)
      if (v <= top && div.quotient(v) != v / d)
        RC_FAIL("d " + std::to_string(d) + " bits " + std::to_string(bits) + " u " + std::to_string(v) + ": " +
                std::to_string(div.quotient(v)) + " != " + std::to_string(v / d));
  }));
}

std::string tier_name(const ::testing::TestParamInfo<Isa>& tier) { return std::string(to_string(tier.param)); }

INSTANTIATE_TEST_SUITE_P(Tiers, RequantStageTier, ::testing::Values(Isa::scalar, Isa::avx2, Isa::avx512vnni, Isa::avx512amx), tier_name);

}  // namespace
}  // namespace qv
