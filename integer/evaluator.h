// The optimized integer evaluator: the same Trace as qv::evaluate_reference (every node, the same values,
// shapes, types, layouts and scales), computed with packed int8/int16 SIMD kernels on a thread pool.
//
// evaluate_optimized plans and runs in one call. A caller that evaluates a network more than once builds
// the Plan once (it packs every weight) and calls evaluate(plan, inputs): that is what the benchmarks
// time. Errors are the reference's: InputError naming the node when an input or a computed value does
// not fit its declared shape or type; std::invalid_argument for an ISA the CPU lacks.
#pragma once

#include <vector>

#include "integer/plan.h"
#include "ir/network.h"
#include "ir/trace.h"

namespace qv::integer {

// `recycled`: optionally, an earlier trace of the same plan, whose storage is reused (its values are
// overwritten); saves allocating, zero-filling and page-faulting the whole trace again.
Trace evaluate(const Plan& plan, const std::vector<IntTensor>& inputs, Trace recycled = {});
Trace evaluate_optimized(const Network& network, const std::vector<IntTensor>& inputs, const Options& options = {});

}  // namespace qv::integer
