// Every quantized activation of a forward pass is captured by its layer name, on its grid, in float32
// and in float64.
#include <gtest/gtest.h>

#include "fakequant/calibrate.h"
#include "fakequant/trace.h"

namespace qv::fakequant {
namespace {

TEST(Trace, CapturesEveryQuantizedActivationByName) {
  ModelQuant q;
  q.first_conv = q.conv = q.depthwise = WeightQuant{QuantKind::pact, 8, true};
  q.linear = WeightQuant{QuantKind::pact, 8, false};
  q.act = ActQuant{QuantKind::pact, 8, false, Rounding::half_even, 6.0, false};
  torch::manual_seed(4);
  ModelOptions o;
  o.resolution = 64;
  auto net = make_mobilenet_v2(q, o);
  const torch::Tensor x = torch::rand({1, 3, 64, 64});
  const FloatTrace t32 = capture_trace(*net, x, torch::kFloat32);
  const FloatTrace t64 = capture_trace(*net, x, torch::kFloat64);
  // 35 ReLU6 activations in MobileNetV2 (SEMANTICS.md section 5).
  EXPECT_EQ(t32.entries.size(), 35u);
  ASSERT_EQ(t64.entries.size(), t32.entries.size());
  ASSERT_NE(t32.find("pilot.2"), nullptr);
  ASSERT_NE(t32.find("features.0.residual_branch.0.2"), nullptr);
  ASSERT_NE(t32.find("features.17.2"), nullptr);
  EXPECT_EQ(t32.entries.front().first, "pilot.2");
  EXPECT_EQ(t64.find("pilot.2")->scalar_type(), torch::kFloat64);
  // On the PACT grid: y / (6/255) is an integer in [0, 255].
  const torch::Tensor g = *t64.find("features.0.residual_branch.0.2") / (6.0 / 255.0);
  EXPECT_TRUE(torch::allclose(g, torch::round(g), 0, 1e-6));
  EXPECT_GE(g.min().item<double>(), 0);
  EXPECT_LE(g.max().item<double>(), 255 + 1e-6);
  // float32 and float64 agree on the grid almost everywhere (differences sit at rounding boundaries).
  const torch::Tensor a = torch::round(t32.find("pilot.2")->to(torch::kFloat64) / (6.0 / 255.0));
  const torch::Tensor b = torch::round(*t64.find("pilot.2") / (6.0 / 255.0));
  EXPECT_LT((a != b).sum().item<int64_t>(), a.numel() / 100 + 1);
  // The network is back in float32 afterwards.
  EXPECT_EQ(net->parameters().front().scalar_type(), torch::kFloat32);
}

// A random-weight network after calibration on real images: no activation layer is dead or saturated
// wholesale, and every clipping threshold is the largest value seen.
TEST(Calibration, RandomNetworksGetMeaningfulActivations) {
  ModelQuant q;
  q.first_conv = WeightQuant{QuantKind::brevitas, 8, true};
  q.conv = q.depthwise = WeightQuant{QuantKind::brevitas, 4, true};
  q.linear = WeightQuant{QuantKind::brevitas, 4, false};
  q.act = ActQuant{QuantKind::brevitas, 4, false, Rounding::half_even, 6.0, false};
  q.signed_act = ActQuant{QuantKind::brevitas, 4, true, Rounding::half_even, 6.0, false};
  torch::manual_seed(5);
  ModelOptions o;
  o.resolution = 64;
  auto net = make_proxylessnas_mobile14(q, o, false);
  const torch::Tensor images = torch::rand({8, 3, 64, 64});
  calibrate(*net, {images});
  const FloatTrace t = capture_trace(*net, images, torch::kFloat32);
  ASSERT_GT(t.entries.size(), 40u);
  for (const auto& [name, y] : t.entries) {
    const double nonzero = (y != 0).to(torch::kFloat64).mean().item<double>();
    EXPECT_GT(nonzero, 0.02) << name << " is dead after calibration";
    const double top = y.abs().max().item<double>();
    const double at_top = (y.abs() == top).to(torch::kFloat64).mean().item<double>();
    EXPECT_LT(at_top, 0.5) << name << " is saturated after calibration";
  }
}

}  // namespace
}  // namespace qv::fakequant
