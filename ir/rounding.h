// Rounding modes, always passed as a value: one binary runs every convention side by side.
//
//   half_even  ties to the even neighbour            (torch.round, Brevitas, ONNX QuantizeLinear)
//   half_up    ties toward +inf, floor(x + 1/2)      (FINN MultiThreshold, QuantLib RequantShift, TFLite single rounding)
//   half_away  ties away from zero                   (gemmlowp RoundingDivideByPOT, TVM TONEAREST)
//   half_down  ties toward -inf, ceil(x - 1/2)       (QONNX HALF_DOWN)
//   floor      toward -inf                           (NEMO, Brevitas TruncAvgPool)
//   ceil       toward +inf
//   trunc      toward zero                           (C integer division)
#pragma once

#include <array>
#include <type_traits>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ir/bigint.h"

namespace qv {

enum class Rounding { half_even, half_up, half_away, half_down, floor, ceil, trunc };

inline constexpr std::array<Rounding, 7> kAllRoundings = {
    Rounding::half_even, Rounding::half_up, Rounding::half_away, Rounding::half_down,
    Rounding::floor,     Rounding::ceil,    Rounding::trunc};

std::string_view to_string(Rounding r);
std::optional<Rounding> parse_rounding(std::string_view s);

// True for the four round-to-nearest modes (they differ only at exact ties).
constexpr bool is_nearest(Rounding r) {
  return r == Rounding::half_even || r == Rounding::half_up || r == Rounding::half_away ||
         r == Rounding::half_down;
}

// R(num / den) exactly, for any den != 0 (either sign). The definition every other rounding
// routine in the project is tested against.
BigInt round_div(const BigInt& num, const BigInt& den, Rounding r);

// f(std::integral_constant<Rounding, r>{}) for the run-time mode r: the one switch behind every table of
// per-mode template instances (the kernels are templated on the mode so that no element pays for it).
template <class F>
decltype(auto) with_rounding(Rounding r, F&& f) {
  switch (r) {
    case Rounding::half_even: return f(std::integral_constant<Rounding, Rounding::half_even>{});
    case Rounding::half_up: return f(std::integral_constant<Rounding, Rounding::half_up>{});
    case Rounding::half_away: return f(std::integral_constant<Rounding, Rounding::half_away>{});
    case Rounding::half_down: return f(std::integral_constant<Rounding, Rounding::half_down>{});
    case Rounding::floor: return f(std::integral_constant<Rounding, Rounding::floor>{});
    case Rounding::ceil: return f(std::integral_constant<Rounding, Rounding::ceil>{});
    case Rounding::trunc: return f(std::integral_constant<Rounding, Rounding::trunc>{});
  }
  return f(std::integral_constant<Rounding, Rounding::floor>{});
}
BigInt round_rational(const Rational& x, Rounding r);

// R(num / 2^shift) for shift in [0, 62] on int64, no intermediate overflow (arithmetic shift plus a
// remainder test). Bit-identical to round_div(num, 2^shift, r).
int64_t round_shift_right(int64_t num, int shift, Rounding r);

// R(num / den) for den > 0 on int64: the floor quotient and remainder, then the rounding decided from
// the remainder. Bit-identical to round_div(num, den, r).
int64_t round_div_int64(int64_t num, int64_t den, Rounding r);

// The half-open/closed boundary where R(z) steps from v-1 to v:
//   R(z) >= v  <=>  z > boundary (or z >= boundary when inclusive).
// Used to derive thresholds and to tell which tie an output sat on.
struct StepBoundary {
  Rational boundary;
  bool inclusive;
};
StepBoundary step_boundary(int64_t v, Rounding r);

// The same boundary as an integer 2*boundary (boundaries are integers or half-integers), for the
// threshold derivation's integer-only arithmetic. |v| < 2^61.
struct TwiceStepBoundary {
  int64_t twice_boundary;
  bool inclusive;
};
TwiceStepBoundary twice_step_boundary(int64_t v, Rounding r);

}  // namespace qv
