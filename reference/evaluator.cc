#include "reference/evaluator.h"

#include <map>
#include <stdexcept>
#include <string>

#include "ir/error.h"
#include "reference/add_requant.h"
#include "reference/add_saturating.h"
#include "reference/avg_pool2d.h"
#include "reference/conv2d.h"
#include "reference/flatten.h"
#include "reference/hadamard.h"
#include "reference/linear.h"
#include "reference/max_pool2d.h"
#include "reference/requant.h"

namespace qv {

namespace {

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

std::string where(const Node& node) { return "node '" + node.name + "' (" + std::string(to_string(node.kind())) + ")"; }

void check_value(const Node& node, const IntTensor& value) {
  if (value.shape != node.output.shape)
    throw InputError("", where(node), "shape " + to_string(value.shape) + " differs from the declared " + to_string(node.output.shape));
  for (size_t i = 0; i < value.data.size(); ++i)
    if (!node.output.type.contains(value.data[i]))
      throw InputError("", where(node), "value " + std::to_string(value.data[i]) + " at flat index " + std::to_string(i) +
                                           " is outside the declared type " + node.output.type.name());
}

IntTensor compute(const Node& node, const std::vector<const IntTensor*>& in, const ReferenceOptions& opt) {
  const IntType type = node.output.type;
  auto one = [&]() -> const IntTensor& {
    if (in.size() != 1) throw std::invalid_argument("expects 1 input, has " + std::to_string(in.size()));
    return *in[0];
  };
  return std::visit(
      Overloaded{
          [&](const InputOp&) -> IntTensor { throw std::logic_error("input nodes are not computed"); },
          [&](const Conv2dOp& op) { return reference::conv2d(op, one(), type, opt); },
          [&](const LinearOp& op) { return reference::linear(op, one(), type, opt); },
          [&](const MaxPool2dOp& op) { return reference::max_pool2d(op, one(), type, opt); },
          [&](const AvgPool2dOp& op) { return reference::avg_pool2d(op, one(), type, opt); },
          [&](const AddSaturatingOp&) {
            if (in.size() != 2) throw std::invalid_argument("expects 2 inputs, has " + std::to_string(in.size()));
            return reference::add_saturating(*in[0], *in[1], type, opt);
          },
          [&](const AddRequantOp& op) { return reference::add_requant(op, in, type, opt); },
          [&](const HadamardOp& op) { return reference::hadamard(op, one(), type, opt); },
          [&](const FlattenOp&) { return reference::flatten(one(), type, opt); },
          [&](const RequantOp& op) { return reference::requant(op, one(), type, opt); },
      },
      node.op);
}

}  // namespace

Trace evaluate_reference(const Network& network, const std::vector<IntTensor>& inputs, const ReferenceOptions& options) {
  Trace trace;
  trace.reserve(network.nodes.size());
  std::map<std::string, size_t> index;  // node name -> trace position
  size_t next_input = 0;
  for (const Node& node : network.nodes) {
    IntTensor value;
    if (node.kind() == OpKind::input) {
      if (next_input >= inputs.size())
        throw InputError("", where(node), "no input tensor given (" + std::to_string(inputs.size()) + " given)");
      value = inputs[next_input++];
      value.type = node.output.type;
    } else {
      std::vector<const IntTensor*> in;
      for (const std::string& name : node.inputs) {
        const auto it = index.find(name);
        if (it == index.end()) throw InputError("", where(node), "input '" + name + "' is not an earlier node");
        in.push_back(&trace[it->second].value);
      }
      try {
        value = compute(node, in, options);
      } catch (const std::invalid_argument& e) {
        throw InputError("", where(node), e.what());
      } catch (const std::range_error& e) {
        throw InputError("", where(node), e.what());
      }
    }
    check_value(node, value);
    value.scale = node.output.scale;
    index[node.name] = trace.size();
    trace.push_back({node.name, std::move(value)});
  }
  if (next_input != inputs.size())
    throw InputError("", "inputs", std::to_string(inputs.size()) + " tensors given for " + std::to_string(next_input) + " input nodes");
  return trace;
}

}  // namespace qv
