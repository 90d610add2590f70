// The integer network description (IR): the contract between integerization, the reference, the
// optimized backend, the vectors and the harness. Plain data, no LibTorch, serializable
// (ir/serialize.h) and validated on load (ir/validate.h).
//
// A Network is a list of nodes in topological order. Every node produces one tensor, named after the
// node; `inputs` name earlier nodes. Activations are NCHW (rank 4) or NC (rank 2) with the batch first.
// A conv/linear/hadamard node outputs its raw accumulator, with a declared accumulator type that
// validation proves wide enough; a Requant node maps it to the next activation. Backends may fuse
// the two; the trace still records both.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "ir/requant.h"
#include "ir/rounding.h"
#include "ir/tensor.h"

namespace qv {

// The tensor a node produces, minus data.
struct ValueInfo {
  Shape shape;
  IntType type;
  std::vector<double> scale;  // as IntTensor::scale; informative for the harness and vectors
};

struct InputOp {};

struct Conv2dOp {
  IntTensor weight;                 // [O, I/groups, KH, KW], layout OIHW
  std::optional<IntTensor> bias;    // [O], added to the accumulator
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t pad_value = 0;            // integer written into the padding (e.g. the zero point 128 of an offset input)
  int dilation_h = 1, dilation_w = 1;
  int groups = 1;                   // groups == I == O: depthwise
};

struct LinearOp {
  IntTensor weight;                 // [O, I], layout OI
  std::optional<IntTensor> bias;    // [O]
};

struct MaxPool2dOp {
  int kernel_h = 2, kernel_w = 2, stride_h = 2, stride_w = 2;
  int pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;  // padding never wins the max
};

// y = clamp(R(sum(window) / 2^shift)) to the output type: Brevitas TruncAvgPool (floor or half_even).
// No padding; the window sum is exact.
struct AvgPool2dOp {
  int kernel_h = 7, kernel_w = 7, stride_h = 1, stride_w = 1;
  int shift = 0;
  Rounding rounding = Rounding::floor;
};

// y = clamp(a + b) to the output type (Brevitas shared-quantizer residual add).
struct AddSaturatingOp {};

// y = clamp(sum_i requant_i(x_i)) to the output type: each branch moved to a common grid by its own
// requantization (QuantLab PACTIntegerAdd), integer add, saturate. The branch requants carry their own
// clamps (use a wide one for "no clamp").
struct AddRequantOp {
  std::vector<Requant> branches;
};

// y = (negate ? -1 : 1) * H[:out_features, :in_features] x, H the Sylvester Hadamard matrix of order
// 2^k >= max(in, out): H[i][j] = (-1)^popcount(i & j). Generated, never stored.
struct HadamardOp {
  int64_t out_features = 0;
  bool negate = false;
};

struct FlattenOp {};  // NCHW -> N(C*H*W), row-major

// y = requant(acc) per channel (axis 1).
struct RequantOp {
  Requant requant;
};

using Op = std::variant<InputOp, Conv2dOp, LinearOp, MaxPool2dOp, AvgPool2dOp, AddSaturatingOp, AddRequantOp,
                        HadamardOp, FlattenOp, RequantOp>;

enum class OpKind { input, conv2d, linear, max_pool2d, avg_pool2d, add_saturating, add_requant, hadamard, flatten, requant };
std::string_view to_string(OpKind k);
std::optional<OpKind> parse_op_kind(std::string_view s);

struct Node {
  std::string name;
  std::vector<std::string> inputs;
  ValueInfo output;
  Op op;

  OpKind kind() const { return static_cast<OpKind>(op.index()); }
};

struct Network {
  std::string name;
  std::vector<Node> nodes;
  std::string output;                          // name of the node whose tensor is the network output
  std::map<std::string, std::string> metadata;  // provenance: model, config, seed, tool version

  const Node* find(const std::string& node_name) const;
  std::vector<const Node*> inputs() const;  // the InputOp nodes, in order
};

}  // namespace qv
