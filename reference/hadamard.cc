#include "reference/hadamard.h"

#include <bit>

#include "reference/accumulator_bound.h"
#include "reference/numeric.h"
#include "reference/parallel.h"
#include "reference/shapes.h"

namespace qv::reference {

namespace {

template <class Acc>
void hadamard_row(const HadamardOp& op, const IntTensor& in, int64_t j, IntTensor& out) {
  const int64_t N = in.dim(0), I = in.dim(1);
  for (int64_t n = 0; n < N; ++n) {
    const int64_t* x = in.data.data() + n * I;
    Acc acc = 0;
    for (int64_t i = 0; i < I; ++i) {
      const bool minus = std::popcount(static_cast<uint64_t>(i & j)) % 2 == 1;
      if (minus)
        acc -= Acc(x[i]);
      else
        acc += Acc(x[i]);
    }
    if (op.negate) acc = -acc;
    out.data[static_cast<size_t>(n * op.out_features + j)] = to_storage(acc);
  }
}

}  // namespace

IntTensor hadamard(const HadamardOp& op, const IntTensor& input, IntType out_type, const ReferenceOptions& options) {
  IntTensor out(hadamard_output_shape(op, input.shape), out_type, "NC");
  const bool use_int64 = !options.force_bigint && accumulator_bound(op, input.dim(1), input.type).fits_int64;
  parallel_for(op.out_features, options.threads, [&](int64_t j) {
    if (use_int64)
      hadamard_row<int64_t>(op, input, j, out);
    else
      hadamard_row<BigInt>(op, input, j, out);
  });
  return out;
}

}  // namespace qv::reference
