// Small helpers shared by the reference kernels, overloaded on the accumulator type (int64_t or BigInt)
// so one kernel template serves both number types.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "ir/bigint.h"
#include "ir/int_type.h"

namespace qv::reference {

// An accumulator value as stored in an IntTensor; throws std::range_error if it is outside int64 (the
// declared type of the node could not hold it either).
inline int64_t to_storage(int64_t v) { return v; }
inline int64_t to_storage(const BigInt& v) {
  if (v < INT64_MIN || v > INT64_MAX) throw std::range_error("accumulator value " + v.str() + " does not fit int64 storage");
  return static_cast<int64_t>(v);
}

// clamp(v) to [type.min(), type.max()].
inline int64_t clamp_to(__int128 v, IntType type) {
  return v < type.min() ? type.min() : v > type.max() ? type.max() : static_cast<int64_t>(v);
}
inline int64_t clamp_to(const BigInt& v, IntType type) {
  return v < type.min() ? type.min() : v > type.max() ? type.max() : static_cast<int64_t>(v);
}

}  // namespace qv::reference
