// Importing torchvision's MobileNetV2 state_dict (made by tests/fixtures/make_torchvision_mnv2.py with
// Debian's python3-torchvision) through QuantLab's renaming: the fp32 network then computes the logits
// PyTorch printed for the same input.
#include <gtest/gtest.h>

#include <fstream>
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

}  // namespace
}  // namespace qv::fakequant
