// The planner: per node, which kernel runs, on which packing, with which accumulator, and the proof
// that nothing overflows. Built once per network (weights are packed here), run many times.
//
// For a conv2d/linear the planner takes the range [lo, hi] of the input (its declared type, widened by
// pad_value when there is padding; the evaluator checks every value against its declared type) and the
// actual weights, and picks:
//   packing  Q8 when the weights lie in [-128, 127] and hi - lo <= 255 (offset 0, or lo: signed data is
//            shifted onto u8 and compensated exactly); Q16 when they fit int16 and hi - lo <= 65535;
//            otherwise the reference kernel (operands wider than 16 bits are the unusual case).
//            The avx2 tier runs Q8-eligible layers as Q16 (no exact u8*s8 instruction).
//   kernel   depthwise (one input channel per output, groups > 1) or GEMM (gemm_kernel.h).
//   accumulator  with a = the packed activation magnitude bound max(|lo - off|, |hi - off|):
//            every partial sum of output o is at most a * sum_k |w[o,k]| in magnitude. If that is
//            <= 2^31 - 1 for every o, the kernel accumulates the whole reduction in int32. Otherwise
//            the reduction is cut into chunks of `chunk` granules with chunk * granule * a * max|w| <=
//            2^31 - 1, each summed in int32 and added in int64. If even one granule does not fit, the
//            reference kernel runs.
//   output   acc = S + off*sum(w[o]) + bias[o] in int64, proven not to overflow; a requant node that
//            directly follows and reads only this node is computed in the same output stage.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "integer/add_pair_dyadic.h"
#include "integer/add_requant.h"
#include "integer/gemm_kernel.h"
#include "integer/isa.h"
#include "integer/requant_stage.h"
#include "integer/requant_table.h"
#include "ir/network.h"

namespace qv::integer {

struct Options {
  int threads = 2;          // worker threads (the caller's thread included); 0 = all cores
  std::string isa = "auto";  // auto | avx512vnni | avx2 | scalar; "auto" also reads QVERIFY_ISA
};

// conv2d (groups >= 1, one GEMM per group) or linear (a 1x1 conv on a 1x1 image).
struct GemmLayer {
  int64_t C = 0, H = 0, W = 0, O = 0, G = 1, Cg = 0, Og = 0, KH = 1, KW = 1, OH = 1, OW = 1, PH = 1, PW = 1;
  int stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1, pad_top = 0, pad_left = 0;
  int64_t pad_value = 0;
  const GemmKernel* kernel = nullptr;
  int64_t granule = 4;           // channels per granule: 4 (Q8) or 2 (Q16)
  int64_t cq = 0;                // granules per input pixel of one group (Q8S: per byte set)
  int64_t pq = 0;                // granules per packed pixel: cq, or 2*cq for Q8S (low and high bytes)
  int64_t kg = 0;                // granules per reduction: KH*KW*cq
  int64_t blocks = 0;            // blocks of 16 output channels per group
  int64_t act_offset = 0;        // packed activation = value - act_offset
  int64_t chunk = 0;             // granules per int32 chunk; >= kg: one pass
  std::vector<uint32_t> weight;  // [G][blocks][kg][16] granules
  // Run by run_conv_rows (conv_rows.h, channel-major over packed rows) instead of the micro-kernels:
  // its blocks on AMX tiles (avx512amx tier) or on vpdpbusd with broadcast weights (avx512vnni tier).
  enum class Rows { none, amx, vnni } rows = Rows::none;
  std::vector<uint32_t> weight_rows;  // rows == amx: [G][Og rounded up to 32][kg] granules (A tiles)
  std::vector<uint32_t> pad_rows;     // rows != none: [cq] the padding's granules, as the rows are packed
  std::vector<char> fused_blocks;     // rows == vnni with a fused 16-lane requant: [G][32-channel block], 1 when
                                      // every channel of the block is on that route, 2 when every one also
                                      // has the fma form (its tail pixels skip the tile), else 0
                                      // (plan_fused_blocks); empty without such a requant
  std::vector<int64_t> tap_offset;  // [KH*KW] granules from a window origin to each tap
  std::vector<int64_t> out_add;  // [O] act_offset*sum(w[o]) + bias[o]
  int64_t acc_bound = 0;         // max over o of the int32 partial-sum bound (for reports)
  std::vector<int64_t> acc_min, acc_max;  // [O] the exact interval of channel o's accumulators over the input range
};

// Depthwise conv2d: output channel o reads input channel o / (O / C) only.
// One output channel's weights for the byte depthwise kernel (depthwise_bytes_vbmi.h): the dword of
// kernel row ky's 4-tap group g at w[ky * groups + g] (four int8 weights, 0 past KW), and their sum
// (the signed inputs' +128 offset is corrected by -128 * weight_sum).
struct DepthwiseByteTaps {
  int32_t w[16] = {};
  int32_t weight_sum = 0;
};

// The byte kernel's windows on a plane that fits one register (H*W <= 64 bytes): lane j of the window
// of outputs 16b .. 16b + 15 (p = y*OW + x), kernel row ky and 4-tap group g is byte index[j] of the
// plane, or the pad byte where bit j of mask is clear. Built by the planner (pack_register_windows).
struct DepthwiseRegisterWindow {
  alignas(64) uint8_t index[64] = {};
  uint64_t mask = 0;
};

struct DepthwiseLayer {
  int64_t C = 0, H = 0, W = 0, O = 0, KH = 1, KW = 1, OH = 1, OW = 1, PH = 1, PW = 1;
  int stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1, pad_top = 0, pad_left = 0;
  int64_t pad_value = 0;
  bool acc32 = true;             // else int64 accumulation (proven not to overflow)
  bool int16 = false;            // acc32, and inputs (padding included) and weights inside int16: vpdpwssd
  bool int8_weights = false;     // every weight inside int8 (the byte kernel, depthwise_bytes_vbmi.h)
  std::vector<DepthwiseByteTaps> byte_taps;  // [O], packed once by the planner where the byte kernel's shape fits
  std::vector<DepthwiseRegisterWindow> register_windows;  // [block][ky][group], or empty: see DepthwiseRegisterWindow
  std::vector<int32_t> weight;   // [O][KH*KW]
  std::vector<int64_t> bias;     // [O]
  std::vector<int64_t> sum_bound;  // [O]: max|x| * sum|w[o]|, the proven bound of |sum of products|
  std::vector<int64_t> acc_min, acc_max;  // [O] the exact interval of channel o's accumulators over the input range
};

enum class NodeKernel { input, gemm, depthwise, requant, add_requant, max_pool2d, reference, fused };

struct NodePlan {
  NodeKernel kernel = NodeKernel::reference;
  std::unique_ptr<GemmLayer> gemm;
  std::unique_ptr<DepthwiseLayer> depthwise;
  std::unique_ptr<FusedRequant> requant;  // a requant node's stage (kernel requant or fused)
  std::unique_ptr<RequantTable> requant_table;  // kernel requant over a small input type (output mode)
  std::unique_ptr<AddRequantLayer> add_requant;
  bool fuses_next = false;                // this conv/linear computes the next node (a requant) too
  bool ranges_proven = false;             // fuses_next, and every accumulator (from the input's type and the
                                          // weights) lies in the node's declared type and the requant's clamp
                                          // in the requant's type: the checks after the node cannot fail
  std::vector<PairDyadic> pair_dyadic;    // AVX-512, output only, a requant of a two-branch add_requant's sums:
                                          // the pair's int32 form per channel (add_pair_dyadic.h), or empty
  std::vector<HighMulChannel> high_mul;   // AVX-512, output only: the 16-lane requant per channel (a fused
                                          // requant; or a requant of an add_requant's sums, every channel)
  bool high_mul_fma = false;              // a fused requant's high_mul has some channel in the fma form
  std::string description;                // one line: packing, kernel, accumulator (reports, docs)
};

// The plan keeps pointers into `network` (requantizations, shapes): the network must outlive it.
class Plan {
 public:
  Plan(const Network& network, const Options& options);
  const Network& network() const { return *network_; }
  Isa isa() const { return isa_; }
  int threads() const { return threads_; }
  const std::vector<NodePlan>& nodes() const { return nodes_; }
  // Node positions by name (the last node of a name), each node's inputs as positions (kNoNode for a
  // name no node has) and how many inputs name each node: found once here, not per evaluation (a
  // map of MobileNetV2's ~200 names, built per call: its string compares alone were ~1.5% of an evaluation).
  static constexpr size_t kNoNode = static_cast<size_t>(-1);
  const std::map<std::string, size_t>& node_index() const { return node_index_; }
  const std::vector<std::vector<size_t>>& input_nodes() const { return input_nodes_; }
  const std::vector<int>& consumers() const { return consumers_; }

 private:
  void plan_node(size_t i);  // throws std::invalid_argument on parameters that do not fit

  const Network* network_;
  Isa isa_;
  int threads_;
  std::vector<NodePlan> nodes_;
  std::map<std::string, size_t> node_index_;
  std::vector<std::vector<size_t>> input_nodes_;
  std::vector<int> consumers_;
};

}  // namespace qv::integer

namespace qv::integer {

// One line per node: name, op and what the planner chose (packing, kernel, accumulator, fusion).
std::string describe(const Plan& plan);

}  // namespace qv::integer
