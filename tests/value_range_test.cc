// accumulator_range: hand-computed cases, and on small random layers it equals the exact extremes
// found by trying every input at the ends of its range (the bound is tight, not just safe).
#include <gtest/gtest.h>

#include <random>

#include "ir/value_range.h"

namespace qv {
namespace {

Node linear_node(std::vector<int64_t> weights, int64_t out, std::optional<int64_t> bias_value = std::nullopt) {
  LinearOp op;
  const auto in = static_cast<int64_t>(weights.size()) / out;
  op.weight = IntTensor({out, in}, IntType{64, true}, "OI");
  op.weight.data = std::move(weights);
  if (bias_value) {
    op.bias = IntTensor({out}, IntType{64, true}, "O");
    for (int64_t& b : op.bias->data) b = *bias_value;
  }
  return Node{"fc", {"x"}, {}, op};
}

TEST(AccumulatorRange, LinearByHand) {
  // Weights [3, -2] over int8 inputs [-128, 127]: min = 3*-128 + -2*127 = -638, max = 3*127 + -2*-128 = 637.
  auto [lo, hi] = accumulator_range(linear_node({3, -2}, 1), IntType{8, true});
  EXPECT_EQ(lo, -638);
  EXPECT_EQ(hi, 637);
  // Over uint4 [0, 15] with bias 100: [0 + -2*15 + 100, 3*15 + 0 + 100] = [70, 145].
  std::tie(lo, hi) = accumulator_range(linear_node({3, -2}, 1, 100), IntType{4, false});
  EXPECT_EQ(lo, 70);
  EXPECT_EQ(hi, 145);
  // Two channels: the union of [-638, 637] and of [1, -1]*x -> [-255, 255].
  std::tie(lo, hi) = accumulator_range(linear_node({3, -2, 1, -1}, 2), IntType{8, true});
  EXPECT_EQ(lo, -638);
  EXPECT_EQ(hi, 637);
}

TEST(AccumulatorRange, BeyondSixtyFourBitsIsExact) {
  // Two weights INT64_MIN over int64 inputs: max = 2 * INT64_MIN * INT64_MIN = 2^127.
  const auto [lo, hi] = accumulator_range(linear_node({INT64_MIN, INT64_MIN}, 1), IntType{64, true});
  EXPECT_EQ(hi, BigInt(1) << 127);
  EXPECT_EQ(lo, BigInt(2) * INT64_MIN * BigInt(INT64_MAX));
  EXPECT_FALSE(narrowest_type_holding(lo, hi).has_value());
}

TEST(AccumulatorRange, ConvIncludesPadValueOnlyWhenItPads) {
  Conv2dOp op;
  op.weight = IntTensor({1, 1, 1, 2}, IntType{8, true}, "OIHW");
  op.weight.data = {2, 2};
  const Node unpadded{"conv", {"x"}, {}, op};
  op.pad_value = 200;  // outside uint4 [0, 15]: unpadded it is never read
  auto [lo, hi] = accumulator_range(Node{"conv", {"x"}, {}, op}, IntType{4, false});
  EXPECT_EQ(lo, 0);
  EXPECT_EQ(hi, 60);
  op.pad_left = 1;
  std::tie(lo, hi) = accumulator_range(Node{"conv", {"x"}, {}, op}, IntType{4, false});
  EXPECT_EQ(lo, 0);
  EXPECT_EQ(hi, 800);  // each tap's input is bounded by [0, 200] once padding may be read
}

TEST(AccumulatorRange, HadamardIsInFeaturesTimesLargestMagnitude) {
  const Node had{"had", {"x"}, {}, HadamardOp{4, false}};
  const ValueInfo in{{1, 6}, IntType{8, true}, {}};
  const auto [lo, hi] = accumulator_range(had, in);
  EXPECT_EQ(lo, -6 * 128);
  EXPECT_EQ(hi, 6 * 128);
  EXPECT_THROW(accumulator_range(had, IntType{8, true}), std::invalid_argument);  // needs the input width
  EXPECT_THROW(accumulator_range(Node{"f", {"x"}, {}, FlattenOp{}}, in), std::invalid_argument);
}

TEST(AccumulatorRange, NarrowestTypeHolding) {
  EXPECT_EQ(narrowest_type_holding(-41234, 39000)->name(), "int17");
  EXPECT_EQ(narrowest_type_holding(0, 255)->name(), "uint8");
  EXPECT_EQ(narrowest_type_holding(0, 256)->name(), "uint9");
  EXPECT_EQ(narrowest_type_holding(-1, 0)->name(), "int1");
  EXPECT_EQ(narrowest_type_holding(0, INT64_MAX)->name(), "uint63");
  EXPECT_EQ(narrowest_type_holding(INT64_MIN, 0)->name(), "int64");
  EXPECT_FALSE(narrowest_type_holding(0, BigInt(INT64_MAX) + 1).has_value());
}

// A linear output is a sum of independent terms w*x, so its extremes are at inputs at the ends of the
// range: enumerating the 2^I end-point inputs finds the exact min and max, which the bound must equal.
TEST(AccumulatorRange, EqualsTheExtremesOverEveryEndPointInput) {
  std::mt19937_64 rng(20261123);
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t in = 1 + static_cast<int64_t>(rng() % 6), out = 1 + static_cast<int64_t>(rng() % 3);
    const IntType type{1 + static_cast<int>(rng() % 12), rng() % 2 == 0};
    std::vector<int64_t> w(static_cast<size_t>(in * out));
    for (int64_t& v : w) v = static_cast<int64_t>(rng() % 61) - 30;
    const int64_t bias = static_cast<int64_t>(rng() % 1001) - 500;
    const auto [lo, hi] = accumulator_range(linear_node(w, out, bias), type);
    BigInt best_lo = 0, best_hi = 0;
    for (int64_t o = 0; o < out; ++o)
      for (uint32_t mask = 0; mask < (1u << in); ++mask) {
        BigInt acc = bias;
        for (int64_t i = 0; i < in; ++i) acc += BigInt(w[static_cast<size_t>(o * in + i)]) * ((mask >> i) & 1 ? type.max() : type.min());
        if ((o == 0 && mask == 0) || acc < best_lo) best_lo = acc;
        if ((o == 0 && mask == 0) || acc > best_hi) best_hi = acc;
      }
    ASSERT_EQ(lo, best_lo) << "trial " << trial << " type " << type.name();
    ASSERT_EQ(hi, best_hi) << "trial " << trial << " type " << type.name();
  }
}

}  // namespace
}  // namespace qv
