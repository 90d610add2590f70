#include "integer/max_pool2d.h"

#include <algorithm>

#include "integer/tensor_alloc.h"
#include "reference/shapes.h"

namespace qv::integer {

namespace {

// One (n, c) plane; T is int64_t (trace tensors) or uint8_t / int8_t (packed bytes). The 2x2 stride-2
// case is the plain loop the compiler vectorizes.
template <class T>
void pool_plane(const MaxPool2dOp& op, const T* in, int64_t H, int64_t W, T* o, int64_t OH, int64_t OW, bool pairs) {
  for (int64_t y = 0; y < OH; ++y) {
    if (pairs) {
      const T* a = in + 2 * y * W;
      const T* b = a + W;
      for (int64_t x = 0; x < OW; ++x) o[y * OW + x] = std::max(std::max(a[2 * x], a[2 * x + 1]), std::max(b[2 * x], b[2 * x + 1]));
      continue;
    }
    const int64_t y0 = std::max<int64_t>(y * op.stride_h - op.pad_top, 0);
    const int64_t y1 = std::min<int64_t>(y * op.stride_h - op.pad_top + op.kernel_h, H);
    for (int64_t x = 0; x < OW; ++x) {
      const int64_t x0 = std::max<int64_t>(x * op.stride_w - op.pad_left, 0);
      const int64_t x1 = std::min<int64_t>(x * op.stride_w - op.pad_left + op.kernel_w, W);
      T m = in[y0 * W + x0];
      for (int64_t iy = y0; iy < y1; ++iy)
        for (int64_t ix = x0; ix < x1; ++ix) m = std::max(m, in[iy * W + ix]);
      o[y * OW + x] = m;
    }
  }
}

}  // namespace

IntTensor run_max_pool2d(const MaxPool2dOp& op, const IntTensor& input, IntType out_type, ThreadPool& pool,
                         std::vector<int64_t>* recycled) {
  const Shape shape = reference::max_pool2d_output_shape(op, input.shape);
  IntTensor out = new_tensor(shape, out_type, "NCHW", recycled);
  const int64_t H = input.dim(2), W = input.dim(3), OH = shape[2], OW = shape[3];
  const bool pairs = op.kernel_h == 2 && op.kernel_w == 2 && op.stride_h == 2 && op.stride_w == 2 && op.pad_top == 0 &&
                     op.pad_left == 0 && 2 * OH <= H && 2 * OW <= W;
  pool.run(input.dim(0) * input.dim(1), [&](int64_t nc) {
    pool_plane(op, input.data.data() + nc * H * W, H, W, out.data.data() + nc * OH * OW, OH, OW, pairs);
  });
  return out;
}


void run_max_pool2d_bytes(const MaxPool2dOp& op, const uint8_t* input, const Shape& in_shape, bool is_signed, uint8_t* out,
                          ThreadPool& pool) {
  const Shape shape = reference::max_pool2d_output_shape(op, in_shape);
  const int64_t H = in_shape[2], W = in_shape[3], OH = shape[2], OW = shape[3];
  const bool pairs = op.kernel_h == 2 && op.kernel_w == 2 && op.stride_h == 2 && op.stride_w == 2 && op.pad_top == 0 &&
                     op.pad_left == 0 && 2 * OH <= H && 2 * OW <= W;
  pool.run(in_shape[0] * in_shape[1], [&](int64_t nc) {
    if (is_signed)
      pool_plane(op, reinterpret_cast<const int8_t*>(input) + nc * H * W, H, W, reinterpret_cast<int8_t*>(out) + nc * OH * OW, OH, OW, pairs);
    else
      pool_plane(op, input + nc * H * W, H, W, out + nc * OH * OW, OH, OW, pairs);
  });
}

}  // namespace qv::integer
