#include "fakequant/sawb.h"

#include <map>
#include <string>
#include <vector>

#include "ir/error.h"

namespace qv::fakequant {

namespace {

// QuantLib algorithms/pact (pact_controllers.py): first c1, then c2.
const std::map<int64_t, SawbCoefficients>& sawb_table(bool symmetric) {
  static const std::map<int64_t, SawbCoefficients> symm = {
      {3, {2.58072, 1.68371}},     {4, {3.22824, 2.19780}},     {7, {6.99146, 6.34798}},
      {8, {7.57111, 6.96333}},     {15, {12.04287, 12.07040}},  {16, {12.16637, 12.19222}},
      {31, {14.71474, 15.13775}},  {32, {15.18684, 15.72128}},  {63, {20.78714, 22.60234}},
      {64, {20.54678, 22.29264}},  {127, {27.15792, 30.50641}}, {128, {27.75226, 31.25157}},
      {255, {35.48044, 40.89530}}, {256, {34.97231, 40.26019}},
  };
  static const std::map<int64_t, SawbCoefficients> asymm = {
      {3, {2.58072, 1.68371}},     {4, {4.74932, 3.32860}},     {7, {6.99146, 6.34798}},
      {8, {8.26900, 7.36509}},     {15, {12.04287, 12.07040}},  {16, {12.06485, 11.86833}},
      {31, {14.71474, 15.13775}},  {32, {15.47646, 15.98616}},  {63, {20.78714, 22.60234}},
      {64, {21.96366, 24.03408}},  {127, {27.15792, 30.50641}}, {128, {28.26410, 31.87972}},
      {255, {35.48044, 40.89530}}, {256, {36.15292, 41.73554}},
  };
  return symmetric ? symm : asymm;
}

std::string levels_list(bool symmetric) {
  std::string s;
  for (const auto& [n, c] : sawb_table(symmetric)) s += (s.empty() ? "" : ", ") + std::to_string(n);
  return s;
}

}  // namespace

std::optional<SawbCoefficients> sawb_coefficients(int64_t n_levels, bool symmetric) {
  const auto& t = sawb_table(symmetric);
  const auto it = t.find(n_levels);
  if (it == t.end()) return std::nullopt;
  return it->second;
}

int64_t weight_levels(int bits, bool narrow_range) { return (int64_t{1} << bits) - (narrow_range ? 1 : 0); }

std::pair<torch::Tensor, torch::Tensor> almost_symmetric_clips(const torch::Tensor& m, int64_t n_levels) {
  if (n_levels == 2) return {-m, m};
  const torch::Tensor eps = n_levels % 2 == 0 ? m * 2 / static_cast<double>(n_levels)
                                              : m * 2 / static_cast<double>(n_levels - 1);
  const torch::Tensor lo = -m;
  return {lo, lo + eps * static_cast<double>(n_levels - 1)};
}

PactClips pact_weight_clips(const torch::Tensor& w, config::WeightInit init, int64_t n_levels, bool per_channel,
                            double std_factor) {
  if (n_levels < 2) throw InputError("", "", "PACT weights need at least 2 levels, got " + std::to_string(n_levels));
  if (w.numel() == 0 || w.dim() == 0) throw InputError("", "", "PACT clip initialisation of an empty weight tensor");
  std::vector<int64_t> shape(static_cast<size_t>(w.dim()), 1);
  if (per_channel) shape[0] = w.size(0);
  else shape.assign(1, 1);

  torch::NoGradGuard no_grad;
  // A 1-d tensor per channel: one element per channel (an empty dimension list would reduce over all).
  const torch::Tensor wd = per_channel && w.dim() == 1 ? w.detach().reshape({w.size(0), 1}) : w.detach();
  std::vector<int64_t> dims;
  for (int64_t d = per_channel ? 1 : 0; d < wd.dim(); ++d) dims.push_back(d);
  torch::Tensor lo, hi;
  switch (init) {
    case config::WeightInit::max:
      std::tie(lo, hi) = almost_symmetric_clips(torch::amax(wd.abs(), dims), n_levels);
      break;
    case config::WeightInit::std: {
      const torch::Tensor m = wd.mean(dims) + wd.std(dims, /*unbiased=*/true) * std_factor;
      std::tie(lo, hi) = almost_symmetric_clips(m, n_levels);
      break;
    }
    case config::WeightInit::sawb_symm:
    case config::WeightInit::sawb_asymm: {
      const bool symm = init == config::WeightInit::sawb_symm;
      const auto c = sawb_coefficients(n_levels, symm);
      if (!c)
        throw InputError("", "", "no SAWB " + std::string(symm ? "symmetric" : "asymmetric") + " coefficients for " +
                                     std::to_string(n_levels) + " levels (QuantLib's table has " + levels_list(symm) + ")");
      const torch::Tensor e_w_abs = wd.abs().mean(dims);
      const torch::Tensor e_w2 = torch::mean(torch::pow(wd, 2), dims);
      const torch::Tensor alpha = e_w2.sqrt() * c->c1 - e_w_abs * c->c2;
      const auto [lo_mm, hi_mm] = almost_symmetric_clips(torch::amax(wd.abs(), dims), n_levels);
      if (symm) {
        lo = -alpha;
        hi = alpha;
      } else {
        std::tie(lo, hi) = almost_symmetric_clips(alpha, n_levels);
      }
      const torch::Tensor negative = alpha < 0;
      lo = torch::where(negative, lo_mm, lo);
      hi = torch::where(negative, hi_mm, hi);
      break;
    }
  }
  return {lo.reshape(shape), hi.reshape(shape)};
}

torch::Tensor pact_weight_clip(const torch::Tensor& w, config::WeightInit init, int bits, bool per_channel,
                               double std_factor) {
  return -pact_weight_clips(w, init, weight_levels(bits, false), per_channel, std_factor).lo;
}

}  // namespace qv::fakequant
