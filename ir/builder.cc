#include "ir/builder.h"

#include <sstream>
#include <stdexcept>

#include "reference/accumulator_bound.h"
#include "reference/shapes.h"

namespace qv {

namespace {

IntType accumulator_type(const reference::AccumulatorBound& bound, const std::string& node) {
  const std::optional<IntType> t = bound.covering_type();
  if (!t) {
    std::ostringstream msg;
    msg << "node '" << node << "': accumulator range [" << bound.min << ", " << bound.max << "] exceeds 64 bits";
    throw std::invalid_argument(msg.str());
  }
  return *t;
}

void set_layout(IntTensor& t, const char* layout) {
  if (t.layout.empty()) t.layout = layout;
}

}  // namespace

const ValueInfo& NetworkBuilder::info(const std::string& name) const {
  for (const Node& n : nodes_)
    if (n.name == name) return n.output;
  throw std::invalid_argument("no node named '" + name + "'");
}

std::string NetworkBuilder::add(const std::string& name, std::vector<std::string> inputs, ValueInfo output, Op op) {
  for (const Node& n : nodes_)
    if (n.name == name) throw std::invalid_argument("duplicate node name '" + name + "'");
  for (const std::string& in : inputs) (void)info(in);  // throws on an unknown input
  nodes_.push_back(Node{name, std::move(inputs), std::move(output), std::move(op)});
  return name;
}

std::string NetworkBuilder::input(const std::string& name, Shape shape, IntType type) {
  return add(name, {}, ValueInfo{std::move(shape), type, {}}, InputOp{});
}

std::string NetworkBuilder::conv2d(const std::string& name, const std::string& input, IntTensor weight,
                                   std::optional<IntTensor> bias, int stride, int pad, int64_t pad_value, int groups,
                                   int dilation) {
  Conv2dOp op;
  op.weight = std::move(weight);
  set_layout(op.weight, "OIHW");
  op.bias = std::move(bias);
  if (op.bias) set_layout(*op.bias, "O");
  op.stride_h = op.stride_w = stride;
  op.pad_top = op.pad_bottom = op.pad_left = op.pad_right = pad;
  op.pad_value = pad_value;
  op.groups = groups;
  op.dilation_h = op.dilation_w = dilation;
  const ValueInfo& in = info(input);
  ValueInfo out{reference::conv2d_output_shape(op, in.shape), accumulator_type(reference::accumulator_bound(op, in.type), name), {}};
  return add(name, {input}, std::move(out), std::move(op));
}

std::string NetworkBuilder::linear(const std::string& name, const std::string& input, IntTensor weight,
                                   std::optional<IntTensor> bias) {
  LinearOp op;
  op.weight = std::move(weight);
  set_layout(op.weight, "OI");
  op.bias = std::move(bias);
  if (op.bias) set_layout(*op.bias, "O");
  const ValueInfo& in = info(input);
  ValueInfo out{reference::linear_output_shape(op, in.shape), accumulator_type(reference::accumulator_bound(op, in.type), name), {}};
  return add(name, {input}, std::move(out), std::move(op));
}

std::string NetworkBuilder::max_pool2d(const std::string& name, const std::string& input, int kernel, int stride, int pad) {
  MaxPool2dOp op;
  op.kernel_h = op.kernel_w = kernel;
  op.stride_h = op.stride_w = stride;
  op.pad_top = op.pad_bottom = op.pad_left = op.pad_right = pad;
  const ValueInfo& in = info(input);
  ValueInfo out{reference::max_pool2d_output_shape(op, in.shape), in.type, {}};
  return add(name, {input}, std::move(out), op);
}

std::string NetworkBuilder::avg_pool2d(const std::string& name, const std::string& input, int kernel, int stride,
                                       int shift, Rounding rounding, IntType out_type) {
  AvgPool2dOp op;
  op.kernel_h = op.kernel_w = kernel;
  op.stride_h = op.stride_w = stride;
  op.shift = shift;
  op.rounding = rounding;
  ValueInfo out{reference::avg_pool2d_output_shape(op, info(input).shape), out_type, {}};
  return add(name, {input}, std::move(out), op);
}

std::string NetworkBuilder::add_saturating(const std::string& name, const std::string& a, const std::string& b,
                                           IntType out_type) {
  if (info(a).shape != info(b).shape) throw std::invalid_argument("node '" + name + "': add_saturating shapes differ");
  ValueInfo out{info(a).shape, out_type, {}};
  return add(name, {a, b}, std::move(out), AddSaturatingOp{});
}

std::string NetworkBuilder::add_requant(const std::string& name, const std::vector<std::string>& inputs,
                                        std::vector<Requant> branches, IntType out_type) {
  if (inputs.empty() || inputs.size() != branches.size())
    throw std::invalid_argument("node '" + name + "': add_requant needs one branch requant per input");
  for (const std::string& in : inputs)
    if (info(in).shape != info(inputs[0]).shape) throw std::invalid_argument("node '" + name + "': add_requant shapes differ");
  ValueInfo out{info(inputs[0]).shape, out_type, {}};
  return add(name, inputs, std::move(out), AddRequantOp{std::move(branches)});
}

std::string NetworkBuilder::hadamard(const std::string& name, const std::string& input, int64_t out_features, bool negate) {
  const HadamardOp op{out_features, negate};
  const ValueInfo& in = info(input);
  const Shape shape = reference::hadamard_output_shape(op, in.shape);
  ValueInfo out{shape, accumulator_type(reference::accumulator_bound(op, in.shape[1], in.type), name), {}};
  return add(name, {input}, std::move(out), op);
}

std::string NetworkBuilder::flatten(const std::string& name, const std::string& input) {
  const ValueInfo& in = info(input);
  ValueInfo out{reference::flatten_output_shape(in.shape), in.type, {}};
  return add(name, {input}, std::move(out), FlattenOp{});
}

std::string NetworkBuilder::requant(const std::string& name, const std::string& input, Requant rq, IntType out_type) {
  const ValueInfo& in = info(input);
  if (in.shape.size() < 2 || rq.channels() != static_cast<size_t>(in.shape[1]))
    throw std::invalid_argument("node '" + name + "': requant channels do not match the input's axis 1");
  ValueInfo out{in.shape, out_type, {}};
  return add(name, {input}, std::move(out), RequantOp{std::move(rq)});
}

Network NetworkBuilder::build(const std::string& output_name) {
  (void)info(output_name);
  Network net;
  net.name = name_;
  net.nodes = std::move(nodes_);
  net.output = output_name;
  net.metadata = std::move(metadata_);
  nodes_.clear();
  metadata_.clear();
  return net;
}

}  // namespace qv
