#include "fakequant/tqt_optimizer.h"

#include <utility>

namespace qv::fakequant {

TqtGradNormalizer::TqtGradNormalizer(double beta, bool clip_grad) : beta_(beta), clip_grad_(clip_grad) {}

void TqtGradNormalizer::add(const torch::Tensor& log_t, std::string name) {
  tracked_.push_back({std::move(name), log_t, torch::zeros_like(log_t, log_t.options().dtype(torch::kFloat32)),
                      torch::ones({}, torch::kFloat32)});
}

size_t TqtGradNormalizer::add_all(const torch::nn::Module& net) {
  size_t n = 0;
  for (const auto& p : net.named_parameters(/*recurse=*/true)) {
    const std::string& key = p.key();
    if (key == "log_t" || (key.size() > 6 && key.compare(key.size() - 6, 6, ".log_t") == 0)) {
      add(p.value(), key);
      ++n;
    }
  }
  return n;
}

torch::Tensor TqtGradNormalizer::step(const torch::Tensor& g, torch::Tensor& running_grad_var, torch::Tensor& running_beta,
                                      double beta_value, bool clip_grad) {
  torch::NoGradGuard no_grad;
  const torch::Tensor beta = torch::scalar_tensor(beta_value, torch::kFloat32);
  torch::Tensor grad = g.to(torch::kFloat32).clone();
  torch::Tensor grad_var = beta * running_grad_var + (1 - beta) * torch::pow(grad, 2);
  running_grad_var.copy_(grad_var.reshape(running_grad_var.sizes()));
  running_beta.mul_(beta);
  grad_var.div_(1 - running_beta);
  grad.div_(torch::sqrt(grad_var) + 1e-5);
  if (clip_grad) grad = torch::tanh(grad);
  return grad;
}

void TqtGradNormalizer::normalize() {
  torch::NoGradGuard no_grad;
  for (Tracked& t : tracked_) {
    if (!t.param.grad().defined()) continue;
    const torch::Tensor out = step(t.param.grad(), t.running_grad_var, t.running_beta, beta_, clip_grad_);
    t.param.mutable_grad().copy_(out.to(t.param.grad().scalar_type()));
  }
}

}  // namespace qv::fakequant
