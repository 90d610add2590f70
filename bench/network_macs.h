// Multiply-accumulates of one evaluation of a network: conv2d and linear layers (groups included).
#pragma once

#include <cstdint>
#include <variant>

#include "ir/network.h"

namespace qv::bench {

inline int64_t network_macs(const Network& net) {
  int64_t macs = 0;
  for (const Node& n : net.nodes) {
    if (const auto* c = std::get_if<Conv2dOp>(&n.op))
      macs += element_count(n.output.shape) * c->weight.dim(1) * c->weight.dim(2) * c->weight.dim(3);
    if (const auto* l = std::get_if<LinearOp>(&n.op)) macs += element_count(n.output.shape) * l->weight.dim(1);
  }
  return macs;
}

}  // namespace qv::bench
