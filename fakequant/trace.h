// Capturing every quantized activation of a forward pass by layer name, in float32 (as trained) or
// float64, for the harness: each QAct output is recorded under the module's hierarchical name.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "fakequant/models.h"

namespace qv::fakequant {

struct FloatTrace {
  std::vector<std::pair<std::string, torch::Tensor>> entries;  // in execution order
  const torch::Tensor* find(const std::string& name) const;
};

// Names every QAct of `net` after its path ("features.3.residual_branch.1.2"). Idempotent.
void name_quantizers(torch::nn::Module& net);

// Runs `net` on `input` in eval mode with `dtype` (kFloat32 or kFloat64; the network is converted for
// the call and converted back) and returns every quantized activation in execution order.
FloatTrace capture_trace(NetworkImpl& net, const torch::Tensor& input, torch::ScalarType dtype);

}  // namespace qv::fakequant
