// The GEMM driver of conv2d and linear: packs the int64 NCHW input into the layer's granule image,
// runs the micro-kernel over (pixel strip, channel blocks) tiles on the pool, and sends every int64
// accumulator through the output stage. See gemm_kernel.h for the packing, plan.h for the proofs.
#pragma once

#include "integer/output_stage.h"
#include "integer/plan.h"
#include "integer/thread_pool.h"
#include "ir/tensor.h"

namespace qv::integer {

MinMax run_gemm(const GemmLayer& layer, const IntTensor& input, const OutputStage& out, ThreadPool& pool, Workspace& workspace);
// The same on an int64 or 8-bit source of batch N (evaluate_output); with out.acc_out == nullptr the
// accumulators live only in per-task buffers.
MinMax run_gemm(const GemmLayer& layer, const ActSource& input, int64_t N, const OutputStage& out, ThreadPool& pool,
                Workspace& workspace);

}  // namespace qv::integer
