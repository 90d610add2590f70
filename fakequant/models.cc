#include "fakequant/models.h"

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

}  // namespace

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
