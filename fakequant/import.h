// Importing a peer's torch.save state_dict into a fake-quant network, by the peer's naming.
//
//   torchvision_mobilenet_v2: torchvision's MobileNetV2 names renamed to QuantLab's (features.0 ->
//     pilot; features.n -> features.(n-1); conv -> residual_branch; in the new features.0
//     residual_branch.1 -> .1.0 and .2 -> .1.1; elsewhere residual_branch.2 -> .2.0 and .3 -> .2.1)
//   as_stored: names used as they are (QuantLab checkpoints, qverify names); a DataParallel
//     "module." prefix is dropped.
//   brevitas: a Brevitas quant model's state_dict (quant_mobilenet_v1, quant_proxylessnas_*). A QuantReLU /
//     QuantIdentity stores its learned log2 threshold as
//       X.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl.value          (Brevitas >= 0.2)
//       X.act_quant_proxy.fused_activation_quant_proxy.tensor_quant.scaling_impl.learned_value  (older)
//     or the mixed spellings (act_quant_proxy ... value, act_quant ... learned_value), which Brevitas's own
//     loader also accepts (QuantNonLinearActLayer renames the act_quant_proxy prefix, ParameterScaling
//     learned_value); all map to qverify's QAct parameter X.value. The old proxies' zero_hw_sentinel
//     buffers carry no data and are skipped, as Brevitas skips them. A 0-d checkpoint tensor (Brevitas's
//     per-tensor scaling shape) fills a one-element parameter. Other names are used as stored.
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

enum class PeerNaming { as_stored, torchvision_mobilenet_v2, brevitas };

// The renamed key, for tests and messages.
std::string rename_key(const std::string& key, PeerNaming naming);
// True for a checkpoint key the peer's own loader ignores (Brevitas: *.zero_hw_sentinel).
bool ignored_key(const std::string& key, PeerNaming naming);

std::vector<std::string> import_state_dict(torch::nn::Module& net, const std::string& path, PeerNaming naming);

}  // namespace qv::fakequant
