// Fake-quant primitives in LibTorch, float32 as trained, each matching its peer's forward arithmetic
// operation for operation (same ops in the same order, so the same float32 results), with the peer's
// gradient: straight-through round, PACT's clip gradients, TQT's log-threshold gradient.
//
// Integer grids are explicit: every quantizer can return the integer tensor q and the scale s with
// y = q * s (+ offset), which is what integerization reads. Rounding is a named qv::Rounding.
#pragma once

#include <torch/torch.h>

#include "ir/rounding.h"

namespace qv::fakequant {

// R(x) elementwise in the tensor's dtype: half_even is torch.round, floor/ceil/trunc the torch ops,
// half_up = floor(x + 0.5), half_down = ceil(x - 0.5), half_away = sign(x) * floor(|x| + 0.5).
// (The x + 0.5 forms are exact for |x| < 2^22 in float32, which covers every quantized grid here.)
torch::Tensor round_with(const torch::Tensor& x, Rounding r);

// round_with in the forward pass, identity gradient (straight-through estimator).
torch::Tensor round_ste(const torch::Tensor& x, Rounding r);

// ---- Brevitas style ----------------------------------------------------------------------------

// Weight scale, not learned: s[o] = max(max|W[o, ...]|, 2e-16) / (2^(b-1) - 1), per output channel
// (shape [O, 1, 1, ...] broadcastable against W) or per tensor (shape [1]).
torch::Tensor brevitas_weight_scale(const torch::Tensor& w, int bits, bool per_channel);

// Narrow signed weights: clamp(round_half_even(W / s), -T, T) * s with T = 2^(b-1) - 1; STE round.
torch::Tensor brevitas_weight_quant(const torch::Tensor& w, int bits, bool per_channel);

// Activation scale from the learned log2 threshold: clamp_min(2^value / 2^log2(T), 2e-16), T = 2^b - 1
// (unsigned) or 2^(b-1) (signed), evaluated with the same LibTorch ops as the peer (2^log2(31) is
// 31.000004 in float32, not 31).
torch::Tensor brevitas_act_scale(const torch::Tensor& log2_threshold, int bits, bool is_signed);

// clamp(round_half_even(x / s), qmin, qmax) * s, qmin/qmax of an unsigned or signed (not narrow) b-bit
// type; STE round, gradient to s through the expression.
torch::Tensor brevitas_act_quant(const torch::Tensor& x, const torch::Tensor& scale, int bits, bool is_signed);

// Brevitas TruncAvgPool2d (v0.12+): the window sum S of unsigned bits_in-bit inputs is exact; with
// bw = ceil(log2((2^bits_in - 1) * K^2)), shift = bw - bits_out (6 for 4-bit 7x7 pools),
// q = clamp(R(S / 2^shift), 0, 2^bits_out - 1), R = floor or half_even, output scale fl(s/K^2) * 2^shift.
int trunc_avg_pool_shift(int bits_in, int kernel, int bits_out);
// x holds values q_in * scale; S is recovered exactly as round(avg_pool(x) / fl(scale / K^2)).
torch::Tensor brevitas_trunc_avg_pool(const torch::Tensor& x, const torch::Tensor& scale, int bits_in, int bits_out,
                                      int kernel, Rounding r);

// ---- PACT / TQT (QuantLab / QuantLib) ----------------------------------------------------------

// eps = (clip_hi - clip_lo) / (n_levels - 1);
// y = R((clamp(x, clip_lo, clip_hi + 1e-7) - clip_lo) / eps) * eps + clip_lo, R = floor or half_even.
// Backward: dx = g where clip_lo <= x < clip_hi (else 0); d clip_hi = sum g where x >= clip_hi;
// d clip_lo = sum g where x < clip_lo (summed per channel when the clips are per channel).
torch::Tensor pact_quant(const torch::Tensor& x, const torch::Tensor& clip_lo, const torch::Tensor& clip_hi,
                         int64_t n_levels, Rounding r);

// The clips of PACT's "almost symmetric" signed grid: clip_lo = -M, clip_hi = M (n - 2) / n, so that
// eps = 2M / n and the integers run over [-n/2, n/2 - 1].
std::pair<torch::Tensor, torch::Tensor> pact_symmetric_clips(const torch::Tensor& max_abs, int64_t n_levels);

// TQT: PACT with half_even rounding on clips from a learned log2 threshold t: M = 2^t (2^ceil(t) with
// power_of_two, straight-through for t), unsigned clips [0, M], signed the almost symmetric clips of M.
// Gradient of t (per tensor): ln2 * [sum_{x >= hi} hi*g + sum_{x < lo} lo*g + sum_inside (y - x)*g];
// the running-moment normalisation of that gradient lives in the optimizer, not here.
torch::Tensor tqt_quant(const torch::Tensor& x, const torch::Tensor& log2_t, int64_t n_levels, bool is_signed,
                        bool power_of_two);

}  // namespace qv::fakequant
