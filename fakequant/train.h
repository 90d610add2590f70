// Quantization-aware training steps: forward through the fake-quant network, cross-entropy, backward
// through the straight-through estimators, Adam update.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace qv::fakequant {

struct TrainOptions {
  int steps = 10;
  double learning_rate = 1e-3;
};

// Runs `steps` optimizer steps on (images, labels) and returns the loss before each step.
std::vector<double> train_steps(torch::nn::Module& net, const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                                const torch::Tensor& images, const torch::Tensor& labels, const TrainOptions& options);

// Fashion-MNIST images [n, 1, 28, 28] -> [n, 3, size, size] in [0, 1] (bilinear, gray replicated), and
// labels as int64, from Debian's dataset-fashion-mnist.
std::pair<torch::Tensor, torch::Tensor> fashion_mnist_batch(int64_t n, int64_t size, bool train = true);

}  // namespace qv::fakequant
