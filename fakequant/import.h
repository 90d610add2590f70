// Importing a peer's torch.save state_dict into a fake-quant network, by the peer's naming.
//
//   torchvision_mobilenet_v2: torchvision's MobileNetV2 names renamed to QuantLab's (features.0 ->
//     pilot; features.n -> features.(n-1); conv -> residual_branch; in the new features.0
//     residual_branch.1 -> .1.0 and .2 -> .1.1; elsewhere residual_branch.2 -> .2.0 and .3 -> .2.1)
//   as_stored: names used as they are (QuantLab checkpoints, qverify names); a DataParallel
//     "module." prefix is dropped.
//
// Every model parameter and buffer must be found with its shape, and every checkpoint tensor must be
// used; otherwise an InputError lists the missing, unexpected and mismatched keys. Quantizer
// parameters (clip_lo, clip_hi, log_t, value) may be absent from a float checkpoint: they are left to
// calibration and reported in the returned list.
#pragma once

#include <string>
#include <vector>

#include "fakequant/models.h"

namespace qv::fakequant {

enum class PeerNaming { as_stored, torchvision_mobilenet_v2 };

// The renamed key, for tests and messages.
std::string rename_key(const std::string& key, PeerNaming naming);

std::vector<std::string> import_state_dict(torch::nn::Module& net, const std::string& path, PeerNaming naming);

}  // namespace qv::fakequant
