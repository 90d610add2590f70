// The output stage shared by the GEMM and depthwise drivers: the drivers write the int64 accumulators into
// the conv/linear trace tensor (tracking their min/max as they go); finish_run then sends a run of pixels
// of one output channel through FusedRequant into the fused requant node's tensor, tracking its min/max,
// so that the evaluator checks the declared types without another pass over memory.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "integer/isa.h"
#include "integer/requant_stage.h"

namespace qv::integer {

// lo = min(lo, v[0..n)), hi = max(hi, v[0..n)). Baseline x86-64 has no 64-bit compare, so this
// reduction only vectorizes in the AVX tiers (output_stage.cc).
using MinMaxFn = void (*)(const int64_t* v, int64_t n, int64_t& lo, int64_t& hi);
MinMaxFn min_max_for(Isa isa);
// dst[i] = the low byte of v[i] (values already checked to fit the 8-bit type): vpmovqb on AVX-512.
using NarrowFn = void (*)(const int64_t* v, int64_t n, uint8_t* dst);
NarrowFn narrow_for(Isa isa);

// A layer's input: an int64 tensor (trace mode, or a node wider than 8 bits), or one byte per value
// (evaluate_output's packed 8-bit activations: two's complement when signed), NCHW / NC either way.
struct ActSource {
  const int64_t* wide = nullptr;
  const uint8_t* bytes = nullptr;
  bool is_signed = false;
  static ActSource of(const int64_t* p) { return {p, nullptr, false}; }
  // f(the values as their element type): const int64_t*, const int8_t* or const uint8_t*.
  template <class F>
  decltype(auto) visit(F&& f) const {
    if (wide != nullptr) return f(wide);
    if (is_signed) return f(reinterpret_cast<const int8_t*>(bytes));
    return f(bytes);
  }
};

struct OutputStage {
  int64_t* acc_out = nullptr;            // NCHW / NC trace tensor of the conv/linear; nullptr: accumulators
                                         // only in per-task buffers (evaluate_output, acc not needed)
  int64_t* requant_out = nullptr;        // same layout, the fused requant node's tensor (or nullptr)
  uint8_t* narrow_out = nullptr;         // same layout, the fused requant as bytes (evaluate_output, <= 8 bits)
  const FusedRequant* requant = nullptr;
  const HighMulChannel* high_mul = nullptr;  // [O] or nullptr: NodePlan::high_mul (used for narrow_out only)
  bool high_mul_fma = false;                 // some channel of high_mul has the fma form (NodePlan::high_mul_fma)
  int64_t plane = 1;                     // elements per (n, o) plane: OH*OW (1 for linear)
  int64_t O = 0;
  int64_t acc_lo = INT64_MIN, acc_hi = INT64_MAX;  // the accumulator's declared type: the requant stage's proofs assume it
  bool ranges_proven = false;            // NodePlan::ranges_proven: the output-only 16-lane routes skip range tracking
  MinMaxFn min_max = min_max_for(Isa::scalar);
  NarrowFn narrow = narrow_for(Isa::scalar);
};

// Scratch buffers of one evaluation, reused layer after layer (tensor_alloc.h).
struct Workspace {
  std::vector<uint32_t> image;   // packed GEMM input
  std::vector<uint32_t> taps;    // conv_rows: the packed rows gathered per tap (im2col)
  std::vector<std::vector<uint32_t>> thread_images;  // conv_rows on several threads: each thread's own packed image
};

struct MinMax {
  int64_t acc_min = INT64_MAX, acc_max = INT64_MIN, y_min = INT64_MAX, y_max = INT64_MIN;
  void merge(const MinMax& m) {
    acc_min = std::min(acc_min, m.acc_min), acc_max = std::max(acc_max, m.acc_max);
    y_min = std::min(y_min, m.y_min), y_max = std::max(y_max, m.y_max);
  }
};

// The fused requant of pixels p0..p0+n of (n_index, o), from the accumulators the kernel wrote (still
// in cache: the drivers call it per task, right after the task's tiles), widening the output range.
// Nothing is computed once an accumulator has left its declared type: the evaluator then reports the
// conv/linear node exactly as the reference does, and FusedRequant's overflow proofs (made for that
// type) are never applied outside it.
// `acc`: the accumulators of the run (in the trace tensor, or a per-task buffer).
inline void finish_run(const OutputStage& s, int64_t n_index, int64_t o, int64_t p0, int64_t n, MinMax& mm, const int64_t* acc) {
  if ((s.requant_out == nullptr && s.narrow_out == nullptr) || mm.acc_min < s.acc_lo || mm.acc_max > s.acc_hi) return;
  const int64_t base = (n_index * s.O + o) * s.plane + p0;
  if (s.requant_out != nullptr) {
    s.requant->apply(static_cast<size_t>(o), acc, s.requant_out + base, n, mm.y_min, mm.y_max);
    if (s.narrow_out != nullptr) s.narrow(s.requant_out + base, n, s.narrow_out + base);
    return;
  }
  s.requant->apply_narrow(static_cast<size_t>(o), acc, s.narrow_out + base, n, mm.y_min, mm.y_max);  // range checked by the caller
}

inline void finish_run(const OutputStage& s, int64_t n_index, int64_t o, int64_t p0, int64_t n, MinMax& mm) {
  finish_run(s, n_index, o, p0, n, mm, s.acc_out + (n_index * s.O + o) * s.plane + p0);
}

}  // namespace qv::integer
