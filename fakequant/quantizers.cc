#include "fakequant/quantizers.h"

#include <ATen/ExpandUtils.h>

#include <cmath>

namespace qv::fakequant {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

torch::Tensor round_with(const torch::Tensor& x, Rounding r) {
  switch (r) {
    case Rounding::half_even: return torch::round(x);
    case Rounding::half_up: return torch::floor(x + 0.5);
    case Rounding::half_down: return torch::ceil(x - 0.5);
    case Rounding::half_away: return torch::sign(x) * torch::floor(torch::abs(x) + 0.5);
    case Rounding::floor: return torch::floor(x);
    case Rounding::ceil: return torch::ceil(x);
    case Rounding::trunc: return torch::trunc(x);
  }
  return x;
}

namespace {

struct RoundSte : public torch::autograd::Function<RoundSte> {
  static torch::Tensor forward(AutogradContext*, const torch::Tensor& x, int64_t rounding) {
    return round_with(x, static_cast<Rounding>(rounding));
  }
  static variable_list backward(AutogradContext*, variable_list g) { return {g[0], torch::Tensor()}; }
};

// Sum a gradient down to the (broadcast) shape of a clip parameter.
torch::Tensor reduce_to(const torch::Tensor& grad, const torch::Tensor& like) {
  return at::sum_to(grad, like.sizes());
}

struct PactFunction : public torch::autograd::Function<PactFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& lo, const torch::Tensor& hi,
                               int64_t n_levels, int64_t rounding) {
    ctx->save_for_backward({x, lo, hi});
    const torch::Tensor eps = (hi - lo) / static_cast<double>(n_levels - 1);
    const torch::Tensor clamped = torch::min(torch::max(x, lo), hi + 1e-7);
    return round_with((clamped - lo) / eps, static_cast<Rounding>(rounding)) * eps + lo;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &x = saved[0], &lo = saved[1], &hi = saved[2];
    const torch::Tensor& g = grads[0];
    const torch::Tensor below = x < lo, above = x >= hi;
    const torch::Tensor inside = torch::logical_not(torch::logical_or(below, above));
    return {g * inside, reduce_to(g * below, lo), reduce_to(g * above, hi), torch::Tensor(), torch::Tensor()};
  }
};

struct TqtFunction : public torch::autograd::Function<TqtFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& log2_t, int64_t n_levels,
                               bool is_signed, bool power_of_two) {
    const torch::Tensor t = power_of_two ? torch::ceil(log2_t) : log2_t;
    const torch::Tensor m = torch::pow(2.0, t);
    torch::Tensor lo, hi;
    if (is_signed) {
      std::tie(lo, hi) = pact_symmetric_clips(m, n_levels);
    } else {
      lo = torch::zeros_like(m);
      hi = m;
    }
    const torch::Tensor eps = (hi - lo) / static_cast<double>(n_levels - 1);
    const torch::Tensor clamped = torch::min(torch::max(x, lo), hi + 1e-7);
    const torch::Tensor y = torch::round((clamped - lo) / eps) * eps + lo;
    ctx->save_for_backward({x, y, lo, hi, log2_t});
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &x = saved[0], &y = saved[1], &lo = saved[2], &hi = saved[3], &log2_t = saved[4];
    const torch::Tensor& g = grads[0];
    const torch::Tensor below = x < lo, above = x >= hi;
    const torch::Tensor inside = torch::logical_not(torch::logical_or(below, above));
    const torch::Tensor per_element = torch::where(above, hi, torch::where(below, lo, y - x)) * g;
    const torch::Tensor dt = std::log(2.0) * reduce_to(per_element, log2_t);
    return {g * inside, dt, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor round_ste(const torch::Tensor& x, Rounding r) { return RoundSte::apply(x, static_cast<int64_t>(r)); }

torch::Tensor brevitas_weight_scale(const torch::Tensor& w, int bits, bool per_channel) {
  const double t = std::ldexp(1.0, bits - 1) - 1;
  torch::Tensor max_abs;
  if (per_channel) {
    std::vector<int64_t> shape(static_cast<size_t>(w.dim()), 1);
    shape[0] = w.size(0);
    max_abs = std::get<0>(torch::abs(w).reshape({w.size(0), -1}).max(1)).reshape(shape);
  } else {
    max_abs = torch::abs(w).max().reshape({1});
  }
  return torch::clamp_min(max_abs, 2e-16) / t;
}

torch::Tensor brevitas_weight_quant(const torch::Tensor& w, int bits, bool per_channel) {
  const double t = std::ldexp(1.0, bits - 1) - 1;
  const torch::Tensor s = brevitas_weight_scale(w, bits, per_channel);
  return torch::clamp(round_ste(w / s, Rounding::half_even), -t, t) * s;
}

torch::Tensor brevitas_act_scale(const torch::Tensor& log2_threshold, int bits, bool is_signed) {
  const double levels = is_signed ? std::ldexp(1.0, bits - 1) : std::ldexp(1.0, bits) - 1;
  const torch::Tensor t = torch::full({1}, levels, log2_threshold.options());
  return torch::clamp_min(torch::pow(2.0, log2_threshold) / torch::pow(2.0, torch::log2(t)), 2e-16);
}

torch::Tensor brevitas_act_quant(const torch::Tensor& x, const torch::Tensor& scale, int bits, bool is_signed) {
  const double qmin = is_signed ? -std::ldexp(1.0, bits - 1) : 0.0;
  const double qmax = is_signed ? std::ldexp(1.0, bits - 1) - 1 : std::ldexp(1.0, bits) - 1;
  return torch::clamp(round_ste(x / scale, Rounding::half_even), qmin, qmax) * scale;
}

int trunc_avg_pool_shift(int bits_in, int kernel, int bits_out) {
  const int64_t max_sum = ((int64_t{1} << bits_in) - 1) * kernel * kernel;
  int bw = 0;
  while ((int64_t{1} << bw) < max_sum) ++bw;  // ceil(log2(max_sum))
  return bw - bits_out;
}

torch::Tensor brevitas_trunc_avg_pool(const torch::Tensor& x, const torch::Tensor& scale, int bits_in, int bits_out,
                                      int kernel, Rounding r) {
  const int shift = trunc_avg_pool_shift(bits_in, kernel, bits_out);
  const torch::Tensor avg_scale = scale / static_cast<double>(kernel * kernel);  // fl(s / K^2)
  const torch::Tensor sum = round_ste(torch::avg_pool2d(x, {kernel, kernel}, {1, 1}) / avg_scale, Rounding::half_even);
  const double qmax = std::ldexp(1.0, bits_out) - 1;
  const torch::Tensor q = torch::clamp(round_ste(sum / std::ldexp(1.0, shift), r), 0.0, qmax);
  return q * (avg_scale * std::ldexp(1.0, shift));
}

torch::Tensor pact_quant(const torch::Tensor& x, const torch::Tensor& clip_lo, const torch::Tensor& clip_hi, int64_t n_levels,
                         Rounding r) {
  return PactFunction::apply(x, clip_lo, clip_hi, n_levels, static_cast<int64_t>(r));
}

std::pair<torch::Tensor, torch::Tensor> pact_symmetric_clips(const torch::Tensor& max_abs, int64_t n_levels) {
  const double n = static_cast<double>(n_levels);
  return {-max_abs, max_abs * (n - 2) / n};
}

torch::Tensor tqt_quant(const torch::Tensor& x, const torch::Tensor& log2_t, int64_t n_levels, bool is_signed,
                        bool power_of_two) {
  return TqtFunction::apply(x, log2_t, n_levels, is_signed, power_of_two);
}

}  // namespace qv::fakequant
