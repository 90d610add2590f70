#include "reference/max_pool2d.h"

#include <algorithm>

#include "reference/parallel.h"
#include "reference/shapes.h"

namespace qv::reference {

IntTensor max_pool2d(const MaxPool2dOp& op, const IntTensor& input, IntType out_type, const ReferenceOptions& options) {
  IntTensor out(max_pool2d_output_shape(op, input.shape), out_type, "NCHW");
  const int64_t H = input.dim(2), W = input.dim(3), OH = out.dim(2), OW = out.dim(3);
  parallel_for(input.dim(0) * input.dim(1), options.threads, [&](int64_t nc) {
    const int64_t* in = input.data.data() + nc * H * W;
    int64_t* o = out.data.data() + nc * OH * OW;
    for (int64_t y = 0; y < OH; ++y)
      for (int64_t x = 0; x < OW; ++x) {
        // The window clipped to the input; never empty since padding < kernel.
        const int64_t y0 = std::max<int64_t>(y * op.stride_h - op.pad_top, 0);
        const int64_t y1 = std::min<int64_t>(y * op.stride_h - op.pad_top + op.kernel_h, H);
        const int64_t x0 = std::max<int64_t>(x * op.stride_w - op.pad_left, 0);
        const int64_t x1 = std::min<int64_t>(x * op.stride_w - op.pad_left + op.kernel_w, W);
        int64_t m = in[y0 * W + x0];
        for (int64_t iy = y0; iy < y1; ++iy)
          for (int64_t ix = x0; ix < x1; ++ix) m = std::max(m, in[iy * W + ix]);
        o[y * OW + x] = m;
      }
  });
  return out;
}

}  // namespace qv::reference
