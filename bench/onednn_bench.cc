// oneDNN int8 convolutions of the layers of a qverify network (see onednn_bench.h).
#include "bench/onednn_bench.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace qv::bench {

using dnnl::memory;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

struct OneDnnLayer {
  dnnl::primitive prim;
  std::unordered_map<int, memory> args;
  std::string impl;
  std::string node;  // the qverify node this primitive stands for
};

struct OneDnnNetwork {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::vector<OneDnnLayer> layers;
};

void OneDnnDeleter::operator()(OneDnnNetwork* p) const { delete p; }

bool onednn_available() { return true; }

namespace {

memory filled(const memory::desc& md, const dnnl::engine& eng, std::mt19937& rng) {
  memory m(md, eng);
  auto* bytes = static_cast<unsigned char*>(m.get_data_handle());
  const size_t n = md.get_size();
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<unsigned char>(rng() & 0x3F);  // small non-negative values
  return m;
}

// The activation type of a node: u8 when unsigned (the packed operand of our Q8 path), s8 when signed.
dt act_type(const IntType& t) { return t.is_signed ? dt::s8 : dt::u8; }

}  // namespace

OneDnnHandle onednn_prepare(const Network& network, int threads) {
  omp_set_num_threads(threads);
  OneDnnHandle net(new OneDnnNetwork);
  std::mt19937 rng(1);
  std::map<std::string, const Node*> by_name;
  std::map<std::string, std::vector<const Node*>> consumers;
  for (const Node& n : network.nodes) {
    by_name[n.name] = &n;
    for (const std::string& in : n.inputs) consumers[in].push_back(&n);
  }
  for (const Node& node : network.nodes) {
    const bool conv = node.kind() == OpKind::conv2d, linear = node.kind() == OpKind::linear;
    if (!conv && !linear) continue;
    const Node& input = *by_name.at(node.inputs.at(0));
    const dt src_t = act_type(input.output.type);
    // dst: the type of the requant that follows (output scales fold it), else s32 (raw accumulators).
    dt dst_t = dt::s32;
    const auto c = consumers.find(node.name);
    if (c != consumers.end() && c->second.size() == 1 && c->second[0]->kind() == OpKind::requant &&
        c->second[0]->output.type.bits <= 8)
      dst_t = act_type(c->second[0]->output.type);
    dnnl::primitive_attr attr;
    if (dst_t != dt::s32) attr.set_output_scales(0, {1.0f / 4096});
    OneDnnLayer layer;
    layer.node = node.name;
    if (conv) {
      const auto& op = std::get<Conv2dOp>(node.op);
      const auto& is = input.output.shape;
      const auto& os = node.output.shape;
      const int64_t O = op.weight.dim(0), Ig = op.weight.dim(1), KH = op.weight.dim(2), KW = op.weight.dim(3), G = op.groups;
      const memory::desc src_md({is[0], is[1], is[2], is[3]}, src_t, tag::nhwc);
      const memory::desc dst_md({os[0], os[1], os[2], os[3]}, dst_t, tag::nhwc);
      const memory::desc bias_md({O}, dt::s32, tag::x);
      const memory::desc wei_md = G == 1 ? memory::desc({O, Ig, KH, KW}, dt::s8, tag::any)
                                         : memory::desc({G, O / G, Ig, KH, KW}, dt::s8, tag::any);
      const dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md,
                                              wei_md, bias_md, dst_md, {op.stride_h, op.stride_w},
                                              {op.dilation_h - 1, op.dilation_w - 1}, {op.pad_top, op.pad_left},
                                              {op.pad_bottom, op.pad_right});
      const dnnl::convolution_forward::primitive_desc pd(d, attr, net->engine);
      layer.prim = dnnl::convolution_forward(pd);
      layer.impl = pd.impl_info_str();
      layer.args[DNNL_ARG_SRC] = filled(pd.src_desc(), net->engine, rng);
      layer.args[DNNL_ARG_WEIGHTS] = filled(pd.weights_desc(), net->engine, rng);
      layer.args[DNNL_ARG_BIAS] = filled(pd.bias_desc(), net->engine, rng);
      layer.args[DNNL_ARG_DST] = memory(pd.dst_desc(), net->engine);
    } else {
      const auto& op = std::get<LinearOp>(node.op);
      const int64_t O = op.weight.dim(0), I = op.weight.dim(1), N = node.output.shape[0];
      const memory::desc src_md({N, I}, src_t, tag::nc);
      const memory::desc dst_md({N, O}, dst_t, tag::nc);
      const memory::desc bias_md({O}, dt::s32, tag::x);
      const memory::desc wei_md({O, I}, dt::s8, tag::any);
      const dnnl::inner_product_forward::desc d(dnnl::prop_kind::forward_inference, src_md, wei_md, bias_md, dst_md);
      const dnnl::inner_product_forward::primitive_desc pd(d, attr, net->engine);
      layer.prim = dnnl::inner_product_forward(pd);
      layer.impl = pd.impl_info_str();
      layer.args[DNNL_ARG_SRC] = filled(pd.src_desc(), net->engine, rng);
      layer.args[DNNL_ARG_WEIGHTS] = filled(pd.weights_desc(), net->engine, rng);
      layer.args[DNNL_ARG_BIAS] = filled(pd.bias_desc(), net->engine, rng);
      layer.args[DNNL_ARG_DST] = memory(pd.dst_desc(), net->engine);
    }
    net->layers.push_back(std::move(layer));
  }
  return net;
}

double onednn_run(OneDnnNetwork& net, int threads) {
  omp_set_num_threads(threads);
  const auto t0 = std::chrono::steady_clock::now();
  for (OneDnnLayer& l : net.layers) l.prim.execute(net.stream, l.args);
  net.stream.wait();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<std::pair<std::string, double>> onednn_profile(OneDnnNetwork& net, int threads, int runs) {
  omp_set_num_threads(threads);
  std::vector<std::pair<std::string, double>> best;
  for (const OneDnnLayer& l : net.layers) best.emplace_back(l.node, 1e30);
  for (int k = 0; k < runs; ++k) {
    for (size_t j = 0; j < net.layers.size(); ++j) {
      const auto t0 = std::chrono::steady_clock::now();
      net.layers[j].prim.execute(net.stream, net.layers[j].args);
      net.stream.wait();
      best[j].second = std::min(best[j].second, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  return best;
}

int onednn_layers(const OneDnnNetwork& net) { return static_cast<int>(net.layers.size()); }

std::string onednn_implementations(const OneDnnNetwork& net) {
  std::map<std::string, int> count;
  for (const OneDnnLayer& l : net.layers) ++count[l.impl];
  std::string s;
  for (const auto& [impl, n] : count) s += (s.empty() ? "" : ", ") + impl + " x" + std::to_string(n);
  return s;
}

}  // namespace qv::bench
