#include "fakequant/models.h"

#include "fakequant/quantizers.h"

#include <algorithm>
#include <cmath>

namespace qv::fakequant {

namespace {

using torch::nn::BatchNorm2d;
using torch::nn::BatchNorm2dOptions;
// A Sequential that can itself sit inside a Sequential (torch's has a templated forward).
// Blocks are containers only: the network's graph evaluates them, and Sequential demands a forward.
[[noreturn]] void graph_only(const char* what) {
  throw std::logic_error(std::string(what) + " is evaluated through the network's graph");
}

class SeqImpl : public torch::nn::SequentialImpl {
 public:
  using SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x) { return SequentialImpl::forward(x); }
};
TORCH_MODULE(Seq);
using Sequential = Seq;

// torchvision's _make_divisible: nearest multiple of 8, at least 8, not below 90 % of v.
int64_t make_divisible(double v, int64_t divisor = 8) {
  int64_t r = std::max<int64_t>(divisor, static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (static_cast<double>(r) < 0.9 * v) r += divisor;
  return r;
}

// Graph nodes for the modules just created; `prefix` is the module path the network will register.
GraphNode conv_node(const std::string& name, size_t in, QConv2d m) {
  GraphNode n{.op = GraphOp::conv, .name = name, .inputs = {in}};
  n.conv = std::move(m);
  return n;
}
GraphNode bn_node(const std::string& name, size_t in, BatchNorm2d m) {
  GraphNode n{.op = GraphOp::batch_norm, .name = name, .inputs = {in}};
  n.batch_norm = std::move(m);
  return n;
}
GraphNode act_node(const std::string& name, size_t in, QAct m) {
  GraphNode n{.op = GraphOp::act, .name = name, .inputs = {in}};
  n.act = std::move(m);
  return n;
}
GraphNode linear_node(const std::string& name, size_t in, QLinear m) {
  GraphNode n{.op = GraphOp::linear, .name = name, .inputs = {in}};
  n.linear = std::move(m);
  return n;
}
GraphNode plain_node(GraphOp op, const std::string& name, std::vector<size_t> in) {
  return GraphNode{.op = op, .name = name, .inputs = std::move(in)};
}

// conv -> BN -> [act] as a Sequential named prefix.0/.1/.2 (torchvision / QuantLab layout).
Sequential conv_bn_act(Graph& g, size_t& x, const std::string& prefix, int64_t in, int64_t out, int64_t k,
                       int64_t stride, int64_t groups, const WeightQuant& wq, const ActQuant* act, double bn_eps = 1e-5) {
  Sequential s;
  QConv2d conv(in, out, k, stride, (k - 1) / 2, groups, false, wq);
  BatchNorm2d bn(BatchNorm2dOptions(out).eps(bn_eps));
  s->push_back(conv);
  s->push_back(bn);
  x = g.add(conv_node(prefix + ".0", x, conv));
  x = g.add(bn_node(prefix + ".1", x, bn));
  if (act) {
    QAct a(ActFn::relu6, *act);
    s->push_back(a);
    x = g.add(act_node(prefix + ".2", x, a));
  }
  return s;
}

class InvertedResidualImpl : public torch::nn::Module {
 public:
  InvertedResidualImpl(Graph& g, size_t& x, const std::string& prefix, int64_t in, int64_t out, int64_t stride,
                       int64_t expand, const ModelQuant& q) {
    const bool use_skip = stride == 1 && in == out;
    const size_t block_in = x;
    const int64_t hidden = in * expand;
    const std::string b = prefix + ".residual_branch.";
    Sequential branch;
    int k = 0;
    if (expand != 1) branch->push_back(conv_bn_act(g, x, b + std::to_string(k++), in, hidden, 1, 1, 1, q.conv, &q.act));
    branch->push_back(conv_bn_act(g, x, b + std::to_string(k++), hidden, hidden, 3, stride, hidden, q.depthwise, &q.act));
    branch->push_back(conv_bn_act(g, x, b + std::to_string(k++), hidden, out, 1, 1, 1, q.conv, nullptr));
    residual_branch = register_module("residual_branch", branch);
    if (use_skip) x = g.add(plain_node(GraphOp::add, prefix + ".add", {block_in, x}));
  }
  Sequential residual_branch;
  torch::Tensor forward(const torch::Tensor&) { graph_only("InvertedResidual"); }
};
TORCH_MODULE(InvertedResidual);

class MobileNetV2Impl : public NetworkImpl {
 public:
  MobileNetV2Impl(const ModelQuant& q, const ModelOptions& o) {
    model_name = "mobilenet_v2";
    size_t x = graph.add(plain_node(GraphOp::input, "input", {}));
    const int64_t first = make_divisible(32 * o.width_mult);
    const int64_t last = make_divisible(1280 * std::max(1.0, o.width_mult));
    register_module("pilot", conv_bn_act(graph, x, "pilot", 3, first, 3, 2, 1, q.first_conv, &q.act));
    const int64_t blocks[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                  {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    Sequential f;
    int64_t in = first;
    for (const auto& b : blocks) {
      const int64_t out = make_divisible(static_cast<double>(b[1]) * o.width_mult);
      for (int64_t i = 0; i < b[2]; ++i) {
        const std::string prefix = "features." + std::to_string(f->size());
        f->push_back(InvertedResidual(graph, x, prefix, in, out, i == 0 ? b[3] : 1, b[0], q));
        in = out;
      }
    }
    f->push_back(conv_bn_act(graph, x, "features." + std::to_string(f->size()), in, last, 1, 1, 1, q.conv, &q.act));
    register_module("features", f);
    x = graph.add(plain_node(GraphOp::avg_pool, "avgpool", {x}));
    x = graph.add(plain_node(GraphOp::flatten, "flatten", {x}));
    Sequential c;
    c->push_back(torch::nn::Dropout(0.2));
    QLinear fc(last, o.num_classes, true, q.linear);
    c->push_back(fc);
    graph.add(linear_node("classifier.1", x, fc));
    register_module("classifier", c);
  }
};

class VggImpl : public NetworkImpl {
 public:
  VggImpl(int depth, bool batch_norm, const ModelQuant& q, const ModelOptions& o) {
    model_name = "vgg" + std::to_string(depth) + (batch_norm ? "_bn" : "");
    std::vector<int64_t> cfg;  // 0 = max pool
    switch (depth) {
      case 11: cfg = {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0}; break;
      case 13: cfg = {64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0}; break;
      case 16: cfg = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0}; break;
      case 19: cfg = {64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0}; break;
      default: throw std::invalid_argument("VGG depth must be 11, 13, 16 or 19");
    }
    const int64_t final_size = o.resolution / 32;
    if (final_size < 1) throw std::invalid_argument("VGG needs a resolution of at least 32");
    // Below 224 (tests) the classifier reads the whole final map: 512 * s * s features.
    const int64_t classifier_in = 512 * std::min<int64_t>(final_size, 7) * std::min<int64_t>(final_size, 7);
    size_t x = graph.add(plain_node(GraphOp::input, "input", {}));
    // Brevitas' quant_vgg drops the conv bias in front of BN and the last linear's bias; the float
    // (and PACT/TQT) networks keep torchvision's layout.
    const bool brevitas = q.conv.kind == QuantKind::brevitas;
    Sequential f;
    int64_t in = 3;
    bool first = true;
    auto name = [&] { return "features." + std::to_string(f->size()); };
    for (int64_t c : cfg) {
      if (c == 0) {
        GraphNode pool = plain_node(GraphOp::max_pool, name(), {x});
        pool.kernel = pool.stride = 2;
        x = graph.add(pool);
        f->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)));
        continue;
      }
      QConv2d conv(in, c, 3, 1, 1, 1, !(batch_norm && brevitas), first ? q.first_conv : q.conv);
      x = graph.add(conv_node(name(), x, conv));
      f->push_back(conv);
      if (batch_norm) {
        BatchNorm2d bn(c);
        x = graph.add(bn_node(name(), x, bn));
        f->push_back(bn);
      }
      QAct act(ActFn::relu, q.act);
      x = graph.add(act_node(name(), x, act));
      f->push_back(act);
      in = c;
      first = false;
    }
    register_module("features", f);
    if (final_size > 7) {
      GraphNode pool = plain_node(GraphOp::avg_pool, "avgpool", {x});
      pool.kernel = final_size - 6;
      pool.stride = 1;
      x = graph.add(pool);
    }
    x = graph.add(plain_node(GraphOp::flatten, "flatten", {x}));
    Sequential cl;
    auto cname = [&] { return "classifier." + std::to_string(cl->size()); };
    for (int i = 0; i < 3; ++i) {
      const bool last = i == 2;
      QLinear fc(i == 0 ? classifier_in : 4096, last ? o.num_classes : 4096, !(last && brevitas), q.linear);
      x = graph.add(linear_node(cname(), x, fc));
      cl->push_back(fc);
      if (last) break;
      QAct act(ActFn::relu, q.act);
      x = graph.add(act_node(cname(), x, act));
      cl->push_back(act);
      cl->push_back(torch::nn::Dropout(0.5));
    }
    register_module("classifier", cl);
  }
};

// Global average pool over the final map: Brevitas' TruncAvgPool2d (floor) for a brevitas-quantized
// input, the float mean otherwise.
size_t final_pool(Graph& g, size_t x, const QAct& act) {
  GraphNode pool = plain_node(GraphOp::avg_pool, "final_pool", {x});
  if (act->aq.kind == QuantKind::brevitas) {
    pool.truncate = true;
    pool.truncate_bits = act->aq.bits;
    pool.truncate_rounding = Rounding::floor;
  }
  return g.add(pool);
}

// conv -> BN -> activation, with the peers' names conv/bn/activ.
class ConvBlockImpl : public torch::nn::Module {
 public:
  ConvBlockImpl(Graph& g, size_t& x, const std::string& prefix, int64_t in, int64_t out, int64_t k, int64_t stride,
                int64_t pad, int64_t groups, const WeightQuant& wq, QAct act, double bn_eps) {
    conv = register_module("conv", QConv2d(in, out, k, stride, pad, groups, false, wq));
    bn = register_module("bn", BatchNorm2d(BatchNorm2dOptions(out).eps(bn_eps)));
    activ = register_module("activ", std::move(act));
    x = g.add(conv_node(prefix + ".conv", x, conv));
    x = g.add(bn_node(prefix + ".bn", x, bn));
    x = g.add(act_node(prefix + ".activ", x, activ));
  }
  QConv2d conv{nullptr};
  BatchNorm2d bn{nullptr};
  QAct activ{nullptr};
  torch::Tensor forward(const torch::Tensor&) { graph_only("ConvBlock"); }
};
TORCH_MODULE(ConvBlock);

class MobileNetV1Impl : public NetworkImpl {
 public:
  MobileNetV1Impl(const ModelQuant& q, const ModelOptions& o) {
    model_name = "mobilenet_v1";
    size_t x = graph.add(plain_node(GraphOp::input, "input", {}));
    auto ch = [&](int64_t c) { return static_cast<int64_t>(static_cast<double>(c) * o.width_mult); };
    auto relu = [&] { return QAct(ActFn::relu, q.act); };
    Sequential f;
    f->push_back("init_block", ConvBlock(graph, x, "features.init_block", 3, ch(32), 3, 2, 0, 1, q.first_conv, relu(), 1e-5));
    const std::vector<std::vector<int64_t>> stages = {{64}, {128, 128}, {256, 256}, {512, 512, 512, 512, 512, 512}, {1024, 1024}};
    int64_t in = ch(32);
    QAct last_act{nullptr};
    for (size_t s = 0; s < stages.size(); ++s) {
      Sequential stage;
      const std::string sp = "features.stage" + std::to_string(s + 1);
      for (size_t u = 0; u < stages[s].size(); ++u) {
        const int64_t out = ch(stages[s][u]);
        const int64_t stride = (u == 0 && s > 0) ? 2 : 1;
        const std::string up = sp + ".unit" + std::to_string(u + 1);
        Sequential unit;
        unit->push_back("dw_conv", ConvBlock(graph, x, up + ".dw_conv", in, in, 3, stride, 1, in, q.depthwise, relu(), 1e-5));
        auto pw = ConvBlock(graph, x, up + ".pw_conv", in, out, 1, 1, 0, 1, q.conv, relu(), 1e-5);
        last_act = pw->activ;
        unit->push_back("pw_conv", pw);
        stage->push_back("unit" + std::to_string(u + 1), unit);
        in = out;
      }
      f->push_back("stage" + std::to_string(s + 1), stage);
    }
    register_module("features", f);
    x = final_pool(graph, x, last_act);
    x = graph.add(plain_node(GraphOp::flatten, "flatten", {x}));
    QLinear fc(in, o.num_classes, true, q.linear);
    register_module("output", fc);
    graph.add(linear_node("output", x, fc));
  }
};

// body = [bc_conv] dw_conv pw_conv; a shortcut unit adds through its stage's shared signed quantizer,
// which also quantizes the pw_conv output of every unit in the stage.
class ProxylessUnitImpl : public torch::nn::Module {
 public:
  ProxylessUnitImpl(Graph& g, size_t& x, const std::string& prefix, int64_t in, int64_t mid, int64_t out, int64_t k,
                    int64_t stride, const ModelQuant& q, const QAct& shared) {
    const bool shortcut = stride == 1 && in == out;
    const size_t unit_in = x;
    const std::string b = prefix + ".body";
    Sequential body;
    if (mid != in)
      body->push_back("bc_conv", ConvBlock(g, x, b + ".bc_conv", in, mid, 1, 1, 0, 1, q.conv, QAct(ActFn::relu6, q.act), 1e-3));
    body->push_back("dw_conv", ConvBlock(g, x, b + ".dw_conv", mid, mid, k, stride, (k - 1) / 2, mid, q.depthwise,
                                         QAct(ActFn::relu6, q.act), 1e-3));
    body->push_back("pw_conv", ConvBlock(g, x, b + ".pw_conv", mid, out, 1, 1, 0, 1, q.conv, shared, 1e-3));
    register_module("body", body);
    if (shortcut) {
      x = g.add(plain_node(GraphOp::add, prefix + ".add", {unit_in, x}));
      x = g.add(act_node(prefix + ".add_quant", x, shared));
    }
  }
  torch::Tensor forward(const torch::Tensor&) { graph_only("ProxylessUnit"); }
};
TORCH_MODULE(ProxylessUnit);

class ProxylessNasImpl : public NetworkImpl {
 public:
  ProxylessNasImpl(const ModelQuant& q, const ModelOptions& o, bool hadamard) {
    model_name = hadamard ? "proxylessnas_mobile14_hadamard" : "proxylessnas_mobile14";
    size_t x = graph.add(plain_node(GraphOp::input, "input", {}));
    struct U {
      int64_t mid, out, k, stride;
      bool new_shared;
    };
    // (mid, out, kernel, stride) per unit, stage by stage; identity units (no body) are omitted.
    const std::vector<std::vector<U>> stages = {
        {{48, 24, 3, 1, true}},
        {{72, 40, 5, 2, true}, {120, 40, 3, 1, false}},
        {{120, 56, 7, 2, true}, {168, 56, 3, 1, false}, {168, 56, 5, 1, false}, {168, 56, 5, 1, false}},
        {{336, 112, 7, 2, true}, {336, 112, 5, 1, false}, {336, 112, 5, 1, false}, {336, 112, 5, 1, false},
         {672, 136, 5, 1, true}, {408, 136, 5, 1, false}, {408, 136, 5, 1, false}, {408, 136, 5, 1, false}},
        {{816, 256, 7, 2, true}, {1536, 256, 7, 1, false}, {768, 256, 7, 1, false}, {768, 256, 7, 1, false},
         {1536, 448, 7, 1, true}}};
    Sequential f;
    f->push_back("init_block", ConvBlock(graph, x, "features.init_block", 3, 48, 3, 2, 1, 1, q.first_conv,
                                         QAct(ActFn::relu6, q.act), 1e-3));
    int64_t in = 48;
    QAct shared{nullptr};
    for (size_t s = 0; s < stages.size(); ++s) {
      Sequential stage;
      for (size_t u = 0; u < stages[s].size(); ++u) {
        const U& unit = stages[s][u];
        if (unit.new_shared) shared = QAct(ActFn::identity, q.signed_act);
        const std::string prefix = "features.stage" + std::to_string(s + 1) + ".unit" + std::to_string(u + 1);
        stage->push_back("unit" + std::to_string(u + 1),
                         ProxylessUnit(graph, x, prefix, in, unit.mid, unit.out, unit.k, unit.stride, q, shared));
        in = unit.out;
      }
      f->push_back("stage" + std::to_string(s + 1), stage);
    }
    auto final_block = ConvBlock(graph, x, "features.final_block", in, 1792, 1, 1, 0, 1, q.conv, QAct(ActFn::relu6, q.act), 1e-3);
    QAct final_act = final_block->activ;
    f->push_back("final_block", final_block);
    register_module("features", f);
    x = final_pool(graph, x, final_act);
    x = graph.add(plain_node(GraphOp::flatten, "flatten", {x}));
    if (hadamard) {
      HadamardClassifier h(1792, o.num_classes);
      register_module("output", h);
      GraphNode n = plain_node(GraphOp::hadamard, "output", {x});
      n.hadamard = h;
      graph.add(n);
    } else {
      QLinear fc(1792, o.num_classes, true, q.linear);
      register_module("output", fc);
      graph.add(linear_node("output", x, fc));
    }
  }
};

}  // namespace

std::shared_ptr<NetworkImpl> make_mobilenet_v1(const ModelQuant& q, const ModelOptions& o) {
  return std::make_shared<MobileNetV1Impl>(q, o);
}

std::shared_ptr<NetworkImpl> make_proxylessnas_mobile14(const ModelQuant& q, const ModelOptions& o, bool hadamard_classifier) {
  return std::make_shared<ProxylessNasImpl>(q, o, hadamard_classifier);
}

std::shared_ptr<NetworkImpl> make_mobilenet_v2(const ModelQuant& q, const ModelOptions& o) {
  return std::make_shared<MobileNetV2Impl>(q, o);
}

std::shared_ptr<NetworkImpl> make_vgg(int depth, bool batch_norm, const ModelQuant& q, const ModelOptions& o) {
  return std::make_shared<VggImpl>(depth, batch_norm, q, o);
}

int64_t parameter_count(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.named_parameters()) {
    const std::string& name = p.key();
    // Quantizer parameters (clips, thresholds) are not part of the float model's count.
    const auto dot = name.rfind('.');
    const std::string leaf = dot == std::string::npos ? name : name.substr(dot + 1);
    if (leaf == "weight" || leaf == "bias") n += p.value().numel();
  }
  return n;
}

}  // namespace qv::fakequant
