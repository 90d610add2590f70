// PACT weight clipping initialisation as QuantLib's PACTLinearController computes it (symmetric weights,
// `symm_wts`): the clips [clip_lo, clip_hi] of a conv or linear weight from `max`, SAWB or `std`, per
// output channel or per layer, in float32 with the peer's operations in the peer's order, so the eps
// (clip_hi - clip_lo) / (n_levels - 1) that follows is the peer's to the bit.
//
//   max:        M = max|w|;                      clips almost_symmetric(M)
//   std:        M = mean(w) + std_factor * std(w) (unbiased std); clips almost_symmetric(M)
//   sawb_symm:  alpha = c1 sqrt(E[w^2]) - c2 E|w|; clips [-alpha, alpha]   (fully symmetric)
//   sawb_asymm: the same alpha with the asymmetric table; clips almost_symmetric(alpha)
//   SAWB falls back to the max clips wherever alpha < 0 (|w| nearly constant in a channel).
//
// almost_symmetric(M) = [-M, -M + (n - 1) eps] with eps = 2M/n for even n, 2M/(n-1) for odd n, and
// [-M, M] for n = 2. (c1, c2) come from QuantLib's tables for 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 127,
// 128, 255 and 256 levels (docs/configs.md lists them).
//
// QuantLib's own `std` branch for symmetric weights assigns the lower clip to a misspelt variable and
// fails; qverify gives the almost symmetric clips of M that the branch's comment describes.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <utility>

#include "fakequant/config/quant_config.h"

namespace qv::fakequant {

struct SawbCoefficients {
  double c1, c2;
};
// QuantLib's table entry for n_levels; nullopt for a level count it has no entry for.
std::optional<SawbCoefficients> sawb_coefficients(int64_t n_levels, bool symmetric);

// The number of levels a weight quantizer of `bits` bits uses: 2^bits, or 2^bits - 1 for a narrow range.
int64_t weight_levels(int bits, bool narrow_range);

struct PactClips {
  torch::Tensor lo, hi;  // [O, 1, ...] (broadcastable against w) per channel, [1] per layer
};

// The clips. Throws InputError for an n_levels below 2, a SAWB level count without a table entry,
// or a weight with no elements.
PactClips pact_weight_clips(const torch::Tensor& w, config::WeightInit init, int64_t n_levels, bool per_channel,
                            double std_factor);

// M = -clip_lo, the threshold of the clips above with n_levels = 2^bits, broadcastable against w.
torch::Tensor pact_weight_clip(const torch::Tensor& w, config::WeightInit init, int bits, bool per_channel,
                               double std_factor);

// QuantLib's almost symmetric clips of a threshold M (util.almost_symm_quant), same float32 operations.
std::pair<torch::Tensor, torch::Tensor> almost_symmetric_clips(const torch::Tensor& m, int64_t n_levels);

}  // namespace qv::fakequant
