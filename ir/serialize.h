// The file form of the integer network description: FILE.json (structure, human-readable) and
// FILE.bin beside it (every weight and bias tensor, little-endian, at the narrowest of int8/16/32/64
// or uint8/16/32 storage holding its declared type, each at an 8-byte-aligned offset). The JSON states
// the .bin's name, size and CRC-32, and every tensor's storage, offset and count. Rationals are strings
// "p/q", so nothing is rounded on the way to disk. docs/ir.md describes the format key by key.
#pragma once

#include <string>

#include "ir/network.h"

namespace qv {

// Writes FILE.json and FILE.bin (the .json suffix is replaced, or .bin appended). Atomic: both are
// written to temporary files in the same folder and renamed into place. Deterministic: the same
// network gives the same bytes.
void save_network(const Network& network, const std::string& json_path);

// Reads and validates (ir/validate.h). Every problem throws InputError naming the file, the node and
// field (e.g. "nodes[3] 'conv1': weight.shape") and what was expected.
Network load_network(const std::string& json_path);

}  // namespace qv
