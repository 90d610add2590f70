#include "ir/value_range.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace qv {

namespace {

// Union over output channels of [sum min(w*lo, w*hi) + b, sum max(w*lo, w*hi) + b].
std::pair<BigInt, BigInt> weighted_sum_range(const IntTensor& weight, const std::optional<IntTensor>& bias,
                                             const BigInt& lo, const BigInt& hi) {
  if (weight.rank() < 1 || weight.dim(0) < 1 || weight.numel() % weight.dim(0) != 0 ||
      static_cast<int64_t>(weight.data.size()) != weight.numel())
    throw std::invalid_argument("weight " + to_string(weight.shape) + " does not split into output channels");
  const int64_t channels = weight.dim(0), per_channel = weight.numel() / channels;
  if (bias && static_cast<int64_t>(bias->data.size()) != channels)
    throw std::invalid_argument("bias has " + std::to_string(bias->data.size()) + " values for " +
                                std::to_string(channels) + " output channels");
  std::pair<BigInt, BigInt> out;
  for (int64_t o = 0; o < channels; ++o) {
    // Sums of the positive and of the negative weights: a positive w is smallest at lo, a negative at hi.
    BigInt positive = 0, negative = 0;
    const int64_t* w = weight.data.data() + o * per_channel;
    for (int64_t i = 0; i < per_channel; ++i) (w[i] > 0 ? positive : negative) += w[i];
    BigInt b = 0;
    if (bias) b = bias->data[static_cast<size_t>(o)];
    const BigInt mn = lo * positive + hi * negative + b, mx = hi * positive + lo * negative + b;
    if (o == 0 || mn < out.first) out.first = mn;
    if (o == 0 || mx > out.second) out.second = mx;
  }
  return out;
}

std::pair<BigInt, BigInt> conv2d_range(const Conv2dOp& op, const IntType& input_type) {
  auto [lo, hi] = type_range(input_type);
  const bool pads = op.pad_top > 0 || op.pad_bottom > 0 || op.pad_left > 0 || op.pad_right > 0;
  if (pads) {
    lo = std::min(lo, BigInt(op.pad_value));
    hi = std::max(hi, BigInt(op.pad_value));
  }
  return weighted_sum_range(op.weight, op.bias, lo, hi);
}

}  // namespace

std::pair<BigInt, BigInt> type_range(const IntType& type) { return {BigInt(type.min()), BigInt(type.max())}; }

std::optional<IntType> narrowest_type_holding(const BigInt& lo, const BigInt& hi) {
  if (lo < INT64_MIN || hi > INT64_MAX || lo > hi) return std::nullopt;
  return IntType::covering(static_cast<int64_t>(lo), static_cast<int64_t>(hi));
}

std::pair<BigInt, BigInt> accumulator_range(const Node& node, const IntType& input_type) {
  if (const auto* conv = std::get_if<Conv2dOp>(&node.op)) return conv2d_range(*conv, input_type);
  if (const auto* linear = std::get_if<LinearOp>(&node.op)) {
    const auto [lo, hi] = type_range(input_type);
    return weighted_sum_range(linear->weight, linear->bias, lo, hi);
  }
  throw std::invalid_argument("accumulator_range(node, type) covers conv2d and linear, not " +
                              std::string(to_string(node.kind())) + " ('" + node.name + "')");
}

std::pair<BigInt, BigInt> accumulator_range(const Node& node, const ValueInfo& input) {
  if (node.kind() == OpKind::hadamard) {
    if (input.shape.size() != 2) throw std::invalid_argument("hadamard reads an [N, I] tensor, got " + to_string(input.shape));
    const auto [lo, hi] = type_range(input.type);
    const BigInt largest = std::max(abs(lo), abs(hi));
    const BigInt in_features = input.shape[1];
    return {BigInt(-in_features * largest), BigInt(in_features * largest)};
  }
  return accumulator_range(node, input.type);
}

}  // namespace qv
