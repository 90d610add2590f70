// requant: y[n,c,...] = requant_ref(rq, c, acc[n,c,...]) (channel = axis 1), the definitions of
// ir/requant.h in unbounded arithmetic.
//
// PreparedRequant precomputes per channel what does not depend on the accumulator. For the exact form,
// alpha*acc + delta = (p/q)*acc + r/s = (p*s*acc + r*q) / (q*s), reduced once per channel to
// (mul*acc + add) / den, so that y = clamp(round_div(mul*acc + add, den, R)): no rational normalization
// per element. When den = 2^k (k <= 62; the usual case: alpha and delta dyadic) and mul*acc + add does
// not overflow int64 (checked per element), round_shift_right gives the same value
// (ir/rounding.h: bit-identical to round_div by 2^k). The other forms call requant_ref directly. The
// property tests check PreparedRequant against requant_ref.
#pragma once

#include <vector>

#include "ir/network.h"
#include "reference/options.h"

namespace qv::reference {

class PreparedRequant {
 public:
  explicit PreparedRequant(const Requant& rq);
  int64_t operator()(size_t channel, int64_t acc) const;
  size_t channels() const { return rq_->channels(); }

 private:
  struct ExactChannel {
    BigInt mul, add, den;
    bool shift_form = false;  // den == 2^shift, shift <= 62, mul and add fit int64
    int64_t mul64 = 0, add64 = 0;
    int shift = 0;
  };
  const Requant* rq_;
  Rounding rounding_ = Rounding::half_even;
  std::vector<ExactChannel> exact_;  // filled for the exact form only
};

IntTensor requant(const RequantOp& op, const IntTensor& input, IntType out_type, const ReferenceOptions& options = {});

}  // namespace qv::reference
