// floor(u / d) for every 0 <= u < 2^bits (bits <= 63) by one multiply-high and a shift: with
// l = ceil(log2 d) and m = ceil(2^(bits+l) / d), 2^(bits+l) <= m*d < 2^(bits+l) + d <= 2^(bits+l) + 2^l,
// which is the condition of Granlund and Montgomery ("Division by invariant integers using
// multiplication", 1994, Theorem 4.2) for floor(m*u / 2^(bits+l)) = floor(u / d). m < 2^(bits+1) + 1, so
// m*u < 2^127 fits an unsigned __int128. The requant stage uses it for its exact_div64 route, where a
// hardware division would cost several times more per element.
#pragma once

#include <cstdint>

namespace qv::integer {

struct DivByConstant {
  using u128 = unsigned __int128;
  u128 m = 1;
  int shift = 0;
  uint64_t d = 1;

  static DivByConstant make(uint64_t d, int bits) {
    int l = 0;
    while (l < 64 && (u128{1} << l) < d) ++l;
    DivByConstant q;
    q.d = d;
    q.shift = bits + l;
    const u128 p = u128{1} << q.shift;
    q.m = p / d + (p % d != 0 ? 1 : 0);
    return q;
  }
  uint64_t quotient(uint64_t u) const { return static_cast<uint64_t>((u * m) >> shift); }
};

}  // namespace qv::integer
