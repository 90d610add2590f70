// The reference evaluator on a hand-computed network, its trace, threading and the synthetic networks.
#include <gtest/gtest.h>

#include "ir/builder.h"
#include "ir/error.h"
#include "ir/synthetic.h"
#include "reference/evaluator.h"
#include "reference/shapes.h"

namespace qv {
namespace {

IntTensor tensor(Shape shape, IntType type, const char* layout, std::vector<int64_t> data) {
  IntTensor t(std::move(shape), type, layout);
  t.data = std::move(data);
  return t;
}

Requant exact(std::vector<Rational> alpha, int64_t lo, int64_t hi, Rounding r = Rounding::half_even) {
  ExactRequant f;
  f.delta.assign(alpha.size(), Rational(0));
  f.alpha = std::move(alpha);
  f.rounding = r;
  Requant rq;
  rq.form = std::move(f);
  rq.lo = lo, rq.hi = hi;
  return rq;
}

// Every value below is computed by hand in the comments.
Network tiny_network() {
  NetworkBuilder b("tiny");
  const IntType u4{4, false};
  b.input("x", {1, 1, 3, 3}, u4);  // [[1 2 3] [4 5 6] [7 8 9]]
  // 2x2 kernel [[1 2] [3 4]], bias 5: 1+4+12+20+5 = 42, 2+6+15+24+5 = 52, 4+10+21+32+5 = 72, 5+12+24+36+5 = 82
  b.conv2d("conv", "x", tensor({1, 1, 2, 2}, IntType{4, true}, "OIHW", {1, 2, 3, 4}),
           tensor({1}, IntType{4, true}, "O", {5}));
  // /8 half_even: 5.25 -> 5, 6.5 -> 6 (tie to even), 9, 10.25 -> 10
  b.requant("rq", "conv", exact({Rational(1, 8)}, 0, 15), u4);
  b.max_pool2d("pool", "rq", 2, 2);                                      // 10
  b.avg_pool2d("avg", "rq", 2, 1, 2, Rounding::half_even, u4);           // (5+6+9+10)/4 = 7.5 -> 8
  b.flatten("flat", "pool");                                             // [10]
  b.linear("fc", "flat", tensor({2, 1}, IntType{3, true}, "OI", {3, -2}),
           tensor({2}, IntType{2, true}, "O", {1, 0}));                  // [31, -20]
  b.hadamard("had", "fc", 2);                                            // [31-20, 31+20] = [11, 51]
  b.add_saturating("sum", "fc", "had", IntType{7, true});                // [42, 31]
  // 31/2 = 15.5 -> 16, 11/2 = 5.5 -> 6: 22;  -20/2 = -10, 51/2 = 25.5 -> 26: 16
  b.add_requant("addrq", {"fc", "had"},
                {exact({Rational(1, 2), Rational(1, 2)}, -1000, 1000), exact({Rational(1, 2), Rational(1, 2)}, -1000, 1000)},
                IntType{8, true});
  return b.build("addrq");
}

TEST(ReferenceEvaluator, HandComputedNetwork) {
  const Network net = tiny_network();
  const IntTensor x = tensor({1, 1, 3, 3}, IntType{4, false}, "NCHW", {1, 2, 3, 4, 5, 6, 7, 8, 9});
  const Trace trace = evaluate_reference(net, {x});
  ASSERT_EQ(trace.size(), net.nodes.size());
  for (size_t i = 0; i < trace.size(); ++i) EXPECT_EQ(trace[i].node, net.nodes[i].name);
  auto value = [&](const char* name) { return find_entry(trace, name)->value.data; };
  EXPECT_EQ(value("x"), (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(value("conv"), (std::vector<int64_t>{42, 52, 72, 82}));
  EXPECT_EQ(value("rq"), (std::vector<int64_t>{5, 6, 9, 10}));
  EXPECT_EQ(value("pool"), (std::vector<int64_t>{10}));
  EXPECT_EQ(value("avg"), (std::vector<int64_t>{8}));
  EXPECT_EQ(value("flat"), (std::vector<int64_t>{10}));
  EXPECT_EQ(value("fc"), (std::vector<int64_t>{31, -20}));
  EXPECT_EQ(value("had"), (std::vector<int64_t>{11, 51}));
  EXPECT_EQ(value("sum"), (std::vector<int64_t>{42, 31}));
  EXPECT_EQ(value("addrq"), (std::vector<int64_t>{22, 16}));
  // The builder's proven accumulator type: conv in [5, 5 + 15*10] = [5, 155] -> uint8.
  EXPECT_EQ(net.find("conv")->output.type, (IntType{8, false}));
}

TEST(ReferenceEvaluator, RejectsValuesOutsideTheDeclaredType) {
  Network net = tiny_network();
  const IntTensor x = tensor({1, 1, 3, 3}, IntType{4, false}, "NCHW", {1, 2, 3, 4, 5, 6, 7, 8, 16});
  EXPECT_THROW(evaluate_reference(net, {x}), InputError);  // 16 is not a uint4
  const IntTensor ok = tensor({1, 1, 3, 3}, IntType{4, false}, "NCHW", {1, 2, 3, 4, 5, 6, 7, 8, 9});
  for (Node& n : net.nodes)
    if (n.name == "sum") n.output.type = IntType{8, true};  // fine
    else if (n.name == "fc") n.output.type = IntType{5, true};  // 31 fits, -20 fits: still fine
    else if (n.name == "conv") n.output.type = IntType{6, false};  // 72 does not fit
  try {
    evaluate_reference(net, {ok});
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("conv"), std::string::npos) << e.what();
  }
}

TEST(ReferenceEvaluator, ThreadCountDoesNotChangeTheTrace) {
  const Network net = synthetic_mobilenet_v2(32, 7);
  const std::vector<IntTensor> in = synthetic_inputs(net, 8);
  const Trace one = evaluate_reference(net, in, ReferenceOptions{.threads = 1});
  const Trace two = evaluate_reference(net, in, ReferenceOptions{.threads = 2});
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i) EXPECT_EQ(one[i].value, two[i].value) << one[i].node;
}

// The fraction of an activation's values at its clamp bounds, and of nonzero values.
void expect_not_degenerate(const IntTensor& t, int64_t lo, int64_t hi, const std::string& node) {
  size_t saturated = 0, nonzero = 0;
  for (int64_t v : t.data) saturated += (v == lo && lo != 0) || v == hi, nonzero += v != 0;
  const double n = static_cast<double>(t.data.size());
  EXPECT_LT(saturated / n, 0.05) << node;
  EXPECT_GT(nonzero / n, 0.2) << node;
}

TEST(SyntheticNetworks, DeterministicPerSeedAndNotSaturated) {
  const Network a = synthetic_vgg16(32, 1), b = synthetic_vgg16(32, 1), c = synthetic_vgg16(32, 2);
  ASSERT_EQ(a.nodes.size(), b.nodes.size());
  const auto& wa = std::get<Conv2dOp>(a.find("conv3_2")->op).weight;
  EXPECT_EQ(wa, std::get<Conv2dOp>(b.find("conv3_2")->op).weight);
  EXPECT_NE(wa, std::get<Conv2dOp>(c.find("conv3_2")->op).weight);
  EXPECT_EQ(a.find("flatten")->output.shape, (Shape{1, 512}));
  EXPECT_EQ(a.find(a.output)->output.shape, (Shape{1, 1000}));

  const std::vector<IntTensor> in = synthetic_inputs(a, 3);
  EXPECT_EQ(in[0].data, synthetic_inputs(b, 3)[0].data);
  const Trace ta = evaluate_reference(a, in), tb = evaluate_reference(b, in), tc = evaluate_reference(c, in);
  EXPECT_EQ(ta.back().value, tb.back().value);
  EXPECT_NE(ta.back().value, tc.back().value);
  for (const Node& n : a.nodes)
    if (n.kind() == OpKind::requant) {
      const Requant& rq = std::get<RequantOp>(n.op).requant;
      expect_not_degenerate(find_entry(ta, n.name)->value, rq.lo, rq.hi, n.name);
    }
}

TEST(SyntheticNetworks, MobileNetV2Topology) {
  const Network net = synthetic_mobilenet_v2(224, 5);
  int blocks = 0, adds = 0, depthwise = 0;
  for (const Node& n : net.nodes) {
    if (n.kind() == OpKind::add_requant) ++adds;
    if (n.kind() == OpKind::conv2d) {
      const auto& op = std::get<Conv2dOp>(n.op);
      if (op.groups > 1) ++depthwise, ++blocks;
    }
  }
  EXPECT_EQ(blocks, 17);
  EXPECT_EQ(depthwise, 17);
  EXPECT_EQ(adds, 10);  // (24: 1) + (32: 2) + (64: 3) + (96: 2) + (160: 2)
  EXPECT_EQ(net.find("head")->output.shape, (Shape{1, 1280, 7, 7}));
  EXPECT_EQ(std::get<AvgPool2dOp>(net.find("pool")->op).kernel_h, 7);
  EXPECT_EQ(net.find(net.output)->output.shape, (Shape{1, 1000}));

  const Network small = synthetic_mobilenet_v2(64, 5);
  const Trace t = evaluate_reference(small, synthetic_inputs(small, 1));
  for (const Node& n : small.nodes)
    if (n.kind() == OpKind::requant) {
      const Requant& rq = std::get<RequantOp>(n.op).requant;
      expect_not_degenerate(find_entry(t, n.name)->value, rq.lo, rq.hi, n.name);
    }
}

// The shape checks build their messages only on failure; they still name both shapes and the sizes.
TEST(ReferenceShapes, MismatchesNameWhatWasExpected) {
  Conv2dOp op;
  op.weight.shape = {8, 3, 3, 3};
  op.weight.data.assign(8 * 3 * 3 * 3, 0);
  EXPECT_EQ(reference::conv2d_output_shape(op, {1, 3, 5, 5}), (Shape{1, 8, 3, 3}));
  try {
    reference::conv2d_output_shape(op, {1, 4, 5, 5});
    ADD_FAILURE() << "a 4-channel input was accepted by 3-channel weights";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "conv2d weight [8, 3, 3, 3] does not match input [1, 4, 5, 5] with groups 1");
  }
  try {
    reference::conv2d_output_shape(op, {1, 3, 2, 5});
    ADD_FAILURE() << "a 3x3 window was accepted on 2 rows";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "window of extent 3 exceeds padded input of 2");
  }
  EXPECT_THROW(reference::conv2d_output_shape(op, {3, 5, 5}), std::invalid_argument);
}

}  // namespace
}  // namespace qv
