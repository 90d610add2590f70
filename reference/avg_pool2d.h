// avg_pool2d: y[n,c,y,x] = clamp(R(window_sum / 2^shift)) to the output type, R = op.rounding; the
// window sum is exact (int64 when the bound proves it fits, BigInt otherwise). No padding.
#pragma once

#include "ir/network.h"
#include "reference/options.h"

namespace qv::reference {

IntTensor avg_pool2d(const AvgPool2dOp& op, const IntTensor& input, IntType out_type, const ReferenceOptions& options = {});

}  // namespace qv::reference
