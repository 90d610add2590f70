// The range of every accumulator a conv2d, linear or hadamard node can produce, from the declared
// type of its input and the actual weights: the proof behind a declared accumulator type.
//
// Each term w*x with x in [lo, hi] lies in [min(w*lo, w*hi), max(w*lo, w*hi)], so per output channel
//
//   min = sum_w min(w*lo, w*hi) + bias,   max = sum_w max(w*lo, w*hi) + bias
//
// and the node's range is the union over channels. The bound is tight: every x may sit at either end.
// For conv2d, [lo, hi] also includes pad_value when the node pads (padding reads it). A hadamard row
// is +-1 over in_features inputs; taking the signs as free, its range is +-in_features * max(|lo|, |hi|).
// Everything is exact (BigInt): validation, the reference evaluator and the backend planner choose
// accumulator widths from it.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>

#include "ir/bigint.h"
#include "ir/int_type.h"
#include "ir/network.h"

namespace qv {

// [min, max] over every output channel. conv2d and linear only (hadamard needs the input width);
// throws std::invalid_argument for other ops or weights that do not split into output channels.
std::pair<BigInt, BigInt> accumulator_range(const Node& node, const IntType& input_type);
// Any accumulating node (conv2d, linear, hadamard), given the tensor it reads.
std::pair<BigInt, BigInt> accumulator_range(const Node& node, const ValueInfo& input);

// [type.min(), type.max()] as BigInts.
std::pair<BigInt, BigInt> type_range(const IntType& type);

// The narrowest IntType holding [lo, hi] (signed iff lo < 0); nullopt when none of at most 64 bits does.
std::optional<IntType> narrowest_type_holding(const BigInt& lo, const BigInt& hi);

}  // namespace qv
