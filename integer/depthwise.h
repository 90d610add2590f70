// The depthwise conv2d kernel: one input channel per output channel (groups == C), a KHxKW window,
// any stride, dilation and padding. Each input plane is written once into a padded int32 plane (pad_value
// in the border), so the kernel has no bounds logic; an output row accumulates tap by tap along the row
// (a contiguous multiply-add for stride 1, that the compiler vectorizes for the tier's target). The
// accumulator is int32 when the planner proved max|x| * sum|w[o]| <= 2^31 - 1, int64 otherwise
// (products of int32 operands, bound < 2^63 proven). Tiers: the same loops compiled for the baseline,
// for avx2 and for avx512f (function-level target attributes).
#pragma once

#include "integer/isa.h"
#include "integer/output_stage.h"
#include "integer/plan.h"
#include "integer/thread_pool.h"
#include "ir/tensor.h"

namespace qv::integer {

MinMax run_depthwise(const DepthwiseLayer& layer, const IntTensor& input, const OutputStage& out, Isa isa, ThreadPool& pool,
                     Workspace& workspace);
MinMax run_depthwise(const DepthwiseLayer& layer, const ActSource& input, int64_t N, const OutputStage& out, Isa isa,
                     ThreadPool& pool, Workspace& workspace);

}  // namespace qv::integer
