#include "reference/accumulator_bound.h"

#include <algorithm>
#include <stdexcept>

namespace qv::reference {

namespace {

BigInt to_big(__int128 v) {
  const bool negative = v < 0;
  unsigned __int128 m = negative ? -static_cast<unsigned __int128>(v) : static_cast<unsigned __int128>(v);
  BigInt out = BigInt(static_cast<uint64_t>(m >> 64));
  out <<= 64;
  out += static_cast<uint64_t>(m);
  return negative ? BigInt(-out) : out;
}

bool inside_int64(const BigInt& v) { return v >= INT64_MIN && v <= INT64_MAX; }

void finish(AccumulatorBound& b) { b.fits_int64 = inside_int64(b.partial_min) && inside_int64(b.partial_max); }

// Bound over `channels` output channels, each the dot product of `per_channel` consecutive weights with
// inputs in [lo, hi], plus its bias.
AccumulatorBound weighted_sum_bound(const IntTensor& weight, const std::optional<IntTensor>& bias,
                                    int64_t channels, int64_t lo_in, int64_t hi_in) {
  if (channels <= 0 || weight.numel() % channels != 0) throw std::invalid_argument("weight shape does not split into output channels");
  const int64_t per_channel = weight.numel() / channels;
  const BigInt lo = lo_in, hi = hi_in;
  const BigInt lo_neg = std::min<int64_t>(lo_in, 0), hi_pos = std::max<int64_t>(hi_in, 0);
  AccumulatorBound out;
  for (int64_t o = 0; o < channels; ++o) {
    __int128 pos = 0, neg = 0;
    const int64_t* w = weight.data.data() + o * per_channel;
    for (int64_t i = 0; i < per_channel; ++i) (w[i] > 0 ? pos : neg) += w[i];
    const BigInt P = to_big(pos), Q = to_big(neg);
    const BigInt b = bias ? BigInt(bias->data.at(static_cast<size_t>(o))) : BigInt(0);
    const BigInt mn = lo * P + hi * Q + b, mx = hi * P + lo * Q + b;
    const BigInt pmn = lo_neg * P + hi_pos * Q + std::min(b, BigInt(0));
    const BigInt pmx = hi_pos * P + lo_neg * Q + std::max(b, BigInt(0));
    if (o == 0 || mn < out.min) out.min = mn;
    if (o == 0 || mx > out.max) out.max = mx;
    if (o == 0 || pmn < out.partial_min) out.partial_min = pmn;
    if (o == 0 || pmx > out.partial_max) out.partial_max = pmx;
  }
  finish(out);
  return out;
}

}  // namespace

std::optional<IntType> AccumulatorBound::covering_type() const {
  if (!inside_int64(min) || !inside_int64(max)) return std::nullopt;
  return IntType::covering(static_cast<int64_t>(min), static_cast<int64_t>(max));
}

AccumulatorBound accumulator_bound(const Conv2dOp& op, IntType input) {
  int64_t lo = input.min(), hi = input.max();
  if (op.pad_top > 0 || op.pad_bottom > 0 || op.pad_left > 0 || op.pad_right > 0) {
    lo = std::min(lo, op.pad_value);
    hi = std::max(hi, op.pad_value);
  }
  return weighted_sum_bound(op.weight, op.bias, op.weight.rank() == 4 ? op.weight.dim(0) : 0, lo, hi);
}

AccumulatorBound accumulator_bound(const LinearOp& op, IntType input) {
  return weighted_sum_bound(op.weight, op.bias, op.weight.rank() == 2 ? op.weight.dim(0) : 0, input.min(), input.max());
}

AccumulatorBound accumulator_bound(const HadamardOp&, int64_t in_features, IntType input) {
  // Each term is +x or -x: it lies in [min(lo, -hi), max(hi, -lo)].
  const BigInt lo = input.min(), hi = input.max(), n = in_features;
  AccumulatorBound out;
  out.min = n * std::min(lo, BigInt(-hi));
  out.max = n * std::max(hi, BigInt(-lo));
  out.partial_min = std::min(out.min, BigInt(0));
  out.partial_max = std::max(out.max, BigInt(0));
  finish(out);
  return out;
}

AccumulatorBound window_sum_bound(int64_t count, IntType input) {
  const BigInt n = count;
  AccumulatorBound out;
  out.min = n * BigInt(input.min());
  out.max = n * BigInt(input.max());
  out.partial_min = std::min(out.min, BigInt(0));
  out.partial_max = std::max(out.max, BigInt(0));
  finish(out);
  return out;
}

}  // namespace qv::reference
