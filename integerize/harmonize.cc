#include "integerize/harmonize.h"

#include <algorithm>

namespace qv::integerize {

using fakequant::GraphNode;
using fakequant::GraphOp;

bool input_folds_into_first_conv(const fakequant::NetworkImpl& net) {
  const std::vector<GraphNode>& nodes = net.graph.nodes;
  bool any = false;
  for (const GraphNode& n : nodes)
    for (size_t j : n.inputs)
      if (nodes[j].op == GraphOp::input) {
        if (n.op != GraphOp::conv || n.conv->padding != 0) return false;
        any = true;
      }
  return any;
}

std::vector<HarmonizeChange> harmonize(fakequant::NetworkImpl& net, const fakequant::ActQuant& identity,
                                       const fakequant::ActQuant& input, bool fold_input) {
  const std::vector<GraphNode>& nodes = net.graph.nodes;
  const size_t N = nodes.size();
  // Which values are on an integer grid.
  std::vector<bool> on_grid(N, false);
  for (size_t i = 0; i < N; ++i) {
    const GraphNode& n = nodes[i];
    switch (n.op) {
      case GraphOp::act: on_grid[i] = true; break;
      case GraphOp::max_pool:
      case GraphOp::flatten: on_grid[i] = on_grid[n.inputs[0]]; break;
      case GraphOp::avg_pool: on_grid[i] = n.truncate || on_grid[n.inputs[0]]; break;
      default: break;
    }
  }
  std::vector<std::string> reason(N);
  auto need = [&](size_t j, const std::string& why) {
    if (!on_grid[j] && reason[j].empty()) reason[j] = why;
  };
  for (size_t i = 0; i < N; ++i) {
    const GraphNode& n = nodes[i];
    if (n.op == GraphOp::conv || n.op == GraphOp::linear || n.op == GraphOp::hadamard)
      need(n.inputs[0], "feeds " + n.name + " (" + std::string(to_string(n.op)) + ") without a quantizer");
    if (n.op == GraphOp::max_pool || n.op == GraphOp::avg_pool) {
      // A pool of a float value feeding an integer layer: quantize before the pool.
      if (!on_grid[i]) need(n.inputs[0], "feeds pool " + n.name + " without a quantizer");
    }
    if (n.op == GraphOp::add) {
      for (size_t j : n.inputs) need(j, "is an operand of " + n.name + " without a quantizer");
      for (size_t k = i + 1; k < N; ++k)
        if (std::find(nodes[k].inputs.begin(), nodes[k].inputs.end(), i) != nodes[k].inputs.end() && nodes[k].op != GraphOp::act)
          need(i, "the sum feeds " + nodes[k].name + " without a quantizer");
    }
  }
  std::vector<HarmonizeChange> changes;
  fakequant::Graph g;
  std::vector<size_t> remap(N);
  for (size_t i = 0; i < N; ++i) {
    GraphNode n = nodes[i];
    for (size_t& j : n.inputs) j = remap[j];
    remap[i] = g.add(n);
    const bool is_input = n.op == GraphOp::input;
    if (reason[i].empty() || (is_input && fold_input)) continue;
    fakequant::QAct act(fakequant::ActFn::identity, is_input ? input : identity);
    std::string module = "harmonize_" + n.name;
    std::replace(module.begin(), module.end(), '.', '_');
    net.register_module(module, act);
    GraphNode q{.op = GraphOp::act, .name = is_input ? "input_quant" : n.name + ".quant", .inputs = {remap[i]}};
    q.act = act;
    changes.push_back(HarmonizeChange{q.name, n.name, n.name + " " + reason[i]});
    remap[i] = g.add(q);
  }
  net.graph = std::move(g);
  return changes;
}

}  // namespace qv::integerize
