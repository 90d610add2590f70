// max_pool2d: the reference's definition (the window clipped to the input: padding never wins) on the
// pool, into recycled storage; the VGG case (2x2, stride 2, no padding) as a branch-free row kernel.
#pragma once

#include <vector>

#include "integer/thread_pool.h"
#include "ir/network.h"

namespace qv::integer {

IntTensor run_max_pool2d(const MaxPool2dOp& op, const IntTensor& input, IntType out_type, ThreadPool& pool,
                         std::vector<int64_t>* recycled = nullptr);

// The same on packed bytes (evaluate_output): NCHW, one byte per value, compared as int8 when `is_signed`
// else as uint8. The max is one of the inputs, so out holds the same values run_max_pool2d would.
void run_max_pool2d_bytes(const MaxPool2dOp& op, const uint8_t* input, const Shape& in_shape, bool is_signed, uint8_t* out,
                          ThreadPool& pool);

}  // namespace qv::integer
