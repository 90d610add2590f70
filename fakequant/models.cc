#include "fakequant/models.h"

#include "fakequant/quantizers.h"

#include <algorithm>
#include <cmath>

namespace qv::fakequant {

namespace {

using torch::nn::BatchNorm2d;
using torch::nn::BatchNorm2dOptions;
// A Sequential that can itself sit inside a Sequential (torch's has a templated forward).
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

Sequential conv_bn_act(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups, const WeightQuant& wq,
                       const ActQuant* act, double bn_eps = 1e-5) {
  Sequential s;
  s->push_back(QConv2d(in, out, k, stride, (k - 1) / 2, groups, false, wq));
  s->push_back(BatchNorm2d(BatchNorm2dOptions(out).eps(bn_eps)));
  if (act) s->push_back(QAct(ActFn::relu6, *act));
  return s;
}

class InvertedResidualImpl : public torch::nn::Module {
 public:
  InvertedResidualImpl(int64_t in, int64_t out, int64_t stride, int64_t expand, const ModelQuant& q)
      : use_skip(stride == 1 && in == out) {
    const int64_t hidden = in * expand;
    Sequential branch;
    if (expand != 1) branch->push_back(conv_bn_act(in, hidden, 1, 1, 1, q.conv, &q.act));
    branch->push_back(conv_bn_act(hidden, hidden, 3, stride, hidden, q.depthwise, &q.act));
    branch->push_back(conv_bn_act(hidden, out, 1, 1, 1, q.conv, nullptr));
    residual_branch = register_module("residual_branch", branch);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const torch::Tensor y = residual_branch->forward(x);
    return use_skip ? x + y : y;
  }
  bool use_skip;
  Sequential residual_branch;
};
TORCH_MODULE(InvertedResidual);

class MobileNetV2Impl : public NetworkImpl {
 public:
  MobileNetV2Impl(const ModelQuant& q, const ModelOptions& o) {
    const int64_t first = make_divisible(32 * o.width_mult);
    const int64_t last = make_divisible(1280 * std::max(1.0, o.width_mult));
    pilot = register_module("pilot", conv_bn_act(3, first, 3, 2, 1, q.first_conv, &q.act));
    const int64_t blocks[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                  {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    Sequential f;
    int64_t in = first;
    for (const auto& b : blocks) {
      const int64_t out = make_divisible(static_cast<double>(b[1]) * o.width_mult);
      for (int64_t i = 0; i < b[2]; ++i) {
        f->push_back(InvertedResidual(in, out, i == 0 ? b[3] : 1, b[0], q));
        in = out;
      }
    }
    f->push_back(conv_bn_act(in, last, 1, 1, 1, q.conv, &q.act));
    features = register_module("features", f);
    Sequential c;
    c->push_back(torch::nn::Dropout(0.2));
    c->push_back(QLinear(last, o.num_classes, true, q.linear));
    classifier = register_module("classifier", c);
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    torch::Tensor y = features->forward(pilot->forward(x));
    y = torch::adaptive_avg_pool2d(y, {1, 1}).flatten(1);
    return classifier->forward(y);
  }
  Sequential pilot, features, classifier;
};

class VggImpl : public NetworkImpl {
 public:
  VggImpl(int depth, bool batch_norm, const ModelQuant& q, const ModelOptions& o) {
    std::vector<int64_t> cfg;  // 0 = max pool
    switch (depth) {
      case 11: cfg = {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0}; break;
      case 13: cfg = {64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0}; break;
      case 16: cfg = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0}; break;
      case 19: cfg = {64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0}; break;
      default: throw std::invalid_argument("VGG depth must be 11, 13, 16 or 19");
    }
    // Brevitas' quant_vgg drops the conv bias in front of BN and the last linear's bias; the float
    // (and PACT/TQT) networks keep torchvision's layout.
    const bool brevitas = q.conv.kind == QuantKind::brevitas;
    Sequential f;
    int64_t in = 3;
    bool first = true;
    for (int64_t c : cfg) {
      if (c == 0) {
        f->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)));
        continue;
      }
      f->push_back(QConv2d(in, c, 3, 1, 1, 1, !(batch_norm && brevitas), first ? q.first_conv : q.conv));
      if (batch_norm) f->push_back(BatchNorm2d(c));
      f->push_back(QAct(ActFn::relu, q.act));
      in = c;
      first = false;
    }
    features = register_module("features", f);
    final_size = o.resolution / 32;
    if (final_size < 7) throw std::invalid_argument("VGG needs a resolution of at least 224 (7x7 before the classifier)");
    Sequential c;
    c->push_back(QLinear(512 * 7 * 7, 4096, true, q.linear));
    c->push_back(QAct(ActFn::relu, q.act));
    c->push_back(torch::nn::Dropout(0.5));
    c->push_back(QLinear(4096, 4096, true, q.linear));
    c->push_back(QAct(ActFn::relu, q.act));
    c->push_back(torch::nn::Dropout(0.5));
    c->push_back(QLinear(4096, o.num_classes, !brevitas, q.linear));
    classifier = register_module("classifier", c);
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    torch::Tensor y = features->forward(x);
    if (final_size > 7) y = torch::avg_pool2d(y, {final_size - 6, final_size - 6}, {1, 1});
    return classifier->forward(y.flatten(1));
  }
  Sequential features, classifier;
  int64_t final_size;
};

// Global average pool over the final map: Brevitas' TruncAvgPool2d (floor) for a brevitas-quantized
// input, the float mean otherwise.
torch::Tensor final_pool(const torch::Tensor& y, const QAct& act) {
  const int64_t k = y.size(2);
  if (act->aq.kind != QuantKind::brevitas || y.size(3) != k) return torch::adaptive_avg_pool2d(y, {1, 1});
  return brevitas_trunc_avg_pool(y, act->scale(), act->aq.bits, act->aq.bits, static_cast<int>(k), Rounding::floor);
}

// conv -> BN -> activation, with the peers' names conv/bn/activ.
class ConvBlockImpl : public torch::nn::Module {
 public:
  ConvBlockImpl(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad, int64_t groups, const WeightQuant& wq,
                const ActQuant& aq, ActFn fn, double bn_eps) {
    conv = register_module("conv", QConv2d(in, out, k, stride, pad, groups, false, wq));
    bn = register_module("bn", BatchNorm2d(BatchNorm2dOptions(out).eps(bn_eps)));
    activ = register_module("activ", QAct(fn, aq));
  }
  torch::Tensor forward(torch::Tensor x) { return activ->forward(bn->forward(conv->forward(x))); }
  QConv2d conv{nullptr};
  BatchNorm2d bn{nullptr};
  QAct activ{nullptr};
};
TORCH_MODULE(ConvBlock);

class MobileNetV1Impl : public NetworkImpl {
 public:
  MobileNetV1Impl(const ModelQuant& q, const ModelOptions& o) {
    auto ch = [&](int64_t c) { return static_cast<int64_t>(static_cast<double>(c) * o.width_mult); };
    Sequential f;
    f->push_back("init_block", ConvBlock(3, ch(32), 3, 2, 0, 1, q.first_conv, q.act, ActFn::relu, 1e-5));
    const std::vector<std::vector<int64_t>> stages = {{64}, {128, 128}, {256, 256}, {512, 512, 512, 512, 512, 512}, {1024, 1024}};
    int64_t in = ch(32);
    for (size_t s = 0; s < stages.size(); ++s) {
      Sequential stage;
      for (size_t u = 0; u < stages[s].size(); ++u) {
        const int64_t out = ch(stages[s][u]);
        const int64_t stride = (u == 0 && s > 0) ? 2 : 1;
        Sequential unit;
        unit->push_back("dw_conv", ConvBlock(in, in, 3, stride, 1, in, q.depthwise, q.act, ActFn::relu, 1e-5));
        auto pw = ConvBlock(in, out, 1, 1, 0, 1, q.conv, q.act, ActFn::relu, 1e-5);
        last_act = pw->activ;
        unit->push_back("pw_conv", pw);
        stage->push_back("unit" + std::to_string(u + 1), unit);
        in = out;
      }
      f->push_back("stage" + std::to_string(s + 1), stage);
    }
    features = register_module("features", f);
    output = register_module("output", QLinear(in, o.num_classes, true, q.linear));
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    const torch::Tensor y = features->forward(x);
    return output->forward(final_pool(y, last_act).flatten(1));
  }
  Sequential features;
  QLinear output{nullptr};
  QAct last_act{nullptr};
};

// body = [bc_conv] dw_conv pw_conv; a shortcut unit adds through its stage's shared signed quantizer.
class ProxylessUnitImpl : public torch::nn::Module {
 public:
  ProxylessUnitImpl(int64_t in, int64_t mid, int64_t out, int64_t k, int64_t stride, const ModelQuant& q, QAct shared)
      : shortcut(stride == 1 && in == out), shared_act(std::move(shared)) {
    Sequential b;
    if (mid != in) b->push_back("bc_conv", ConvBlock(in, mid, 1, 1, 0, 1, q.conv, q.act, ActFn::relu6, 1e-3));
    b->push_back("dw_conv", ConvBlock(mid, mid, k, stride, (k - 1) / 2, mid, q.depthwise, q.act, ActFn::relu6, 1e-3));
    auto pw = ConvBlock(mid, out, 1, 1, 0, 1, q.conv, q.signed_act, ActFn::identity, 1e-3);
    pw->activ = pw->replace_module("activ", shared_act);  // the pw output is quantized by the shared quantizer
    b->push_back("pw_conv", pw);
    body = register_module("body", b);
  }
  torch::Tensor forward(torch::Tensor x) {
    const torch::Tensor y = body->forward(x);
    return shortcut ? shared_act->forward(x + y) : y;
  }
  bool shortcut;
  QAct shared_act;
  Sequential body;
};
TORCH_MODULE(ProxylessUnit);

// -scale * (x / (||x||_F + 1e-8)) @ H[:classes, :features]^T, Sylvester H; the norm is over the batch.
class HadamardClassifierImpl : public torch::nn::Module {
 public:
  HadamardClassifierImpl(int64_t in, int64_t out) {
    int64_t n = 1;
    while (n < std::max(in, out)) n *= 2;
    torch::Tensor h = torch::empty({out, in});
    auto acc = h.accessor<float, 2>();
    for (int64_t i = 0; i < out; ++i)
      for (int64_t j = 0; j < in; ++j) acc[i][j] = (__builtin_popcountll(static_cast<uint64_t>(i & j)) % 2) ? -1.0f : 1.0f;
    proj = register_buffer("proj", h);
    scale = register_parameter("scale", torch::full({1}, 1.0 / std::sqrt(static_cast<double>(out))));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const torch::Tensor norm = x.norm() + 1e-8;
    return -scale * torch::matmul(x / norm, proj.t());
  }
  torch::Tensor proj, scale;
};
TORCH_MODULE(HadamardClassifier);

class ProxylessNasImpl : public NetworkImpl {
 public:
  ProxylessNasImpl(const ModelQuant& q, const ModelOptions& o, bool hadamard) {
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
    f->push_back("init_block", ConvBlock(3, 48, 3, 2, 1, 1, q.first_conv, q.act, ActFn::relu6, 1e-3));
    int64_t in = 48;
    QAct shared{nullptr};
    for (size_t s = 0; s < stages.size(); ++s) {
      Sequential stage;
      for (size_t u = 0; u < stages[s].size(); ++u) {
        const U& unit = stages[s][u];
        if (unit.new_shared) shared = QAct(ActFn::identity, q.signed_act);
        stage->push_back("unit" + std::to_string(u + 1), ProxylessUnit(in, unit.mid, unit.out, unit.k, unit.stride, q, shared));
        in = unit.out;
      }
      f->push_back("stage" + std::to_string(s + 1), stage);
    }
    auto final_block = ConvBlock(in, 1792, 1, 1, 0, 1, q.conv, q.act, ActFn::relu6, 1e-3);
    final_act = final_block->activ;
    f->push_back("final_block", final_block);
    features = register_module("features", f);
    if (hadamard) hadamard_output = register_module("output", HadamardClassifier(1792, o.num_classes));
    else linear_output = register_module("output", QLinear(1792, o.num_classes, true, q.linear));
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    const torch::Tensor y = final_pool(features->forward(x), final_act).flatten(1);
    return linear_output ? linear_output->forward(y) : hadamard_output->forward(y);
  }
  Sequential features;
  QLinear linear_output{nullptr};
  HadamardClassifier hadamard_output{nullptr};
  QAct final_act{nullptr};
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
