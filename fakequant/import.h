// Importing a peer's torch.save state_dict into a fake-quant network, by the peer's naming.
//
//   torchvision_mobilenet_v2: torchvision's MobileNetV2 names renamed to QuantLab's (features.0 ->
//     pilot; features.n -> features.(n-1); conv -> residual_branch; in the new features.0
//     residual_branch.1 -> .1.0 and .2 -> .1.1; elsewhere residual_branch.2 -> .2.0 and .3 -> .2.1)
//   as_stored: names used as they are (qverify names); a DataParallel "module." prefix is dropped.
//   quantlab: a QuantLab PACT checkpoint's `net` state_dict (QuantLib PACTConv2d / PACTLinear /
//     PACTUnsignedAct, QuantLab names as qverify's MobileNetV2, "module." dropped). QuantLab's own loader
//     (LogsManager.load_checkpoint) is strict, so every entry is accounted for here:
//       - activation clip_lo / clip_hi fill QAct's (clip_lo of an unsigned act is QuantLib's zero buffer);
//       - a conv's / linear's weight clip_lo / clip_hi have no place in qverify, whose PACT weight
//         quantizer derives its clips from the weight (max, SAWB or std init); they are accepted only when
//         they are those clips (to float32 rounding; QuantLib's controller initialises them from the weight),
//         and otherwise listed as mismatches, never dropped: clips frozen while the weights trained on
//         would quantize the weights differently;
//       - `started` must be true and `noisy` false: a quantizer not started runs unquantized in QuantLab,
//         a noisy one adds noise; either is listed as a mismatch;
//       - skipped, as they do not enter a started quantizer's forward: `frozen` (controller flag),
//         `clip_gradient` (backward only), and an activation's statistics `max`, `min`, `running_mean`,
//         `running_var` (read by the controller only to initialise clip_hi; recognised by the module's
//         `started` buffer, so BatchNorm statistics are never skipped).
//     A harmonized network's inserted quantizers (HarmonizePACTNetPass: PACTIntegerAdd acts, identity
//     acts between linear layers) have no module in qverify's MobileNetV2 and are unexpected keys.
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

enum class PeerNaming { as_stored, torchvision_mobilenet_v2, brevitas, quantlab };

// The renamed key, for tests and messages.
std::string rename_key(const std::string& key, PeerNaming naming);
// True for a checkpoint key that carries nothing qverify's network uses: Brevitas *.zero_hw_sentinel
// (its loader skips them); QuantLab *.frozen and *.clip_gradient (controller and backward state).
bool ignored_key(const std::string& key, PeerNaming naming);

std::vector<std::string> import_state_dict(torch::nn::Module& net, const std::string& path, PeerNaming naming);

}  // namespace qv::fakequant
