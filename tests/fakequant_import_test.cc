// Importing torchvision's MobileNetV2 state_dict (made by tests/fixtures/make_torchvision_mnv2.py with
// Debian's python3-torchvision) through QuantLab's renaming: the fp32 network then computes the logits
// PyTorch printed for the same input. Importing Brevitas-named checkpoints (made by
// tests/fixtures/make_brevitas_legacy.py) with the legacy activation-threshold spellings.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "fakequant/import.h"
#include "ir/error.h"

namespace qv::fakequant {
namespace {

const std::string kDir = QV_FIXTURE_DIR "/import/";

std::vector<double> read_line(std::istream& in) {
  std::string line;
  std::getline(in, line);
  std::istringstream s(line);
  std::vector<double> v;
  double x;
  while (s >> x) v.push_back(x);
  return v;
}

TEST(Import, QuantLabRenamingOfTorchvisionNames) {
  const auto r = [](const char* k) { return rename_key(k, PeerNaming::torchvision_mobilenet_v2); };
  EXPECT_EQ(r("features.0.0.weight"), "pilot.0.weight");
  EXPECT_EQ(r("features.0.1.running_var"), "pilot.1.running_var");
  EXPECT_EQ(r("features.1.conv.0.0.weight"), "features.0.residual_branch.0.0.weight");
  EXPECT_EQ(r("features.1.conv.1.weight"), "features.0.residual_branch.1.0.weight");
  EXPECT_EQ(r("features.1.conv.2.bias"), "features.0.residual_branch.1.1.bias");
  EXPECT_EQ(r("features.2.conv.1.0.weight"), "features.1.residual_branch.1.0.weight");
  EXPECT_EQ(r("features.2.conv.2.weight"), "features.1.residual_branch.2.0.weight");
  EXPECT_EQ(r("features.2.conv.3.running_mean"), "features.1.residual_branch.2.1.running_mean");
  EXPECT_EQ(r("features.18.0.weight"), "features.17.0.weight");
  EXPECT_EQ(r("classifier.1.weight"), "classifier.1.weight");
  EXPECT_EQ(r("module.classifier.1.bias"), "classifier.1.bias");
}

TEST(Import, TorchvisionMobileNetV2ComputesPyTorchsLogits) {
  ModelOptions o;
  o.width_mult = 0.25;
  o.num_classes = 10;
  o.resolution = 32;
  auto net = make_mobilenet_v2(ModelQuant{}, o);
  const auto left = import_state_dict(*net, kDir + "torchvision_mnv2_w025.pt", PeerNaming::torchvision_mobilenet_v2);
  EXPECT_TRUE(left.empty());  // fp32: no quantizer parameters
  std::ifstream f(kDir + "torchvision_mnv2_w025.logits.txt");
  const std::vector<double> x = read_line(f), want = read_line(f);
  ASSERT_EQ(x.size(), 3u * 32 * 32);
  ASSERT_EQ(want.size(), 10u);
  net->eval();
  torch::NoGradGuard g;
  const torch::Tensor input = torch::tensor(x, torch::kFloat64).to(torch::kFloat32).reshape({1, 3, 32, 32});
  const torch::Tensor y = net->forward(input).to(torch::kFloat64).flatten();
  for (int i = 0; i < 10; ++i) EXPECT_NEAR(y[i].item<double>(), want[static_cast<size_t>(i)], 1e-5) << "logit " << i;

  // The same file without the renaming does not fit, and every key is named.
  try {
    import_state_dict(*net, kDir + "torchvision_mnv2_w025.pt", PeerNaming::as_stored);
    ADD_FAILURE() << "accepted";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("missing keys"), std::string::npos) << m;
    EXPECT_NE(m.find("pilot.0.weight"), std::string::npos);
    EXPECT_NE(m.find("unexpected keys"), std::string::npos);
    EXPECT_NE(m.find("features.18.0.weight"), std::string::npos);
  }
}

// ---- Brevitas ----

const std::string kActScaling = ".fused_activation_quant_proxy.tensor_quant.scaling_impl.";

TEST(Import, BrevitasThresholdSpellingsMapOntoQActValue) {
  const auto r = [](const std::string& k) { return rename_key(k, PeerNaming::brevitas); };
  const std::string act = "features.stage1.unit1.dw_conv.activ";
  // Brevitas before 0.2: act_quant_proxy and learned_value; since: act_quant and value; and the mixed forms
  // its loader also accepts.
  EXPECT_EQ(r(act + ".act_quant_proxy" + kActScaling + "learned_value"), act + ".value");
  EXPECT_EQ(r(act + ".act_quant" + kActScaling + "value"), act + ".value");
  EXPECT_EQ(r(act + ".act_quant_proxy" + kActScaling + "value"), act + ".value");
  EXPECT_EQ(r(act + ".act_quant" + kActScaling + "learned_value"), act + ".value");
  EXPECT_EQ(r("module.features.init_block.activ.act_quant" + kActScaling + "value"), "features.init_block.activ.value");
  // Everything else as stored (less DataParallel's prefix).
  EXPECT_EQ(r("features.init_block.conv.weight"), "features.init_block.conv.weight");
  EXPECT_EQ(r("module.output.bias"), "output.bias");
  EXPECT_EQ(r("features.init_block.bn.num_batches_tracked"), "features.init_block.bn.num_batches_tracked");
  EXPECT_EQ(r("x.weight_quant.tensor_quant.scaling_impl.value"), "x.weight_quant.tensor_quant.scaling_impl.value");
  EXPECT_EQ(r(act + ".act_quant" + kActScaling + "value_extra"), act + ".act_quant" + kActScaling + "value_extra");
  // The other namings leave Brevitas names alone.
  EXPECT_EQ(rename_key(act + ".act_quant" + kActScaling + "value", PeerNaming::as_stored), act + ".act_quant" + kActScaling + "value");
  // zero_hw_sentinel buffers are skipped under the Brevitas naming only, and only as a whole leaf name.
  EXPECT_TRUE(ignored_key("features.init_block.conv.weight_quant.zero_hw_sentinel", PeerNaming::brevitas));
  EXPECT_TRUE(ignored_key(act + ".act_quant_proxy.zero_hw_sentinel", PeerNaming::brevitas));
  EXPECT_FALSE(ignored_key("x.not_zero_hw_sentinel", PeerNaming::brevitas));
  EXPECT_FALSE(ignored_key("features.init_block.conv.weight", PeerNaming::brevitas));
  EXPECT_FALSE(ignored_key("features.init_block.conv.weight_quant.zero_hw_sentinel", PeerNaming::as_stored));
}

ModelQuant brevitas_4b() {
  ModelQuant q;
  q.first_conv = WeightQuant{QuantKind::brevitas, 8, true};
  q.conv = q.depthwise = WeightQuant{QuantKind::brevitas, 4, true};
  q.linear = WeightQuant{QuantKind::brevitas, 4, false};
  q.act = ActQuant{QuantKind::brevitas, 4, false, Rounding::half_even, 6.0, false};
  q.signed_act = ActQuant{QuantKind::brevitas, 4, true, Rounding::half_even, 6.0, false};
  return q;
}

// "KEY v0 v1 ..." lines, '#' comments skipped.
std::vector<std::pair<std::string, std::vector<double>>> read_expected(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::pair<std::string, std::vector<double>>> out;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream s(line);
    std::string key;
    s >> key;
    std::vector<double> v;
    double x;
    while (s >> x) v.push_back(x);
    out.emplace_back(key, v);
  }
  return out;
}

TEST(Import, BrevitasLegacyCheckpointFillsMobileNetV1) {
  ModelOptions o;
  o.width_mult = 0.25;
  o.num_classes = 10;
  auto net = make_mobilenet_v1(brevitas_4b(), o);
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& p : net->named_parameters()) tensors[p.key()] = p.value();
  for (const auto& b : net->named_buffers()) tensors[b.key()] = b.value();
  size_t thresholds = 0;
  for (const auto& [k, t] : tensors) thresholds += k.size() > 12 && k.compare(k.size() - 12, 12, ".activ.value") == 0;
  ASSERT_EQ(thresholds, 27u) << "init block + 13 x (dw, pw)";

  const auto left = import_state_dict(*net, kDir + "brevitas_mnv1_w025_legacy.pt", PeerNaming::brevitas);
  EXPECT_TRUE(left.empty()) << left.size() << " left for calibration, first " << (left.empty() ? "" : left[0]);

  const auto expected = read_expected(kDir + "brevitas_mnv1_w025_legacy.expected.txt");
  size_t checked_thresholds = 0;
  for (const auto& [key, want] : expected) {
    SCOPED_TRACE(key);
    ASSERT_TRUE(tensors.count(key)) << "no such model tensor";
    const torch::Tensor got = tensors.at(key).detach().to(torch::kFloat64).flatten();
    ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size()));
    for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[static_cast<int64_t>(i)].item<double>(), want[i]) << "element " << i;
    checked_thresholds += key.find(".activ.value") != std::string::npos;
  }
  EXPECT_EQ(checked_thresholds, 27u);
  // Hand-written spot checks: the generator's thresholds are 0.0625 * layer - 0.5 (log2), layers counted
  // from the init block; stage5.unit2.pw_conv is layer 26.
  EXPECT_EQ(tensors.at("features.init_block.activ.value").item<float>(), -0.5f);
  EXPECT_EQ(tensors.at("features.stage2.unit1.dw_conv.activ.value").item<float>(), -0.3125f);  // layer 3, act_quant/learned_value
  EXPECT_EQ(tensors.at("features.stage5.unit2.pw_conv.activ.value").item<float>(), 1.125f);
  EXPECT_EQ(tensors.at("features.stage5.unit2.pw_conv.bn.num_batches_tracked").item<int64_t>(), 1026);
}

TEST(Import, BrevitasMismatchesAreListedNotSkipped) {
  ModelOptions o;
  o.width_mult = 0.25;
  o.num_classes = 10;
  auto net = make_mobilenet_v1(brevitas_4b(), o);
  // One threshold deleted: a missing quantizer parameter is left for calibration, not an error.
  // An unknown threshold and a wrong-shaped bias are errors, and both are named.
  try {
    import_state_dict(*net, kDir + "brevitas_mnv1_w025_bad.pt", PeerNaming::brevitas);
    ADD_FAILURE() << "accepted";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("unexpected keys (1): features.stage9.unit1.pw_conv.activ.value"), std::string::npos) << m;
    EXPECT_NE(m.find("shape mismatches (1): output.bias (checkpoint [11]"), std::string::npos) << m;
    EXPECT_EQ(m.find("missing keys"), std::string::npos) << m;
    EXPECT_EQ(m.find("features.stage2.unit1.pw_conv.activ"), std::string::npos) << m;
    EXPECT_EQ(m.find("zero_hw_sentinel"), std::string::npos) << m;
  }
  // The good file under the plain naming: the thresholds' Brevitas names are unexpected, ours missing
  // (left for calibration), and the sentinels are unexpected too.
  try {
    import_state_dict(*net, kDir + "brevitas_mnv1_w025_legacy.pt", PeerNaming::as_stored);
    ADD_FAILURE() << "accepted";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("features.init_block.activ.act_quant_proxy" + kActScaling + "learned_value"), std::string::npos) << m;
    EXPECT_NE(m.find("features.init_block.conv.weight_quant.zero_hw_sentinel"), std::string::npos) << m;
  }
}


}  // namespace
}  // namespace qv::fakequant
