#include "fakequant/graph.h"

#include <stdexcept>

#include "fakequant/quantizers.h"

namespace qv::fakequant {

std::string_view to_string(GraphOp op) {
  switch (op) {
    case GraphOp::input: return "input";
    case GraphOp::conv: return "conv";
    case GraphOp::batch_norm: return "batch_norm";
    case GraphOp::act: return "act";
    case GraphOp::add: return "add";
    case GraphOp::max_pool: return "max_pool";
    case GraphOp::avg_pool: return "avg_pool";
    case GraphOp::flatten: return "flatten";
    case GraphOp::linear: return "linear";
    case GraphOp::hadamard: return "hadamard";
  }
  return "?";
}

size_t Graph::add(GraphNode n) {
  for (size_t i : n.inputs)
    if (i >= nodes.size()) throw std::logic_error("graph node " + n.name + " reads a later node");
  nodes.push_back(std::move(n));
  return nodes.size() - 1;
}

size_t Graph::find(const std::string& name) const {
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].name == name) return i;
  return npos;
}

torch::Tensor graph_avg_pool(const GraphNode& n, const GraphNode& producer, const torch::Tensor& x) {
  const int64_t k = n.kernel == 0 ? x.size(2) : n.kernel;
  if (n.truncate) {
    if (producer.op != GraphOp::act || !producer.act || producer.act->aq.kind != QuantKind::brevitas)
      throw std::logic_error(n.name + ": a truncating average pool needs a Brevitas quantizer in front");
    if (n.kernel != 0 || x.size(2) != x.size(3)) throw std::logic_error(n.name + ": truncating pool must be global and square");
    const QActImpl& a = *producer.act;
    return brevitas_trunc_avg_pool(x, a.scale().to(x.scalar_type()), a.aq.bits, n.truncate_bits, static_cast<int>(k),
                                   n.truncate_rounding);
  }
  if (n.kernel == 0) return torch::adaptive_avg_pool2d(x, {1, 1});
  return torch::avg_pool2d(x, {k, k}, {n.stride, n.stride});
}

torch::Tensor run_graph(const Graph& g, const torch::Tensor& x, std::vector<std::pair<std::string, torch::Tensor>>* all) {
  std::vector<torch::Tensor> v(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const GraphNode& n = g.nodes[i];
    auto in = [&](size_t k) -> const torch::Tensor& { return v[n.inputs.at(k)]; };
    switch (n.op) {
      case GraphOp::input: v[i] = x; break;
      case GraphOp::conv: v[i] = n.conv.ptr()->forward(in(0)); break;
      case GraphOp::batch_norm: v[i] = n.batch_norm.ptr()->forward(in(0)); break;
      case GraphOp::act:
        v[i] = n.act.ptr()->quantize(in(0));
        QActImpl::record(n.name, v[i]);
        break;
      case GraphOp::add: v[i] = in(0) + in(1); break;
      case GraphOp::max_pool: v[i] = torch::max_pool2d(in(0), {n.kernel, n.kernel}, {n.stride, n.stride}); break;
      case GraphOp::avg_pool: v[i] = graph_avg_pool(n, g.nodes[n.inputs.at(0)], in(0)); break;
      case GraphOp::flatten: v[i] = in(0).flatten(1); break;
      case GraphOp::linear: v[i] = n.linear.ptr()->forward(in(0)); break;
      case GraphOp::hadamard: v[i] = n.hadamard.ptr()->forward(in(0)); break;
    }
    if (all) all->emplace_back(n.name, v[i]);
  }
  return v.back();
}

}  // namespace qv::fakequant
