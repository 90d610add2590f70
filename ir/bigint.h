// Arbitrary-precision numbers for the reference: unbounded integers and exact rationals.
#pragma once

#include <boost/multiprecision/cpp_int.hpp>

namespace qv {

using BigInt = boost::multiprecision::cpp_int;
using Rational = boost::multiprecision::cpp_rational;

}  // namespace qv
