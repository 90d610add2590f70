// The fake-quant models: published parameter counts, the peers' layer names, forward shapes under
// every scheme.
#include <gtest/gtest.h>

#include <set>

#include "fakequant/models.h"
#include "tests/support/fakequant_schemes.h"

namespace qv::fakequant {
namespace {

using testing::scheme;

std::set<std::string> names(const torch::nn::Module& m) {
  std::set<std::string> out;
  for (const auto& p : m.named_parameters()) out.insert(p.key());
  return out;
}

TEST(Models, PublishedParameterCounts) {
  const ModelQuant fp32 = scheme(QuantKind::none);
  EXPECT_EQ(parameter_count(*make_mobilenet_v2(fp32, {})), 3504872);  // torchvision mobilenet_v2
  EXPECT_EQ(parameter_count(*make_mobilenet_v1(fp32, {})), 4231976);  // imgclsmob mobilenet_w1, Brevitas' base
  EXPECT_EQ(parameter_count(*make_proxylessnas_mobile14(fp32, {}, false)), 6857568);  // imgclsmob proxylessnas_mobile14
  EXPECT_EQ(parameter_count(*make_vgg(11, false, fp32, {})), 132863336);
  EXPECT_EQ(parameter_count(*make_vgg(13, false, fp32, {})), 133047848);
  EXPECT_EQ(parameter_count(*make_vgg(16, false, fp32, {})), 138357544);
  EXPECT_EQ(parameter_count(*make_vgg(19, false, fp32, {})), 143667240);
  EXPECT_EQ(parameter_count(*make_vgg(16, true, fp32, {})), 138365992);
  // Brevitas' quant_vgg drops the conv biases in front of BN (4,224 for VGG16) and the last linear's
  // bias (1,000).
  const ModelQuant brevitas = scheme(QuantKind::brevitas);
  EXPECT_EQ(parameter_count(*make_vgg(16, false, brevitas, {})), 138357544 - 1000);
  EXPECT_EQ(parameter_count(*make_vgg(16, true, brevitas, {})), 138365992 - 4224 - 1000);
}

TEST(Models, MobileNetV2UsesQuantLabNames) {
  const auto n = names(*make_mobilenet_v2(scheme(QuantKind::pact), {}));
  for (const char* expected : {"pilot.0.weight", "pilot.1.weight", "pilot.2.clip_hi", "features.0.residual_branch.0.0.weight",
                               "features.0.residual_branch.1.0.weight", "features.0.residual_branch.1.1.bias",
                               "features.1.residual_branch.0.0.weight", "features.1.residual_branch.2.1.weight",
                               "features.16.residual_branch.2.0.weight", "features.17.0.weight", "features.17.2.clip_hi",
                               "classifier.1.weight", "classifier.1.bias"})
    EXPECT_TRUE(n.count(expected)) << expected;
  EXPECT_FALSE(n.count("features.18.0.weight"));
}

TEST(Models, ForwardUnderEveryScheme) {
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;
  for (QuantKind k : {QuantKind::none, QuantKind::brevitas, QuantKind::pact, QuantKind::tqt}) {
    auto net = make_mobilenet_v2(scheme(k), {});
    net->eval();
    const torch::Tensor y = net->forward(torch::rand({2, 3, 224, 224}));
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 1000})) << static_cast<int>(k);
    EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
  }
  for (bool hadamard : {false, true}) {
    auto p = make_proxylessnas_mobile14(scheme(QuantKind::brevitas), {}, hadamard);
    p->eval();
    EXPECT_EQ(p->forward(torch::rand({2, 3, 224, 224})).sizes(), (std::vector<int64_t>{2, 1000}));
  }
  auto v1 = make_mobilenet_v1(scheme(QuantKind::brevitas), {});
  v1->eval();
  EXPECT_EQ(v1->forward(torch::rand({1, 3, 224, 224})).sizes(), (std::vector<int64_t>{1, 1000}));
  auto vgg = make_vgg(11, true, scheme(QuantKind::brevitas), {});
  vgg->eval();
  EXPECT_EQ(vgg->forward(torch::rand({1, 3, 224, 224})).sizes(), (std::vector<int64_t>{1, 1000}));
}

TEST(Models, WidthMultiplierFollowsTorchvisionRounding) {
  ModelOptions half;
  half.width_mult = 0.5;
  const auto net = make_mobilenet_v2(scheme(QuantKind::none), half);
  // torchvision mobilenet_v2(width_mult=0.5): 1,968,680 parameters.
  EXPECT_EQ(parameter_count(*net), 1968680);
}

}  // namespace
}  // namespace qv::fakequant
