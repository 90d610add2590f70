// The layer-by-layer cross-check of the fake-quant network against the integer network.
//
// For every quantized value of the integer network (one Segment of integerize/lower.h: the IR nodes
// from the previous quantized values to this one), the float tensor of the same name is mapped to
// integers by its grid, (x - offset) / scale, and compared with the reference. Every differing element
// is classified:
//   boundary     the float network rounded on the other side of a rounding boundary: the exact
//                pre-rounding value p lies within `boundary_tolerance` LSB of the boundary, and the
//                float value is on the other side (float error; the numbers are kept as proof);
//   form         the requant form (thresholds, mul-add-shift, fixed point) departs from the exact
//                form, within its proven bound;
//   propagated   the segment, re-evaluated on the float network's own inputs, agrees with the float
//                network: the difference came from an explained difference upstream;
//   unexplained  anything else.
// No LibTorch here: the float values arrive as plain arrays (harness/float_run.h).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "integerize/lower.h"
#include "ir/trace.h"

namespace qv::harness {

struct FloatTensor {
  Shape shape;
  std::vector<double> values;  // row-major
};

// One float run of the fake-quant network (float32 as trained, or float64).
struct FloatRun {
  std::string dtype;                              // "float32" | "float64"
  std::map<std::string, FloatTensor> values;      // by graph node name
  std::map<std::string, std::string> act_input;   // quantizer node -> the node it reads (pre-rounding value)
};

struct ElementDetail {
  std::string layer;
  std::vector<int64_t> index;
  int64_t float_q = 0, reference_q = 0, local_q = 0;
  std::string exact_pre;        // exact pre-rounding value p (rational, in output LSBs)
  double exact_pre_value = 0;   // p as a double
  std::optional<double> float_pre;  // the float network's pre-rounding value in LSBs
  std::optional<double> boundary;
  std::string rounding;
  std::string computation;      // accumulator, alpha, delta, input window, weights
};

struct LayerReport {
  std::string layer;
  int64_t elements = 0, differing = 0, max_lsb = 0;
  int64_t boundary = 0, form = 0, propagated = 0, unexplained = 0;
  int64_t off_grid = 0;                       // float values not on their grid (counted as unexplained)
  std::optional<ElementDetail> first_unexplained, first_boundary;
  std::string convention;                     // for unexplained differences: which rounding they follow
  // |float - integer| in LSB over every element: counts of 0, 1, ..., 7 and >= 8 (9 entries).
  std::vector<int64_t> lsb_histogram;
  // The differing elements by channel and position: heatmap_channels x heatmap_columns counts, row-major;
  // position h * W + w of an NCHW tensor falls in column (h * W + w) * columns / (H * W), columns =
  // min(64, H * W) (1 for [N, C] tensors); summed over the batch. Kept only for the layer with the most
  // differing elements (empty elsewhere, and everywhere when nothing differs).
  int64_t heatmap_channels = 0, heatmap_columns = 0, heatmap_height = 0, heatmap_width = 0;
  std::vector<int64_t> channel_position_counts;
  // Every unexplained difference with its explanation, up to kMaxUnexplainedDetails per layer.
  static constexpr size_t kMaxUnexplainedDetails = 64;
  std::vector<ElementDetail> unexplained_details;
};

struct OutputReport {
  std::string kind;             // affine | hadamard | quantized
  int64_t elements = 0;
  double max_abs_diff = 0;      // float logits vs exact alpha * acc + delta
  double bound = 0;             // the float error bound the difference must stay within
  bool argmax_agrees = true;
  int64_t float_argmax = -1, integer_argmax = -1;
  bool within_bound = true;
};

struct CrossCheck {
  std::string dtype;
  std::vector<LayerReport> layers;
  OutputReport output;
  int64_t total_elements = 0, total_differing = 0, total_unexplained = 0, total_explained = 0;
};

struct CrossCheckOptions {
  double boundary_tolerance = 1.0 / 1024;  // LSBs: float error larger than this is not "float error"
  std::map<std::string, int64_t> form_bounds;  // requant node -> proven LSB bound of its form
};

// `exact` is the lowering with exact requants; `net` the network actually evaluated (same nodes, the
// requant form chosen); `reference` its reference trace on the quantized input.
CrossCheck cross_check(const integerize::Lowered& exact, const Network& net, const Trace& reference, const FloatRun& run,
                       const CrossCheckOptions& options = {});

}  // namespace qv::harness
