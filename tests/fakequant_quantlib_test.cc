// QuantLib's PACT weight clip initialisation (max, SAWB symmetric/asymmetric, std; per channel and per
// layer) and TQT's log-threshold gradient normalisation: hand-computed cases, then bit-for-bit against
// PyTorch's float32 results for QuantLib's formulas (tests/fixtures/make_quantlib_fixtures.py wrote
// tests/fixtures/quantlib/*.txt with Debian's python3-torch).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "fakequant/quantizers.h"
#include "fakequant/sawb.h"
#include "fakequant/tqt_optimizer.h"
#include "ir/error.h"

namespace qv::fakequant {
namespace {

using config::WeightInit;

const std::string kDir = QV_FIXTURE_DIR "/quantlib/";

std::vector<float> values(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kFloat32).contiguous().flatten();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

// Splits "a b : c d : e" into its ' : '-separated fields.
std::vector<std::string> fields(const std::string& line) {
  std::vector<std::string> out;
  size_t at = 0;
  while (true) {
    const size_t next = line.find(" : ", at);
    out.push_back(line.substr(at, next == std::string::npos ? std::string::npos : next - at));
    if (next == std::string::npos) return out;
    at = next + 3;
  }
}

// Numbers as written by Python's repr (exact doubles of float32 values), converted to float exactly.
std::vector<float> floats(const std::string& s) {
  std::istringstream in(s);
  std::vector<float> v;
  std::string tok;
  while (in >> tok) v.push_back(static_cast<float>(std::strtod(tok.c_str(), nullptr)));
  return v;
}

torch::Tensor tensor_of(const std::vector<float>& v, std::vector<int64_t> shape) {
  return torch::tensor(v, torch::kFloat32).reshape(shape);
}

// ---- SAWB coefficients and levels ----

TEST(SawbCoefficients, QuantLibTables) {
  // SEMANTICS.md, from QuantLib: 256 levels symmetric (34.97231, 40.26019), asymmetric (36.15292, 41.73554).
  ASSERT_TRUE(sawb_coefficients(256, true));
  EXPECT_EQ(sawb_coefficients(256, true)->c1, 34.97231);
  EXPECT_EQ(sawb_coefficients(256, true)->c2, 40.26019);
  EXPECT_EQ(sawb_coefficients(256, false)->c1, 36.15292);
  EXPECT_EQ(sawb_coefficients(256, false)->c2, 41.73554);
  // 16 levels (4 bit) differ between the tables; odd level counts share their entries.
  EXPECT_EQ(sawb_coefficients(16, true)->c1, 12.16637);
  EXPECT_EQ(sawb_coefficients(16, false)->c2, 11.86833);
  EXPECT_EQ(sawb_coefficients(255, true)->c1, sawb_coefficients(255, false)->c1);
  int entries = 0;
  for (int64_t n = 0; n <= 1024; ++n) entries += sawb_coefficients(n, true).has_value();
  EXPECT_EQ(entries, 14);  // 3 4 7 8 15 16 31 32 63 64 127 128 255 256
  for (int64_t n : {2, 5, 9, 257, 512}) EXPECT_FALSE(sawb_coefficients(n, false)) << n;
  EXPECT_EQ(weight_levels(8, false), 256);
  EXPECT_EQ(weight_levels(4, true), 15);
}

// ---- hand-computed clips ----

// Channel 0: |w| 1, 2, 0.5, 0.5: E|w| = 1, E[w^2] = 1.375, mean -0.25, unbiased std sqrt(1.75).
// Channel 1: |w| all 0.25: SAWB's alpha = 0.25 (c1 - c2) < 0, so it falls back to max.
torch::Tensor two_channels() { return torch::tensor({1.0f, -2.0f, 0.5f, -0.5f, 0.25f, 0.25f, -0.25f, -0.25f}).reshape({2, 4}); }

TEST(PactWeightClips, MaxIsAlmostSymmetricPerChannelAndPerLayer) {
  const PactClips c = pact_weight_clips(two_channels(), WeightInit::max, 256, true, 3.0);
  EXPECT_EQ(c.lo.sizes(), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(values(c.lo), (std::vector<float>{-2.0f, -0.25f}));
  EXPECT_EQ(values(c.hi), (std::vector<float>{2.0f * 254 / 256, 0.25f * 254 / 256}));  // -M + 255 * (2M / 256)
  const PactClips layer = pact_weight_clips(two_channels(), WeightInit::max, 256, false, 3.0);
  EXPECT_EQ(layer.lo.sizes(), (std::vector<int64_t>{1}));
  EXPECT_EQ(values(layer.lo), (std::vector<float>{-2.0f}));
  // Odd level counts are fully symmetric; two levels are [-M, M].
  EXPECT_EQ(values(pact_weight_clips(two_channels(), WeightInit::max, 255, true, 3.0).hi), (std::vector<float>{2.0f, 0.25f}));
  EXPECT_EQ(values(pact_weight_clips(two_channels(), WeightInit::max, 2, true, 3.0).hi), (std::vector<float>{2.0f, 0.25f}));
  // Conv weights: [O, 1, 1, 1].
  const torch::Tensor conv = torch::arange(24, torch::kFloat32).reshape({2, 3, 2, 2}) - 10;
  const PactClips cc = pact_weight_clips(conv, WeightInit::max, 16, true, 3.0);
  EXPECT_EQ(cc.lo.sizes(), (std::vector<int64_t>{2, 1, 1, 1}));
  EXPECT_EQ(values(cc.lo), (std::vector<float>{-10.0f, -13.0f}));
  EXPECT_EQ(values(cc.hi), (std::vector<float>{-10.0f + 15 * (20.0f / 16), -13.0f + 15 * (26.0f / 16)}));
  // A 1-d tensor per channel: every element its own channel.
  const PactClips one = pact_weight_clips(torch::tensor({-3.0f, 1.0f}), WeightInit::max, 256, true, 3.0);
  EXPECT_EQ(one.lo.sizes(), (std::vector<int64_t>{2}));
  EXPECT_EQ(values(one.lo), (std::vector<float>{-3.0f, -1.0f}));
  // pact_weight_clip: M = -clip_lo at 2^bits levels.
  EXPECT_EQ(values(pact_weight_clip(conv, WeightInit::max, 4, false, 3.0)), (std::vector<float>{13.0f}));
}

TEST(PactWeightClips, SawbSymmetricAsymmetricAndTheMaxFallback) {
  // symm: alpha = 34.97231 sqrt(1.375) - 40.26019 = 0.74847850, clips [-alpha, alpha].
  const PactClips s = pact_weight_clips(two_channels(), WeightInit::sawb_symm, 256, true, 3.0);
  EXPECT_NEAR(s.lo[0].item<float>(), -0.74847850, 1e-5);
  EXPECT_NEAR(s.hi[0].item<float>(), 0.74847850, 1e-5);
  EXPECT_EQ(s.hi[0].item<float>(), -s.lo[0].item<float>()) << "sawb_symm is fully symmetric";
  // Channel 1 falls back to the max clips.
  EXPECT_EQ(s.lo[1].item<float>(), -0.25f);
  EXPECT_EQ(s.hi[1].item<float>(), 0.25f * 254 / 256);
  // asymm: alpha = 36.15292 sqrt(1.375) - 41.73554 = 0.65751643, almost symmetric: hi = alpha * 254/256.
  const PactClips a = pact_weight_clips(two_channels(), WeightInit::sawb_asymm, 256, true, 3.0);
  EXPECT_NEAR(a.lo[0].item<float>(), -0.65751643, 1e-5);
  EXPECT_NEAR(a.hi[0].item<float>(), 0.65237959, 1e-5);
  EXPECT_EQ(a.lo[1].item<float>(), -0.25f);
  // Per layer: E|w| = 0.625, E[w^2] = 0.71875: alpha = 34.97231 * 0.84779125 - 40.26019 * 0.625 = 4.48714.
  const PactClips l = pact_weight_clips(two_channels(), WeightInit::sawb_symm, 256, false, 3.0);
  EXPECT_NEAR(l.hi.item<float>(), 34.97231 * std::sqrt(0.71875) - 40.26019 * 0.625, 1e-5);
  // pact_weight_clip is M = alpha (8 bits: 256 levels).
  EXPECT_NEAR(pact_weight_clip(two_channels(), WeightInit::sawb_symm, 8, true, 3.0)[0].item<float>(), 0.74847850, 1e-5);
}

TEST(PactWeightClips, StdIsMeanPlusFactorTimesUnbiasedStd) {
  // Channel 0: -0.25 + 3 sqrt(1.75) = 3.71862697; channel 1: 0 + 3 sqrt(1/12) = 0.86602540.
  const PactClips c = pact_weight_clips(two_channels(), WeightInit::std, 256, true, 3.0);
  EXPECT_NEAR(c.lo[0].item<float>(), -3.71862697, 1e-5);
  EXPECT_NEAR(c.lo[1].item<float>(), -0.86602540, 1e-6);
  EXPECT_NEAR(c.hi[0].item<float>(), 3.68957519, 1e-5);
  EXPECT_NEAR(c.hi[1].item<float>(), 0.85925958, 1e-6);
  EXPECT_NEAR(pact_weight_clip(two_channels(), WeightInit::std, 8, true, 1.5)[1].item<float>(), 1.5 * std::sqrt(1.0 / 12), 1e-6);
}

TEST(PactWeightClips, RefusesWhatQuantLibCannotDo) {
  EXPECT_THROW(pact_weight_clips(two_channels(), WeightInit::sawb_symm, 512, true, 3.0), InputError);
  try {
    pact_weight_clips(two_channels(), WeightInit::sawb_asymm, 5, true, 3.0);
    ADD_FAILURE() << "accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("5 levels"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("255, 256"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(pact_weight_clips(two_channels(), WeightInit::max, 512, true, 3.0)) << "max needs no table";
  EXPECT_THROW(pact_weight_clips(two_channels(), WeightInit::max, 1, true, 3.0), InputError);
  EXPECT_THROW(pact_weight_clips(torch::zeros({0, 3}), WeightInit::max, 256, true, 3.0), InputError);
}

TEST(PactWeightClips, ClipsGiveAnEpsOnTheIntegerGrid) {
  // With the max clips at 256 levels, eps = (hi - lo) / 255 = M / 128 and the largest weight is -128 eps.
  const PactClips c = pact_weight_clips(two_channels(), WeightInit::max, 256, true, 3.0);
  const torch::Tensor eps = (c.hi - c.lo) / 255.0;
  EXPECT_EQ(values(eps), (std::vector<float>{2.0f / 128, 0.25f / 128}));
  const torch::Tensor y = pact_quant(two_channels(), c.lo, c.hi, 256, Rounding::half_even);
  EXPECT_EQ(values(torch::round(y / eps)), (std::vector<float>{64, -128, 32, -32, 127, 127, -128, -128}));
}

// ---- bit for bit against PyTorch ----

TEST(PactWeightClips, MatchPyTorchBitForBit) {
  std::ifstream f(kDir + "weight_clips.txt");
  ASSERT_TRUE(f) << kDir << "weight_clips.txt";
  std::string line;
  torch::Tensor w;
  int records = 0;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto parts = fields(line);
    std::istringstream head(parts[0]);
    std::string kind;
    head >> kind;
    if (kind == "weights") {
      std::vector<int64_t> shape;
      int64_t d;
      while (head >> d) shape.push_back(d);
      w = tensor_of(floats(parts[1]), shape);
      continue;
    }
    ASSERT_EQ(kind, "clips");
    std::string init;
    int64_t n;
    int per_channel;
    double k;
    head >> init >> n >> per_channel >> k;
    const WeightInit wi = init == "max" ? WeightInit::max
                          : init == "std" ? WeightInit::std
                          : init == "sawb_symm" ? WeightInit::sawb_symm
                                                : WeightInit::sawb_asymm;
    SCOPED_TRACE(parts[0] + " on weights " + std::to_string(w.size(0)) + "x" + std::to_string(w.numel() / w.size(0)));
    const PactClips c = pact_weight_clips(w, wi, n, per_channel != 0, k);
    EXPECT_EQ(values(c.lo), floats(parts[1]));
    EXPECT_EQ(values(c.hi), floats(parts[2]));
    ++records;
  }
  EXPECT_EQ(records, 2 * 2 * (2 * 14 + 3 + 6));  // 2 weights x 2 granularities x (SAWB tables, max, std)
}

// ---- TQT gradient normalisation ----

TEST(TqtGradNormalizer, HandComputedSequence) {
  // v = 0.9 v + 0.1 g^2; rb = 0.9^t; g / (sqrt(v / (1 - rb)) + 1e-5); g = 2, -1, 0.5, 0:
  //   v: 0.4, 0.46, 0.439, 0.3951; v / (1 - rb): 4, 2.421053, 1.619926, ...
  const std::vector<float> g = {2.0f, -1.0f, 0.5f, 0.0f};
  const std::vector<double> clipped = {0.76159206, -0.56672188, 0.37380853, 0.0};
  const std::vector<double> raw = {0.99999500, -0.64268046, 0.39284296, 0.0};
  for (bool clip : {true, false}) {
    torch::Tensor v = torch::zeros({1}), rb = torch::ones({});
    for (size_t i = 0; i < g.size(); ++i) {
      const torch::Tensor out = TqtGradNormalizer::step(torch::full({1}, g[i]), v, rb, 0.9, clip);
      EXPECT_NEAR(out.item<float>(), (clip ? clipped : raw)[i], 1e-6) << "step " << i << " clip " << clip;
    }
    EXPECT_NEAR(v.item<float>(), 0.3951, 1e-6);
    EXPECT_NEAR(rb.item<float>(), 0.6561, 1e-6);
  }
  // The first step's output is tanh(~1) whatever the gradient's size: direction, not magnitude.
  for (float g0 : {0.1f, 1.0f, 1e3f}) {
    torch::Tensor v = torch::zeros({1}), rb = torch::ones({});
    EXPECT_NEAR(TqtGradNormalizer::step(torch::full({1}, -g0), v, rb, 0.9, true).item<float>(), -std::tanh(1.0), 1e-4) << g0;
  }
}

TEST(TqtGradNormalizer, MatchesPyTorchBitForBit) {
  std::ifstream f(kDir + "tqt_grad_norm.txt");
  ASSERT_TRUE(f) << kDir << "tqt_grad_norm.txt";
  std::string line;
  int cases = 0;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto parts = fields(line);
    std::istringstream head(parts[0]);
    std::string tag;
    double beta;
    int clip, steps;
    int64_t size;
    head >> tag >> beta >> clip >> steps >> size;
    ASSERT_EQ(parts.size(), 1u + 2 * static_cast<size_t>(steps) + 2);
    SCOPED_TRACE(parts[0]);
    torch::Tensor v = torch::zeros({size}), rb = torch::ones({});
    for (int s = 0; s < steps; ++s) {
      const torch::Tensor out = TqtGradNormalizer::step(tensor_of(floats(parts[1 + s]), {size}), v, rb, beta, clip != 0);
      EXPECT_EQ(values(out), floats(parts[1 + steps + s])) << "step " << s;
    }
    EXPECT_EQ(values(v), floats(parts[1 + 2 * steps]));
    EXPECT_EQ(values(rb), floats(parts[2 + 2 * steps]));
    ++cases;
  }
  EXPECT_EQ(cases, 5);
}

struct TwoParams : torch::nn::Module {
  TwoParams() {
    auto q = std::make_shared<torch::nn::Module>();
    log_t = q->register_parameter("log_t", torch::zeros({1}));
    weight = register_parameter("weight", torch::zeros({3}));
    frozen = register_parameter("other_log_t", torch::zeros({1}));  // not named log_t: not tracked
    register_module("act", q);
  }
  torch::Tensor log_t, weight, frozen;
};

TEST(TqtGradNormalizer, ReplacesOnlyTrackedGradientsBeforeTheStep) {
  TwoParams m;
  TqtGradNormalizer norm;
  EXPECT_EQ(norm.add_all(m), 1u);
  ASSERT_EQ(norm.tracked()[0].name, "act.log_t");

  // No gradient yet: nothing happens, the state stays at its start.
  norm.normalize();
  EXPECT_EQ(norm.tracked()[0].running_beta.item<float>(), 1.0f);

  // A real TQT gradient: x = 3 above the clip [0, 1] (log2 t = 0), 4 levels: raw dL/dlog_t = ln2 * 1.
  const torch::Tensor y = tqt_quant(torch::full({1}, 3.0f), m.log_t, 4, false, false);
  (y.sum() + m.weight.sum() * 2).backward();
  EXPECT_NEAR(m.log_t.grad().item<float>(), std::log(2.0), 1e-6);
  norm.normalize();
  EXPECT_NEAR(m.log_t.grad().item<float>(), 0.76159206, 1e-5) << "tanh(g / (|g| + 1e-5))";
  EXPECT_EQ(values(m.weight.grad()), (std::vector<float>{2, 2, 2})) << "other gradients untouched";
  EXPECT_NEAR(norm.tracked()[0].running_beta.item<float>(), 0.9, 1e-7);
  EXPECT_NEAR(norm.tracked()[0].running_grad_var.item<float>(), 0.1 * std::log(2.0) * std::log(2.0), 1e-7);

  // An optimizer step then moves log_t by lr * the normalised gradient.
  torch::optim::SGD sgd(std::vector<torch::Tensor>{m.log_t}, torch::optim::SGDOptions(0.1));
  sgd.step();
  EXPECT_NEAR(m.log_t.item<float>(), -0.076159206, 2e-6);
}

}  // namespace
}  // namespace qv::fakequant
