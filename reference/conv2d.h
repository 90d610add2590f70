// conv2d: the raw accumulator y[n,o,y,x] = bias[o] + sum_{c,ky,kx} w[o,c,ky,kx] * in[n, g*Cg + c, iy, ix]
// with iy = y*stride_h + ky*dilation_h - pad_top (likewise ix), g = o / (O/groups), Cg = C/groups, and
// positions outside the input reading pad_value.
#pragma once

#include "ir/network.h"
#include "reference/options.h"

namespace qv::reference {

IntTensor conv2d(const Conv2dOp& op, const IntTensor& input, IntType out_type, const ReferenceOptions& options = {});

}  // namespace qv::reference
