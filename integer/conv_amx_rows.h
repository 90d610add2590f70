// Channel-major AMX convolution over packed rows (avx512amx tier, Q8, stride_w 1 to 4, whole int32 reductions).
//
// The pixel-major kernel (gemm_amx.cc) puts pixels in tile rows, so its output tile is [pixel][channel]
// and the requant has to gather each channel's values; pixels of a strip that crosses an output row are
// copied into a staging tile. Here the roles are swapped with tdpbsud (signed A, unsigned B): A is 16
// output channels x ks weight granules, B is ks granules x 16 consecutive pixels of one input row, and
// the sums come out as [channel][pixel]: each channel's run of pixels is contiguous, as the NCHW output is.
//
// For that the activations are packed per row as granule planes, [rows][phases][cq][PWp]: granule q of
// every pixel of a row is contiguous, so a B tile is one tileloadd with a row stride of PWp granules. A
// strided row is split into stride_w phases (columns p, p + s, ...), which keeps a tap's 16 pixels
// consecutive for any stride. A 1x1 conv with stride 1 and no padding is one long row per
// image (H*W pixels). Weights are re-packed as A tiles, [G][Og/16 rounded up to even][Kg/ks][16][ks]: each
// K step of a block of 16 channels is one contiguous tile (1 KiB at ks = 16), read as a sequential stream.
#pragma once

#include "integer/output_stage.h"
#include "integer/plan.h"
#include "integer/thread_pool.h"

namespace qv::integer {

// Whether `L` (planned as Q8 with one int32 pass) can take this path, and if so its per-channel weights.
bool amx_rows_fits(const GemmLayer& L);
void pack_amx_rows_weights(GemmLayer& L);

MinMax run_conv_amx_rows(const GemmLayer& L, const ActSource& input, int64_t N, const OutputStage& out, ThreadPool& pool,
                         Workspace& ws);

}  // namespace qv::integer
