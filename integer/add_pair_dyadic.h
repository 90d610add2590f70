// A residual add of two packed byte branches, requantized to bytes by the node after it, as one int32
// affine form per channel:
//   y = clamp((m0*x0 + m1*x1 + d) >> k, lo, hi)      (x0, x1 the branches' byte values, >> a floor)
// The add's branch tables are affine (term_b = at_zero_b + slope_b*x_b, as QuantLab's integer adds
// lower: an integer alpha per branch onto a fine common scale), so the exact output is a function of
// the two bytes alone: clamp(requant(clamp(term_0 + term_1, the sum's type)), lo, hi). The planner
// derives a candidate form from the requant's real scale and keeps it only after comparing it with the
// exact output on every pair of input values (at most 256 x 256): that comparison is the proof.
//
// Why: MobileNetV2's sums reach +-4.2e9 (slopes such as 17,513,950 and 15,178,523 have no common
// factor), past the int32 routes, so six of its ten adds took int64 sums and a 64-bit requant; this
// form needs neither the sums nor their requant.
#pragma once

#include <cstdint>
#include <vector>

#include "integer/add_requant.h"
#include "ir/int_type.h"
#include "ir/requant.h"

namespace qv::integer {

struct PairDyadic {
  int32_t m0 = 0, m1 = 0, d = 0;
  int k = 0;  // 0..30
};

// One form per channel of `rq` (the requant reading the add's sums), each proven on every pair of
// values of t0 x t1; empty unless every channel has one (both types at most 8 bits, both branch tables
// affine on every channel, rq an exact or mul-add-shift requant).
std::vector<PairDyadic> pair_dyadic_channels(const AddRequantLayer& add, IntType t0, IntType t1, IntType sum_type, const Requant& rq,
                                             const FusedRequant& stage);

// The reference twin of the kernel: one output.
inline int32_t pair_dyadic_scalar(int32_t x0, int32_t x1, const PairDyadic& p, int32_t lo, int32_t hi) {
  const int64_t z = int64_t{p.m0} * x0 + int64_t{p.m1} * x1 + p.d;  // proven inside int32 by the planner
  const int32_t y = static_cast<int32_t>(z >> p.k);
  return y < lo ? lo : y > hi ? hi : y;
}

// n outputs of one plane into bytes (AVX-512 F/BW: 16 lanes of int32 products), widening [y_lo, y_hi].
void add_pair_dyadic_bytes(const uint8_t* x0, bool signed0, const uint8_t* x1, bool signed1, int64_t n, const PairDyadic& p, int32_t lo,
                           int32_t hi, uint8_t* dst, int32_t& y_lo, int32_t& y_hi);

}  // namespace qv::integer
