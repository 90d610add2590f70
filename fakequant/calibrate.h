// Calibration: makes a network with random (or imported float) weights produce unsaturated,
// meaningful activations before integerization. One pass over the given batches with every activation
// quantizer observing instead of quantizing: BatchNorm running statistics are re-estimated as a
// cumulative average, and each quantizer records the largest value it sees; then each clipping
// threshold is set to that maximum (Brevitas: value = log2(max); PACT: clip_hi = max; TQT: log2_t).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "fakequant/models.h"

namespace qv::fakequant {

// reset_batch_norm = false keeps imported BN statistics and calibrates the quantizers only.
void calibrate(NetworkImpl& net, const std::vector<torch::Tensor>& batches, bool reset_batch_norm = true);

}  // namespace qv::fakequant
