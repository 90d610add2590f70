// LibTorch fp32 forward of a qverify network's layers (see libtorch_bench.h). Node by node: conv2d ->
// at::conv2d (float weights of the same shape), requant -> ReLU for unsigned outputs (what a float
// network would run there), identity for signed ones; add_requant -> add; max/avg pooling, flatten and
// linear as themselves. Inference mode, no autograd.
#include "bench/libtorch_bench.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace qv::bench {

struct TorchNetwork {
  const Network* network = nullptr;
  std::vector<at::Tensor> weight, bias;  // per node (undefined where unused)
  at::Tensor input;
};

void TorchDeleter::operator()(TorchNetwork* p) const { delete p; }

namespace {

std::vector<int64_t> dims(const Shape& s) { return std::vector<int64_t>(s.begin(), s.end()); }

}  // namespace

TorchHandle torch_prepare(const Network& network) {
  c10::InferenceMode guard;
  at::manual_seed(1);
  TorchHandle net(new TorchNetwork);
  net->network = &network;
  net->weight.resize(network.nodes.size());
  net->bias.resize(network.nodes.size());
  for (size_t i = 0; i < network.nodes.size(); ++i) {
    const Node& n = network.nodes[i];
    if (const auto* c = std::get_if<Conv2dOp>(&n.op)) {
      net->weight[i] = at::randn(dims(c->weight.shape)) * 0.05;
      net->bias[i] = at::randn({c->weight.dim(0)}) * 0.01;
    } else if (const auto* l = std::get_if<LinearOp>(&n.op)) {
      net->weight[i] = at::randn(dims(l->weight.shape)) * 0.02;
      net->bias[i] = at::randn({l->weight.dim(0)}) * 0.01;
    } else if (n.kind() == OpKind::input && !net->input.defined()) {
      net->input = at::rand(dims(n.output.shape));
    }
  }
  return net;
}

double torch_run(TorchNetwork& net, int threads) {
  at::set_num_threads(threads);
  c10::InferenceMode guard;
  const Network& network = *net.network;
  const auto t0 = std::chrono::steady_clock::now();
  std::map<std::string, at::Tensor> v;
  at::Tensor last;
  for (size_t i = 0; i < network.nodes.size(); ++i) {
    const Node& n = network.nodes[i];
    auto in = [&](size_t k) { return v.at(n.inputs.at(k)); };
    at::Tensor y;
    switch (n.kind()) {
      case OpKind::input: y = net.input; break;
      case OpKind::conv2d: {
        const auto& c = std::get<Conv2dOp>(n.op);
        at::Tensor x = in(0);
        if (c.pad_top != c.pad_bottom || c.pad_left != c.pad_right)
          x = at::constant_pad_nd(x, {c.pad_left, c.pad_right, c.pad_top, c.pad_bottom});
        const int64_t ph = c.pad_top == c.pad_bottom ? c.pad_top : 0, pw = c.pad_left == c.pad_right ? c.pad_left : 0;
        y = at::conv2d(x, net.weight[i], net.bias[i], {c.stride_h, c.stride_w}, {ph, pw}, {c.dilation_h, c.dilation_w}, c.groups);
        break;
      }
      case OpKind::linear: y = at::linear(in(0), net.weight[i], net.bias[i]); break;
      case OpKind::requant: y = n.output.type.is_signed ? in(0) : at::relu(in(0)); break;
      case OpKind::add_requant:
      case OpKind::add_saturating: y = at::add(in(0), in(1)); break;
      case OpKind::hadamard: y = in(0); break;
      case OpKind::max_pool2d: {
        const auto& p = std::get<MaxPool2dOp>(n.op);
        y = at::max_pool2d(in(0), {p.kernel_h, p.kernel_w}, {p.stride_h, p.stride_w});
        break;
      }
      case OpKind::avg_pool2d: y = at::adaptive_avg_pool2d(in(0), {n.output.shape[2], n.output.shape[3]}); break;
      case OpKind::flatten: y = at::flatten(in(0), 1); break;
    }
    v[n.name] = y;
    last = y;
  }
  (void)last.sum().item<float>();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace qv::bench
