// linear: the raw accumulator y[n,o] = bias[o] + sum_i w[o,i] * x[n,i].
#pragma once

#include "ir/network.h"
#include "reference/options.h"

namespace qv::reference {

IntTensor linear(const LinearOp& op, const IntTensor& input, IntType out_type, const ReferenceOptions& options = {});

}  // namespace qv::reference
