// The fma form of the 16-lane requant (integer/requant_fma16.h): y = clamp(floor(t*f + b)) in float32,
// granted per channel only after a check at every output step. The property draws requants the way real
// networks have them (alpha a ratio of float32 scales, so not dyadic, its shift route found by the
// stage's own proof) and compares the form with the shift route on every t of the range, with
// requant_ref on every step and on samples, and the AVX-512 kernel with both.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "integer/isa.h"
#include "integer/requant16_avx512.h"
#include "integer/requant_fma16.h"
#include "integer/requant_stage.h"
#include "ir/requant.h"

namespace qv {
namespace {

using integer::FmaForm;
using integer::FusedRequant;
using integer::Isa;

__attribute__((target("avx512f,avx512bw"))) void run_channel(const int32_t* t, int64_t n, const integer::HighMulChannel& c, int32_t lo,
                                                             int32_t hi, uint8_t* dst, bool track) {
  integer::Ranges32 r;
  integer::init_ranges32(r);
  integer::requant_high_mul16(t, n, c, lo, hi, dst, r, track);
}

std::atomic<int> g_granted{0}, g_formed{0};

// A 24-bit odd mantissa, as a float32 scale has.
BigInt mantissa() { return BigInt(*rc::gen::inRange<int64_t>(1 << 22, 1 << 23) * 2 + 1); }

void fma_form_property(bool vector) {
  ExactRequant f;
  f.rounding = *rc::gen::elementOf(std::vector<Rounding>{Rounding::half_even, Rounding::half_away, Rounding::half_up, Rounding::floor,
                                                         Rounding::ceil, Rounding::half_down});
  // |t| <= bound, and an output span of about 64..4096 values over it (the clamp takes the rest).
  const int bound_bits = *rc::gen::inRange(6, 19);
  const int64_t bound = (int64_t{1} << bound_bits) - *rc::gen::inRange<int64_t>(0, 5);
  const int span_bits = *rc::gen::inRange(6, 13);
  // alpha = s_in * s_w / s_out, each a 24-bit mantissa times a power of two, scaled to the span.
  const Rational raw(mantissa() * mantissa(), mantissa());  // about 2^23
  const int e = 23 + bound_bits + 1 - span_bits;            // alpha ~ 2^span / (2 * bound)
  f.alpha = {e >= 0 ? raw / Rational(BigInt(1) << e) : raw * Rational(BigInt(1) << -e)};
  // delta: a bias term over s_out plus the zero point, anywhere in [-300, 300].
  f.delta = {Rational(BigInt(*rc::gen::inRange<int64_t>(-300LL << 23, 300LL << 23)), mantissa())};
  const bool is_signed = *rc::gen::arbitrary<bool>();
  const Requant rq{f, is_signed ? -128 : 0, is_signed ? 127 : 255};
  const int64_t add = *rc::gen::inRange<int64_t>(-(int64_t{1} << 20), int64_t{1} << 20);
  const FusedRequant stage(rq, add - bound, add + bound, Isa::scalar);
  FusedRequant::HighMulParams p;
  if (!stage.high_mul_params(0, add, -bound, bound, p)) return;  // e.g. half_even with a tie in range
  ++g_granted;
  FmaForm form;
  const int32_t lo = static_cast<int32_t>(rq.lo), hi = static_cast<int32_t>(rq.hi);
  const bool formed = integer::fma_form_for(p, -bound, bound, lo, hi, form);
  RC_CLASSIFY(formed, "fma form");
  if (!formed) return;
  ++g_formed;
  // Every t: the form evaluated exactly equals the shift route (itself proven and tested equal to
  // requant_ref); and requant_ref directly on both sides of every step and on every 97th t.
  std::vector<int32_t> t;
  std::vector<uint8_t> expected;
  int32_t previous = INT32_MIN;
  for (int64_t v = -bound; v <= bound; ++v) {
    const int32_t shift = integer::requant_high_mul_scalar(static_cast<int32_t>(v), p, lo, hi);
    const int32_t y = integer::fma_form_exact(form, v, lo, hi);
    const int32_t y_signed = is_signed ? static_cast<int8_t>(shift) : shift;
    if (y != y_signed) RC_FAIL("t " + std::to_string(v) + ": fma form " + std::to_string(y) + ", shift route " + std::to_string(y_signed));
    if (y != previous || v % 97 == 0) {
      const int64_t ref = requant_ref(rq, 0, BigInt(v + add));
      if (ref != y) RC_FAIL("t " + std::to_string(v) + ": fma form " + std::to_string(y) + ", requant_ref " + std::to_string(ref));
      if (v > -bound && y != previous && requant_ref(rq, 0, BigInt(v - 1 + add)) != previous) RC_FAIL("step before t " + std::to_string(v));
    }
    previous = y;
    t.push_back(static_cast<int32_t>(v));
    expected.push_back(static_cast<uint8_t>(y));
  }
  if (!vector) return;
  integer::HighMulChannel c;
  c.params = p, c.add = static_cast<int32_t>(add), c.ok = true, c.fma = true, c.fma_f = form.f, c.fma_b = form.b;
  for (const bool track : {false, true}) {
    std::vector<uint8_t> y(t.size());
    run_channel(t.data(), static_cast<int64_t>(t.size()), c, lo, hi, y.data(), track);
    for (size_t i = 0; i < y.size(); ++i)
      if (y[i] != expected[i])
        RC_FAIL("kernel at t " + std::to_string(t[i]) + ": " + std::to_string(y[i]) + ", expected " + std::to_string(expected[i]));
  }
}

TEST(RequantFma16, EqualsTheShiftRouteAndRequantRefOnItsWholeRange) {
  const bool vector = integer::cpu_supports(Isa::avx512vnni);
  if (!vector) std::printf("this CPU lacks AVX-512: the exact twin only\n");
  g_granted = 0, g_formed = 0;
  EXPECT_TRUE(rc::check("fma form == shift route == requant_ref", [vector] { fma_form_property(vector); }));
  std::printf("%d of %d channels with a shift route got an fma form\n", g_formed.load(), g_granted.load());
  // The form is a search, not a guarantee; on requants like these most channels get one (MobileNetV2's
  // layers: 95-100% of their channels). A check that refused everything would pass the property vacuously.
  EXPECT_GT(g_granted.load(), 30);
  EXPECT_GT(g_formed.load() * 10, g_granted.load() * 7);
}

// By hand: y = floor((3t + 5) / 8) on [-100, 100] into [0, 255]. f = 3/8 and b = 5/8 are float32 values,
// so the form must exist, and then it is that function (steps at t = 1, 4, 6, 9, ...).
TEST(RequantFma16, ExactDyadicByHand) {
  FusedRequant::HighMulParams p;
  p.mul = 3 << 29, p.bias = int64_t{5} << 29, p.lshift = 0, p.rshift = 0;  // ((3t + 5) * 2^29) >> 32
  FmaForm form;
  ASSERT_TRUE(integer::fma_form_for(p, -100, 100, 0, 255, form));
  for (int64_t t = -100; t <= 100; ++t) {
    const int64_t floor_div = (3 * t + 5 >= 0) ? (3 * t + 5) / 8 : -((-(3 * t + 5) + 7) / 8);
    EXPECT_EQ(integer::fma_form_exact(form, t, 0, 255), std::clamp<int64_t>(floor_div, 0, 255)) << "t " << t;
  }
  EXPECT_EQ(form.f * 8.0f, 3.0f);
}

TEST(RequantFma16, RefusesWhatItCannotProve) {
  FusedRequant::HighMulParams p;
  p.mul = 3 << 29, p.bias = int64_t{5} << 29;
  FmaForm form;
  EXPECT_FALSE(integer::fma_form_for(p, -(int64_t{1} << 24) - 1, 0, 0, 255, form)) << "float(t) inexact";
  EXPECT_FALSE(integer::fma_form_for(p, 0, int64_t{1} << 25, 0, 255, form)) << "float(t) inexact";
  p.mul = -p.mul;
  EXPECT_FALSE(integer::fma_form_for(p, -100, 100, 0, 255, form)) << "decreasing";
  p.mul = 0;
  EXPECT_FALSE(integer::fma_form_for(p, -100, 100, 0, 255, form)) << "constant";
}

}  // namespace
}  // namespace qv
