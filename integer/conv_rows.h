// Channel-major convolution over packed rows (AVX-512 tiers, Q8, stride_w 1 to 4, whole int32 reductions).
//
// The pixel-major kernels (gemm_amx.cc, gemm_avx512vnni.cc) put pixels in tile rows or broadcast them,
// so their sums come out [pixel][channel] and the requant has to gather each channel's values. Here the
// roles are swapped and the sums come out as [channel][pixel]: each channel's run of pixels is
// contiguous, as the NCHW output is, and the requant loads 16 sums at a time.
//   amx   tdpbsud (signed A, unsigned B): A is 16 output channels x ks weight granules, B is ks granules
//         x 16 consecutive pixels of one input row.
//   vnni  vpdpbusd: 16 consecutive pixels' granules of one granule row against one channel's weight
//         granule broadcast to every lane; the same packing, the same [32][32] block of sums.
//
// For that the activations are packed per row as granule planes, [rows][phases][cq][PWp]: granule q of
// every pixel of a row is contiguous, so 16 pixels are one 64-byte row (a tileloadd with a row stride
// of PWp granules, or one load). A strided row is split into stride_w phases (columns p, p + s, ...),
// which keeps a tap's 16 pixels consecutive for any stride. A 1x1 conv with stride 1 and no padding is
// one long row per image (H*W pixels). AMX weights are re-packed as A tiles, [G][Og/16 rounded up to
// even][Kg/ks][16][ks]: each K step of a block of 16 channels is one contiguous tile (1 KiB at ks = 16),
// read as a sequential stream; VNNI reads the micro-kernels' panels [kg][16] (gemm_kernel.h).
#pragma once

#include "integer/output_stage.h"
#include "integer/plan.h"
#include "integer/thread_pool.h"

namespace qv::integer {

// Whether `L` (planned as Q8 with one int32 pass) can take this path, and if so its constant operands
// (the padding's granules; on AMX the weights as A tiles), once, by the planner.
bool rows_fits(const GemmLayer& L);
void prepare_rows(GemmLayer& L);
// GemmLayer::fused_blocks from the node's 16-lane channels (NodePlan::high_mul): the blocks whose sums the
// VNNI kernel requantizes in registers, and those of them whose tail pixels it requantizes across
// channels (every channel in the fma form). Decided by the planner: checked per task, it was ~30% of
// the tasks' own set-up (0.7% of MobileNetV2's time on one thread).
void plan_fused_blocks(GemmLayer& L, const std::vector<HighMulChannel>& high_mul);

MinMax run_conv_rows(const GemmLayer& L, const ActSource& input, int64_t N, const OutputStage& out, ThreadPool& pool,
                         Workspace& ws);

}  // namespace qv::integer
