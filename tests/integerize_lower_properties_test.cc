// Lowering is exact: random small quantized graphs (stacks of conv, depthwise, linear, BN with negative
// gammas, residual adds with different or shared branch scales, max/avg/truncating pools, bit widths 2
// to 8 and 16, per-channel and per-tensor scales, every rounding mode) lower to integer networks whose
// reference evaluation equals the graph's exact rational semantics (integerize/exact_eval.h) at every
// quantized node, bit for bit, and whose logits alpha * acc + delta equal the exact logits.
// Every requant form then agrees with the exact one within its proven bound, thresholds exactly.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <random>

#include "integerize/exact_eval.h"
#include "integerize/lower.h"
#include "integerize/requant_forms.h"
#include "ir/rational.h"
#include "reference/evaluator.h"

namespace qv::integerize {
namespace {

// Draws a graph from a seed (rapidcheck draws the seed, so every failure replays).
class RandomGraph {
 public:
  explicit RandomGraph(uint64_t seed) : rng_(seed) {}

  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool coin() { return pick(0, 1) == 1; }

  // A float-like scale: a random 24-bit mantissa times 2^-e (what a float32 constant is).
  Rational scale(int e_lo, int e_hi) {
    const float m = 1.0f + static_cast<float>(pick(0, (1 << 23) - 1)) / static_cast<float>(1 << 23);
    return *exact_rational(std::ldexp(m, -pick(e_lo, e_hi)));
  }
  Rational signed_real(int e_lo, int e_hi) { return coin() ? scale(e_lo, e_hi) : Rational(-scale(e_lo, e_hi)); }
  Rounding rounding() { return static_cast<Rounding>(pick(0, 6)); }
  int bits() { const int b[] = {2, 3, 4, 5, 6, 7, 8, 16}; return b[pick(0, 7)]; }

  QAct act(int64_t channels, bool is_signed, bool per_channel) {
    QAct a;
    a.type = IntType{bits(), is_signed};
    a.rounding = rounding();
    const int64_t n = per_channel ? channels : 1;
    for (int64_t c = 0; c < n; ++c) a.scale.push_back(scale(2, 8)), a.offset.push_back(0);
    a.qmin = a.type.min();
    a.qmax = a.type.max();
    if (coin()) a.qmax = std::max<int64_t>(a.qmin, a.qmax - pick(0, 3));  // a ReLU6-style clip below the type's top
    if (is_signed && coin()) a.qmin = 0;                                  // ReLU on a signed grid
    a.qmax = std::max(a.qmax, a.qmin);
    return a;
  }

  IntTensor weights(Shape shape) {
    const int b = pick(2, 8);
    const std::string layout = shape.size() == 4 ? "OIHW" : "OI";
    IntTensor w(std::move(shape), IntType{b, true}, layout);
    const int64_t lim = (int64_t{1} << (b - 1)) - 1;  // narrow range
    for (int64_t& v : w.data) v = pick(0, 4) == 0 ? (coin() ? lim : -lim) : pick(static_cast<int>(-lim), static_cast<int>(lim));
    return w;
  }

  Channels per_out(int64_t o, bool per_channel, bool bias) {
    Channels v;
    for (int64_t i = 0; i < (per_channel ? o : 1); ++i) v.push_back(bias ? signed_real(-2, 6) : scale(6, 12));
    return v;
  }

  size_t add(QGraph& g, std::string name, std::vector<size_t> in, QOp op) {
    g.nodes.push_back(QNode{std::move(name), std::move(in), std::move(op)});
    return g.nodes.size() - 1;
  }

  // conv (+ BN) + act on x.
  size_t conv_block(QGraph& g, size_t x, int64_t& c, int64_t& h, const std::string& name, bool depthwise) {
    QConv conv;
    const int k = coin() && h >= 3 ? 3 : 1;
    conv.pad = k == 3 ? pick(0, 1) : 0;
    conv.stride = h >= 4 ? pick(1, 2) : 1;
    const int64_t out = depthwise ? c : pick(1, 5);
    conv.groups = depthwise ? static_cast<int>(c) : 1;
    conv.weight = weights({out, depthwise ? 1 : c, k, k});
    conv.weight_scale = per_out(out, coin(), false);
    if (coin()) conv.bias = per_out(out, true, true);
    size_t y = add(g, name + ".conv", {x}, conv);
    if (coin()) {
      QBatchNorm bn{per_out(out, true, true), per_out(out, true, true)};  // any sign: negative gammas
      y = add(g, name + ".bn", {y}, bn);
    }
    h = (h + 2 * conv.pad - k) / conv.stride + 1;
    c = out;
    return add(g, name + ".act", {y}, act(out, coin(), depthwise_next_ = coin()));
  }

  // The quantizer whose grid x is on (max pools keep their input's grid).
  static QAct grid_of(const QGraph& g, size_t x) {
    while (g.nodes[x].as<QMaxPool>()) x = g.nodes[x].inputs[0];
    return std::get<QAct>(g.nodes[x].op);
  }

  QGraph graph() {
    QGraph g;
    g.name = "random";
    int64_t c = pick(1, 3), h = pick(3, 7);
    size_t x = add(g, "input", {}, QInput{{1, c, h, h}});
    x = add(g, "input_quant", {x}, act(c, true, false));
    last_per_channel_ = false;
    const int blocks = pick(1, 4);
    for (int b = 0; b < blocks; ++b) {
      const std::string name = "b" + std::to_string(b);
      const int kind = pick(0, 5);
      if (kind <= 1 || (last_per_channel_ && kind != 1)) {
        // A depthwise conv absorbs per-channel input scales; anything else needs per-tensor ones.
        const bool dw = kind == 1 || last_per_channel_;
        x = conv_block(g, x, c, h, name, dw);
        last_per_channel_ = depthwise_next_;
      } else if (kind == 2) {
        // Residual: x + act(conv1x1(x)), then a quantizer; the branch shares x's grid half of the time
        // (Brevitas' shared quantizer: a saturating add).
        const QAct xa = grid_of(g, x);
        QConv conv;
        conv.weight = weights({c, c, 1, 1});
        conv.weight_scale = per_out(c, coin(), false);
        size_t y = add(g, name + ".conv", {x}, conv);
        const bool shared = coin() && xa.type.is_signed;
        QAct branch = shared ? xa : act(c, true, false);
        if (shared) branch.qmin = branch.type.min(), branch.qmax = branch.type.max();
        y = add(g, name + ".branch", {y}, branch);
        const size_t s = add(g, name + ".add", {x, y}, QAdd{});
        QAct out = shared ? branch : act(c, true, false);
        x = add(g, name + ".out", {s}, out);
      } else if (kind == 3 && h >= 2) {
        x = add(g, name + ".maxpool", {x}, QMaxPool{2, 2});
        h = (h - 2) / 2 + 1;
      } else if (kind == 4 && h >= 2) {
        QAvgPool p;
        p.kernel = 2;
        p.stride = 1;
        x = add(g, name + ".avgpool", {x}, p);
        h = h - 1;
        x = add(g, name + ".avgpool_quant", {x}, act(c, true, false));
      } else {
        x = add(g, name + ".requant", {x}, act(c, coin(), false));  // a freestanding quantizer
      }
    }
    // Head: global pool (float mean, or Brevitas truncation on an unsigned grid), flatten, linear.
    const QAct last = grid_of(g, x);
    if (coin() && !last.type.is_signed && last.type.bits <= 8 && last.scale.size() == 1) {
      QAvgPool p;
      p.truncate = true;
      p.bits = last.type.bits;
      const int64_t kk = h * h;
      int bw = 0;
      while ((int64_t{1} << bw) < ((int64_t{1} << last.type.bits) - 1) * kk) ++bw;
      p.shift = bw - p.bits;
      p.rounding = coin() ? Rounding::floor : Rounding::half_even;
      p.out_scale = last.scale[0] / Rational(kk) * Rational(BigInt(1) << p.shift);
      x = add(g, "pool", {x}, p);
    } else if (last.scale.size() == 1) {
      x = add(g, "pool", {x}, QAvgPool{});
    } else {
      x = add(g, "pool_quant", {x}, act(c, true, false));
      x = add(g, "pool", {x}, QAvgPool{});
    }
    x = add(g, "flatten", {x}, QFlatten{});
    QLinear fc;
    const int64_t classes = pick(1, 4);
    fc.weight = weights({classes, c});
    fc.weight_scale = per_out(classes, coin(), false);
    if (coin()) fc.bias = per_out(classes, true, true);
    add(g, "fc", {x}, fc);
    return g;
  }

  std::vector<Rational> input(const QGraph& g) {
    std::vector<Rational> x(static_cast<size_t>(element_count(std::get<QInput>(g.nodes[0].op).shape)));
    const QAct& a = std::get<QAct>(g.nodes[1].op);
    for (Rational& v : x) {
      // Half of the inputs exactly on a rounding tie of the input quantizer, the rest anywhere in range.
      const int64_t q = pick(static_cast<int>(std::max<int64_t>(a.qmin, -300)), static_cast<int>(std::min<int64_t>(a.qmax, 300)));
      v = coin() ? Rational(q) * a.scale[0] + a.scale[0] / 2 : Rational(q) * a.scale[0] + a.scale[0] * Rational(pick(-500, 500), 1000);
    }
    return x;
  }

 private:
  std::mt19937_64 rng_;
  bool depthwise_next_ = false, last_per_channel_ = false;
};

IntTensor grid_tensor(const ExactValue& v, const ValueInfo& info) {
  IntTensor t(v.shape, info.type, v.shape.size() == 4 ? "NCHW" : "NC");
  t.data = *v.grid;
  return t;
}

RC_GTEST_PROP(LowerProperties, ReferenceEqualsExactSemantics, ()) {
  RandomGraph r(*rc::gen::arbitrary<uint64_t>());
  const QGraph g = r.graph();
  const std::vector<Rational> input = r.input(g);
  const std::vector<ExactValue> exact = evaluate_exact(g, input);
  const Lowered low = lower(g);
  const Trace trace = evaluate_reference(low.network, {grid_tensor(exact[1], low.network.nodes[0].output)});
  size_t compared = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!exact[i].grid) continue;
    const TraceEntry* e = find_entry(trace, g.nodes[i].name);
    RC_ASSERT(e != nullptr);
    RC_ASSERT(e->value.data == *exact[i].grid);
    ++compared;
  }
  RC_ASSERT(compared >= 3u);
  // Logits: alpha * acc + delta is the exact real output.
  RC_ASSERT(low.output_kind == Lowered::OutputKind::affine);
  const IntTensor& acc = trace.back().value;
  const ExactValue& logits = exact.back();
  for (int64_t o = 0; o < acc.dim(1); ++o)
    RC_ASSERT(channel(low.output_alpha, o) * Rational(acc.at(0, o)) + channel(low.output_delta, o) ==
              logits.real[static_cast<size_t>(o)]);
  RC_TAG(low.network.nodes.size());
}

RC_GTEST_PROP(LowerProperties, EveryRequantFormWithinItsBound, ()) {
  RandomGraph r(*rc::gen::arbitrary<uint64_t>());
  const QGraph g = r.graph();
  const std::vector<Rational> input = r.input(g);
  const std::vector<ExactValue> exact = evaluate_exact(g, input);
  const Lowered low = lower(g);
  const IntTensor in = grid_tensor(exact[1], low.network.nodes[0].output);
  const Trace ref = evaluate_reference(low.network, {in});
  for (const char* form : {"thresholds", "mulshift:30", "tflite-single", "tflite-double"}) {
    Network net = low.network;
    std::vector<FormBound> bounds;
    try {
      bounds = apply_requant_form(net, parse_requant_form(form));
    } catch (const IntegerizeError&) {
      continue;  // e.g. an accumulator outside int32 for tflite: refused, never approximated
    }
    // Each requant node, fed the exact network's own input, lands within its bound of the exact output.
    for (const FormBound& b : bounds) {
      const Node* node = net.find(b.node);
      const Trace local = evaluate_reference(
          Network{"one", {Node{node->inputs[0], {}, net.find(node->inputs[0])->output, InputOp{}}, *node}, b.node, {}},
          {find_entry(ref, node->inputs[0])->value});
      const IntTensor& got = local.back().value;
      const IntTensor& want = find_entry(ref, b.node)->value;
      for (size_t k = 0; k < got.data.size(); ++k) {
        const int64_t d = got.data[k] > want.data[k] ? got.data[k] - want.data[k] : want.data[k] - got.data[k];
        if (d > b.max_lsb_error) RC_FAIL(std::string(form) + " at " + b.node + ": got " + std::to_string(got.data[k]) + " want " + std::to_string(want.data[k]) + " bound " + std::to_string(b.max_lsb_error) + " in " + std::to_string(net.find(node->inputs[0])->output.type.bits));
      }
      if (std::string(form) == "thresholds") RC_ASSERT(got.data == want.data);
    }
  }
}

TEST(Lower, RefusesPerChannelScalesIntoAPointwiseConv) {
  QGraph g;
  g.name = "g";
  QAct a{{Rational(1, 4), Rational(1, 8)}, {0, 0}, IntType{8, false}, 0, 255, Rounding::half_even};
  g.nodes.push_back(QNode{"input", {}, QInput{{1, 2, 2, 2}}});
  g.nodes.push_back(QNode{"q", {0}, QAct{{Rational(1, 4)}, {0}, IntType{8, false}, 0, 255, Rounding::half_even}});
  QConv dw;
  dw.weight = IntTensor({2, 1, 1, 1}, IntType{4, true}, "OIHW");
  dw.weight.data = {1, 2};
  dw.weight_scale = {Rational(1)};
  dw.groups = 2;
  g.nodes.push_back(QNode{"dw", {1}, dw});
  g.nodes.push_back(QNode{"dw.act", {2}, a});
  QConv pw;
  pw.weight = IntTensor({1, 2, 1, 1}, IntType{4, true}, "OIHW");
  pw.weight.data = {1, 1};
  pw.weight_scale = {Rational(1)};
  g.nodes.push_back(QNode{"pw", {3}, pw});
  try {
    lower(g);
    FAIL() << "lowered a pointwise conv over per-channel scales";
  } catch (const IntegerizeError& e) {
    EXPECT_EQ(e.where(), "pw");
    EXPECT_NE(std::string(e.what()).find("per-channel"), std::string::npos) << e.what();
  }
}

TEST(Lower, RefusesAConvOverAnUnquantizedValue) {
  QGraph g;
  g.name = "g";
  g.nodes.push_back(QNode{"input", {}, QInput{{1, 1, 2, 2}}});
  QConv c;
  c.weight = IntTensor({1, 1, 1, 1}, IntType{4, true}, "OIHW");
  c.weight.data = {1};
  c.weight_scale = {Rational(1)};
  g.nodes.push_back(QNode{"conv", {0}, c});
  try {
    lower(g);
    FAIL();
  } catch (const IntegerizeError& e) {
    EXPECT_NE(std::string(e.what()).find("not on an integer grid"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qv::integerize
