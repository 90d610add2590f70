#include "integerize/extract.h"

#include <cmath>

#include "fakequant/quantizers.h"
#include "integerize/lower.h"
#include "ir/rational.h"

namespace qv::integerize {

using fakequant::GraphNode;
using fakequant::GraphOp;
using fakequant::QuantKind;

std::vector<Rational> exact_values(const torch::Tensor& t) {
  const torch::Tensor d = t.detach().to(torch::kFloat64).contiguous().reshape({-1});
  std::vector<Rational> out;
  out.reserve(static_cast<size_t>(d.numel()));
  const double* p = d.data_ptr<double>();
  for (int64_t i = 0; i < d.numel(); ++i) {
    const auto r = exact_rational(p[i]);
    if (!r) throw std::invalid_argument("a constant is not finite");
    out.push_back(*r);
  }
  return out;
}

namespace {

class Extractor {
 public:
  Extractor(const fakequant::NetworkImpl& net) : net_(net) {}

  [[noreturn]] void fail(const std::string& layer, const std::string& what) const {
    throw IntegerizeError(net_.model_name, layer, what);
  }

  Channels exact(const torch::Tensor& t, const std::string& layer) const {
    try {
      return exact_values(t);
    } catch (const std::invalid_argument&) {
      fail(layer, "a quantization constant is NaN or infinite");
    }
  }

  IntTensor weights(const fakequant::WeightGrid& g, const std::string& layout) const {
    Shape shape(g.q.sizes().begin(), g.q.sizes().end());
    IntTensor t(shape, IntType{g.bits, true}, layout);
    const torch::Tensor q = g.q.contiguous().reshape({-1});
    const int64_t* p = q.data_ptr<int64_t>();
    std::copy(p, p + q.numel(), t.data.begin());
    return t;
  }

  fakequant::WeightGrid grid_of(const torch::Tensor& w, const fakequant::WeightQuant& wq, const std::string& layer) const {
    try {
      return fakequant::weight_grid(w, wq);
    } catch (const std::invalid_argument& e) {
      fail(layer, e.what());
    }
  }

  QAct act(const GraphNode& n) const {
    const fakequant::QActImpl& a = *n.act;
    if (a.aq.kind == QuantKind::none) fail(n.name, "the activation is not quantized (fp32 scheme or a float rule)");
    const fakequant::ActGrid g = a.grid();
    QAct q;
    q.type = IntType{a.aq.bits, a.aq.is_signed};
    q.rounding = g.brevitas ? Rounding::half_even : a.aq.rounding;
    if (a.aq.kind == QuantKind::tqt) q.rounding = Rounding::half_even;
    Rational lo_real, hi_real;  // the clamp of the real input, before rounding
    bool has_lo = false, has_hi = false;
    if (g.brevitas) {
      q.scale = exact(g.scale, n.name);
      q.offset = {Rational(0)};
    } else {
      // The forward computes q' * eps + lo with q' in [0, n - 1]. Unsigned: lo = 0 and q = q'. Signed
      // (almost symmetric, lo = -n/2 * eps up to float32 residue): q = q' - n/2 stands for q * eps; the
      // residue lo + n/2 * eps (about 1e-7 LSB) is dropped, as QuantLib's integerization drops it, and
      // the harness explains any rounding it flips.
      const Rational lo = exact(g.lo, n.name).at(0), eps = exact(g.eps, n.name).at(0);
      q.scale = {eps};
      q.offset = {a.aq.is_signed ? Rational(0) : lo};
      lo_real = a.aq.is_signed ? Rational(-(g.levels / 2)) * eps : lo, has_lo = true;
      hi_real = exact(g.hi_plus, n.name).at(0), has_hi = true;
    }
    if (a.fn == fakequant::ActFn::relu || a.fn == fakequant::ActFn::relu6) {
      if (!has_lo || lo_real < 0) lo_real = 0, has_lo = true;
    }
    const bool grid_clip = has_hi;  // PACT/TQT's own upper clip must land on the grid; ReLU6's may lie above it
    if (a.fn == fakequant::ActFn::relu6) {
      if (!has_hi || hi_real > 6) hi_real = 6, has_hi = true;
    }
    const Rational& s = q.scale[0];
    const Rational& z = q.offset[0];
    q.qmin = q.type.min();
    q.qmax = q.type.max();
    if (has_lo) {
      const BigInt r = round_rational((lo_real - z) / s, q.rounding);
      if (r > q.qmin) q.qmin = r > q.qmax ? q.qmax : static_cast<int64_t>(r);
    }
    if (has_hi) {
      const BigInt r = round_rational((hi_real - z) / s, q.rounding);
      if (r > q.type.max() && grid_clip && hi_real != 6)
        fail(n.name, "the clipping threshold rounds to " + r.str() + ", above the " + std::to_string(q.type.bits) + "-bit grid");
      if (r < q.qmax) q.qmax = r < q.qmin ? q.qmin : static_cast<int64_t>(r);
    }
    return q;
  }

  QGraph run(const Shape& input_shape, const PixelInput* pixels) {
    QGraph g;
    g.name = net_.model_name;
    // Graph node i is QGraph node index[i] (the pixel grid adds one node after the input).
    std::vector<size_t> index(net_.graph.nodes.size());
    for (size_t gi = 0; gi < net_.graph.nodes.size(); ++gi) {
      const GraphNode& n = net_.graph.nodes[gi];
      std::vector<size_t> in = n.inputs;
      for (size_t& j : in) j = index[j];
      index[gi] = g.nodes.size();
      switch (n.op) {
        case GraphOp::input:
          g.nodes.push_back(QNode{n.name, in, QInput{input_shape}});
          if (pixels) {
            // x = (p / 255 - m) / s: the grid of p has scale 1 / (255 s) and offset -m / s, exactly.
            QAct a;
            a.type = IntType{8, false};
            a.qmin = 0, a.qmax = 255;
            a.rounding = Rounding::half_even;
            for (size_t c = 0; c < pixels->mean.size(); ++c) {
              const Rational m = *exact_rational(pixels->mean[c]), sd = *exact_rational(pixels->std[c]);
              if (sd <= 0) fail(n.name, "a preprocessing std is not positive");
              a.scale.push_back(Rational(1) / (Rational(255) * sd));
              a.offset.push_back(-m / sd);
            }
            g.nodes.push_back(QNode{"input_pixels", {index[gi]}, a});
            index[gi] = g.nodes.size() - 1;
          }
          break;
        case GraphOp::conv: {
          const fakequant::QConv2dImpl& c = *n.conv;
          if (c.wq.kind == QuantKind::none) fail(n.name, "the weights are not quantized (fp32 scheme or a float rule)");
          const fakequant::WeightGrid wg = grid_of(c.weight, c.wq, n.name);
          QConv q;
          q.weight = weights(wg, "OIHW");
          q.weight_scale = exact(wg.scale, n.name);
          if (c.bias.defined()) q.bias = exact(c.bias, n.name);
          if (c.stride <= 0 || c.padding < 0) fail(n.name, "bad stride/padding");
          q.stride = static_cast<int>(c.stride);
          q.pad = static_cast<int>(c.padding);
          q.groups = static_cast<int>(c.groups);
          g.nodes.push_back(QNode{n.name, in, q});
          break;
        }
        case GraphOp::linear: {
          const fakequant::QLinearImpl& l = *n.linear;
          if (l.wq.kind == QuantKind::none) fail(n.name, "the weights are not quantized (fp32 scheme or a float rule)");
          const fakequant::WeightGrid wg = grid_of(l.weight, l.wq, n.name);
          QLinear q;
          q.weight = weights(wg, "OI");
          q.weight_scale = exact(wg.scale, n.name);
          if (l.bias.defined()) q.bias = exact(l.bias, n.name);
          g.nodes.push_back(QNode{n.name, in, q});
          break;
        }
        case GraphOp::batch_norm: {
          const torch::nn::BatchNorm2dImpl& bn = *n.batch_norm;
          const torch::Tensor var = bn.running_var.detach().to(torch::kFloat64);
          const torch::Tensor gamma = bn.weight.detach().to(torch::kFloat64);
          const torch::Tensor mul = gamma / torch::sqrt(var + bn.options.eps());
          QBatchNorm q;
          q.mul = exact(mul, n.name);
          const Channels beta = exact(bn.bias, n.name), mean = exact(bn.running_mean, n.name);
          for (size_t c = 0; c < q.mul.size(); ++c) q.add.push_back(beta[c] - mean[c] * q.mul[c]);
          g.nodes.push_back(QNode{n.name, in, q});
          break;
        }
        case GraphOp::act: g.nodes.push_back(QNode{n.name, in, act(n)}); break;
        case GraphOp::add: g.nodes.push_back(QNode{n.name, in, QAdd{}}); break;
        case GraphOp::max_pool:
          g.nodes.push_back(QNode{n.name, in, QMaxPool{static_cast<int>(n.kernel), static_cast<int>(n.stride)}});
          break;
        case GraphOp::avg_pool: {
          QAvgPool p;
          p.kernel = static_cast<int>(n.kernel);
          p.stride = static_cast<int>(n.stride);
          if (n.truncate) {
            const GraphNode& producer = net_.graph.nodes.at(n.inputs[0]);
            const fakequant::QActImpl& a = *producer.act;
            // The pool's window is the whole final map; its side is known only from the input shape, so
            // the shift and scale are completed by lowering's shape walk: here K comes from the graph.
            p.truncate = true;
            p.bits = n.truncate_bits;
            p.rounding = n.truncate_rounding;
            p.shift = -1;  // set below once K is known
            (void)a;
          }
          g.nodes.push_back(QNode{n.name, in, p});
          break;
        }
        case GraphOp::flatten: g.nodes.push_back(QNode{n.name, in, QFlatten{}}); break;
        case GraphOp::hadamard: {
          const double scale = n.hadamard->scale.item<double>();
          if (scale == 0) fail(n.name, "the Hadamard classifier's scale is 0: every logit is 0");
          g.nodes.push_back(QNode{n.name, in, QHadamard{n.hadamard->proj.size(0), scale > 0}});
          break;
        }
      }
    }
    complete_truncating_pools(g, input_shape);
    return g;
  }

  // TruncAvgPool's shift and output scale depend on the window (the final map's side): find it by
  // running the float network's shapes once.
  void complete_truncating_pools(QGraph& g, const Shape& input_shape) const {
    bool any = false;
    for (const QNode& n : g.nodes)
      if (const auto* p = n.as<QAvgPool>(); p && p->truncate) any = true;
    if (!any) return;
    std::vector<std::pair<std::string, torch::Tensor>> all;
    {
      torch::NoGradGuard no_grad;
      fakequant::run_graph(net_.graph, torch::zeros(std::vector<int64_t>(input_shape.begin(), input_shape.end())), &all);
    }
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      auto* p = std::get_if<QAvgPool>(&g.nodes[i].op);
      if (!p || !p->truncate) continue;
      const size_t gi = net_.graph.find(g.nodes[i].name);
      const GraphNode& producer = net_.graph.nodes.at(net_.graph.nodes[gi].inputs[0]);
      const torch::Tensor& x = all.at(net_.graph.nodes[gi].inputs[0]).second;
      const int64_t K = x.size(2);
      const fakequant::QActImpl& a = *producer.act;
      p->shift = fakequant::trunc_avg_pool_shift(a.aq.bits, static_cast<int>(K), p->bits);
      // Output scale fl(s / K^2) * 2^shift, as the fake-quant pool computes it in float32.
      const torch::Tensor s = a.grid().scale;
      const torch::Tensor out = (s / static_cast<double>(K * K)) * std::ldexp(1.0, p->shift);
      p->out_scale = exact(out, g.nodes[i].name).at(0);
    }
  }

 private:
  const fakequant::NetworkImpl& net_;
};

}  // namespace

QGraph extract(const fakequant::NetworkImpl& net, const Shape& input_shape, const PixelInput* pixel_input) {
  return Extractor(net).run(input_shape, pixel_input);
}

}  // namespace qv::integerize
