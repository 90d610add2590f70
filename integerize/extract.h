// Extraction: a (harmonized, calibrated) fake-quant network read out as a quantized graph of exact
// numbers. Weights become the integers their quantizer rounded to, with the quantizer's float32 scale;
// every float constant becomes the exact rational it is; BatchNorm (inference statistics) becomes
// y = mul * x + add with mul = gamma / sqrt(var + eps) evaluated in float64 (the one irrational step,
// taken as its correctly rounded double) and add = beta - mean * mul exactly; each activation
// quantizer becomes its grid (scale, offset, clamp) with the non-linearity folded into the clamp.
#pragma once

#include "fakequant/models.h"
#include "integerize/qgraph.h"

#include <vector>

namespace qv::integerize {

// Throws IntegerizeError naming the layer when a node has no exact integer form (an unquantized layer,
// a grid that overflows its type).
//
// pixel_input: the network input feeds an unpadded conv directly (harmonize's fold_input); the
// integer input is then the 8-bit pixels p, on the grid x = p / (255 std) - mean / std of the
// preprocessing (float32 mean and std, one std for every channel), as the quantizer "input_pixels".
struct PixelInput {
  std::vector<float> mean, std;
};
QGraph extract(const fakequant::NetworkImpl& net, const Shape& input_shape, const PixelInput* pixel_input = nullptr);

// Exact rationals of a float tensor's values (any float dtype), in row-major order.
std::vector<Rational> exact_values(const torch::Tensor& t);

}  // namespace qv::integerize
