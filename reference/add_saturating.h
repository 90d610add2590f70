// add_saturating: y = clamp(a + b) to the output type, elementwise over equal shapes (exact: the sum of
// two int64 values is formed in __int128).
#pragma once

#include "ir/network.h"
#include "reference/options.h"

namespace qv::reference {

IntTensor add_saturating(const IntTensor& a, const IntTensor& b, IntType out_type, const ReferenceOptions& options = {});

}  // namespace qv::reference
