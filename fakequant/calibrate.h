// Calibration: makes a network with random (or imported float) weights produce unsaturated,
// meaningful activations before integerization. One pass over the given batches with every activation
// quantizer observing instead of quantizing: BatchNorm running statistics are re-estimated as a
// cumulative average, and each quantizer records the largest value it sees; then each clipping
// threshold is set to that maximum (Brevitas: value = log2(max); PACT: clip_hi = max; TQT: log2_t).
#pragma once

#include <torch/torch.h>

#include <set>
#include <string>
#include <vector>

#include "fakequant/models.h"

namespace qv::fakequant {

// reset_batch_norm = false keeps imported BN statistics and calibrates the quantizers only. With
// `only_modules`, only the quantizers at those module paths are calibrated; the others keep their
// (imported) ranges and quantize during the pass.
void calibrate(NetworkImpl& net, const std::vector<torch::Tensor>& batches, bool reset_batch_norm = true,
               const std::set<std::string>* only_modules = nullptr);

}  // namespace qv::fakequant
