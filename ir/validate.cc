#include "ir/validate.h"

#include <cmath>
#include <map>
#include <stdexcept>

#include "ir/error.h"
#include "ir/value_range.h"
#include "reference/shapes.h"

namespace qv {

namespace {

class NodeCheck {
 public:
  NodeCheck(const std::string& file, size_t index, const Node& node)
      : file_(file), where_("nodes[" + std::to_string(index) + "] '" + node.name + "'") {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw InputError(file_, field.empty() ? where_ : where_ + ": " + field, what);
  }
  void require(bool ok, const std::string& field, const std::string& what) const {
    if (!ok) fail(field, what);
  }

  void scales(const std::vector<double>& scale, int64_t channels, const std::string& field) const {
    require(scale.empty() || scale.size() == 1 || static_cast<int64_t>(scale.size()) == channels, field,
            "expected 0, 1 or " + std::to_string(channels) + " scale values, got " + std::to_string(scale.size()));
    for (size_t i = 0; i < scale.size(); ++i)
      require(std::isfinite(scale[i]) && scale[i] > 0, field + "[" + std::to_string(i) + "]",
              "a scale must be positive and finite, got " + std::to_string(scale[i]));
  }

  // Positive dimensions, and fewer than 2^62 elements so that counts never overflow.
  void shape(const Shape& s, const std::string& field) const {
    int64_t elements = 1;
    for (int64_t d : s) {
      require(d > 0, field, "dimensions must be positive, got " + to_string(s));
      require(d <= (int64_t{1} << 62) / elements, field, "more than 2^62 elements in " + to_string(s));
      elements *= d;
    }
  }

  void tensor(const IntTensor& t, const std::string& field, size_t rank) const {
    require(t.type.valid(), field + ".type", "invalid type " + t.type.name());
    require(t.rank() == rank, field + ".shape", "expected rank " + std::to_string(rank) + ", got " + to_string(t.shape));
    shape(t.shape, field + ".shape");
    require(static_cast<int64_t>(t.data.size()) == t.numel(), field, "data count does not match the shape");
    for (size_t i = 0; i < t.data.size(); ++i)
      if (!t.type.contains(t.data[i]))
        fail(field, "element " + std::to_string(i) + " = " + std::to_string(t.data[i]) + " is outside the declared type " +
                        t.type.name());
    scales(t.scale, t.rank() > 0 ? t.shape[0] : 1, field + ".scale");
  }

  void requant(const Requant& rq, int64_t channels, IntType out, IntType acc, const std::string& field) const {
    require(rq.lo <= rq.hi, field + ".lo", "lo " + std::to_string(rq.lo) + " exceeds hi " + std::to_string(rq.hi));
    require(out.contains(rq.lo) && out.contains(rq.hi), field + ".lo",
            "clamp [" + std::to_string(rq.lo) + ", " + std::to_string(rq.hi) + "] is outside the output type " + out.name());
    const auto n = static_cast<size_t>(channels);
    const std::string count = "expected one value per channel (" + std::to_string(channels) + ")";
    std::visit(
        [&](const auto& f) {
          using F = std::decay_t<decltype(f)>;
          if constexpr (std::is_same_v<F, ExactRequant>) {
            require(f.alpha.size() == n, field + ".alpha", count + ", got " + std::to_string(f.alpha.size()));
            require(f.delta.size() == n, field + ".delta", count + ", got " + std::to_string(f.delta.size()));
          } else if constexpr (std::is_same_v<F, MulAddShiftRequant>) {
            require(f.mul.size() == n, field + ".mul", count);
            require(f.add.size() == n, field + ".add", count);
            require(f.shift >= 0 && f.shift <= 62, field + ".shift", "expected 0..62, got " + std::to_string(f.shift));
            const int64_t lim = int64_t{1} << 62;
            for (size_t i = 0; i < n; ++i)
              require(f.mul[i] > -lim && f.mul[i] < lim, field + ".mul[" + std::to_string(i) + "]", "|mul| must be below 2^62");
            require(acc.bits <= 62, field, "mul_add_shift needs accumulators within +-2^62, the input is " + acc.name());
          } else if constexpr (std::is_same_v<F, ThresholdRequant>) {
            require(f.sign.size() == n, field + ".sign", count);
            require(f.thresholds.size() == n, field + ".thresholds", count);
            for (size_t i = 0; i < n; ++i)
              require(f.sign[i] >= -1 && f.sign[i] <= 1, field + ".sign[" + std::to_string(i) + "]",
                      "expected -1, 0 or 1, got " + std::to_string(f.sign[i]));
            for (size_t i = 0; i < n; ++i) {
              const std::string fi = field + ".thresholds[" + std::to_string(i) + "]";
              require(static_cast<int64_t>(f.thresholds[i].size()) == rq.hi - rq.lo, fi,
                      "expected hi - lo = " + std::to_string(rq.hi - rq.lo) + " thresholds, got " +
                          std::to_string(f.thresholds[i].size()));
              for (size_t k = 1; k < f.thresholds[i].size(); ++k)
                require(f.thresholds[i][k - 1] <= f.thresholds[i][k], fi, "thresholds must be non-decreasing (entry " + std::to_string(k) + ")");
            }
            require(acc.bits <= 62, field, "thresholds need accumulators within +-2^62, the input is " + acc.name());
          } else {
            require(f.bias.size() == n, field + ".bias", count);
            require(f.multiplier.size() == n, field + ".multiplier", count);
            require(f.shift.size() == n, field + ".shift", count);
            // The fixed-width evaluator adds zero_point to a result within +-2^61 in int64.
            require(f.zero_point >= -(int64_t{1} << 62) && f.zero_point <= (int64_t{1} << 62), field + ".zero_point",
                    "expected |zero_point| <= 2^62, got " + std::to_string(f.zero_point));
            for (size_t i = 0; i < n; ++i) {
              const int s = f.shift[i];
              require(s >= -31 && s <= (f.double_rounding ? 31 : 30), field + ".shift[" + std::to_string(i) + "]",
                      "expected -31..30 (single rounding) or -31..31 (double), got " + std::to_string(s));
              const BigInt lo = BigInt(acc.min()) + f.bias[i], hi = BigInt(acc.max()) + f.bias[i];
              const BigInt scale = BigInt(1) << std::max(f.double_rounding ? s : 0, 0);
              require(lo * scale >= INT32_MIN && hi * scale <= INT32_MAX, field + ".bias[" + std::to_string(i) + "]",
                      "acc + bias (times 2^left_shift) must fit int32 for every " + acc.name() + " accumulator");
            }
          }
        },
        rq.form);
  }

 private:
  const std::string& file_;
  std::string where_;
};

}  // namespace

void validate_network(const Network& net, const std::string& file) {
  std::map<std::string, const Node*> seen;
  for (size_t i = 0; i < net.nodes.size(); ++i) {
    const Node& n = net.nodes[i];
    const NodeCheck c(file, i, n);
    c.require(!n.name.empty(), "name", "a node needs a non-empty name");
    c.require(!seen.count(n.name), "name", "duplicate node name");
    std::vector<const ValueInfo*> in;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      auto it = seen.find(n.inputs[k]);
      c.require(it != seen.end(), "inputs[" + std::to_string(k) + "]",
                "'" + n.inputs[k] + "' is not the name of an earlier node");
      in.push_back(&it->second->output);
    }
    c.require(n.output.type.valid(), "output.type", "invalid type " + n.output.type.name());
    c.shape(n.output.shape, "output.shape");
    c.scales(n.output.scale, n.output.shape.size() > 1 ? n.output.shape[1] : 1, "output.scale");

    auto arity = [&](size_t want) {
      c.require(n.inputs.size() == want, "inputs", "expected " + std::to_string(want) + " input(s), got " + std::to_string(n.inputs.size()));
    };
    auto declared_shape = [&](const Shape& inferred) {
      c.require(inferred == n.output.shape, "output.shape",
                "declared " + to_string(n.output.shape) + " but the op produces " + to_string(inferred));
    };
    // The declared type of a conv2d/linear/hadamard output must hold every accumulator it can produce.
    auto accumulator = [&](const ValueInfo& input) {
      const auto [lo, hi] = accumulator_range(n, input);
      if (lo >= n.output.type.min() && hi <= n.output.type.max()) return;
      const auto need = narrowest_type_holding(lo, hi);
      c.fail("output.type", "declared accumulator " + n.output.type.name() + " cannot hold the worst case [" + lo.str() +
                                ", " + hi.str() + "]; needs " + (need ? need->name() : std::string("more than 64 bits")));
    };

    try {
      switch (n.kind()) {
        case OpKind::input: arity(0); break;
        case OpKind::conv2d: {
          arity(1);
          const auto& op = std::get<Conv2dOp>(n.op);
          c.tensor(op.weight, "weight", 4);
          if (op.bias) c.tensor(*op.bias, "bias", 1);
          c.require(op.stride_h >= 1 && op.stride_w >= 1, "stride", "strides must be >= 1");
          c.require(op.dilation_h >= 1 && op.dilation_w >= 1, "dilation", "dilations must be >= 1");
          c.require(op.pad_top >= 0 && op.pad_bottom >= 0 && op.pad_left >= 0 && op.pad_right >= 0, "padding", "paddings must be >= 0");
          c.require(op.groups >= 1, "groups", "groups must be >= 1");
          c.require(in[0]->shape.size() == 4, "inputs[0]", "conv2d needs an NCHW input, got " + to_string(in[0]->shape));
          c.require(in[0]->shape[1] % op.groups == 0 && op.weight.dim(0) % op.groups == 0, "groups",
                    "groups " + std::to_string(op.groups) + " must divide the input channels " + std::to_string(in[0]->shape[1]) +
                        " and the output channels " + std::to_string(op.weight.dim(0)));
          c.require(op.weight.dim(1) * op.groups == in[0]->shape[1], "weight.shape",
                    "expected [O, " + std::to_string(in[0]->shape[1] / op.groups) + ", KH, KW] for " +
                        std::to_string(in[0]->shape[1]) + " input channels in " + std::to_string(op.groups) + " groups, got " +
                        to_string(op.weight.shape));
          if (op.bias) c.require(op.bias->shape == Shape{op.weight.dim(0)}, "bias.shape", "expected [" + std::to_string(op.weight.dim(0)) + "]");
          c.require(in[0]->type.contains(op.pad_value), "pad_value",
                    std::to_string(op.pad_value) + " is outside the input type " + in[0]->type.name());
          declared_shape(reference::conv2d_output_shape(op, in[0]->shape));
          accumulator(*in[0]);
          break;
        }
        case OpKind::linear: {
          arity(1);
          const auto& op = std::get<LinearOp>(n.op);
          c.tensor(op.weight, "weight", 2);
          if (op.bias) c.tensor(*op.bias, "bias", 1);
          c.require(in[0]->shape.size() == 2, "inputs[0]", "linear needs an [N, I] input, got " + to_string(in[0]->shape));
          c.require(op.weight.dim(1) == in[0]->shape[1], "weight.shape",
                    "expected [O, " + std::to_string(in[0]->shape[1]) + "], got " + to_string(op.weight.shape));
          if (op.bias) c.require(op.bias->shape == Shape{op.weight.dim(0)}, "bias.shape", "expected [" + std::to_string(op.weight.dim(0)) + "]");
          declared_shape(reference::linear_output_shape(op, in[0]->shape));
          accumulator(*in[0]);
          break;
        }
        case OpKind::max_pool2d: {
          arity(1);
          const auto& op = std::get<MaxPool2dOp>(n.op);
          c.require(op.kernel_h >= 1 && op.kernel_w >= 1, "kernel", "kernel sizes must be >= 1");
          c.require(op.stride_h >= 1 && op.stride_w >= 1, "stride", "strides must be >= 1");
          c.require(op.pad_top >= 0 && op.pad_bottom >= 0 && op.pad_left >= 0 && op.pad_right >= 0, "padding", "paddings must be >= 0");
          declared_shape(reference::max_pool2d_output_shape(op, in[0]->shape));
          c.require(n.output.type == in[0]->type, "output.type", "max pool keeps the input type " + in[0]->type.name());
          break;
        }
        case OpKind::avg_pool2d: {
          arity(1);
          const auto& op = std::get<AvgPool2dOp>(n.op);
          c.require(op.kernel_h >= 1 && op.kernel_w >= 1, "kernel", "kernel sizes must be >= 1");
          c.require(op.stride_h >= 1 && op.stride_w >= 1, "stride", "strides must be >= 1");
          c.require(op.shift >= 0 && op.shift <= 62, "shift", "expected 0..62, got " + std::to_string(op.shift));
          declared_shape(reference::avg_pool2d_output_shape(op, in[0]->shape));
          break;
        }
        case OpKind::add_saturating:
          arity(2);
          c.require(in[0]->shape == in[1]->shape, "inputs", "both operands need the same shape, got " + to_string(in[0]->shape) +
                                                                " and " + to_string(in[1]->shape));
          declared_shape(in[0]->shape);
          break;
        case OpKind::add_requant: {
          const auto& op = std::get<AddRequantOp>(n.op);
          c.require(n.inputs.size() >= 2, "inputs", "add_requant needs at least 2 inputs");
          c.require(op.branches.size() == n.inputs.size(), "branches", "expected one requant per input");
          for (size_t k = 0; k < in.size(); ++k) {
            c.require(in[k]->shape == in[0]->shape, "inputs", "every operand needs the shape " + to_string(in[0]->shape));
            c.require(in[k]->shape.size() >= 2, "inputs", "operands need a channel axis");
            const IntType wide{64, true};
            c.requant(op.branches[k], in[k]->shape[1], wide, in[k]->type, "branches[" + std::to_string(k) + "]");
          }
          declared_shape(in[0]->shape);
          break;
        }
        case OpKind::hadamard: {
          arity(1);
          const auto& op = std::get<HadamardOp>(n.op);
          c.require(op.out_features >= 1, "out_features", "expected >= 1");
          c.require(in[0]->shape.size() == 2, "inputs[0]", "hadamard needs an [N, I] input");
          declared_shape(reference::hadamard_output_shape(op, in[0]->shape));
          accumulator(*in[0]);
          break;
        }
        case OpKind::flatten:
          arity(1);
          declared_shape(reference::flatten_output_shape(in[0]->shape));
          c.require(n.output.type == in[0]->type, "output.type", "flatten keeps the input type " + in[0]->type.name());
          break;
        case OpKind::requant: {
          arity(1);
          c.require(in[0]->shape.size() >= 2, "inputs[0]", "requant needs a channel axis");
          c.requant(std::get<RequantOp>(n.op).requant, in[0]->shape[1], n.output.type, in[0]->type, "requant");
          declared_shape(in[0]->shape);
          break;
        }
      }
    } catch (const std::invalid_argument& e) {
      c.fail("", e.what());
    }
    seen[n.name] = &n;
  }
  if (!seen.count(net.output)) throw InputError(file, "output", "'" + net.output + "' is not a node of the network");
  if (net.inputs().empty()) throw InputError(file, "nodes", "the network has no input node");
}

}  // namespace qv
