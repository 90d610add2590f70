// The proof that picks the reference's number type, layer by layer.
//
// For a conv2d/linear/hadamard node and the declared type of its input, the bound gives the range of
// every accumulator value and of every partial sum the kernel can form, whatever the input data and in
// whatever order the terms are added. Each term w*x with x in [lo, hi] lies in
// [min(w*lo, w*hi), max(w*lo, w*hi)]; summing per output channel:
//
//   min = lo*P + hi*Q + b,   max = hi*P + lo*Q + b          P = sum of positive weights, Q = of negative ones
//
// and any partial sum (any subset of the terms and the bias) lies in
//
//   [min(lo,0)*P + max(hi,0)*Q + min(b,0),  max(hi,0)*P + min(lo,0)*Q + max(b,0)].
//
// If that partial range is inside int64, int64 accumulation cannot overflow; otherwise the reference
// accumulates in BigInt. For conv, [lo, hi] is widened to include pad_value when there is padding.
// Everything is exact (BigInt); P and Q are summed in __int128 (|w| < 2^63, fewer than 2^63 terms).
#pragma once

#include <cstdint>

#include "ir/bigint.h"
#include "ir/int_type.h"
#include "ir/network.h"

namespace qv::reference {

struct AccumulatorBound {
  BigInt min, max;                  // every accumulator value (bias included) lies in [min, max]
  BigInt partial_min, partial_max;  // every partial sum lies in [partial_min, partial_max]
  bool fits_int64 = false;          // the partial range is inside int64: int64 accumulation is safe

  // The narrowest IntType covering [min, max]; nullopt when the range is wider than 64 bits.
  std::optional<IntType> covering_type() const;
};

AccumulatorBound accumulator_bound(const Conv2dOp& op, IntType input);
AccumulatorBound accumulator_bound(const LinearOp& op, IntType input);
// Rows of +-1 over in_features inputs (the sign of each term is free, so the bound is symmetric).
AccumulatorBound accumulator_bound(const HadamardOp& op, int64_t in_features, IntType input);
// The exact sum of a window of `count` inputs (avg_pool2d).
AccumulatorBound window_sum_bound(int64_t count, IntType input);

}  // namespace qv::reference
