// Fake-quant primitives: grid membership, clamping, idempotence, straight-through gradients and the
// peers' worked numbers (../shared/SEMANTICS.md section 2).
#include <gtest/gtest.h>

#include <cmath>

#include "fakequant/quantizers.h"

namespace qv::fakequant {
namespace {

torch::Tensor f32(std::vector<float> v) { return torch::tensor(v, torch::kFloat32); }

TEST(RoundWith, TiesFollowTheNamedMode) {
  const torch::Tensor x = f32({2.5f, -2.5f, 1.5f, -0.5f, 1.25f});
  auto as_vec = [](const torch::Tensor& t) { return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel()); };
  EXPECT_EQ(as_vec(round_with(x, Rounding::half_even)), (std::vector<float>{2, -2, 2, -0.f, 1}));
  EXPECT_EQ(as_vec(round_with(x, Rounding::half_up)), (std::vector<float>{3, -2, 2, 0, 1}));
  EXPECT_EQ(as_vec(round_with(x, Rounding::half_away)), (std::vector<float>{3, -3, 2, -1, 1}));
  EXPECT_EQ(as_vec(round_with(x, Rounding::half_down)), (std::vector<float>{2, -3, 1, -1, 1}));
  EXPECT_EQ(as_vec(round_with(x, Rounding::floor)), (std::vector<float>{2, -3, 1, -1, 1}));
  EXPECT_EQ(as_vec(round_with(x, Rounding::ceil)), (std::vector<float>{3, -2, 2, -0.f, 2}));
  EXPECT_EQ(as_vec(round_with(x, Rounding::trunc)), (std::vector<float>{2, -2, 1, -0.f, 1}));
}

TEST(Brevitas, ActivationScaleReproducesThePeersFloat32Expression) {
  // In float32, 2^log2(T) is exact for T = 15, 7, 127 but not for 31 (31.000004).
  const torch::Tensor zero = torch::zeros({1}, torch::kFloat32);
  const float s31 = brevitas_act_scale(zero, 5, false).item<float>();  // T = 31, threshold 2^0 = 1
  const float s15 = brevitas_act_scale(zero, 4, false).item<float>();  // T = 15
  EXPECT_EQ(s15, 1.0f / 15.0f);
  EXPECT_NE(s31, 1.0f / 31.0f);
  EXPECT_NEAR(1.0 / s31, 31.000004, 2e-6);
  // Signed 4 bit: T = 2^(b-1) = 8 is a power of two: scale exactly 2^value / 8.
  EXPECT_EQ(brevitas_act_scale(torch::full({1}, 3.0f), 4, true).item<float>(), 1.0f);
}

TEST(Brevitas, WeightsAreNarrowSignedOnTheirGridAndIdempotent) {
  torch::manual_seed(3);
  const torch::Tensor w = torch::randn({8, 3, 3, 3});
  for (int bits : {4, 8}) {
    const double t = std::ldexp(1.0, bits - 1) - 1;
    const torch::Tensor s = brevitas_weight_scale(w, bits, true);
    ASSERT_EQ(s.sizes(), (std::vector<int64_t>{8, 1, 1, 1}));
    const torch::Tensor y = brevitas_weight_quant(w, bits, true);
    const torch::Tensor q = y / s;
    EXPECT_TRUE(torch::allclose(q, torch::round(q), 0, 1e-4)) << "off the grid at " << bits << " bits";
    EXPECT_LE(torch::abs(torch::round(q)).max().item<double>(), t);
    // Every channel's largest weight lands on +-T.
    EXPECT_EQ(std::get<0>(torch::abs(torch::round(q)).reshape({8, -1}).max(1)).min().item<double>(), t);
    const torch::Tensor again = brevitas_weight_quant(y, bits, true);
    EXPECT_TRUE(torch::allclose(again, y, 0, 1e-6)) << "not idempotent at " << bits << " bits";
  }
}

TEST(Brevitas, StraightThroughGradients) {
  const torch::Tensor w = f32({-1.0f, 0.3f, 0.77f, 1.0f}).requires_grad_(true);
  brevitas_weight_quant(w, 4, false).sum().backward();
  // Round is straight-through; the scale depends on max|w| (1.0 at two places) through autograd.
  EXPECT_EQ(w.grad().numel(), 4);
  const torch::Tensor x = f32({-1.0f, 0.2f, 0.5f, 100.0f}).requires_grad_(true);
  const torch::Tensor scale = torch::full({1}, 0.1f);
  brevitas_act_quant(x, scale, 4, false).sum().backward();
  // Inside [0, 15*0.1] the gradient is 1; clamped elements (below 0, above 1.5) get 0.
  EXPECT_EQ(std::vector<float>(x.grad().data_ptr<float>(), x.grad().data_ptr<float>() + 4), (std::vector<float>{0, 1, 1, 0}));
}

TEST(Brevitas, TruncAvgPoolShiftAndValues) {
  // SEMANTICS: ceil(log2(15 * 49)) = 10, shift 10 - 4 = 6 for every 4-bit 7x7 pool of the seed models.
  EXPECT_EQ(trunc_avg_pool_shift(4, 7, 4), 6);
  EXPECT_EQ(trunc_avg_pool_shift(8, 7, 8), 6);  // ceil(log2(255 * 49)) = 14
  // A 7x7 window of 4-bit values all 15 except one 0: S = 720; floor(720 / 64) = 11; half_even 11.25 -> 11.
  const float s = 0.125f;
  torch::Tensor x = torch::full({1, 1, 7, 7}, 15 * s);
  x[0][0][3][3] = 0;
  const torch::Tensor y = brevitas_trunc_avg_pool(x, torch::full({1}, s), 4, 4, 7, Rounding::floor);
  const float out_scale = (s / 49.0f) * 64.0f;
  EXPECT_EQ(y.item<float>(), 11 * out_scale);
  // All 15: S = 735, 735 / 64 = 11.48: floor 11, half_even 11; the peer before v0.12 output floor(S/64) * s.
  const torch::Tensor full = brevitas_trunc_avg_pool(torch::full({1, 1, 7, 7}, 15 * s), torch::full({1}, s), 4, 4, 7, Rounding::half_even);
  EXPECT_EQ(full.item<float>(), 11 * out_scale);
}

TEST(Pact, UnsignedActivationGridClampAndGradients) {
  // clip [0, 6] with 256 levels: eps = 6/255; integers 0..255.
  const torch::Tensor x = f32({-1.0f, 0.0f, 3.0f, 5.99f, 6.0f, 7.0f}).requires_grad_(true);
  const torch::Tensor lo = torch::zeros({1}).requires_grad_(true);
  const torch::Tensor hi = torch::full({1}, 6.0f).requires_grad_(true);
  const torch::Tensor y = pact_quant(x, lo, hi, 256, Rounding::half_even);
  const torch::Tensor q = torch::round(y / (6.0f / 255.0f));
  EXPECT_EQ(q[0].item<float>(), 0);
  EXPECT_EQ(q[2].item<float>(), 128);    // 3 / (6/255) = 127.5 -> half_even 128
  EXPECT_EQ(q[4].item<float>(), 255);
  EXPECT_EQ(q[5].item<float>(), 255);    // clamped
  y.sum().backward();
  EXPECT_EQ(std::vector<float>(x.grad().data_ptr<float>(), x.grad().data_ptr<float>() + 6),
            (std::vector<float>{0, 1, 1, 1, 0, 0}));
  EXPECT_EQ(hi.grad().item<float>(), 2);  // x >= hi at 6 and 7
  EXPECT_EQ(lo.grad().item<float>(), 1);  // x < lo at -1
}

TEST(Pact, FloorRoundingAndSymmetricSignedGrid) {
  const auto [lo, hi] = pact_symmetric_clips(torch::full({1}, 2.0f), 256);
  EXPECT_EQ(lo.item<float>(), -2.0f);
  EXPECT_EQ(hi.item<float>(), 2.0f * 254 / 256);
  const torch::Tensor x = f32({-3.0f, -2.0f, -0.01f, 0.0f, 1.99f, 5.0f});
  const torch::Tensor y = pact_quant(x, lo, hi, 256, Rounding::floor);
  const torch::Tensor q = torch::round(y / (4.0f / 256.0f));  // eps = 2M/n = 1/64
  EXPECT_EQ(q[0].item<float>(), -128);
  EXPECT_EQ(q[1].item<float>(), -128);
  EXPECT_EQ(q[2].item<float>(), -1);  // floor(-0.64) = -1
  EXPECT_EQ(q[3].item<float>(), 0);
  EXPECT_EQ(q[5].item<float>(), 127);
}

TEST(Tqt, ThresholdGradientFollowsThePaper) {
  // log2 t = 1: clip [0, 2], 4 levels, eps = 2/3.
  const torch::Tensor x = f32({-1.0f, 0.5f, 3.0f});
  const torch::Tensor t = torch::full({1}, 1.0f).requires_grad_(true);
  const torch::Tensor y = tqt_quant(x, t, 4, false, false);
  EXPECT_NEAR(y[1].item<float>(), 2.0f / 3.0f, 1e-6);  // 0.5 / (2/3) = 0.75 -> 1
  y.sum().backward();
  // ln2 * [hi*1 (x=3 above) + lo*1 (x=-1 below, lo = 0) + (y - x) inside (2/3 - 1/2)]
  EXPECT_NEAR(t.grad().item<float>(), std::log(2.0) * (2.0 + 0.0 + (2.0 / 3.0 - 0.5)), 1e-5);
  // Power-of-two thresholds: log2 t = 0.3 acts as 1.
  EXPECT_TRUE(torch::equal(tqt_quant(x, torch::full({1}, 0.3f), 4, false, true), y.detach()));
}

}  // namespace
}  // namespace qv::fakequant
