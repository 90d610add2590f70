// Importing torchvision's MobileNetV2 state_dict (made by tests/fixtures/make_torchvision_mnv2.py with
// Debian's python3-torchvision) through QuantLab's renaming: the fp32 network then computes the logits
// PyTorch printed for the same input. Importing Brevitas-named checkpoints (made by
// tests/fixtures/make_brevitas_legacy.py) with the legacy activation-threshold spellings. Importing a
// QuantLab PACT MobileNetV2 checkpoint (made by tests/fixtures/make_quantlab_mnv2.py).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "fakequant/import.h"
#include "ir/error.h"
#include "tests/support/fakequant_schemes.h"

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


// ---- QuantLab ----

TEST(Import, QuantLabNamesAsStoredLessDataParallel) {
  EXPECT_EQ(rename_key("module.pilot.2.clip_hi", PeerNaming::quantlab), "pilot.2.clip_hi");
  EXPECT_EQ(rename_key("features.3.residual_branch.1.0.clip_lo", PeerNaming::quantlab), "features.3.residual_branch.1.0.clip_lo");
  EXPECT_EQ(rename_key("features.0.0.weight", PeerNaming::quantlab), "features.0.0.weight");  // no torchvision renaming
  // Controller flags and backward-only buffers are skipped, as whole leaf names, under this naming only.
  EXPECT_TRUE(ignored_key("module.pilot.0.frozen", PeerNaming::quantlab));
  EXPECT_TRUE(ignored_key("pilot.2.clip_gradient", PeerNaming::quantlab));
  EXPECT_FALSE(ignored_key("pilot.2.not_frozen", PeerNaming::quantlab));
  EXPECT_FALSE(ignored_key("pilot.2.started", PeerNaming::quantlab));  // checked, not ignored
  EXPECT_FALSE(ignored_key("pilot.2.clip_hi", PeerNaming::quantlab));
  EXPECT_FALSE(ignored_key("x.zero_hw_sentinel", PeerNaming::quantlab));
  EXPECT_FALSE(ignored_key("pilot.0.frozen", PeerNaming::as_stored));
  EXPECT_FALSE(ignored_key("pilot.0.frozen", PeerNaming::brevitas));
}

std::shared_ptr<NetworkImpl> pact_mobilenet_v2() {
  ModelOptions o;
  o.width_mult = 0.25;
  o.num_classes = 10;
  o.resolution = 32;
  return make_mobilenet_v2(testing::scheme(QuantKind::pact), o);
}

std::map<std::string, torch::Tensor> named_tensors(torch::nn::Module& net) {
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& p : net.named_parameters()) tensors[p.key()] = p.value();
  for (const auto& b : net.named_buffers()) tensors[b.key()] = b.value();
  return tensors;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

TEST(Import, QuantLabPactCheckpointFillsMobileNetV2) {
  auto net = pact_mobilenet_v2();
  auto tensors = named_tensors(*net);
  size_t act_clips = 0;
  for (const auto& [k, t] : tensors) act_clips += ends_with(k, ".clip_hi");
  ASSERT_EQ(act_clips, 35u) << "MobileNetV2's 35 ReLU6";

  const auto left = import_state_dict(*net, kDir + "quantlab_mnv2_w025.pt", PeerNaming::quantlab);
  EXPECT_TRUE(left.empty()) << left.size() << " left for calibration, first " << (left.empty() ? "" : left[0]);

  // "KEY STRIDE v0 v_STRIDE ...": the model's tensors, and the convs' / linear's weight clips.
  std::map<std::string, std::vector<double>> weight_clips;
  std::set<std::string> checked;
  size_t checked_act_clips = 0;
  for (const auto& [key, line] : read_expected(kDir + "quantlab_mnv2_w025.expected.txt")) {
    SCOPED_TRACE(key);
    ASSERT_FALSE(line.empty());
    const int64_t stride = static_cast<int64_t>(line[0]);
    const std::vector<double> want(line.begin() + 1, line.end());
    if (!tensors.count(key)) {
      ASSERT_TRUE(ends_with(key, ".clip_lo") || ends_with(key, ".clip_hi")) << "no such model tensor";
      weight_clips[key] = want;
      continue;
    }
    const torch::Tensor got = tensors.at(key).detach().to(torch::kFloat64).flatten();
    ASSERT_EQ((got.numel() + stride - 1) / stride, static_cast<int64_t>(want.size()));
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_EQ(got[static_cast<int64_t>(i) * stride].item<double>(), want[i]) << "element " << static_cast<int64_t>(i) * stride;
    checked.insert(key);
    checked_act_clips += ends_with(key, ".clip_hi");
  }
  EXPECT_EQ(checked.size(), tensors.size()) << "every model tensor is in the expected file";
  EXPECT_EQ(checked_act_clips, 35u);
  EXPECT_EQ(tensors.at("pilot.2.clip_lo").item<float>(), 0.0f);
  EXPECT_EQ(tensors.at("features.17.1.num_batches_tracked").item<int64_t>(), 1052);  // 1000 + layer 52

  // The weight quantizers' grids are the stored clips': eps = (clip_hi - clip_lo) / 255 per channel
  // (convs) or per layer (classifier), in float32 as QuantLib computes it.
  size_t grids = 0;
  for (const auto& item : net->named_modules()) {
    const std::string& m = item.key();
    torch::Tensor w;
    const WeightQuant* wq = nullptr;
    if (auto c = std::dynamic_pointer_cast<QConv2dImpl>(item.value())) w = c->weight, wq = &c->wq;
    else if (auto l = std::dynamic_pointer_cast<QLinearImpl>(item.value())) w = l->weight, wq = &l->wq;
    if (!wq) continue;
    SCOPED_TRACE(m);
    ASSERT_TRUE(weight_clips.count(m + ".clip_lo") && weight_clips.count(m + ".clip_hi"));
    const torch::Tensor lo = torch::tensor(weight_clips.at(m + ".clip_lo"), torch::kFloat64).to(torch::kFloat32);
    const torch::Tensor hi = torch::tensor(weight_clips.at(m + ".clip_hi"), torch::kFloat64).to(torch::kFloat32);
    const torch::Tensor eps = ((hi - lo) / 255.0).to(torch::kFloat64);
    const WeightGrid grid = weight_grid(w, *wq);
    ASSERT_EQ(grid.scale.numel(), eps.numel());
    EXPECT_TRUE(torch::equal(grid.scale.to(torch::kFloat64), eps)) << grid.scale << eps;
    ++grids;
  }
  EXPECT_EQ(grids, 53u) << "52 convs and the classifier";
  EXPECT_EQ(weight_clips.size(), 2 * grids);

  net->eval();
  torch::NoGradGuard g;
  const torch::Tensor y = net->forward(torch::rand({1, 3, 32, 32}));
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
}

TEST(Import, QuantLabMismatchesAreListedNotSkipped) {
  auto net = pact_mobilenet_v2();
  // A BN buffer renamed, a bias of 11 classes, a weight clip 1 % off the weight's max, an activation not started.
  try {
    import_state_dict(*net, kDir + "quantlab_mnv2_w025_bad.pt", PeerNaming::quantlab);
    ADD_FAILURE() << "accepted";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("missing keys (1): features.2.residual_branch.0.1.running_var\n"), std::string::npos) << m;
    EXPECT_NE(m.find("unexpected keys (1): features.2.residual_branch.0.1.running_variance\n"), std::string::npos) << m;
    EXPECT_NE(m.find("shape mismatches (3):"), std::string::npos) << m;
    EXPECT_NE(m.find("classifier.1.bias (checkpoint [11]"), std::string::npos) << m;
    EXPECT_NE(m.find("features.5.residual_branch.0.0.clip_lo (differs by up to"), std::string::npos) << m;
    EXPECT_NE(m.find("pilot.2.started (not started"), std::string::npos) << m;
    EXPECT_EQ(m.find("clip_hi"), std::string::npos) << m;  // the clip_hi beside the damaged clip_lo still fits
  }
  // The good file under the plain naming: the QuantLib flags, statistics and weight clips are unexpected.
  try {
    import_state_dict(*net, kDir + "quantlab_mnv2_w025.pt", PeerNaming::as_stored);
    ADD_FAILURE() << "accepted";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find("missing keys"), std::string::npos) << m;
    for (const char* k : {" pilot.0.clip_lo", " pilot.0.frozen", " pilot.2.started", " pilot.2.max", " classifier.1.clip_hi"})
      EXPECT_NE(m.find(k), std::string::npos) << k << " in " << m;
  }
  // A float network has no weight or activation quantizers: the clips are listed, not dropped.
  ModelOptions o;
  o.width_mult = 0.25;
  o.num_classes = 10;
  auto fp32 = make_mobilenet_v2(ModelQuant{}, o);
  try {
    import_state_dict(*fp32, kDir + "quantlab_mnv2_w025.pt", PeerNaming::quantlab);
    ADD_FAILURE() << "accepted";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(" pilot.0.clip_lo"), std::string::npos) << m;
    EXPECT_NE(m.find(" pilot.2.clip_hi"), std::string::npos) << m;
    EXPECT_EQ(m.find("pilot.2.max"), std::string::npos) << m;  // statistics of a QuantLib act are still skipped
  }
}


}  // namespace
}  // namespace qv::fakequant
