// A requant whose input type has few values, tabulated once per channel: y = table[c][x - in_lo].
// The residual adds of MobileNetV2 and ProxylessNAS requantize 8-bit branches (256 values) and a
// 9-10-bit sum: a table lookup replaces the per-element multiply-shift or, for their alpha = 1/d
// requants with exact ties, the int64 division. Exact by construction: every entry is FusedRequant's
// result (itself equal to requant_ref) for that input value.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "integer/requant_stage.h"
#include "ir/int_type.h"

namespace qv::integer {

struct RequantTable {
  static constexpr int64_t kMaxValues = 4096;        // input values per channel
  static constexpr int64_t kMaxEntries = int64_t{1} << 20;  // channels x values
  int64_t in_lo = 0, values = 0;  // the table covers inputs [in_lo, in_lo + values)
  std::vector<int32_t> y;         // [channel][values]
  int64_t max_abs = 0;            // the largest |entry|: bounds a sum of lookups
  const int32_t* channel(size_t c) const { return y.data() + static_cast<int64_t>(c) * values; }
};

// nullptr when the input type has more than kMaxValues values, the table would exceed kMaxEntries, or an
// output does not fit int32.
std::unique_ptr<RequantTable> tabulate(const FusedRequant& rq, IntType in_type);

// The same with int64 entries, for requants whose outputs over the input type leave int32 (residual-add
// branches onto a wide sum): nullptr under the same size limits, or when an output's magnitude reaches
// 2^60 (so that a sum of up to 4 lookups cannot overflow int64).
struct RequantTable64 {
  int64_t in_lo = 0, values = 0;
  std::vector<int64_t> y;  // [channel][values]
  int64_t max_abs = 0;
  const int64_t* channel(size_t c) const { return y.data() + static_cast<int64_t>(c) * values; }
};
std::unique_ptr<RequantTable64> tabulate64(const FusedRequant& rq, IntType in_type);

}  // namespace qv::integer
