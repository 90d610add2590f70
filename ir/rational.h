// Exact rationals from float constants, and their text form in IR files.
//
// Every float32/float64 is a dyadic rational m * 2^e; products and quotients of such constants are
// exact rationals. The requantization constants of a folded layer (alpha = s_in*s_w*g/s_out,
// delta = ...) are built from the float constants of the fake-quant network this way, with no rounding.
#pragma once

#include <optional>
#include <string>

#include "ir/bigint.h"

namespace qv {

// num/den for any den != 0 (boost's rational refuses a negative denominator).
inline Rational make_rational(const BigInt& num, const BigInt& den) {
  return den < 0 ? Rational(BigInt(-num), BigInt(-den)) : Rational(num, den);
}

// Exact value of a finite double (nullopt for NaN and infinities).
std::optional<Rational> exact_rational(double x);
// Exact value of a finite float.
inline std::optional<Rational> exact_rational(float x) { return exact_rational(static_cast<double>(x)); }

// "p/q" in lowest terms with q > 0, or "p" when q == 1.
std::string to_string(const Rational& x);
// Accepts "p", "p/q" (q != 0, any terms) and decimal or hex-float literals ("0.25", "-1e-3",
// "0x1.8p-3"), the latter converted exactly from their double value. nullopt on anything else,
// including nan and inf.
std::optional<Rational> parse_rational(const std::string& s);

// Nearest double (ties to even) of an exact rational.
double to_double_nearest(const Rational& x);

// floor(log2 |x|) for x != 0.
long floor_log2_abs(const Rational& x);

}  // namespace qv
