// qverify's own checkpoints of a fake-quant network: every parameter and buffer (BN statistics,
// quantizer thresholds) by its hierarchical name, in LibTorch's archive format. Loading is strict:
// a missing, unexpected or differently shaped entry is an InputError listing all of them.
#pragma once

#include <string>

#include "fakequant/models.h"

namespace qv::fakequant {

void save_checkpoint(const torch::nn::Module& net, const std::string& path);
void load_checkpoint(torch::nn::Module& net, const std::string& path);

}  // namespace qv::fakequant
