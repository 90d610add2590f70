#include "integer/evaluator.h"

#include <map>
#include <stdexcept>
#include <string>

#include "integer/conv_gemm.h"
#include "integer/depthwise.h"
#include "integer/max_pool2d.h"
#include "integer/path_counters.h"
#include "integer/tensor_alloc.h"
#include "integer/thread_pool.h"
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
#include "reference/shapes.h"

namespace qv::integer {

namespace {

std::string where(const Node& node) { return "node '" + node.name + "' (" + std::string(qv::to_string(node.kind())) + ")"; }

// The reference evaluator's check, with its message.
void check_value(const Node& node, const IntTensor& value) {
  if (value.shape != node.output.shape)
    throw InputError("", where(node), "shape " + qv::to_string(value.shape) + " differs from the declared " + qv::to_string(node.output.shape));
  for (size_t i = 0; i < value.data.size(); ++i)
    if (!node.output.type.contains(value.data[i]))
      throw InputError("", where(node), "value " + std::to_string(value.data[i]) + " at flat index " + std::to_string(i) +
                                           " is outside the declared type " + node.output.type.name());
}

// check_value when the kernel already knows min/max: the full pass only to name a failure.
void check_known_range(const Node& node, const IntTensor& value, int64_t mn, int64_t mx) {
  if (value.shape != node.output.shape || (!value.data.empty() && (!node.output.type.contains(mn) || !node.output.type.contains(mx))))
    check_value(node, value);
}

IntTensor reference_op(const Node& node, const std::vector<const IntTensor*>& in, int threads) {
  const reference::ReferenceOptions opt{.threads = threads};
  const IntType type = node.output.type;
  auto one = [&]() -> const IntTensor& {
    if (in.size() != 1) throw std::invalid_argument("expects 1 input, has " + std::to_string(in.size()));
    return *in[0];
  };
  PathCounters& pc = path_counters();
  switch (node.kind()) {
    case OpKind::conv2d: pc.add(Path::conv2d_reference); return reference::conv2d(std::get<Conv2dOp>(node.op), one(), type, opt);
    case OpKind::linear: pc.add(Path::linear_reference); return reference::linear(std::get<LinearOp>(node.op), one(), type, opt);
    default: break;
  }
  pc.add(Path::other_reference);
  switch (node.kind()) {
    case OpKind::max_pool2d: return reference::max_pool2d(std::get<MaxPool2dOp>(node.op), one(), type, opt);
    case OpKind::avg_pool2d: return reference::avg_pool2d(std::get<AvgPool2dOp>(node.op), one(), type, opt);
    case OpKind::add_saturating:
      if (in.size() != 2) throw std::invalid_argument("expects 2 inputs, has " + std::to_string(in.size()));
      return reference::add_saturating(*in[0], *in[1], type, opt);
    case OpKind::add_requant: return reference::add_requant(std::get<AddRequantOp>(node.op), in, type, opt);
    case OpKind::hadamard: return reference::hadamard(std::get<HadamardOp>(node.op), one(), type, opt);
    case OpKind::flatten: return reference::flatten(one(), type, opt);
    case OpKind::requant: return reference::requant(std::get<RequantOp>(node.op), one(), type, opt);
    default: throw std::logic_error("no reference dispatch for " + std::string(qv::to_string(node.kind())));
  }
}

// A requant node on its own: the prepared stage over every (n, c) run.
IntTensor run_requant(const FusedRequant& rq, const RequantOp& op, const IntTensor& in, IntType type, ThreadPool& pool,
                      std::vector<int64_t>* recycled) {
  if (in.rank() < 2) throw std::invalid_argument("requant input needs a channel axis");
  const int64_t N = in.dim(0), C = in.dim(1), inner = in.numel() / std::max<int64_t>(N * C, 1);
  if (op.requant.channels() != static_cast<size_t>(C))
    throw std::invalid_argument("requant has " + std::to_string(op.requant.channels()) + " channels, input has " + std::to_string(C));
  IntTensor out = new_tensor(in.shape, type, in.layout.c_str(), recycled);
  pool.run(N * C, [&](int64_t nc) {
    rq.apply(static_cast<size_t>(nc % C), in.data.data() + nc * inner, out.data.data() + nc * inner, inner);
  });
  return out;
}

}  // namespace

Trace evaluate(const Plan& plan, const std::vector<IntTensor>& inputs, Trace recycled) {
  const Network& network = plan.network();
  ThreadPool pool(plan.threads());
  Workspace workspace;
  Trace trace;
  trace.reserve(network.nodes.size());
  std::map<std::string, size_t> index;
  size_t next_input = 0;
  IntTensor fused_value;  // the requant tensor computed by the previous node's output stage
  MinMax fused_range;
  auto storage = [&](size_t node_index) -> std::vector<int64_t>* {
    if (node_index >= recycled.size() || recycled[node_index].node != network.nodes[node_index].name) return nullptr;
    return &recycled[node_index].value.data;
  };
  for (size_t i = 0; i < network.nodes.size(); ++i) {
    const Node& node = network.nodes[i];
    const NodePlan& np = plan.nodes()[i];
    IntTensor value;
    if (node.kind() == OpKind::input) {
      if (next_input >= inputs.size())
        throw InputError("", where(node), "no input tensor given (" + std::to_string(inputs.size()) + " given)");
      value = inputs[next_input++];
      value.type = node.output.type;
      check_value(node, value);  // the planner's packing relies on the declared type
    } else {
      std::vector<const IntTensor*> in;
      for (const std::string& name : node.inputs) {
        const auto it = index.find(name);
        if (it == index.end()) throw InputError("", where(node), "input '" + name + "' is not an earlier node");
        in.push_back(&trace[it->second].value);
      }
      try {
        switch (np.kernel) {
          case NodeKernel::gemm:
          case NodeKernel::depthwise: {
            const IntTensor& x = *in.at(0);
            const bool conv = node.kind() == OpKind::conv2d;
            const Shape shape = conv ? reference::conv2d_output_shape(std::get<Conv2dOp>(node.op), x.shape)
                                     : reference::linear_output_shape(std::get<LinearOp>(node.op), x.shape);
            if (shape != node.output.shape)
              throw InputError("", where(node), "shape " + qv::to_string(shape) + " differs from the declared " + qv::to_string(node.output.shape));
            const char* layout = conv ? "NCHW" : "NC";
            value = new_tensor(shape, node.output.type, layout, storage(i));
            OutputStage stage;
            stage.acc_out = value.data.data();
            stage.O = shape[1];
            stage.plane = conv ? shape[2] * shape[3] : 1;
            stage.min_max = min_max_for(plan.isa());
            stage.acc_lo = node.output.type.min(), stage.acc_hi = node.output.type.max();
            if (np.fuses_next) {
              const Node& next = network.nodes[i + 1];
              fused_value = new_tensor(shape, next.output.type, layout, storage(i + 1));
              stage.requant_out = fused_value.data.data();
              stage.requant = plan.nodes()[i + 1].requant.get();
            }
            const MinMax mm = np.kernel == NodeKernel::gemm ? run_gemm(*np.gemm, x, stage, pool, workspace)
                                                            : run_depthwise(*np.depthwise, x, stage, plan.isa(), pool, workspace);
            check_known_range(node, value, mm.acc_min, mm.acc_max);
            fused_range = mm;
            break;
          }
          case NodeKernel::fused: {
            path_counters().add(Path::requant_fused);
            value = std::move(fused_value);
            check_known_range(node, value, fused_range.y_min, fused_range.y_max);
            break;
          }
          case NodeKernel::max_pool2d: {
            path_counters().add(Path::max_pool2d);
            if (in.size() != 1) throw std::invalid_argument("expects 1 input, has " + std::to_string(in.size()));
            value = run_max_pool2d(std::get<MaxPool2dOp>(node.op), *in[0], node.output.type, pool, storage(i));
            check_value(node, value);
            break;
          }
          case NodeKernel::add_requant:
            path_counters().add(Path::add_requant);
            value = run_add_requant(*np.add_requant, in, node.output.type, pool, storage(i));
            check_value(node, value);
            break;
          case NodeKernel::requant:
            value = run_requant(*np.requant, std::get<RequantOp>(node.op), *in.at(0), node.output.type, pool, storage(i));
            check_value(node, value);
            break;
          default:
            value = reference_op(node, in, plan.threads());
            check_value(node, value);
            break;
        }
      } catch (const std::invalid_argument& e) {
        throw InputError("", where(node), e.what());
      } catch (const std::range_error& e) {
        throw InputError("", where(node), e.what());
      }
    }
    value.scale = node.output.scale;
    index[node.name] = trace.size();
    trace.push_back({node.name, std::move(value)});
  }
  if (next_input != inputs.size())
    throw InputError("", "inputs", std::to_string(inputs.size()) + " tensors given for " + std::to_string(next_input) + " input nodes");
  return trace;
}

Trace evaluate_optimized(const Network& network, const std::vector<IntTensor>& inputs, const Options& options) {
  const Plan plan(network, options);
  return evaluate(plan, inputs);
}

}  // namespace qv::integer
