#include "integer/avg_pool2d.h"

#include <algorithm>

#include "ir/rounding.h"
#include "reference/shapes.h"

namespace qv::integer {

namespace {

template <class In, class Out>
void avg_pool_plane(const AvgPool2dOp& op, const In* in, int64_t W, int64_t OH, int64_t OW, IntType out_type, Out* out) {
  const int64_t lo = out_type.min(), hi = out_type.max();
  for (int64_t y = 0; y < OH; ++y)
    for (int64_t x = 0; x < OW; ++x) {
      int32_t sum = 0;
      if (op.kernel_w == W) {
        // Full-width windows (x is 0): the window is one contiguous run of kernel_h rows, a loop the
        // compiler vectorizes (a global pool of 7x7 planes took ~80 cycles a plane row by row).
        const In* run = in + y * op.stride_h * W;
        for (int64_t i = 0; i < op.kernel_h * W; ++i) sum += run[i];
      } else {
        for (int64_t ky = 0; ky < op.kernel_h; ++ky) {
          const In* row = in + (y * op.stride_h + ky) * W + x * op.stride_w;
          for (int64_t kx = 0; kx < op.kernel_w; ++kx) sum += row[kx];
        }
      }
      const int64_t v = std::clamp(round_shift_right(sum, op.shift, op.rounding), lo, hi);
      out[y * OW + x] = static_cast<Out>(v);  // a uint8_t Out: the two's complement byte of an int8 value
    }
}

}  // namespace

bool avg_pool2d_bytes_applies(const AvgPool2dOp& op) {
  return op.kernel_h >= 1 && op.kernel_w >= 1 && int64_t{op.kernel_h} * op.kernel_w <= (int64_t{1} << 23) && op.shift >= 0 &&
         op.shift <= 62;
}

template <class Out>
void run_avg_pool2d_planes(const AvgPool2dOp& op, const uint8_t* input, const Shape& in_shape, bool in_signed, IntType out_type,
                           Out* out, ThreadPool& pool) {
  const Shape shape = reference::avg_pool2d_output_shape(op, in_shape);
  const int64_t H = in_shape[2], W = in_shape[3], OH = shape[2], OW = shape[3];
  // A task: enough planes for about 4096 input bytes. One plane per task cost more in handing the tasks
  // out than in summing them on small planes (MobileNetV2's global pool: 1280 planes of 49 bytes).
  const int64_t planes = in_shape[0] * in_shape[1];
  const int64_t per_task = pool.items_per_task(planes, H * W);
  pool.run((planes + per_task - 1) / per_task, [&](int64_t task) {
    for (int64_t nc = task * per_task; nc < std::min(planes, (task + 1) * per_task); ++nc) {
      if (in_signed)
        avg_pool_plane(op, reinterpret_cast<const int8_t*>(input) + nc * H * W, W, OH, OW, out_type, out + nc * OH * OW);
      else
        avg_pool_plane(op, input + nc * H * W, W, OH, OW, out_type, out + nc * OH * OW);
    }
  });
}

void run_avg_pool2d_bytes(const AvgPool2dOp& op, const uint8_t* input, const Shape& in_shape, bool in_signed, IntType out_type,
                          uint8_t* out, ThreadPool& pool) {
  run_avg_pool2d_planes(op, input, in_shape, in_signed, out_type, out, pool);
}

void run_avg_pool2d_bytes(const AvgPool2dOp& op, const uint8_t* input, const Shape& in_shape, bool in_signed, IntType out_type,
                          int64_t* out, ThreadPool& pool) {
  run_avg_pool2d_planes(op, input, in_shape, in_signed, out_type, out, pool);
}

}  // namespace qv::integer
