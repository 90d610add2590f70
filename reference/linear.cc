#include "reference/linear.h"

#include "reference/accumulator_bound.h"
#include "reference/numeric.h"
#include "reference/parallel.h"
#include "reference/shapes.h"

namespace qv::reference {

namespace {

// Output channel o for every batch row; Acc is int64_t or BigInt (see accumulator_bound.h).
template <class Acc>
void linear_channel(const LinearOp& op, const IntTensor& in, int64_t o, IntTensor& out) {
  const int64_t N = in.dim(0), I = in.dim(1), O = op.weight.dim(0);
  const int64_t* w = op.weight.data.data() + o * I;
  for (int64_t n = 0; n < N; ++n) {
    const int64_t* x = in.data.data() + n * I;
    Acc acc = op.bias ? op.bias->data[static_cast<size_t>(o)] : 0;
    for (int64_t i = 0; i < I; ++i) acc += Acc(w[i]) * x[i];
    out.data[static_cast<size_t>(n * O + o)] = to_storage(acc);
  }
}

}  // namespace

IntTensor linear(const LinearOp& op, const IntTensor& input, IntType out_type, const ReferenceOptions& options) {
  IntTensor out(linear_output_shape(op, input.shape), out_type, "NC");
  const bool use_int64 = !options.force_bigint && accumulator_bound(op, input.type).fits_int64;
  parallel_for(op.weight.dim(0), options.threads, [&](int64_t o) {
    if (use_int64)
      linear_channel<int64_t>(op, input, o, out);
    else
      linear_channel<BigInt>(op, input, o, out);
  });
  return out;
}

}  // namespace qv::reference
