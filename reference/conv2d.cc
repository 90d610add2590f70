// Design: the padding is written out once (a copy of the input with pad_value in the border), so the
// kernel has no bounds logic at all. Each output channel is one task; within it, one output row is
// accumulated at a time over (input channel, ky, kx), the innermost loop running along the row: a
// contiguous multiply-add the compiler vectorizes when stride_w == 1. The accumulator type comes from
// the proof in accumulator_bound.h: int64_t when no partial sum can leave int64, BigInt otherwise;
// both run the same template.
#include "reference/conv2d.h"

#include <algorithm>
#include <vector>

#include "reference/accumulator_bound.h"
#include "reference/numeric.h"
#include "reference/parallel.h"
#include "reference/shapes.h"

namespace qv::reference {

namespace {

struct Geometry {
  int64_t N, C, H, W;       // input
  int64_t O, Cg, KH, KW;    // weight: O x Cg x KH x KW
  int64_t OH, OW;           // output plane
  int64_t PH, PW;           // padded input plane
};

std::vector<int64_t> pad_input(const Conv2dOp& op, const IntTensor& in, const Geometry& g) {
  std::vector<int64_t> padded(static_cast<size_t>(g.N * g.C * g.PH * g.PW), op.pad_value);
  for (int64_t nc = 0; nc < g.N * g.C; ++nc)
    for (int64_t y = 0; y < g.H; ++y) {
      const int64_t* src = in.data.data() + (nc * g.H + y) * g.W;
      std::copy(src, src + g.W, padded.data() + (nc * g.PH + y + op.pad_top) * g.PW + op.pad_left);
    }
  return padded;
}

template <class Acc>
void conv_plane(const Conv2dOp& op, const Geometry& g, const int64_t* padded, int64_t n, int64_t o, int64_t* out) {
  const int64_t group = o / (g.O / op.groups);
  const int64_t* weight = op.weight.data.data() + o * g.Cg * g.KH * g.KW;
  const int64_t bias = op.bias ? op.bias->data[static_cast<size_t>(o)] : 0;
  std::vector<Acc> row(static_cast<size_t>(g.OW));
  for (int64_t y = 0; y < g.OH; ++y) {
    std::fill(row.begin(), row.end(), Acc(bias));
    for (int64_t c = 0; c < g.Cg; ++c) {
      const int64_t* plane = padded + ((n * g.C + group * g.Cg + c) * g.PH) * g.PW;
      for (int64_t ky = 0; ky < g.KH; ++ky) {
        const int64_t* in_row = plane + (y * op.stride_h + ky * op.dilation_h) * g.PW;
        for (int64_t kx = 0; kx < g.KW; ++kx) {
          const Acc w = weight[(c * g.KH + ky) * g.KW + kx];
          const int64_t* in = in_row + kx * op.dilation_w;
          if (op.stride_w == 1) {
            for (int64_t x = 0; x < g.OW; ++x) row[x] += w * in[x];
          } else {
            for (int64_t x = 0; x < g.OW; ++x) row[x] += w * in[x * op.stride_w];
          }
        }
      }
    }
    for (int64_t x = 0; x < g.OW; ++x) out[y * g.OW + x] = to_storage(row[x]);
  }
}

}  // namespace

IntTensor conv2d(const Conv2dOp& op, const IntTensor& input, IntType out_type, const ReferenceOptions& options) {
  const Shape out_shape = conv2d_output_shape(op, input.shape);
  Geometry g{};
  g.N = input.dim(0), g.C = input.dim(1), g.H = input.dim(2), g.W = input.dim(3);
  g.O = op.weight.dim(0), g.Cg = op.weight.dim(1), g.KH = op.weight.dim(2), g.KW = op.weight.dim(3);
  g.OH = out_shape[2], g.OW = out_shape[3];
  g.PH = g.H + op.pad_top + op.pad_bottom, g.PW = g.W + op.pad_left + op.pad_right;

  const std::vector<int64_t> padded = pad_input(op, input, g);
  const bool use_int64 = !options.force_bigint && accumulator_bound(op, input.type).fits_int64;

  IntTensor out(out_shape, out_type, "NCHW");
  parallel_for(g.N * g.O, options.threads, [&](int64_t task) {
    const int64_t n = task / g.O, o = task % g.O;
    int64_t* plane = out.data.data() + task * g.OH * g.OW;
    if (use_int64)
      conv_plane<int64_t>(op, g, padded.data(), n, o, plane);
    else
      conv_plane<BigInt>(op, g, padded.data(), n, o, plane);
  });
  return out;
}

}  // namespace qv::reference
