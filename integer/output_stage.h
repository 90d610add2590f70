// The output stage shared by the GEMM and depthwise drivers: the int64 accumulator of a run of pixels of
// one output channel goes to the conv/linear trace tensor and, when the next node is its requant, through
// FusedRequant into that node's tensor. It also tracks min/max of both, so that the evaluator can check
// the declared types without another pass over memory.
#pragma once

#include <algorithm>
#include <cstdint>

#include "integer/requant_stage.h"

namespace qv::integer {

struct OutputStage {
  int64_t* acc_out = nullptr;            // NCHW / NC trace tensor of the conv/linear
  int64_t* requant_out = nullptr;        // same layout, the fused requant node's tensor (or nullptr)
  const FusedRequant* requant = nullptr;
  int64_t plane = 1;                     // elements per (n, o) plane: OH*OW (1 for linear)
  int64_t O = 0;
};

struct MinMax {
  int64_t acc_min = INT64_MAX, acc_max = INT64_MIN, y_min = INT64_MAX, y_max = INT64_MIN;
  void merge(const MinMax& m) {
    acc_min = std::min(acc_min, m.acc_min), acc_max = std::max(acc_max, m.acc_max);
    y_min = std::min(y_min, m.y_min), y_max = std::max(y_max, m.y_max);
  }
};

// Write acc[0..n) for (batch n_index, channel o, pixels p0..p0+n) into the conv/linear tensor.
inline void emit_acc(const OutputStage& s, int64_t n_index, int64_t o, int64_t p0, const int64_t* acc, int64_t n) {
  int64_t* dst = s.acc_out + (n_index * s.O + o) * s.plane + p0;
  for (int64_t i = 0; i < n; ++i) dst[i] = acc[i];
}

inline void min_max(const int64_t* v, int64_t n, int64_t& lo, int64_t& hi) {
  int64_t l = lo, h = hi;
  for (int64_t i = 0; i < n; ++i) l = std::min(l, v[i]), h = std::max(h, v[i]);
  lo = l, hi = h;
}

// The range check and the fused requant of pixels p0..p0+n of (n_index, o), from the accumulators
// emit_acc wrote (still in cache: the drivers call it per task, right after the task's tiles).
inline void finish_run(const OutputStage& s, int64_t n_index, int64_t o, int64_t p0, int64_t n, MinMax& mm) {
  const int64_t base = (n_index * s.O + o) * s.plane + p0;
  min_max(s.acc_out + base, n, mm.acc_min, mm.acc_max);
  if (s.requant_out == nullptr) return;
  int64_t* y = s.requant_out + base;
  s.requant->apply(static_cast<size_t>(o), s.acc_out + base, y, n);
  min_max(y, n, mm.y_min, mm.y_max);
}

}  // namespace qv::integer
