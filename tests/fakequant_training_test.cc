// A few quantization-aware training steps on real Fashion-MNIST images lower the loss under every
// scheme: the straight-through estimators and the learned clipping parameters carry gradient.
#include <gtest/gtest.h>

#include "fakequant/models.h"
#include "tests/support/fakequant_schemes.h"
#include "fakequant/train.h"

namespace qv::fakequant {
namespace {

using testing::scheme;

TEST(Training, MobileNetV2LossFallsUnderEveryScheme) {
  const auto [images, labels] = fashion_mnist_batch(32, 32);
  ASSERT_EQ(images.sizes(), (std::vector<int64_t>{32, 3, 32, 32}));
  ASSERT_GE(labels.min().item<int64_t>(), 0);
  ASSERT_LE(labels.max().item<int64_t>(), 9);
  for (QuantKind k : {QuantKind::none, QuantKind::brevitas, QuantKind::pact, QuantKind::tqt}) {
    torch::manual_seed(1);
    ModelOptions o;
    o.width_mult = 0.35;
    o.num_classes = 10;
    o.resolution = 32;
    auto net = make_mobilenet_v2(scheme(k), o);
    const std::vector<double> losses =
        train_steps(*net, [&](const torch::Tensor& x) { return net->forward(x); }, images, labels, TrainOptions{12, 2e-3});
    std::string trace;
    for (double l : losses) trace += std::to_string(l) + " ";
    EXPECT_LT(losses.back(), 0.8 * losses.front()) << "scheme " << static_cast<int>(k) << ": " << trace;
  }
}

TEST(Training, VggLossFalls) {
  const auto [images, labels] = fashion_mnist_batch(2, 224);
  torch::manual_seed(2);
  ModelOptions o;
  o.num_classes = 10;
  auto net = make_vgg(11, true, scheme(QuantKind::pact), o);
  const std::vector<double> losses =
      train_steps(*net, [&](const torch::Tensor& x) { return net->forward(x); }, images, labels, TrainOptions{3, 1e-4});
  EXPECT_LT(losses.back(), losses.front());
}

}  // namespace
}  // namespace qv::fakequant
