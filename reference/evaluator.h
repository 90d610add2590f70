// The reference evaluator: the spec of every node's value, in arbitrary precision where needed.
//
// Runs the nodes in order with the per-op kernels of this folder (one file per op, each a plain
// function (params, inputs) -> output). Every tensor is checked against its node's declared shape and
// type (a value outside the declared type is an error in the network, reported with node and index);
// kernels never overflow: accumulation is int64 only where accumulator_bound.h proves it safe.
#pragma once

#include <vector>

#include "ir/network.h"
#include "ir/trace.h"
#include "reference/options.h"

namespace qv {

using reference::ReferenceOptions;

// `inputs` are the values of the network's InputOp nodes, in node order. Throws InputError (node, index,
// value) when an input or a computed value does not fit its declared shape or type, or when a node's
// parameters do not fit its inputs.
Trace evaluate_reference(const Network& network, const std::vector<IntTensor>& inputs, const ReferenceOptions& options = {});

}  // namespace qv
