// FusedRequant: a Requant prepared for an output stage, bit-identical to requant_ref.
//
// Everything that does not depend on the accumulator is decided once per channel, together with a proof
// from the accumulator range [acc_lo, acc_hi] (the declared type of the requant's input, which the
// evaluator checks) that the fixed-width arithmetic of the chosen route cannot overflow:
//   exact, dyadic    alpha*acc + delta = (mul*acc + add) / 2^k reduced once (as PreparedRequant);
//                    when |mul|*max|acc| + |add| < 2^63: one int64 multiply-add and a rounding shift
//                    templated on the rounding mode (round_shift_right's semantics, no per-element
//                    switch, vectorized for the tier);
//   exact, otherwise a dyadic shift proven equal on the accumulator range (see requant_stage.cc), else,
//                    when mul*acc + add and den fit int64, one int64 division and the rounding decided
//                    from its remainder (exact_div64); else, for outputs of up to 12 bits, the exact
//                    positions of its steps, found once, and a binary search (exact_steps); otherwise
//                    requant_ref in BigInt.
//   mul_add_shift    int64 when |mul|*max|acc| + |add| < 2^63 (the shift loop with floor), else __int128.
//   thresholds       |acc| < 2^62 (requant_fixed's precondition): a binary search, else requant_ref.
//   fixed_point      acc + bias (times 2^left for double rounding) inside int32 over the whole range:
//                    the gemmlowp/TFLite primitives (requant_fixed), else requant_ref.
// The routes are counted in path_counters() when the stage is built.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "integer/div_by_constant.h"
#include "integer/isa.h"
#include "ir/requant.h"
#include "ir/rounding.h"

namespace qv::integer {

class FusedRequant {
 public:
  FusedRequant(const Requant& rq, int64_t acc_lo, int64_t acc_hi, Isa isa = Isa::scalar);

  // y[i] = requant_ref(rq, channel, acc[i]) for i in [0, n).
  void apply(size_t channel, const int64_t* acc, int64_t* y, int64_t n) const;
  // The same, also widening [y_lo, y_hi] to cover every y[i] (fused into the vector loop where there is one).
  void apply(size_t channel, const int64_t* acc, int64_t* y, int64_t n, int64_t& y_lo, int64_t& y_hi) const;
  size_t channels() const { return channels_.size(); }

  // The int64 shift route of channel o (y = clamp(R((mul*acc + add) / 2^shift), lo, hi), overflow proven
  // for the declared accumulator range), for output stages that run it in registers; false when the
  // channel takes another route.
  struct ShiftParams {
    int64_t mul = 0, add = 0;
    int shift = 0;
    bool mul32 = false;  // mul and the accumulator range inside int32 (vpmuldq is exact)
  };
  bool shift_params(size_t o, ShiftParams& p) const;
  // Both for every channel, computed once (an output stage would otherwise redo it per evaluation):
  // has_shift()[o] is shift_params(o, shift_table()[o]).
  const ShiftParams* shift_table() const { return shift_table_.data(); }
  const char* has_shift() const { return has_shift_.data(); }
  bool any_shift() const { return any_shift_; }  // some has_shift()[o]
  // The shift route of channel o for int32 sums t whose accumulator is t + acc_add, on 16 int32 lanes:
  // y = clamp((((t*mul + bias) << lshift) >> 32) >> rshift), every right shift a floor (requant16_avx512.h). It holds
  // for t in [t_lo, t_hi] when high_mul_params returns true, which it does only after proving it:
  //   - the rounding is folded into bias: floor, ceil, half_up and half_down always; half_even and
  //     half_away only when no t in the range puts mul*acc + add exactly on a tie (solved as a linear
  //     congruence mod 2^shift, so the check is exact, not sampled); trunc never (its offset depends on
  //     the sign);
  //   - mul fits int32 (vpmuldq); a shift under 32 is brought to 32 by scaling mul and bias where mul
  //     stays inside int32, else by shifting t*mul + bias left by lshift;
  //   - (t*mul + bias) << lshift fits int64 at both ends of the range (it is affine in t, so everywhere
  //     between).
  // So y = clamp((((t*mul + bias) << lshift) >> 32) >> rshift).
  struct HighMulParams {
    int64_t bias = 0;
    int32_t mul = 0;
    int lshift = 0;  // 0..31
    int rshift = 0;  // the shift after the first 32: 0..30
  };
  bool high_mul_params(size_t o, int64_t acc_add, int64_t t_lo, int64_t t_hi, HighMulParams& p) const;
  // apply() for an output of at most 8 bits, stored as bytes (the low byte of each y: two's complement
  // when signed), widening [y_lo, y_hi]. On AVX-512 the shift route requantizes and narrows in one pass.
  void apply_narrow(size_t channel, const int64_t* acc, uint8_t* dst, int64_t n, int64_t& y_lo, int64_t& y_hi) const;
  // Whether apply_narrow runs some channel's exact_div64 route on 8 lanes straight into bytes (AVX-512
  // IFMA): callers count Path::requant_exact_div64_ifma_narrow once per node, not per plane.
  bool narrows_by_ifma() const;
  Rounding shift_rounding() const { return rounding_; }
  // The routes taken, with their channel counts ("exact_shift x32, reference x0"), for describe().
  std::string routes() const;
  int64_t lo() const;
  int64_t hi() const;

 private:
  enum class Route : uint8_t { exact_shift, mul_add_shift_int64, mul_add_shift_int128, thresholds, fixed_single, fixed_double, exact_div64, exact_steps, reference };
  struct Channel {
    Route route = Route::reference;
    int64_t mul = 0, add = 0;  // exact_shift, mul_add_shift, exact_div64
    int shift = 0;
    bool mul32 = false;        // mul and the accumulator range inside int32: shift32_ (vpmuldq)
    int64_t den = 1;           // exact_div64
    // exact_div64 by a multiply-high: n = mul*acc + add lies in [base, base + 2^bits) with base a multiple
    // of den (stored mod 2^64), so floor(n/den) = base_q + floor((n - base)/den) (div_by_constant.h).
    bool magic = false;
    uint64_t base = 0;
    int64_t base_q = 0;
    DivByConstant div{};
    // The same division on 8 lanes with AVX-512 IFMA (vpmadd52huq) when n - base < 2^51 and the
    // multiplier fits 52 bits: floor(u/den) = (high 52 bits of u*m) >> (shift - 52).
    bool ifma = false;
    // exact_steps: y = lo + #{k : sign*acc >= steps[k]}, steps[v - lo - 1] the first sign*acc with y >= v.
    int64_t sign = 1;
    std::vector<int64_t> steps;
  };
  const Requant* rq_;
  // The tier's loop y = clamp(R((mul*acc + add) / 2^shift)) for the node's rounding mode.
  using ShiftRun = void (*)(int64_t mul, int64_t add, int shift, int64_t lo, int64_t hi, const int64_t* acc, int64_t* y, int64_t n,
                            int64_t* y_range);
  ShiftRun shift_ = nullptr;
  ShiftRun shift32_ = nullptr;  // AVX-512 only
  // The shift route straight to bytes (AVX-512 only): y = clamp(R((mul*acc + add) / 2^shift)) as bytes.
  using NarrowShiftRun = void (*)(const ShiftParams& p, int64_t lo, int64_t hi, const int64_t* acc, uint8_t* dst, int64_t n,
                                  int64_t* y_range);
  NarrowShiftRun narrow_shift_ = nullptr;
  // exact_div64 on 8 lanes (AVX-512 IFMA; nullptr where the CPU or the tier lacks it).
  using Div64Vector = void (*)(const Channel& ch, int64_t lo, int64_t hi, const int64_t* acc, int64_t* y, int64_t n);
  Div64Vector div64_vector_ = nullptr;
  using Div64Narrow = void (*)(const Channel& ch, int64_t lo, int64_t hi, const int64_t* acc, uint8_t* dst, int64_t n, int64_t* y_range);
  Div64Narrow div64_narrow_ = nullptr;  // the same into bytes (apply_narrow)
  Rounding rounding_ = Rounding::floor;  // of the shift route
  std::vector<Channel> channels_;
  std::vector<ShiftParams> shift_table_;
  std::vector<char> has_shift_;
  bool any_shift_ = false;
};

// Per output channel of a conv/linear whose requant is fused: the 16-lane route where high_mul_params
// proved it for the channel's sums t in [-bound[o], bound[o]] (the accumulator is t + add[o], and
// |add| + bound < 2^31 so that it is tracked in int32 lanes). Decided once, by the planner.
struct HighMulChannel {
  FusedRequant::HighMulParams params;
  int32_t add = 0;
  bool ok = false;
  // The same channel's fma form (requant_fma16.h), proven equal on the same range, where there is one.
  bool fma = false;
  float fma_f = 0, fma_b = 0;
};
// Empty when no channel has the route. `fma_forms`: also look for each channel's fma form (for the
// output stages whose kernels run it: the fused requants of convs and depthwise layers).
std::vector<HighMulChannel> high_mul_channels(const FusedRequant& rq, const std::vector<int64_t>& add, const std::vector<int64_t>& bound,
                                              bool fma_forms);

}  // namespace qv::integer
