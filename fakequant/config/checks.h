// Value checks shared by the three readers. Each returns an empty string when the value is possible,
// else what was expected; the reader throws it with the file and the key (or line) it came from.
#pragma once

#include <cstdint>
#include <string>

namespace qv::config::detail {

inline std::string check_bits(int64_t bits) {
  if (bits < 1 || bits > 32) return "a quantizer bit width must be between 1 and 32, got " + std::to_string(bits);
  return "";
}

// A narrow signed 1-bit quantizer has the single level 0.
inline std::string check_narrow(int bits, bool narrow_range) {
  if (narrow_range && bits == 1) return "a narrow signed 1-bit quantizer has a single level (0); it needs at least 2 bits";
  return "";
}

// Levels of a signed or unsigned b-bit grid: 2^b, one fewer when narrow.
inline int64_t levels_of(int bits, bool narrow_range) { return (int64_t{1} << bits) - (narrow_range ? 1 : 0); }

// `levels` stated beside `bits` must be the grid's level count.
inline std::string check_levels(int64_t levels, int bits, bool is_signed, bool narrow_range) {
  if (levels < 2) return "a quantizer needs at least 2 levels, got " + std::to_string(levels);
  const std::string grid = std::string(is_signed ? "signed " : "unsigned ") + (narrow_range ? "narrow " : "") +
                           std::to_string(bits) + "-bit quantizer";
  if (levels > (int64_t{1} << bits))
    return std::to_string(levels) + " levels do not fit a " + grid + " (at most " + std::to_string(int64_t{1} << bits) + ")";
  if (levels != levels_of(bits, narrow_range))
    return std::to_string(levels) + " levels do not match a " + grid + " (which has " +
           std::to_string(levels_of(bits, narrow_range)) + ")";
  return "";
}

// The bit width of a grid of `levels` levels: 2^b, or 2^b - 1 when narrow is allowed (signed weights).
// Sets *narrow accordingly. Returns what was expected on failure.
inline std::string bits_of_levels(int64_t levels, bool allow_narrow, int* bits, bool* narrow) {
  if (levels < 2) return "a quantizer needs at least 2 levels, got " + std::to_string(levels);
  for (int b = 1; b <= 32; ++b) {
    if (levels == (int64_t{1} << b)) {
      *bits = b;
      *narrow = false;
      return "";
    }
    if (allow_narrow && b >= 2 && levels == (int64_t{1} << b) - 1) {
      *bits = b;
      *narrow = true;
      return "";
    }
  }
  return "expected a power of two up to 2^32" + std::string(allow_narrow ? " (or one less: a narrow signed grid)" : "") +
         ", got " + std::to_string(levels) + " levels";
}

inline std::string check_positive(double v, const char* what) {
  if (!(v > 0)) return std::string(what) + " must be positive, got " + std::to_string(v);
  return "";
}

inline std::string check_percentile(double v) {
  if (!(v > 0 && v <= 100)) return "a percentile must be in (0, 100], got " + std::to_string(v);
  return "";
}

}  // namespace qv::config::detail
