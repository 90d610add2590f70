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

std::vector<HarmonizeChange> harmonize(fakequant::NetworkImpl& net, const fakequant::ActQuant& identity,
                                       const fakequant::ActQuant& input);

}  // namespace qv::integerize
