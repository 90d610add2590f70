// The dataflow graph of a fake-quant network: what each model's forward computes, node by node, with
// handles to the modules that hold the parameters. The models build it when they are constructed and
// their forward *is* run_graph, so the graph the integerization passes read cannot drift from the
// network that is trained and traced.
//
// Node names are the peers' module paths ("features.3.residual_branch.1.2"); nodes without a module
// (adds, pools, flatten) are named after the block they belong to ("features.3.add").
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "fakequant/layers.h"

namespace qv::fakequant {

enum class GraphOp { input, conv, batch_norm, act, add, max_pool, avg_pool, flatten, linear, hadamard };
std::string_view to_string(GraphOp op);

struct GraphNode {
  GraphOp op = GraphOp::input;
  std::string name;
  std::vector<size_t> inputs;  // indices of earlier nodes

  QConv2d conv{nullptr};
  torch::nn::BatchNorm2d batch_norm{nullptr};
  QAct act{nullptr};  // may be shared by several nodes (Brevitas shared quantizer)
  QLinear linear{nullptr};
  HadamardClassifier hadamard{nullptr};

  // Pools. avg_pool with kernel 0 is the global average pool. A truncating avg pool is Brevitas'
  // TruncAvgPool2d on the grid of the quantizer that produced its input.
  int64_t kernel = 0, stride = 1;
  bool truncate = false;
  int truncate_bits = 8;
  Rounding truncate_rounding = Rounding::floor;
};

struct Graph {
  std::vector<GraphNode> nodes;

  size_t add(GraphNode n);
  size_t output() const { return nodes.size() - 1; }
  const GraphNode& at(size_t i) const { return nodes.at(i); }
  // Index of the node called `name`, or npos.
  size_t find(const std::string& name) const;
  static constexpr size_t npos = static_cast<size_t>(-1);
};

// Evaluates the graph. Activation outputs go to the QAct recorder (fakequant/trace.h) under the node's
// name; `all`, when given, receives every node's output in node order.
torch::Tensor run_graph(const Graph& g, const torch::Tensor& x, std::vector<std::pair<std::string, torch::Tensor>>* all = nullptr);

// Brevitas TruncAvgPool2d over a quantizer's grid, or the float average (global when kernel is 0).
torch::Tensor graph_avg_pool(const GraphNode& n, const GraphNode& producer, const torch::Tensor& x);

}  // namespace qv::fakequant
