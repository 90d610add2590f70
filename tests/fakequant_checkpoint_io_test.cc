// qverify's own fake-quant checkpoints: exact round trip of parameters, BN statistics and quantizer
// thresholds; a checkpoint of another model is refused listing every mismatched key.
#include <gtest/gtest.h>

#include <filesystem>

#include "fakequant/checkpoint_io.h"
#include "ir/error.h"

namespace qv::fakequant {
namespace {

ModelQuant pact() {
  ModelQuant q;
  q.first_conv = q.conv = q.depthwise = WeightQuant{QuantKind::pact, 8, true};
  q.linear = WeightQuant{QuantKind::pact, 8, false};
  q.act = ActQuant{QuantKind::pact, 8, false, Rounding::half_even, 6.0, false};
  return q;
}

TEST(OwnCheckpoint, RoundTripsExactly) {
  const std::string path = (std::filesystem::temp_directory_path() / ("qv_ckpt_" + std::to_string(::getpid()) + ".pt")).string();
  torch::manual_seed(6);
  ModelOptions o;
  o.num_classes = 10;
  auto a = make_mobilenet_v2(pact(), o);
  {
    torch::NoGradGuard g;
    for (auto& b : a->buffers()) if (b.is_floating_point()) b.uniform_(0.5, 1.5);  // BN statistics
  }
  save_checkpoint(*a, path);
  torch::manual_seed(7);
  auto b = make_mobilenet_v2(pact(), o);
  load_checkpoint(*b, path);
  const auto pa = a->named_parameters(), pb = b->named_parameters();
  for (const auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  const auto ba = a->named_buffers(), bb = b->named_buffers();
  for (const auto& x : ba) EXPECT_TRUE(torch::equal(x.value(), bb[x.key()])) << x.key();

  // A VGG checkpoint does not fit MobileNetV2: every key is listed, nothing is half-loaded silently.
  auto vgg = make_vgg(11, false, pact(), o);
  save_checkpoint(*vgg, path);
  try {
    load_checkpoint(*b, path);
    ADD_FAILURE() << "accepted";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos);
    EXPECT_NE(m.find("missing keys"), std::string::npos) << m;
    EXPECT_NE(m.find("pilot.0.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("unexpected keys"), std::string::npos) << m;
    EXPECT_NE(m.find("features.0.weight"), std::string::npos) << m;
  }
  // The same model with 1000 classes: only the classifier's shapes differ, and they are named.
  auto thousand = make_mobilenet_v2(pact(), {});
  save_checkpoint(*thousand, path);
  try {
    load_checkpoint(*b, path);
    ADD_FAILURE() << "accepted";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("shape mismatches (2): classifier.1.weight (checkpoint [1000, 1280], model [10, 1280])"), std::string::npos) << m;
    EXPECT_EQ(m.find("missing keys"), std::string::npos) << m;
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace qv::fakequant
