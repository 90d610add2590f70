// Seeded random integer networks with real topologies (VGG16, MobileNetV2), for tests and benchmarks.
//
// Weights are uniform over the symmetric weight range [-(2^(b-1)-1), 2^(b-1)-1]; every requantization
// is exact (ExactRequant, half_even) with dyadic alpha = m * 2^-k (m odd, 15 bits) and delta = d * 2^-k,
// |delta| <= 1/2. alpha is chosen from a propagated estimate of each accumulator's RMS (weights
// independent and zero-mean: E[acc^2] = fan_in * E[w^2] * E[x^2] + bias^2) so that activations spread
// over the output range without saturating. Randomness is std::mt19937_64 with distributions written
// here (the standard ones are not portable across libraries) and only IEEE-exact double operations
// (+ - * / sqrt frexp ldexp), so a seed names the same network everywhere.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "ir/network.h"

namespace qv {

// Uniform integer in [lo, hi] from raw 64-bit draws (rejection sampling, no modulo bias).
int64_t uniform(std::mt19937_64& rng, int64_t lo, int64_t hi);
// Uniform double in [0, 1) with 53 random bits.
double uniform_unit(std::mt19937_64& rng);

// 13 convs 3x3 pad 1 + unsigned requant (ReLU-like), 5 max pools 2x2, flatten, linear 4096, requant,
// linear 4096, requant, linear 1000 (raw logits). Input [1, 3, R, R] of uint{act_bits}; R >= 32.
Network synthetic_vgg16(int resolution, uint64_t seed, int act_bits = 8, int weight_bits = 8);

// Pilot conv 3->32 stride 2, the 17 inverted residual blocks (expand 1x1 + uint8, depthwise 3x3 + uint8,
// project 1x1 + int8, add_requant residual where stride 1 and in == out), 320->1280 1x1 + uint8, global
// avg_pool2d (kernel = spatial size, shift = ceil(log2(kernel^2)), floor), flatten, linear 1280->1000.
// Input [1, 3, R, R] uint8; R >= 32.
Network synthetic_mobilenet_v2(int resolution, uint64_t seed);

// One tensor per input node of `network`, uniform over its declared type.
std::vector<IntTensor> synthetic_inputs(const Network& network, uint64_t seed);

}  // namespace qv
