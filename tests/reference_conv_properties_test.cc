// The reference kernels against definitions written another way: conv2d as a scatter (every padded
// input position times every weight, added into the outputs it reaches), linear column by column,
// hadamard with an explicit recursive Sylvester matrix, pools with BigInt window sums and round_div,
// PreparedRequant against requant_ref. Shapes are small and random; values include the edges of their
// types (min, max, +-2^i +- {0,1,2}).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <optional>
#include <random>
#include <vector>

#include "ir/requant.h"
#include "ir/rounding.h"
#include "reference/accumulator_bound.h"
#include "reference/avg_pool2d.h"
#include "reference/conv2d.h"
#include "reference/hadamard.h"
#include "reference/linear.h"
#include "reference/max_pool2d.h"
#include "reference/requant.h"

namespace qv {
namespace {

using reference::ReferenceOptions;

rc::Gen<IntType> gen_type(int max_bits) {
  return rc::gen::apply([](int bits, bool is_signed) { return IntType{bits, is_signed}; },
                        rc::gen::inRange(1, max_bits + 1), rc::gen::arbitrary<bool>());
}

// A value of `t`: an edge (min, max, +-2^i + {-2..2} inside the type) or uniform.
rc::Gen<int64_t> gen_value(IntType t) {
  return rc::gen::oneOf(
      rc::gen::element(t.min(), t.max()),
      rc::gen::map(rc::gen::tuple(rc::gen::inRange(0, std::min(t.bits, 63)), rc::gen::arbitrary<bool>(), rc::gen::inRange(-2, 3)),
                   [t](const std::tuple<int, bool, int>& p) {
                     const auto [i, negative, d] = p;
                     const int64_t v = (negative ? -(int64_t{1} << i) : (int64_t{1} << i)) + d;
                     return std::clamp(v, t.min(), t.max());
                   }),
      rc::gen::inRange(t.min(), t.max() == INT64_MAX ? t.max() : t.max() + 1));
}

IntTensor gen_tensor(Shape shape, IntType t, const char* layout) {
  IntTensor out(std::move(shape), t, layout);
  for (int64_t& v : out.data) v = *gen_value(t);
  return out;
}

IntType out_type_of(const reference::AccumulatorBound& b) { return *b.covering_type(); }

// Every output of conv2d, by scattering each (padded) input position through each weight.
std::vector<BigInt> conv_scatter(const Conv2dOp& op, const IntTensor& in, const Shape& out_shape) {
  const int64_t N = in.dim(0), C = in.dim(1), H = in.dim(2), W = in.dim(3);
  const int64_t O = op.weight.dim(0), Cg = op.weight.dim(1), KH = op.weight.dim(2), KW = op.weight.dim(3);
  const int64_t OH = out_shape[2], OW = out_shape[3], Og = O / op.groups;
  std::vector<BigInt> out(static_cast<size_t>(N * O * OH * OW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < OH * OW; ++i) out[static_cast<size_t>((n * O + o) * OH * OW + i)] = op.bias ? op.bias->data[o] : 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t py = 0; py < H + op.pad_top + op.pad_bottom; ++py)
        for (int64_t px = 0; px < W + op.pad_left + op.pad_right; ++px) {
          const int64_t iy = py - op.pad_top, ix = px - op.pad_left;
          const bool inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
          const BigInt v = inside ? in.at(n, c, iy, ix) : op.pad_value;
          const int64_t g = c / Cg;
          for (int64_t o = g * Og; o < (g + 1) * Og; ++o)
            for (int64_t ky = 0; ky < KH; ++ky)
              for (int64_t kx = 0; kx < KW; ++kx) {
                const int64_t ry = py - ky * op.dilation_h, rx = px - kx * op.dilation_w;
                if (ry < 0 || rx < 0 || ry % op.stride_h != 0 || rx % op.stride_w != 0) continue;
                const int64_t y = ry / op.stride_h, x = rx / op.stride_w;
                if (y >= OH || x >= OW) continue;
                out[static_cast<size_t>(((n * O + o) * OH + y) * OW + x)] += v * op.weight.at(o, c % Cg, ky, kx);
              }
        }
  return out;
}

void expect_equal(const IntTensor& actual, const std::vector<BigInt>& expected, const char* what) {
  RC_ASSERT(actual.data.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    if (BigInt(actual.data[i]) != expected[i]) {
      RC_FAIL(std::string(what) + ": index " + std::to_string(i) + " expected " + expected[i].str() + " actual " +
              std::to_string(actual.data[i]));
    }
  }
}

struct ConvCase {
  Conv2dOp op;
  IntTensor input;
};

ConvCase gen_conv_case() {
  ConvCase k;
  Conv2dOp& op = k.op;
  const bool depthwise = *rc::gen::arbitrary<bool>();
  op.groups = *rc::gen::inRange(1, 4);
  const int64_t Cg = depthwise ? 1 : *rc::gen::inRange(1, 4);
  const int64_t Og = depthwise ? *rc::gen::inRange(1, 3) : *rc::gen::inRange(1, 4);
  const int64_t KH = *rc::gen::inRange(1, 4), KW = *rc::gen::inRange(1, 4);
  op.stride_h = *rc::gen::inRange(1, 4), op.stride_w = *rc::gen::inRange(1, 4);
  op.dilation_h = *rc::gen::inRange(1, 3), op.dilation_w = *rc::gen::inRange(1, 3);
  op.pad_top = *rc::gen::inRange(0, 3), op.pad_bottom = *rc::gen::inRange(0, 3);
  op.pad_left = *rc::gen::inRange(0, 3), op.pad_right = *rc::gen::inRange(0, 3);
  const int64_t min_h = std::max<int64_t>(1, op.dilation_h * (KH - 1) + 1 - op.pad_top - op.pad_bottom);
  const int64_t min_w = std::max<int64_t>(1, op.dilation_w * (KW - 1) + 1 - op.pad_left - op.pad_right);
  const int64_t H = min_h + *rc::gen::inRange(0, 6), W = min_w + *rc::gen::inRange(0, 6);
  const int64_t N = *rc::gen::inRange(1, 3);
  const IntType in_type = *gen_type(16), w_type = *gen_type(16);
  op.weight = gen_tensor({Og * op.groups, Cg, KH, KW}, w_type, "OIHW");
  if (*rc::gen::arbitrary<bool>()) op.bias = gen_tensor({Og * op.groups}, *gen_type(24), "O");
  op.pad_value = *gen_value(*gen_type(16));
  k.input = gen_tensor({N, Cg * op.groups, H, W}, in_type, "NCHW");
  return k;
}

RC_GTEST_PROP(ReferenceConv2d, EqualsScatterDefinition, ()) {
  const ConvCase k = gen_conv_case();
  const reference::AccumulatorBound bound = reference::accumulator_bound(k.op, k.input.type);
  RC_ASSERT(bound.fits_int64);  // 16-bit operands, small fan-in
  const IntType out_type = out_type_of(bound);
  const IntTensor actual = reference::conv2d(k.op, k.input, out_type, ReferenceOptions{.threads = 2});
  const std::vector<BigInt> expected = conv_scatter(k.op, k.input, actual.shape);
  expect_equal(actual, expected, "conv2d");
  for (int64_t v : actual.data) RC_ASSERT(out_type.contains(v));  // the bound holds
  // The BigInt path runs the same template: identical results.
  RC_ASSERT(reference::conv2d(k.op, k.input, out_type, ReferenceOptions{.threads = 1, .force_bigint = true}) == actual);
}

// Definition column by column: y[n] = bias + sum_i x[n,i] * w[:, i].
std::vector<BigInt> linear_by_columns(const LinearOp& op, const IntTensor& in) {
  const int64_t N = in.dim(0), I = in.dim(1), O = op.weight.dim(0);
  std::vector<BigInt> out(static_cast<size_t>(N * O));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t o = 0; o < O; ++o) out[static_cast<size_t>(n * O + o)] = op.bias ? op.bias->data[o] : 0;
    for (int64_t i = 0; i < I; ++i)
      for (int64_t o = 0; o < O; ++o) out[static_cast<size_t>(n * O + o)] += BigInt(in.at(n, i)) * op.weight.at(o, i);
  }
  return out;
}

RC_GTEST_PROP(ReferenceLinear, EqualsColumnDefinition, ()) {
  LinearOp op;
  const int64_t N = *rc::gen::inRange(1, 4), I = *rc::gen::inRange(1, 40), O = *rc::gen::inRange(1, 9);
  op.weight = gen_tensor({O, I}, *gen_type(16), "OI");
  if (*rc::gen::arbitrary<bool>()) op.bias = gen_tensor({O}, *gen_type(32), "O");
  const IntTensor in = gen_tensor({N, I}, *gen_type(16), "NC");
  const IntType out_type = out_type_of(reference::accumulator_bound(op, in.type));
  const IntTensor actual = reference::linear(op, in, out_type, ReferenceOptions{.threads = 2});
  expect_equal(actual, linear_by_columns(op, in), "linear");
  RC_ASSERT(reference::linear(op, in, out_type, ReferenceOptions{.threads = 1, .force_bigint = true}) == actual);
}

// Sylvester's construction: H_1 = [1], H_2k = [[H, H], [H, -H]].
std::vector<std::vector<int>> sylvester(int64_t order) {
  std::vector<std::vector<int>> h = {{1}};
  while (static_cast<int64_t>(h.size()) < order) {
    const size_t n = h.size();
    std::vector<std::vector<int>> next(2 * n, std::vector<int>(2 * n));
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < n; ++j) {
        next[i][j] = next[i][j + n] = next[i + n][j] = h[i][j];
        next[i + n][j + n] = -h[i][j];
      }
    h = std::move(next);
  }
  return h;
}

RC_GTEST_PROP(ReferenceHadamard, EqualsSylvesterMatrix, ()) {
  const int64_t N = *rc::gen::inRange(1, 3), I = *rc::gen::inRange(1, 70);
  const HadamardOp op{*rc::gen::inRange<int64_t>(1, 70), *rc::gen::arbitrary<bool>()};
  const IntTensor in = gen_tensor({N, I}, *gen_type(32), "NC");
  const auto h = sylvester(std::max(I, op.out_features));
  std::vector<BigInt> expected(static_cast<size_t>(N * op.out_features));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < op.out_features; ++j) {
      BigInt s = 0;
      for (int64_t i = 0; i < I; ++i) s += BigInt(h[j][i]) * in.at(n, i);
      expected[static_cast<size_t>(n * op.out_features + j)] = op.negate ? BigInt(-s) : s;
    }
  const IntType out_type = out_type_of(reference::accumulator_bound(op, I, in.type));
  const IntTensor actual = reference::hadamard(op, in, out_type, ReferenceOptions{.threads = 2});
  expect_equal(actual, expected, "hadamard");
  RC_ASSERT(reference::hadamard(op, in, out_type, ReferenceOptions{.force_bigint = true}) == actual);
}

RC_GTEST_PROP(ReferenceAvgPool2d, EqualsRoundDivOfWindowSum, ()) {
  AvgPool2dOp op;
  op.kernel_h = *rc::gen::inRange(1, 4), op.kernel_w = *rc::gen::inRange(1, 4);
  op.stride_h = *rc::gen::inRange(1, 3), op.stride_w = *rc::gen::inRange(1, 3);
  op.shift = *rc::gen::inRange(0, 70);
  op.rounding = *rc::gen::elementOf(kAllRoundings);
  const IntType in_type = *gen_type(64), out_type = *gen_type(16);
  const IntTensor in = gen_tensor({*rc::gen::inRange(1, 3), *rc::gen::inRange(1, 3), op.kernel_h + *rc::gen::inRange(0, 4),
                                   op.kernel_w + *rc::gen::inRange(0, 4)},
                                  in_type, "NCHW");
  const IntTensor actual = reference::avg_pool2d(op, in, out_type, ReferenceOptions{.threads = 2});
  const int64_t OH = actual.dim(2), OW = actual.dim(3);
  RC_ASSERT(OH == (in.dim(2) - op.kernel_h) / op.stride_h + 1);
  std::vector<BigInt> expected;
  for (int64_t n = 0; n < in.dim(0); ++n)
    for (int64_t c = 0; c < in.dim(1); ++c)
      for (int64_t y = 0; y < OH; ++y)
        for (int64_t x = 0; x < OW; ++x) {
          BigInt s = 0;
          for (int64_t ky = 0; ky < op.kernel_h; ++ky)
            for (int64_t kx = 0; kx < op.kernel_w; ++kx) s += in.at(n, c, y * op.stride_h + ky, x * op.stride_w + kx);
          const BigInt r = round_div(s, BigInt(1) << op.shift, op.rounding);
          expected.push_back(std::clamp(r, BigInt(out_type.min()), BigInt(out_type.max())));
        }
  expect_equal(actual, expected, "avg_pool2d");
  RC_ASSERT(reference::avg_pool2d(op, in, out_type, ReferenceOptions{.force_bigint = true}) == actual);
}

RC_GTEST_PROP(ReferenceMaxPool2d, EqualsMaxOverRealPositions, ()) {
  MaxPool2dOp op;
  op.kernel_h = *rc::gen::inRange(1, 4), op.kernel_w = *rc::gen::inRange(1, 4);
  op.stride_h = *rc::gen::inRange(1, 4), op.stride_w = *rc::gen::inRange(1, 4);
  op.pad_top = *rc::gen::inRange(0, op.kernel_h), op.pad_bottom = *rc::gen::inRange(0, op.kernel_h);
  op.pad_left = *rc::gen::inRange(0, op.kernel_w), op.pad_right = *rc::gen::inRange(0, op.kernel_w);
  const IntType t = *gen_type(64);
  const IntTensor in = gen_tensor({1, *rc::gen::inRange(1, 4), op.kernel_h + *rc::gen::inRange(0, 5),
                                   op.kernel_w + *rc::gen::inRange(0, 5)}, t, "NCHW");
  const IntTensor actual = reference::max_pool2d(op, in, t, ReferenceOptions{.threads = 2});
  std::vector<BigInt> expected;
  for (int64_t c = 0; c < in.dim(1); ++c)
    for (int64_t y = 0; y < actual.dim(2); ++y)
      for (int64_t x = 0; x < actual.dim(3); ++x) {
        std::optional<int64_t> m;
        for (int64_t ky = 0; ky < op.kernel_h; ++ky)
          for (int64_t kx = 0; kx < op.kernel_w; ++kx) {
            const int64_t iy = y * op.stride_h + ky - op.pad_top, ix = x * op.stride_w + kx - op.pad_left;
            if (iy < 0 || ix < 0 || iy >= in.dim(2) || ix >= in.dim(3)) continue;
            m = std::max(m.value_or(in.at(0, c, iy, ix)), in.at(0, c, iy, ix));
          }
        RC_ASSERT(m.has_value());
        expected.push_back(*m);
      }
  expect_equal(actual, expected, "max_pool2d");
}

// Exact requant with arbitrary or dyadic rationals: the prepared form equals requant_ref.
RC_GTEST_PROP(ReferenceRequant, PreparedEqualsRequantRef, ()) {
  const bool dyadic = *rc::gen::arbitrary<bool>();
  auto gen_rational = [&]() {
    const BigInt num = *rc::gen::inRange<int64_t>(-(int64_t{1} << 40), int64_t{1} << 40);
    const BigInt den = dyadic ? BigInt(1) << *rc::gen::inRange(0, 50) : BigInt(*rc::gen::inRange<int64_t>(1, int64_t{1} << 40));
    return Rational(num, den);
  };
  ExactRequant f;
  f.rounding = *rc::gen::elementOf(kAllRoundings);
  const size_t channels = *rc::gen::inRange<size_t>(1, 4);
  for (size_t c = 0; c < channels; ++c) f.alpha.push_back(gen_rational()), f.delta.push_back(gen_rational());
  Requant rq;
  rq.form = f;
  const int64_t a = *gen_value(IntType{64, true}), b = *gen_value(IntType{64, true});
  rq.lo = std::min(a, b), rq.hi = std::max(a, b);
  const reference::PreparedRequant prepared(rq);
  for (int k = 0; k < 20; ++k) {
    const size_t c = *rc::gen::inRange<size_t>(0, channels);
    const int64_t acc = *gen_value(*gen_type(64));
    RC_ASSERT(prepared(c, acc) == requant_ref(rq, c, BigInt(acc)));
  }
}

// Operands of 59-60 bits: no partial sum fits int64, so the reference must take the BigInt path, and the
// result is exact (pairs of huge terms cancel up to a small remainder, so the outputs fit int64).
TEST(ReferenceBigInt, WideConvIsExact) {
  std::mt19937_64 rng(12345);
  const int64_t pairs = 8, C = 2 * pairs, O = 3;
  const IntType t60{60, true};
  Conv2dOp op;
  op.weight = IntTensor({O, C, 1, 1}, t60, "OIHW");
  IntTensor in({1, C, 2, 2}, t60, "NCHW");
  for (int64_t k = 0; k < pairs; ++k)
    for (int64_t p = 0; p < 4; ++p) {
      const int64_t v = static_cast<int64_t>(rng() >> 6) - (int64_t{1} << 57);  // |v| <= 2^57
      in.data[static_cast<size_t>(2 * k * 4 + p)] = v;
      in.data[static_cast<size_t>((2 * k + 1) * 4 + p)] = v;
    }
  for (int64_t o = 0; o < O; ++o)
    for (int64_t k = 0; k < pairs; ++k) {
      const int64_t b = static_cast<int64_t>(rng() >> 5) - (int64_t{1} << 58);
      const int64_t d = static_cast<int64_t>(rng() % 3) - 1;
      op.weight.at(o, 2 * k, 0, 0) = b;
      op.weight.at(o, 2 * k + 1, 0, 0) = -b + d;
    }
  const reference::AccumulatorBound bound = reference::accumulator_bound(op, t60);
  ASSERT_FALSE(bound.fits_int64) << "the test must exercise the BigInt path";
  const IntTensor actual = reference::conv2d(op, in, IntType{64, true});
  const std::vector<BigInt> expected = conv_scatter(op, in, actual.shape);
  bool any_wide_partial = false;
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(BigInt(actual.data[i]), expected[i]) << "index " << i;
  for (int64_t v : in.data) any_wide_partial |= BigInt(v) * op.weight.data[0] > INT64_MAX || BigInt(v) * op.weight.data[0] < INT64_MIN;
  EXPECT_TRUE(any_wide_partial) << "some single product should already overflow int64";

  // The same numbers through linear.
  LinearOp lin;
  lin.weight = IntTensor({O, C}, t60, "OI");
  lin.weight.data = op.weight.data;
  IntTensor x({1, C}, t60, "NC");
  for (int64_t c = 0; c < C; ++c) x.data[static_cast<size_t>(c)] = in.at(0, c, 1, 0);
  ASSERT_FALSE(reference::accumulator_bound(lin, t60).fits_int64);
  const IntTensor y = reference::linear(lin, x, IntType{64, true});
  const std::vector<BigInt> ey = linear_by_columns(lin, x);
  for (size_t i = 0; i < ey.size(); ++i) EXPECT_EQ(BigInt(y.data[i]), ey[i]) << "index " << i;
}

TEST(ReferenceBigInt, ResultBeyondInt64IsReported) {
  LinearOp lin;
  lin.weight = IntTensor({1, 4}, IntType{63, true}, "OI");
  lin.weight.data = {int64_t{1} << 61, int64_t{1} << 61, int64_t{1} << 61, int64_t{1} << 61};
  IntTensor x({1, 4}, IntType{4, true}, "NC");
  x.data = {7, 7, 7, 7};
  EXPECT_THROW(reference::linear(lin, x, IntType{64, true}), std::range_error);
}

}  // namespace
}  // namespace qv
