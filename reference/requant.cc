#include "reference/requant.h"

#include <stdexcept>
#include <string>

#include "ir/requant.h"
#include "ir/rounding.h"
#include "reference/parallel.h"

namespace qv::reference {

namespace {

bool fits_int64(const BigInt& v) { return v >= INT64_MIN && v <= INT64_MAX; }

}  // namespace

PreparedRequant::PreparedRequant(const Requant& rq) : rq_(&rq) {
  if (rq.kind() != RequantForm::exact) return;
  const auto& f = std::get<ExactRequant>(rq.form);
  if (f.delta.size() != f.alpha.size()) throw std::invalid_argument("exact requant: alpha and delta sizes differ");
  rounding_ = f.rounding;
  for (size_t o = 0; o < f.alpha.size(); ++o) {
    using boost::multiprecision::denominator;
    using boost::multiprecision::numerator;
    const BigInt p = numerator(f.alpha[o]), q = denominator(f.alpha[o]);
    const BigInt r = numerator(f.delta[o]), s = denominator(f.delta[o]);
    ExactChannel c{p * s, r * q, q * s};
    const BigInt g = gcd(gcd(c.mul, c.add), c.den);  // > 0 since den > 0
    c.mul /= g, c.add /= g, c.den /= g;
    const unsigned long k = msb(c.den);
    if (lsb(c.den) == k && k <= 62 && fits_int64(c.mul) && fits_int64(c.add)) {
      c.shift_form = true;
      c.mul64 = static_cast<int64_t>(c.mul), c.add64 = static_cast<int64_t>(c.add), c.shift = static_cast<int>(k);
    }
    exact_.push_back(std::move(c));
  }
}

int64_t PreparedRequant::operator()(size_t channel, int64_t acc) const {
  if (exact_.empty()) return requant_ref(*rq_, channel, BigInt(acc));
  const ExactChannel& c = exact_.at(channel);
  const int64_t lo = rq_->lo, hi = rq_->hi;
  int64_t num = 0;
  if (c.shift_form && !__builtin_mul_overflow(c.mul64, acc, &num) && !__builtin_add_overflow(num, c.add64, &num)) {
    const int64_t y = round_shift_right(num, c.shift, rounding_);
    return y < lo ? lo : y > hi ? hi : y;
  }
  const BigInt y = round_div(c.mul * acc + c.add, c.den, rounding_);
  return y < lo ? lo : y > hi ? hi : static_cast<int64_t>(y);
}

IntTensor requant(const RequantOp& op, const IntTensor& input, IntType out_type, const ReferenceOptions& options) {
  if (input.rank() < 2) throw std::invalid_argument("requant input needs a channel axis");
  const int64_t N = input.dim(0), C = input.dim(1), inner = input.numel() / std::max<int64_t>(N * C, 1);
  if (op.requant.channels() != static_cast<size_t>(C))
    throw std::invalid_argument("requant has " + std::to_string(op.requant.channels()) + " channels, input has " +
                                std::to_string(C));
  const PreparedRequant rq(op.requant);
  IntTensor out(input.shape, out_type, input.layout);
  parallel_for(N * C, options.threads, [&](int64_t nc) {
    const size_t channel = static_cast<size_t>(nc % C);
    for (int64_t i = nc * inner; i < (nc + 1) * inner; ++i) out.data[static_cast<size_t>(i)] = rq(channel, input.data[static_cast<size_t>(i)]);
  });
  return out;
}

}  // namespace qv::reference
