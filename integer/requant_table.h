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

// Entries of type Entry: int32_t, or int64_t where the outputs leave int32.
template <class Entry>
struct RequantTableOf {
  static constexpr int64_t kMaxValues = 4096;        // input values per channel
  static constexpr int64_t kMaxEntries = int64_t{1} << 20;  // channels x values
  int64_t in_lo = 0, values = 0;  // the table covers inputs [in_lo, in_lo + values)
  std::vector<Entry> y;           // [channel][values]
  int64_t max_abs = 0;            // the largest |entry|: bounds a sum of lookups
  // Channels whose every entry is at_zero + slope * x (x the input value, slope inside int32): the
  // residual adds' branches usually are (an integer alpha onto a fine common scale), and then a
  // multiply replaces the lookup (vpmuldq / vpmulld instead of a gather).
  std::vector<uint8_t> affine;    // [channel]
  std::vector<int64_t> slope, at_zero;  // [channel], where affine
  const Entry* channel(size_t c) const { return y.data() + static_cast<int64_t>(c) * values; }
};
using RequantTable = RequantTableOf<int32_t>;
// For requants whose outputs over the input type leave int32 (residual-add branches onto a wide sum).
using RequantTable64 = RequantTableOf<int64_t>;

// nullptr when the input type has more than kMaxValues values, the table would exceed kMaxEntries, or an
// output does not fit int32. The outputs count, not the requant's clamp range, which may be wider than
// the values over the input type reach.
std::unique_ptr<RequantTable> tabulate(const FusedRequant& rq, IntType in_type);

// The same over the inputs [lo, hi] only (a range proven to hold every input, such as an add's sums).
std::unique_ptr<RequantTable> tabulate_range(const FusedRequant& rq, int64_t lo, int64_t hi);

// The same with int64 entries: nullptr under the same size limits, or when an output's magnitude
// reaches 2^60 (so that a sum of up to 4 lookups cannot overflow int64).
std::unique_ptr<RequantTable64> tabulate64(const FusedRequant& rq, IntType in_type);

// An int32 table over an input type of at most 8 bits whose entries all fit int16, split into its
// entries' low and high bytes and indexed by the stored byte (two's complement when signed): the form
// vpermt2b looks up, 64 entries per instruction (add_planes_vbmi.h). Bytes the type cannot store map to 0.
struct BytePlanes16 {
  static constexpr int64_t kChannelBytes = 512;  // [low bytes of 256 entries][high bytes of 256 entries]
  std::vector<uint8_t> bytes;                    // [channel][kChannelBytes]
  const uint8_t* channel(size_t c) const { return bytes.data() + static_cast<int64_t>(c) * kChannelBytes; }
};

// nullptr when in_type has more than 8 bits or an entry lies outside [-32767, 32767].
std::unique_ptr<BytePlanes16> byte_planes16(const RequantTable& t, size_t channels, IntType in_type);

}  // namespace qv::integer
