// An integer type of the network description: a bit width and a signedness.
//
// Values are stored in int64_t whatever the declared width, so signed types go up to 64 bits and
// unsigned ones up to 63 (a uint64 value would not fit the storage type; the IR refuses it).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace qv {

struct IntType {
  int bits = 8;
  bool is_signed = true;

  static constexpr int kMaxSignedBits = 64;
  static constexpr int kMaxUnsignedBits = 63;

  bool valid() const {
    return bits >= 1 && bits <= (is_signed ? kMaxSignedBits : kMaxUnsignedBits);
  }
  // Smallest and largest representable value (two's complement for signed types).
  int64_t min() const {
    if (!is_signed) return 0;
    return bits == 64 ? INT64_MIN : -(int64_t{1} << (bits - 1));
  }
  int64_t max() const {
    if (is_signed) return bits == 64 ? INT64_MAX : (int64_t{1} << (bits - 1)) - 1;
    return bits == 63 ? INT64_MAX : (int64_t{1} << bits) - 1;
  }
  bool contains(int64_t v) const { return v >= min() && v <= max(); }

  // "int8", "uint4", "int32".
  std::string name() const { return (is_signed ? "int" : "uint") + std::to_string(bits); }
  // Inverse of name(); nullopt for anything else (including out-of-range widths, which valid() names).
  static std::optional<IntType> parse(const std::string& s);

  // The narrowest type holding every value in [lo, hi]; signed iff lo < 0.
  static IntType covering(int64_t lo, int64_t hi);

  friend bool operator==(const IntType&, const IntType&) = default;
};

}  // namespace qv
