// The optimized integer evaluator: the same Trace as qv::evaluate_reference (every node, the same values,
// shapes, types, layouts and scales), computed with packed int8/int16 SIMD kernels on a thread pool.
//
// evaluate_optimized plans and runs in one call. A caller that evaluates a network more than once builds
// the Plan once (it packs every weight) and calls evaluate(plan, inputs): that is what the benchmarks
// time. Errors are the reference's: InputError naming the node when an input or a computed value does
// not fit its declared shape or type; std::invalid_argument for an ISA the CPU lacks.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "integer/output_stage.h"
#include "integer/plan.h"
#include "integer/thread_pool.h"
#include "ir/network.h"
#include "ir/trace.h"

namespace qv::integer {

// `recycled`: optionally, an earlier trace of the same plan, whose storage is reused (its values are
// overwritten); saves allocating, zero-filling and page-faulting the whole trace again.
Trace evaluate(const Plan& plan, const std::vector<IntTensor>& inputs, Trace recycled = {});
Trace evaluate_optimized(const Network& network, const std::vector<IntTensor>& inputs, const Options& options = {});

// Storage evaluate_output may keep between calls: the packed activations of every node, the kernels'
// scratch buffers (no allocation or page faults on the next call) and the thread pool (its workers and
// their thread-local buffers survive the call, so the next one starts no threads). Optional.
struct OutputBuffers {
  std::vector<std::vector<uint8_t>> bytes;  // per node: one byte per value (types of <= 8 bits)
  Workspace workspace;
  std::unique_ptr<ThreadPool> pool;         // made on first use with the plan's thread count
  // When non-empty on entry (resized to the node count), evaluate_output adds each node's wall time in
  // seconds to its entry: a per-layer profile (bench_networks prints it under QVERIFY_BENCH_DESCRIBE).
  std::vector<double> node_seconds;
};

// Output-only evaluation: returns, in node order, only the network output and the nodes named in `keep`
// (as int64 tensors equal to the reference trace's entries). Everything else stays packed: a node whose
// declared type has <= 8 bits is stored as one byte per value (NCHW), written directly by the fused
// requant of the producing conv/linear and read directly by the next layer's packing; a conv/linear
// whose only consumer is its fused requant keeps its accumulators in per-task buffers only, and wider
// nodes are int64 tensors. Every value is checked against its declared type as in evaluate(); on any
// error the full evaluate() runs to throw exactly its error. std::invalid_argument when `keep` names no node.
Trace evaluate_output(const Plan& plan, const std::vector<IntTensor>& inputs, const std::vector<std::string>& keep = {},
                      OutputBuffers* buffers = nullptr);

}  // namespace qv::integer
