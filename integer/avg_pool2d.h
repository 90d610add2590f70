// avg_pool2d on packed bytes (evaluate_output): y = clamp(R(window_sum / 2^shift)) to the output type,
// the reference's definition (reference/avg_pool2d.h) with the window sum in int32. A sum of at most
// 2^23 bytes is below 2^31, so the int32 sum is exact; larger windows keep the reference.
#pragma once

#include <cstdint>

#include "integer/thread_pool.h"
#include "ir/network.h"

namespace qv::integer {

// Whether run_avg_pool2d_bytes computes `op` exactly (the window bound above, a shift round_shift_right takes).
bool avg_pool2d_bytes_applies(const AvgPool2dOp& op);

// NCHW, one byte per value in: read as int8 when `in_signed` else uint8. Out: bytes (int8/uint8 by
// out_type, <= 8 bits) or int64 values (a wider out_type, e.g. MobileNetV2's window sums).
void run_avg_pool2d_bytes(const AvgPool2dOp& op, const uint8_t* input, const Shape& in_shape, bool in_signed, IntType out_type,
                          uint8_t* out, ThreadPool& pool);
void run_avg_pool2d_bytes(const AvgPool2dOp& op, const uint8_t* input, const Shape& in_shape, bool in_signed, IntType out_type,
                          int64_t* out, ThreadPool& pool);

}  // namespace qv::integer
