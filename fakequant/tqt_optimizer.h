// TQT's normalisation of the log-threshold gradient, as QuantLib applies it (TQTQuantFunc.backward in
// algorithms/pact/pact_functions.py; TQT paper, appendix B): an Adam-like running second moment with
// bias correction, then tanh clipping. Per log_t element, with g the raw gradient of the step:
//
//   v      = beta * v + (1 - beta) * g^2        (v starts at 0; stored before the bias correction)
//   rb     = rb * beta                          (rb starts at 1)
//   g_norm = g / (sqrt(v / (1 - rb)) + 1e-5)
//   g_out  = tanh(g_norm) if clip_grad else g_norm
//
// in float32, each operation as the peer performs it (beta a float32 scalar: 1 - beta is 0.100000024
// for 0.9). QuantLib's defaults: beta 0.9, clip_grad true. The first step gives tanh(~1) = 0.7616 *
// sign(g) whatever |g| is: the normalised gradient measures direction and consistency, not size.
//
// QuantLib does this inside the quantizer's backward, once per backward call; here it runs on the
// accumulated gradient once per optimizer step. The two agree when each quantizer runs once per step
// (every qverify network). Call normalize() after backward() and before the optimizer's step().
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace qv::fakequant {

class TqtGradNormalizer {
 public:
  explicit TqtGradNormalizer(double beta = 0.9, bool clip_grad = true);

  // Tracks one log_t parameter (its running moment starts at zeros of its shape).
  void add(const torch::Tensor& log_t, std::string name = "");
  // Tracks every parameter of `net` whose name ends in "log_t" (qverify's and QuantLib's TQT name);
  // returns how many.
  size_t add_all(const torch::nn::Module& net);

  // Replaces the gradient of every tracked parameter that has one by its normalised form and advances
  // that parameter's state. A parameter without a gradient (frozen, unused) keeps its state.
  void normalize();

  // One step on a raw gradient g, updating running_grad_var and running_beta in place (float32 tensors,
  // the shapes QuantLib's buffers tqt_running_grad_var and tqt_running_beta have). Returns the output.
  static torch::Tensor step(const torch::Tensor& g, torch::Tensor& running_grad_var, torch::Tensor& running_beta,
                            double beta, bool clip_grad);

  struct Tracked {
    std::string name;
    torch::Tensor param, running_grad_var, running_beta;
  };
  const std::vector<Tracked>& tracked() const { return tracked_; }

 private:
  double beta_;
  bool clip_grad_;
  std::vector<Tracked> tracked_;
};

}  // namespace qv::fakequant
