// Harmonization: the fake-quant network is edited so that every value an integer layer reads is on
// an integer grid. An identity quantizer is inserted
//   - after the network input, when a conv reads it (the input quantizer);
//   - after a conv/BN/linear that feeds a conv, a linear or an add without an activation between
//     (MobileNetV2's projection convs, QuantLab's harmonization);
//   - after an add that feeds anything but an activation (the block output of MobileNetV2).
// Each insertion changes the fake-quant function (a float value is now rounded onto a grid) and is
// reported; a network that needs none (Brevitas' shared-quantizer adds, VGG, MobileNet V1) is left
// exactly as it was. Adds of operands on different grids need no change: lowering adds them exactly
// on their common grid (integerize/lower.h). Run before calibration, so the new quantizers get
// ranges from data.
#pragma once

#include <string>
#include <vector>

#include "fakequant/models.h"

namespace qv::integerize {

struct HarmonizeChange {
  std::string inserted;  // the new quantizer's node name
  std::string after;     // the node whose output it quantizes
  std::string reason;
};

// fold_input: the network input is left unquantized because the pixels themselves are the integer
// input, their normalization folded into the first conv (input_folds_into_first_conv).
std::vector<HarmonizeChange> harmonize(fakequant::NetworkImpl& net, const fakequant::ActQuant& identity,
                                       const fakequant::ActQuant& input, bool fold_input = false);

// True when every reader of the network input is a conv without padding (Brevitas' MobileNet V1): then
// x = (p / 255 - mean) / std needs no quantizer, since p is an integer and the affine map folds exactly
// into the conv's delta (zero padding would need p = 255 mean, not an integer).
bool input_folds_into_first_conv(const fakequant::NetworkImpl& net);

}  // namespace qv::integerize
