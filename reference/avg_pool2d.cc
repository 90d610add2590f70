#include "reference/avg_pool2d.h"

#include "ir/rounding.h"
#include "reference/accumulator_bound.h"
#include "reference/numeric.h"
#include "reference/parallel.h"
#include "reference/shapes.h"

namespace qv::reference {

namespace {

// R(sum / 2^shift), clamped to the output type.
int64_t scale_down(int64_t sum, int shift, Rounding r, IntType type) {
  if (shift <= 62) return clamp_to(round_shift_right(sum, shift, r), type);
  return clamp_to(round_div(sum, BigInt(1) << shift, r), type);
}
int64_t scale_down(const BigInt& sum, int shift, Rounding r, IntType type) {
  return clamp_to(round_div(sum, BigInt(1) << shift, r), type);
}

template <class Acc>
void avg_pool_plane(const AvgPool2dOp& op, const int64_t* in, int64_t W, int64_t OH, int64_t OW, IntType out_type,
                    int64_t* out) {
  for (int64_t y = 0; y < OH; ++y)
    for (int64_t x = 0; x < OW; ++x) {
      Acc sum = 0;
      for (int64_t ky = 0; ky < op.kernel_h; ++ky)
        for (int64_t kx = 0; kx < op.kernel_w; ++kx) sum += in[(y * op.stride_h + ky) * W + x * op.stride_w + kx];
      out[y * OW + x] = scale_down(sum, op.shift, op.rounding, out_type);
    }
}

}  // namespace

IntTensor avg_pool2d(const AvgPool2dOp& op, const IntTensor& input, IntType out_type, const ReferenceOptions& options) {
  IntTensor out(avg_pool2d_output_shape(op, input.shape), out_type, "NCHW");
  const int64_t H = input.dim(2), W = input.dim(3), OH = out.dim(2), OW = out.dim(3);
  const bool use_int64 =
      !options.force_bigint && window_sum_bound(int64_t{op.kernel_h} * op.kernel_w, input.type).fits_int64;
  parallel_for(input.dim(0) * input.dim(1), options.threads, [&](int64_t nc) {
    const int64_t* in = input.data.data() + nc * H * W;
    int64_t* o = out.data.data() + nc * OH * OW;
    if (use_int64)
      avg_pool_plane<int64_t>(op, in, W, OH, OW, out_type, o);
    else
      avg_pool_plane<BigInt>(op, in, W, OH, OW, out_type, o);
  });
  return out;
}

}  // namespace qv::reference
