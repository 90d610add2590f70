#include "ir/rational.h"

#include <cmath>
#include <cstdlib>

#include "ir/rounding.h"

namespace qv {

std::optional<Rational> exact_rational(double x) {
  if (!std::isfinite(x)) return std::nullopt;
  if (x == 0) return Rational(0);
  int e = 0;
  const double m = std::frexp(x, &e);          // x = m * 2^e, 0.5 <= |m| < 1
  const auto mi = static_cast<int64_t>(std::ldexp(m, 53));  // exact: m has at most 53 significant bits
  e -= 53;
  BigInt num = mi, den = 1;
  if (e >= 0) num <<= e;
  else den <<= -e;
  return Rational(num, den);
}

std::string to_string(const Rational& x) {
  const BigInt& n = boost::multiprecision::numerator(x);
  const BigInt& d = boost::multiprecision::denominator(x);
  if (d == 1) return n.str();
  return n.str() + "/" + d.str();
}

namespace {

std::optional<BigInt> parse_bigint(const std::string& s) {
  if (s.empty()) return std::nullopt;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == s.size()) return std::nullopt;
  for (size_t j = i; j < s.size(); ++j)
    if (s[j] < '0' || s[j] > '9') return std::nullopt;
  BigInt v(s.substr(i));
  return s[0] == '-' ? BigInt(-v) : v;
}

}  // namespace

std::optional<Rational> parse_rational(const std::string& s) {
  const auto slash = s.find('/');
  if (slash != std::string::npos) {
    auto n = parse_bigint(s.substr(0, slash));
    auto d = parse_bigint(s.substr(slash + 1));
    if (!n || !d || *d == 0) return std::nullopt;
    return make_rational(*n, *d);
  }
  if (auto n = parse_bigint(s)) return Rational(*n);
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return exact_rational(v);  // nullopt for nan / inf
}

double to_double_nearest(const Rational& x) {
  if (x == 0) return 0.0;
  // Scale to a 54+ bit integer quotient, round half_even to 53 bits, then ldexp (exact unless subnormal).
  const long e = floor_log2_abs(x);
  const long shift = 52 - e;  // |x| * 2^shift in [2^52, 2^53)
  Rational scaled = x;
  if (shift >= 0) scaled *= Rational(BigInt(1) << shift);
  else scaled /= Rational(BigInt(1) << -shift);
  const BigInt m = round_rational(scaled, Rounding::half_even);
  return std::ldexp(static_cast<double>(m), static_cast<int>(-shift));
}

long floor_log2_abs(const Rational& x) {
  BigInt n = abs(boost::multiprecision::numerator(x));
  const BigInt& d = boost::multiprecision::denominator(x);
  long e = static_cast<long>(boost::multiprecision::msb(n)) - static_cast<long>(boost::multiprecision::msb(d));
  // 2^e is within a factor 2 of |x|; fix up so that 2^e <= |x| < 2^(e+1).
  auto pow2 = [](long k) { return k >= 0 ? Rational(BigInt(1) << k) : Rational(BigInt(1), BigInt(1) << -k); };
  const Rational ax = abs(x);
  while (pow2(e) > ax) --e;
  while (pow2(e + 1) <= ax) ++e;
  return e;
}

}  // namespace qv
