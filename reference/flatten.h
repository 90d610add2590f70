// flatten: NCHW -> N(C*H*W), row-major (the data does not move).
#pragma once

#include "ir/network.h"
#include "reference/options.h"

namespace qv::reference {

IntTensor flatten(const IntTensor& input, IntType out_type, const ReferenceOptions& options = {});

}  // namespace qv::reference
