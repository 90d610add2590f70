// The fake-quant networks, with the peers' layer names (QuantLab for MobileNetV2, Brevitas/torchvision
// for VGG), so that checkpoints and per-layer config rules address the same names.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "fakequant/graph.h"
#include "fakequant/layers.h"

namespace qv::fakequant {

// What the configuration resolves for a model's layer kinds.
struct ModelQuant {
  WeightQuant first_conv, conv, depthwise, linear;
  ActQuant act;                 // after conv + BN
  ActQuant signed_act;          // identity quantizers (residual branches)
};

struct ModelOptions {
  double width_mult = 1.0;
  int64_t num_classes = 1000;
  int resolution = 224;
};

// A network is its modules (named as the peers name them) plus the graph that wires them; forward
// evaluates the graph.
class NetworkImpl : public torch::nn::Module {
 public:
  torch::Tensor forward(const torch::Tensor& x) { return run_graph(graph, x); }
  Graph graph;
  std::string model_name;  // "mobilenet_v2", "vgg16_bn", ...
};

// MobileNetV2 (torchvision topology, QuantLab names: pilot.*, features.N.residual_branch.K.J,
// features.17.*, classifier.1).
std::shared_ptr<NetworkImpl> make_mobilenet_v2(const ModelQuant& q, const ModelOptions& o);

// VGG 11/13/16/19 with or without BN (torchvision configurations A/B/D/E and names features.N,
// classifier.N). Under the brevitas scheme the layout is quant_vgg's: no conv bias before BN, no bias
// on the last linear; otherwise torchvision's. The peer's TruncAvgPool2d(7, stride 1) leaves 1x1 at 224x224 and its first linear
// then fails; here the pool kernel is (final size - 6), so the classifier always sees 7x7: at 224 the
// pool is the identity and is omitted, at 416 it is the peer's 7x7 pool. Below 224 (tests only) the
// first linear reads the whole s x s final map, s = resolution / 32.
std::shared_ptr<NetworkImpl> make_vgg(int depth, bool batch_norm, const ModelQuant& q, const ModelOptions& o);

// MobileNet V1 (Brevitas quant_mobilenet_v1 / imgclsmob names: features.init_block, features.stageS.unitU
// with dw_conv and pw_conv blocks, output). The init conv has no padding (224 -> 111), as the peer's.
std::shared_ptr<NetworkImpl> make_mobilenet_v1(const ModelQuant& q, const ModelOptions& o);

// ProxylessNAS Mobile14 (Brevitas / imgclsmob topology: bc_conv, dw_conv, pw_conv units, shortcut units
// add through the shared signed quantizer of their stage), with a Linear classifier or the Hadamard one.
std::shared_ptr<NetworkImpl> make_proxylessnas_mobile14(const ModelQuant& q, const ModelOptions& o, bool hadamard_classifier);

// Number of trainable parameters (what torchvision's counts refer to).
int64_t parameter_count(const torch::nn::Module& m);

}  // namespace qv::fakequant
