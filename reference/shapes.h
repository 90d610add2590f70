// Output shapes of the ops, from their parameters and input shapes. Shared by the reference kernels and
// the network builder. Each throws std::invalid_argument naming the mismatch (rank, channels, a window
// larger than the padded input).
#pragma once

#include "ir/network.h"

namespace qv::reference {

// Output size along one axis: floor((in + pads - dilation*(kernel-1) - 1) / stride) + 1.
int64_t window_output_size(int64_t in, int pad_before, int pad_after, int kernel, int stride, int dilation);

Shape conv2d_output_shape(const Conv2dOp& op, const Shape& input);
Shape linear_output_shape(const LinearOp& op, const Shape& input);
Shape max_pool2d_output_shape(const MaxPool2dOp& op, const Shape& input);
Shape avg_pool2d_output_shape(const AvgPool2dOp& op, const Shape& input);
Shape hadamard_output_shape(const HadamardOp& op, const Shape& input);
Shape flatten_output_shape(const Shape& input);

}  // namespace qv::reference
