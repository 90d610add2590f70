#include "integerize/lower.h"

#include <variant>

#include "ir/builder.h"
#include "ir/rational.h"
#include "ir/value_range.h"

namespace qv::integerize {

namespace {

struct RealInput {};
struct Quantized {
  std::string ir;
  Channels scale, offset;
  IntType type;
};
struct Affine {
  std::string ir;
  Channels alpha, delta;
  std::vector<std::string> inputs, pending;  // the segment so far
};
struct Sum {
  std::vector<Quantized> terms;
};
struct HadamardOut {
  std::string ir;
};
using Value = std::variant<std::monostate, RealInput, Quantized, Affine, Sum, HadamardOut>;

bool all_zero(const Channels& v) {
  for (const Rational& r : v)
    if (r != 0) return false;
  return true;
}
bool per_tensor(const Channels& v) {
  for (const Rational& r : v)
    if (r != v.front()) return false;
  return true;
}

BigInt rational_gcd_num(const std::vector<Rational>& xs, BigInt& common_den) {
  common_den = 1;
  for (const Rational& x : xs) common_den = boost::multiprecision::lcm(common_den, BigInt(denominator(x)));
  BigInt g = 0;
  for (const Rational& x : xs) g = boost::multiprecision::gcd(g, BigInt(numerator(x) * (common_den / denominator(x))));
  return g;
}

class Lowering {
 public:
  explicit Lowering(const QGraph& g) : g_(g), b_(g.name) {}

  Lowered run() {
    values_.resize(g_.nodes.size());
    for (size_t i = 0; i < g_.nodes.size(); ++i) values_[i] = lower_node(g_.nodes[i]);
    const Value& last = values_.back();
    if (const auto* a = std::get_if<Affine>(&last)) {
      out_.output_kind = Lowered::OutputKind::affine;
      out_.output_alpha = a->alpha;
      out_.output_delta = a->delta;
      out_.network = b_.build(a->ir);
    } else if (const auto* h = std::get_if<HadamardOut>(&last)) {
      out_.output_kind = Lowered::OutputKind::hadamard;
      out_.network = b_.build(h->ir);
    } else if (const auto* q = std::get_if<Quantized>(&last)) {
      out_.output_kind = Lowered::OutputKind::quantized;
      out_.network = b_.build(q->ir);
    } else {
      fail(g_.nodes.back().name, "the network output is neither a linear layer, a Hadamard projection nor quantized");
    }
    for (Node& n : out_.network.nodes) {
      auto it = out_.grids.find(n.name);
      if (it == out_.grids.end()) continue;
      n.output.scale.clear();
      for (const Rational& s : it->second.scale) n.output.scale.push_back(to_double_nearest(s));
    }
    return std::move(out_);
  }

 private:
  [[noreturn]] void fail(const std::string& layer, const std::string& what) const { throw IntegerizeError(g_.name, layer, what); }

  const Quantized& quantized_input(const QNode& n, size_t k) const {
    const Value& v = values_.at(n.inputs.at(k));
    if (const auto* q = std::get_if<Quantized>(&v)) return *q;
    const std::string& from = g_.nodes.at(n.inputs.at(k)).name;
    fail(n.name, "reads " + from + ", which is not on an integer grid (an activation quantizer must sit between; "
                 "harmonization inserts one)");
  }

  void record(const std::string& name, const Channels& scale, const Channels& offset, std::vector<std::string> inputs,
              std::vector<std::string> nodes) {
    out_.grids[name] = Grid{scale, offset};
    out_.segments.push_back(Segment{name, std::move(inputs), std::move(nodes)});
  }

  Value lower_node(const QNode& n) {
    if (n.as<QInput>()) return RealInput{};
    if (const auto* c = n.as<QConv>()) return lower_conv(n, *c);
    if (const auto* l = n.as<QLinear>()) return lower_linear(n, *l);
    if (const auto* bn = n.as<QBatchNorm>()) {
      auto* a = std::get_if<Affine>(&values_.at(n.inputs.at(0)));
      if (!a) fail(n.name, "BatchNorm must follow a conv or linear layer");
      Affine r = *a;
      const size_t C = std::max({r.alpha.size(), bn->mul.size(), bn->add.size()});
      r.alpha.resize(C), r.delta.resize(C);
      for (size_t c = 0; c < C; ++c) {
        const Rational alpha = channel(a->alpha, static_cast<int64_t>(c)), delta = channel(a->delta, static_cast<int64_t>(c));
        r.alpha[c] = alpha * channel(bn->mul, static_cast<int64_t>(c));
        r.delta[c] = delta * channel(bn->mul, static_cast<int64_t>(c)) + channel(bn->add, static_cast<int64_t>(c));
      }
      return r;
    }
    if (const auto* a = n.as<QAct>()) return lower_act(n, *a);
    if (n.as<QAdd>()) {
      Sum s;
      for (size_t k = 0; k < n.inputs.size(); ++k) {
        const Value& v = values_.at(n.inputs[k]);
        if (const auto* inner = std::get_if<Sum>(&v)) s.terms.insert(s.terms.end(), inner->terms.begin(), inner->terms.end());
        else s.terms.push_back(quantized_input(n, k));
      }
      return s;
    }
    if (const auto* mp = n.as<QMaxPool>()) {
      const Quantized& x = quantized_input(n, 0);
      Quantized y = x;
      y.ir = b_.max_pool2d(n.name, x.ir, mp->kernel, mp->stride);
      record(y.ir, y.scale, y.offset, {x.ir}, {y.ir});
      return y;
    }
    if (const auto* ap = n.as<QAvgPool>()) return lower_avg_pool(n, *ap);
    if (n.as<QFlatten>()) {
      const Quantized& x = quantized_input(n, 0);
      Quantized y = x;
      y.ir = b_.flatten(n.name, x.ir);
      const Shape& s = b_.info(x.ir).shape;
      if (x.scale.size() > 1 || x.offset.size() > 1) {  // one entry per flattened feature
        const int64_t hw = s.size() == 4 ? s[2] * s[3] : 1;
        y.scale.clear(), y.offset.clear();
        for (int64_t c = 0; c < s[1]; ++c)
          for (int64_t k = 0; k < hw; ++k) y.scale.push_back(channel(x.scale, c)), y.offset.push_back(channel(x.offset, c));
      }
      record(y.ir, y.scale, y.offset, {x.ir}, {y.ir});
      return y;
    }
    if (const auto* h = n.as<QHadamard>()) {
      const Quantized& x = quantized_input(n, 0);
      if (!all_zero(x.offset)) fail(n.name, "a Hadamard projection of an offset grid has no integer argmax form");
      if (!per_tensor(x.scale)) fail(n.name, "a Hadamard projection needs one input scale for all features");
      return HadamardOut{b_.hadamard(n.name, x.ir, h->out_features, h->negate)};
    }
    fail(n.name, "unknown node");
  }

  // conv/linear on quantized x: acc = sum w_int * q; real = s_w[o] * (s_x * acc + sum_i w z_i) + b.
  Value lower_conv(const QNode& n, const QConv& c) {
    const Quantized& x = quantized_input(n, 0);
    const int64_t O = c.weight.dim(0), I = c.weight.dim(1), K = c.weight.dim(2) * c.weight.dim(3);
    const int64_t C = b_.info(x.ir).shape.at(1);
    const bool depthwise = c.groups == C && C == O && I == 1;
    if (!per_tensor(x.scale) && !depthwise)
      fail(n.name, "its input " + x.ir + " has per-channel scales; only a depthwise conv can absorb them "
                   "(pointwise and full convs need one input scale)");
    int64_t pad_value = 0;
    if (c.pad > 0 && !all_zero(x.offset)) {
      // Zero padding of the real tensor is the integer -offset/scale; it must be one integer for all channels.
      const Rational p = -channel(x.offset, 0) / channel(x.scale, 0);
      for (int64_t ch = 0; ch < C; ++ch)
        if (-channel(x.offset, ch) / channel(x.scale, ch) != p || denominator(p) != 1)
          fail(n.name, "zero padding of " + x.ir + " is not on its integer grid (offset/scale = " + to_string(-p) + ")");
      pad_value = static_cast<int64_t>(numerator(p));
      if (pad_value < x.type.min() || pad_value > x.type.max()) fail(n.name, "the padding integer is outside the input type");
    }
    Affine r;
    r.ir = b_.conv2d(n.name, x.ir, c.weight, std::nullopt, c.stride, c.pad, pad_value, c.groups);
    r.inputs = {x.ir};
    r.pending = {r.ir};
    const bool offsets = !all_zero(x.offset);
    for (int64_t o = 0; o < O; ++o) {
      const int64_t in_ch0 = o / (O / c.groups) * I;
      Rational zsum = 0;
      for (int64_t i = 0; i < I && offsets; ++i) {
        const Rational& z = channel(x.offset, in_ch0 + i);
        if (z == 0) continue;
        int64_t wsum = 0;
        for (int64_t k = 0; k < K; ++k) wsum += c.weight.data[static_cast<size_t>((o * I + i) * K + k)];
        zsum += Rational(wsum) * z;
      }
      const Rational& sw = channel(c.weight_scale, o);
      r.alpha.push_back(sw * channel(x.scale, depthwise ? o : 0));
      r.delta.push_back(sw * zsum + (c.bias.empty() ? Rational(0) : c.bias[static_cast<size_t>(o)]));
    }
    return r;
  }

  Value lower_linear(const QNode& n, const QLinear& l) {
    const Quantized& x = quantized_input(n, 0);
    if (!per_tensor(x.scale)) fail(n.name, "its input " + x.ir + " has per-feature scales; a linear layer needs one input scale");
    const int64_t O = l.weight.dim(0), I = l.weight.dim(1);
    Affine r;
    r.ir = b_.linear(n.name, x.ir, l.weight);
    r.inputs = {x.ir};
    r.pending = {r.ir};
    const bool offsets = !all_zero(x.offset);  // checked once: VGG's first linear has 10^8 weights
    for (int64_t o = 0; o < O; ++o) {
      Rational zsum = 0;
      for (int64_t i = 0; i < I && offsets; ++i)
        if (channel(x.offset, i) != 0) zsum += Rational(l.weight.data[static_cast<size_t>(o * I + i)]) * channel(x.offset, i);
      const Rational& sw = channel(l.weight_scale, o);
      r.alpha.push_back(sw * x.scale[0]);
      r.delta.push_back(sw * zsum + (l.bias.empty() ? Rational(0) : l.bias[static_cast<size_t>(o)]));
    }
    return r;
  }

  // One exact requant per channel of `input` (IR requants are always per channel).
  Requant exact_requant(const std::string& input, const Channels& alpha, const Channels& delta, const QAct& a) const {
    ExactRequant e;
    e.rounding = a.rounding;
    const auto C = static_cast<size_t>(b_.info(input).shape.at(1));
    for (size_t c = 0; c < C; ++c) {
      const auto ch = static_cast<int64_t>(c);
      const Rational& s = channel(a.scale, ch);
      e.alpha.push_back(channel(alpha, ch) / s);
      e.delta.push_back((channel(delta, ch) - channel(a.offset, ch)) / s);
    }
    return Requant{e, a.qmin, a.qmax};
  }

  Value lower_act(const QNode& n, const QAct& a) {
    const Value& v = values_.at(n.inputs.at(0));
    if (a.qmin > a.qmax || a.qmin < a.type.min() || a.qmax > a.type.max())
      fail(n.name, "the quantizer's clamp [" + std::to_string(a.qmin) + ", " + std::to_string(a.qmax) + "] is empty or outside its type");
    Quantized y{n.name, a.scale, a.offset, a.type};
    if (std::holds_alternative<RealInput>(v)) {
      b_.input(n.name, std::get<QInput>(g_.nodes.at(n.inputs[0]).op).shape, a.type);
      out_.input_quantizer = n.name;
      out_.input_act = a;
      record(n.name, a.scale, a.offset, {}, {n.name});
    } else if (const auto* af = std::get_if<Affine>(&v)) {
      b_.requant(n.name, af->ir, exact_requant(af->ir, af->alpha, af->delta, a), a.type);
      std::vector<std::string> nodes = af->pending;
      nodes.push_back(n.name);
      record(n.name, a.scale, a.offset, af->inputs, nodes);
    } else if (const auto* q = std::get_if<Quantized>(&v)) {
      b_.requant(n.name, q->ir, exact_requant(q->ir, q->scale, q->offset, a), a.type);
      record(n.name, a.scale, a.offset, {q->ir}, {n.name});
    } else if (const auto* s = std::get_if<Sum>(&v)) {
      lower_sum(n, a, *s);
    } else {
      fail(n.name, "an activation quantizer must follow a conv, BatchNorm, add, pool or another quantizer");
    }
    return y;
  }

  // Residual add then quantizer: q = clamp(R((sum_i q_i s_i + z_i - z) / s)), one rounding. Either a
  // saturating integer add (every operand already on the output grid) or an exact add on the finest
  // grid the operands share, then one requant.
  void lower_sum(const QNode& n, const QAct& a, const Sum& s) {
    std::vector<std::string> inputs;
    for (const Quantized& t : s.terms) inputs.push_back(t.ir);
    const size_t C = static_cast<size_t>(b_.info(s.terms.front().ir).shape.at(1));
    bool same_grid = s.terms.size() == 2 && all_zero(a.offset) && a.qmin == a.type.min() && a.qmax == a.type.max();
    for (const Quantized& t : s.terms)
      for (size_t c = 0; c < C && same_grid; ++c)
        same_grid = channel(t.offset, static_cast<int64_t>(c)) == 0 &&
                    channel(t.scale, static_cast<int64_t>(c)) == channel(a.scale, static_cast<int64_t>(c));
    if (same_grid) {
      b_.add_saturating(n.name, inputs[0], inputs[1], a.type);
      record(n.name, a.scale, a.offset, inputs, {n.name});
      return;
    }
    // Per channel: the common grid g = gcd of the operand scales; operand i contributes q_i * (s_i / g).
    std::vector<Requant> branches(s.terms.size());
    for (auto& br : branches) br = Requant{ExactRequant{{}, {}, Rounding::floor}, 0, 0};
    Channels g_scale(C), z_sum(C);
    BigInt lo = 0, hi = 0;
    std::vector<BigInt> branch_lo(s.terms.size(), 0), branch_hi(s.terms.size(), 0);
    for (size_t c = 0; c < C; ++c) {
      const auto ch = static_cast<int64_t>(c);
      std::vector<Rational> scales;
      for (const Quantized& t : s.terms) scales.push_back(channel(t.scale, ch));
      BigInt den;
      const BigInt num = rational_gcd_num(scales, den);
      g_scale[c] = make_rational(num, den);
      z_sum[c] = 0;
      for (size_t i = 0; i < s.terms.size(); ++i) {
        const Rational ratio = scales[i] / g_scale[c];
        if (numerator(ratio) > (BigInt(1) << 40))
          fail(n.name, "the operands' scales (" + to_string(scales[0]) + ", " + to_string(scales[i]) +
                           ") share no integer grid finer than 2^40 steps; re-quantize the operands to one scale first");
        auto& e = std::get<ExactRequant>(branches[i].form);
        e.alpha.push_back(ratio);
        e.delta.push_back(0);
        z_sum[c] += channel(s.terms[i].offset, ch);
        const BigInt r = numerator(ratio);
        branch_lo[i] = std::min(branch_lo[i], BigInt(r * s.terms[i].type.min()));
        branch_hi[i] = std::max(branch_hi[i], BigInt(r * s.terms[i].type.max()));
      }
    }
    for (size_t i = 0; i < s.terms.size(); ++i) {
      branches[i].lo = static_cast<int64_t>(branch_lo[i]);
      branches[i].hi = static_cast<int64_t>(branch_hi[i]);
      lo += branch_lo[i], hi += branch_hi[i];
    }
    const auto sum_type = narrowest_type_holding(lo, hi);
    if (!sum_type) fail(n.name, "the exact sum of the operands needs more than 64 bits");
    const std::string sum = b_.add_requant(n.name + ".sum", inputs, branches, *sum_type);
    b_.requant(n.name, sum, exact_requant(sum, g_scale, z_sum, a), a.type);
    record(n.name, a.scale, a.offset, inputs, {sum, n.name});
  }

  Value lower_avg_pool(const QNode& n, const QAvgPool& p) {
    const Quantized& x = quantized_input(n, 0);
    const Shape& s = b_.info(x.ir).shape;
    const int K = p.kernel == 0 ? static_cast<int>(s.at(2)) : p.kernel;
    const int stride = p.kernel == 0 ? 1 : p.stride;
    Quantized y;
    if (p.truncate) {
      if (!all_zero(x.offset)) fail(n.name, "a truncating average pool needs an unsigned grid without offset");
      y = Quantized{"", {p.out_scale}, {Rational(0)}, IntType{p.bits, false}};
      y.ir = b_.avg_pool2d(n.name, x.ir, K, stride, p.shift, p.rounding, y.type);
    } else {
      // The float mean is the exact window sum on a grid K^2 times finer.
      const BigInt kk = BigInt(K) * K;
      y = Quantized{"", {}, x.offset, IntType::covering(x.type.min() * K * K, x.type.max() * K * K)};
      for (const Rational& sc : x.scale) y.scale.push_back(sc / Rational(kk));
      y.ir = b_.avg_pool2d(n.name, x.ir, K, stride, 0, Rounding::floor, y.type);
    }
    record(y.ir, y.scale, y.offset, {x.ir}, {y.ir});
    return y;
  }

  const QGraph& g_;
  NetworkBuilder b_;
  std::vector<Value> values_;
  Lowered out_;
};

}  // namespace

Lowered lower(const QGraph& g) { return Lowering(g).run(); }

}  // namespace qv::integerize
