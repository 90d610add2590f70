// max_pool2d: y[n,c,y,x] = max of the input positions of the window that lie inside the input
// (padding never wins). Output type = input type.
#pragma once

#include "ir/network.h"
#include "reference/options.h"

namespace qv::reference {

IntTensor max_pool2d(const MaxPool2dOp& op, const IntTensor& input, IntType out_type, const ReferenceOptions& options = {});

}  // namespace qv::reference
