#include "ir/int_type.h"

#include <charconv>

namespace qv {

std::optional<IntType> IntType::parse(const std::string& s) {
  IntType t;
  std::string_view digits;
  if (s.rfind("uint", 0) == 0) {
    t.is_signed = false;
    digits = std::string_view(s).substr(4);
  } else if (s.rfind("int", 0) == 0) {
    t.is_signed = true;
    digits = std::string_view(s).substr(3);
  } else {
    return std::nullopt;
  }
  if (digits.empty() || digits.size() > 3) return std::nullopt;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), t.bits);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return t;
}

IntType IntType::covering(int64_t lo, int64_t hi) {
  IntType t;
  t.is_signed = lo < 0;
  for (t.bits = 1; t.bits < (t.is_signed ? kMaxSignedBits : kMaxUnsignedBits); ++t.bits) {
    if (t.contains(lo) && t.contains(hi)) return t;
  }
  return t;
}

}  // namespace qv
