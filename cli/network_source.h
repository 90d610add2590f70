// Where a command's integer network and input come from: an IR file, or a synthetic network of a real
// topology (seeded random integer weights) with its embedded default input.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/network.h"

namespace qv::cli {

// "vgg16" or "mobilenet_v2"; throws UsageError for anything else.
Network make_synthetic(const std::string& model, int resolution, uint64_t seed);

// The network's inputs: from .npy files (one per input node, checked against the declared shape and
// type, InputError naming the file otherwise), or seeded uniform values when `npy_files` is empty.
std::vector<IntTensor> load_inputs(const Network& network, const std::vector<std::string>& npy_files, uint64_t seed);

}  // namespace qv::cli
