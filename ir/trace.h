// A per-node record of one evaluation: what every backend (reference, optimized, fake-quant mapped to
// integers) produces, and what the harness compares layer by layer.
#pragma once

#include <string>
#include <vector>

#include "ir/tensor.h"

namespace qv {

struct TraceEntry {
  std::string node;  // Node::name
  IntTensor value;   // the tensor the node produced
};

// One entry per node, in node order (inputs included).
using Trace = std::vector<TraceEntry>;

// The entry of `node`, or nullptr.
inline const TraceEntry* find_entry(const Trace& trace, const std::string& node) {
  for (const TraceEntry& e : trace)
    if (e.node == node) return &e;
  return nullptr;
}

}  // namespace qv
