// The quantized graph: a fake-quant network reduced to exact numbers, with no LibTorch.
//
// extract.h reads it out of a LibTorch network: integer weights with their per-channel scales, every
// float constant as the exact rational it is (a float is a dyadic rational), BatchNorm as the affine
// map y = mul * x + add, every activation quantizer as the integer grid it rounds onto. Everything
// after that (the exact semantics in exact_eval.h, the lowering passes in lower.h) works on this plain
// data, so the property tests can generate random graphs without building LibTorch modules.
//
// Real values: an activation quantizer's output q stands for q * scale[c] + offset[c]. Its input x (a
// real) maps to q = clamp(R((x - offset[c]) / scale[c]), qmin, qmax): the non-linearity (ReLU, ReLU6)
// and the clipping thresholds are folded into qmin/qmax, which is exact because R is monotone.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "ir/bigint.h"
#include "ir/int_type.h"
#include "ir/rounding.h"
#include "ir/tensor.h"

namespace qv::integerize {

// Per-channel (size C) or per-tensor (size 1) rationals.
using Channels = std::vector<Rational>;
const Rational& channel(const Channels& v, int64_t c);  // v[0] when per tensor

// The network input: real values (the float input tensor, exactly).
struct QInput {
  Shape shape;  // NCHW
};

struct QConv {
  IntTensor weight;         // integers, OIHW
  Channels weight_scale;    // per output channel or per tensor
  Channels bias;            // empty or per output channel (real)
  int stride = 1, pad = 0, groups = 1;
};

struct QLinear {
  IntTensor weight;         // integers, OI
  Channels weight_scale;
  Channels bias;
};

// y = mul[c] * x + add[c]: BatchNorm in inference, 1/sqrt(var + eps) taken as the float64 value.
struct QBatchNorm {
  Channels mul, add;
};

struct QAct {
  Channels scale, offset;
  IntType type;
  int64_t qmin = 0, qmax = 0;  // clamp, within type
  Rounding rounding = Rounding::half_even;
};

struct QAdd {};

struct QMaxPool {
  int kernel = 2, stride = 2;
};

// Average pool over a quantized input. truncate: Brevitas TruncAvgPool2d, q = clamp(R(S / 2^shift),
// 0, 2^bits - 1) with output scale out_scale. Otherwise the float mean, whose real value is
// S * s_in / K^2 exactly. kernel 0 = global.
struct QAvgPool {
  int kernel = 0, stride = 1;
  bool truncate = false;
  int shift = 0, bits = 8;
  Rounding rounding = Rounding::floor;
  Rational out_scale;
};

struct QFlatten {};

// -sign * H x (Brevitas HadamardClassifier up to its positive normalization; only the argmax is defined).
struct QHadamard {
  int64_t out_features = 0;
  bool negate = false;
};

using QOp = std::variant<QInput, QConv, QLinear, QBatchNorm, QAct, QAdd, QMaxPool, QAvgPool, QFlatten, QHadamard>;

struct QNode {
  std::string name;
  std::vector<size_t> inputs;
  QOp op;
  template <class T> const T* as() const { return std::get_if<T>(&op); }
};

struct QGraph {
  std::string name;
  std::vector<QNode> nodes;  // topological order; the last node is the output
  size_t find(const std::string& n) const;  // index or nodes.size()
};

}  // namespace qv::integerize
