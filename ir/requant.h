// Requantization: from a wide accumulator to a narrow output integer, per output channel.
//
// Four forms, each a plain struct; the exact form is the meaning, the others are what hardware builds:
//
//   exact        y = clamp(R(alpha[o]*acc + delta[o]))           alpha, delta exact rationals, R named
//   mul_add_shift y = clamp(floor((acc*mul[o] + add[o]) / 2^d))   QuantLib RequantShift, PULP-NN
//   thresholds   y = lo + #{k : sign[o]*acc >= T[o][k]}            FINN MultiThreshold (all '>=' on integers)
//   fixed_point  y = clamp(zp + MBQM(acc + bias[o], M[o], shift[o]))  TFLite/gemmlowp, single or double rounding
//
// clamp is to [lo, hi] of the Requant. Each form has two evaluators: `*_ref` is the definition in
// unbounded arithmetic (BigInt), the other is the fixed-width implementation a backend runs (int64 with
// __int128 intermediates where needed, overflow impossible by the stated preconditions). Tests prove the
// two identical and bound each form's distance from the exact one (docs/requantization.md).
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "ir/bigint.h"
#include "ir/rounding.h"

namespace qv {

struct ExactRequant {
  std::vector<Rational> alpha;  // per output channel; any sign, zero allowed
  std::vector<Rational> delta;
  Rounding rounding = Rounding::half_even;
};

struct MulAddShiftRequant {
  std::vector<int64_t> mul;
  std::vector<int64_t> add;  // includes the rounding offset (2^(d-1) for round-to-nearest)
  int shift = 0;             // d in [0, 62]
};

struct ThresholdRequant {
  // y = lo + #{k : sign[o]*acc >= thresholds[o][k]}. sign is +1 (alpha > 0), -1 (alpha < 0) or 0
  // (alpha = 0: each threshold is 0 or 1, so the count is constant). thresholds[o] holds hi - lo
  // non-decreasing entries. The half_even per-parity '>'/'>=' rule is applied when they are derived
  // (acc is an integer, so 'acc > t' is stored as 'acc >= floor(t) + 1').
  std::vector<int8_t> sign;
  std::vector<std::vector<int64_t>> thresholds;
};

struct FixedPointRequant {
  // TFLite MultiplyByQuantizedMultiplier on x = acc + bias[o], which must fit int32.
  //   single rounding (TFLITE_SINGLE_ROUNDING): floor((x*M + 2^(30-shift)) / 2^(31-shift)), shift in [-31, 30]
  //   double rounding (gemmlowp): RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x*2^max(shift,0), M), max(-shift,0))
  // M may be negative (TFLite requires M >= 0; a negative alpha from a negative BN gamma needs it).
  std::vector<int64_t> bias;
  std::vector<int32_t> multiplier;
  std::vector<int> shift;
  int64_t zero_point = 0;
  bool double_rounding = true;
};

enum class RequantForm { exact, mul_add_shift, thresholds, fixed_point };
std::string_view to_string(RequantForm f);

struct Requant {
  std::variant<ExactRequant, MulAddShiftRequant, ThresholdRequant, FixedPointRequant> form;
  int64_t lo = 0, hi = 0;  // output clamp, inclusive

  RequantForm kind() const { return static_cast<RequantForm>(form.index()); }
  size_t channels() const;
};

// Definitions in unbounded arithmetic.
int64_t requant_ref(const Requant& rq, size_t channel, const BigInt& acc);

// Fixed-width implementations. Preconditions (checked by validation/conversion, asserted here):
// mul_add_shift: |acc|, |mul| < 2^62, |add| < 2^63; fixed_point: acc + bias fits int32.
int64_t requant_fixed(const Requant& rq, size_t channel, int64_t acc);

// gemmlowp/TFLite primitives, bit-exact with their published definitions.
// (a*b*2 + 2^31) / 2^32 rounded half away from zero; saturates only for a == b == INT32_MIN.
int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b);
// x / 2^exponent rounded half away from zero, exponent in [0, 31].
int32_t rounding_divide_by_pot(int32_t x, int exponent);

// ---- Conversions from the exact form. ----
//
// Each takes the accumulator range [acc_lo, acc_hi] the layer can produce and returns the form plus a
// proven bound: |y_form - y_exact| <= max_lsb_error for every acc in range (0 for thresholds).
// They throw std::invalid_argument with the channel and reason when a form cannot represent the layer
// (fixed_point with alpha = 0, or an accumulator outside int32).
struct Conversion {
  Requant requant;
  int64_t max_lsb_error = 0;
  Rational max_real_error;  // sup |z_form - z_exact| over the range, before rounding (in output LSBs)
};

Conversion to_thresholds(const Requant& exact, int64_t acc_lo, int64_t acc_hi);
Conversion to_mul_add_shift(const Requant& exact, int shift, int64_t acc_lo, int64_t acc_hi);
Conversion to_fixed_point(const Requant& exact, bool double_rounding, int64_t acc_lo, int64_t acc_hi);

}  // namespace qv
