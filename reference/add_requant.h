// add_requant: y = clamp(sum_i requant_ref(branch_i, c, x_i)) to the output type, elementwise over equal
// shapes, c = axis 1 (each branch result is in [lo_i, hi_i] of its own clamp; the sum is exact).
#pragma once

#include <vector>

#include "ir/network.h"
#include "reference/options.h"

namespace qv::reference {

IntTensor add_requant(const AddRequantOp& op, const std::vector<const IntTensor*>& inputs, IntType out_type,
                      const ReferenceOptions& options = {});

}  // namespace qv::reference
