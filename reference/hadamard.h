// hadamard: y[n,j] = (negate ? -1 : 1) * sum_i H[j][i] * x[n,i] for j < out_features, with the
// Sylvester matrix H[j][i] = (-1)^popcount(i & j) generated on the fly.
#pragma once

#include "ir/network.h"
#include "reference/options.h"

namespace qv::reference {

IntTensor hadamard(const HadamardOp& op, const IntTensor& input, IntType out_type, const ReferenceOptions& options = {});

}  // namespace qv::reference
