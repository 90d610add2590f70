#include "fakequant/layers.h"

#include <cmath>

#include "fakequant/quantizers.h"
#include "fakequant/sawb.h"

namespace qv::fakequant {

namespace {

// PACT/TQT weights: symmetric max init, M = max|w| per channel (or tensor), 2^bits levels, half_even.
std::pair<torch::Tensor, torch::Tensor> clips_of(const torch::Tensor& w, const WeightQuant& wq) {
  if (wq.init != config::WeightInit::max) {
    // SAWB / std initialisation, QuantLib's operations (fakequant/sawb.h).
    const PactClips c = pact_weight_clips(w.detach(), wq.init, int64_t{1} << wq.bits, wq.per_channel, wq.std_factor);
    return {c.lo, c.hi};
  }
  std::vector<int64_t> shape(static_cast<size_t>(w.dim()), 1);
  torch::Tensor m;
  if (wq.per_channel) {
    shape[0] = w.size(0);
    m = std::get<0>(torch::abs(w).reshape({w.size(0), -1}).max(1)).reshape(shape).detach();
  } else {
    m = torch::abs(w).max().reshape({1}).detach();
  }
  m = torch::clamp_min(m, 1e-8);
  return pact_symmetric_clips(m, int64_t{1} << wq.bits);
}

torch::Tensor quantize_weight(const torch::Tensor& w, const WeightQuant& wq) {
  switch (wq.kind) {
    case QuantKind::none: return w;
    case QuantKind::brevitas: return brevitas_weight_quant(w, wq.bits, wq.per_channel);
    case QuantKind::pact:
    case QuantKind::tqt: {
      const auto [lo, hi] = clips_of(w, wq);
      return pact_quant(w, lo, hi, int64_t{1} << wq.bits, Rounding::half_even);
    }
  }
  return w;
}

// Kaiming-uniform-like deterministic init (as torch.nn.Conv2d's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
// scaled by sqrt(5)-based gain is not needed for verification; seeded by torch::manual_seed).
torch::Tensor init_uniform(std::vector<int64_t> shape, int64_t fan_in) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return torch::empty(shape).uniform_(-bound, bound);
}

}  // namespace

QConv2dImpl::QConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride_, int64_t padding_, int64_t groups_,
                         bool has_bias, WeightQuant wq_)
    : stride(stride_), padding(padding_), groups(groups_), wq(wq_) {
  const int64_t fan_in = in / groups * kernel * kernel;
  weight = register_parameter("weight", init_uniform({out, in / groups, kernel, kernel}, fan_in));
  if (has_bias) bias = register_parameter("bias", init_uniform({out}, fan_in));
}

WeightGrid weight_grid(const torch::Tensor& w_in, const WeightQuant& wq) {
  torch::NoGradGuard no_grad;
  const torch::Tensor w = w_in.to(torch::kFloat32);
  const int64_t O = w.size(0);
  switch (wq.kind) {
    case QuantKind::none: throw std::logic_error("weight_grid: the layer is not quantized");
    case QuantKind::brevitas: {
      const double t = std::ldexp(1.0, wq.bits - 1) - 1;
      const torch::Tensor s = brevitas_weight_scale(w, wq.bits, wq.per_channel);
      const torch::Tensor q = torch::clamp(torch::round(w / s), -t, t);
      return {q.to(torch::kInt64), s.reshape({-1}), wq.bits};
    }
    case QuantKind::pact:
    case QuantKind::tqt: {
      const int64_t n = int64_t{1} << wq.bits;
      const auto [lo, hi] = clips_of(w, wq);
      const torch::Tensor eps = (hi - lo) / static_cast<double>(n - 1);
      const torch::Tensor clamped = torch::min(torch::max(w, lo), hi + 1e-7);
      const torch::Tensor twice = (2 * lo / eps).to(torch::kFloat64);
      const torch::Tensor k = torch::round(twice);
      const double residue = torch::abs(twice - k).max().item<double>();
      if (residue > 2e-3)
        throw std::invalid_argument("the weight clips put zero off the integer grid (2 clip_lo / eps is " +
                                    std::to_string(twice.reshape({-1})[torch::argmax(torch::abs(twice - k).reshape({-1}))].item<double>()) +
                                    "): integer weights need a grid symmetric about zero");
      const torch::Tensor kk = k.to(torch::kInt64);
      const torch::Tensor qp = torch::round((clamped - lo) / eps).to(torch::kInt64);
      const torch::Tensor s = eps.reshape({-1}).expand({wq.per_channel ? O : 1}).contiguous();
      // k even everywhere: q' + k/2 at eps. Otherwise (SAWB's symmetric clips, alone or beside channels
      // that fell back to the max clips): 2 q' + k at eps / 2, one bit wider.
      if (torch::remainder(kk, 2).eq(0).all().item<bool>()) return {qp + torch::div(kk, 2, "floor"), s, wq.bits};
      return {2 * qp + kk, s / 2, wq.bits + 1};
    }
  }
  throw std::logic_error("weight_grid");
}

torch::Tensor QConv2dImpl::quantized_weight() const { return quantize_weight(weight, wq); }

torch::Tensor QConv2dImpl::forward(const torch::Tensor& x) {
  return torch::conv2d(x, quantized_weight(), bias, {stride, stride}, {padding, padding}, {1, 1}, groups);
}

QLinearImpl::QLinearImpl(int64_t in, int64_t out, bool has_bias, WeightQuant wq_) : wq(wq_) {
  weight = register_parameter("weight", init_uniform({out, in}, in));
  if (has_bias) bias = register_parameter("bias", init_uniform({out}, in));
}

torch::Tensor QLinearImpl::quantized_weight() const { return quantize_weight(weight, wq); }

torch::Tensor QLinearImpl::forward(const torch::Tensor& x) { return torch::linear(x, quantized_weight(), bias); }

QActImpl::QActImpl(ActFn fn_, ActQuant aq_) : fn(fn_), aq(aq_) {
  const double clip = aq.init_clip;
  switch (aq.kind) {
    case QuantKind::none: break;
    case QuantKind::brevitas: value = register_parameter("value", torch::full({1}, std::log2(clip))); break;
    case QuantKind::pact:
      clip_lo = register_parameter("clip_lo", torch::full({1}, aq.is_signed ? -clip : 0.0), /*requires_grad=*/aq.is_signed);
      clip_hi = register_parameter("clip_hi", torch::full({1}, clip));
      break;
    case QuantKind::tqt: log2_t = register_parameter("log_t", torch::full({1}, std::log2(clip))); break;
  }
}

torch::Tensor QActImpl::scale() const {
  const double steps = static_cast<double>((int64_t{1} << aq.bits) - 1);
  switch (aq.kind) {
    case QuantKind::none: return torch::ones({1});
    case QuantKind::brevitas: return brevitas_act_scale(value, aq.bits, aq.is_signed);
    case QuantKind::pact: return aq.is_signed ? 2 * clip_hi / static_cast<double>(int64_t{1} << aq.bits) : (clip_hi - clip_lo) / steps;
    case QuantKind::tqt: {
      const torch::Tensor m = torch::pow(2.0, aq.power_of_two ? torch::ceil(log2_t) : log2_t);
      return aq.is_signed ? 2 * m / static_cast<double>(int64_t{1} << aq.bits) : m / steps;
    }
  }
  return torch::ones({1});
}

ActGrid QActImpl::grid() const {
  torch::NoGradGuard no_grad;
  ActGrid g;
  g.levels = int64_t{1} << aq.bits;
  const auto n = static_cast<int64_t>(g.levels);
  switch (aq.kind) {
    case QuantKind::none: throw std::logic_error("QAct::grid: not quantized");
    case QuantKind::brevitas:
      g.brevitas = true;
      g.scale = brevitas_act_scale(value.to(torch::kFloat32), aq.bits, aq.is_signed);
      return g;
    case QuantKind::pact:
      if (aq.is_signed) std::tie(g.lo, g.hi_plus) = pact_symmetric_clips(clip_hi.to(torch::kFloat32), n);
      else g.lo = clip_lo.to(torch::kFloat32), g.hi_plus = clip_hi.to(torch::kFloat32);
      break;
    case QuantKind::tqt: {
      const torch::Tensor t = log2_t.to(torch::kFloat32);
      const torch::Tensor m = torch::pow(2.0, aq.power_of_two ? torch::ceil(t) : t);
      if (aq.is_signed) std::tie(g.lo, g.hi_plus) = pact_symmetric_clips(m, n);
      else g.lo = torch::zeros_like(m), g.hi_plus = m;
      break;
    }
  }
  g.eps = (g.hi_plus - g.lo) / static_cast<double>(n - 1);
  g.hi_plus = g.hi_plus + 1e-7;
  return g;
}

namespace {
thread_local std::vector<std::pair<std::string, torch::Tensor>>* trace_sink = nullptr;
}

QActImpl::Recorder::Recorder(std::vector<std::pair<std::string, torch::Tensor>>* sink) : previous_(trace_sink) {
  trace_sink = sink;
}
QActImpl::Recorder::~Recorder() { trace_sink = previous_; }

void QActImpl::record(const std::string& name, const torch::Tensor& t) {
  if (trace_sink) trace_sink->emplace_back(name, t);
}

HadamardClassifierImpl::HadamardClassifierImpl(int64_t in, int64_t out) {
  torch::Tensor h = torch::empty({out, in});
  auto acc = h.accessor<float, 2>();
  for (int64_t i = 0; i < out; ++i)
    for (int64_t j = 0; j < in; ++j) acc[i][j] = (__builtin_popcountll(static_cast<uint64_t>(i & j)) % 2) ? -1.0f : 1.0f;
  proj = register_buffer("proj", h);
  scale = register_parameter("scale", torch::full({1}, 1.0 / std::sqrt(static_cast<double>(out))));
}

torch::Tensor HadamardClassifierImpl::forward(const torch::Tensor& x) {
  const torch::Tensor norm = x.norm() + 1e-8;
  return -scale * torch::matmul(x / norm, proj.t());
}

torch::Tensor QActImpl::forward(const torch::Tensor& x_in) {
  torch::Tensor y = quantize(x_in);
  if (trace_sink) trace_sink->emplace_back(trace_name, y);
  return y;
}

torch::Tensor QActImpl::quantize(const torch::Tensor& x_in) {
  torch::Tensor x = x_in;
  if (fn == ActFn::relu) x = torch::relu(x);
  if (fn == ActFn::relu6) x = torch::clamp(x, 0.0, 6.0);
  if (observing) {
    observed_max = std::max(observed_max, torch::abs(x).max().item<double>());
    return x;
  }
  const int64_t levels = int64_t{1} << aq.bits;
  switch (aq.kind) {
    case QuantKind::none: return x;
    case QuantKind::brevitas: return brevitas_act_quant(x, brevitas_act_scale(value, aq.bits, aq.is_signed), aq.bits, aq.is_signed);
    case QuantKind::pact: {
      if (!aq.is_signed) return pact_quant(x, clip_lo, clip_hi, levels, aq.rounding);
      const auto [lo, hi] = pact_symmetric_clips(clip_hi, levels);
      return pact_quant(x, lo, hi, levels, aq.rounding);
    }
    case QuantKind::tqt: return tqt_quant(x, log2_t, levels, aq.is_signed, aq.power_of_two);
  }
  return x;
}

}  // namespace qv::fakequant
