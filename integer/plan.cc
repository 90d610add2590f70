#include "integer/plan.h"

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "integer/conv_rows.h"
#include "integer/depthwise_bytes_vbmi.h"
#include "reference/parallel.h"
#include "reference/shapes.h"

namespace qv::integer {

namespace {

constexpr __int128 kInt32Max = INT32_MAX;
constexpr __int128 kInt64Max = INT64_MAX;

__int128 abs128(__int128 v) { return v < 0 ? -v : v; }

struct Range {
  int64_t lo, hi;
};

// The values a kernel can read: the declared input type, plus pad_value where padding is read.
Range input_range(IntType type, bool padded, int64_t pad_value) {
  Range r{type.min(), type.max()};
  if (padded) r.lo = std::min(r.lo, pad_value), r.hi = std::max(r.hi, pad_value);
  return r;
}

const Node& producer(const Network& net, const Node& node) {
  if (node.inputs.size() != 1) throw std::invalid_argument("node '" + node.name + "' expects 1 input");
  const Node* in = net.find(node.inputs[0]);
  if (in == nullptr) throw std::invalid_argument("node '" + node.name + "': unknown input '" + node.inputs[0] + "'");
  return *in;
}

// The exact interval of bias + sum w[k]*x[k] over every x[k] in `in`: each product at its extreme.
// Within the planners' abs bounds (|bias| + max|x| sum|w|), which they checked against int64.
void dot_interval(const int64_t* w, int64_t n, Range in, int64_t bias, int64_t& lo, int64_t& hi) {
  __int128 l = bias, h = bias;
  for (int64_t k = 0; k < n; ++k) {
    const __int128 a = static_cast<__int128>(w[k]) * in.lo, b = static_cast<__int128>(w[k]) * in.hi;
    l += std::min(a, b), h += std::max(a, b);
  }
  lo = static_cast<int64_t>(l), hi = static_cast<int64_t>(h);
}

// The GEMM view of a conv2d/linear: weight [O][Cg][KH][KW] as int64 values.
struct GemmSource {
  const IntTensor* weight;
  const std::optional<IntTensor>* bias;
};

std::unique_ptr<GemmLayer> plan_gemm(GemmLayer geometry, const GemmSource& src, Range in, Isa isa, int threads, std::string& why) {
  auto L = std::make_unique<GemmLayer>(std::move(geometry));
  const IntTensor& w = *src.weight;
  const int64_t K = L->Cg * L->KH * L->KW;
  int64_t wmin = 0, wmax = 0;
  for (int64_t v : w.data) wmin = std::min(wmin, v), wmax = std::max(wmax, v);
  const __int128 span = static_cast<__int128>(in.hi) - in.lo;
  const bool q8_ok = wmin >= -128 && wmax <= 127 && span <= 255;
  const bool q16_ok = wmin >= -32768 && wmax <= 32767 && span <= 65535;
  // Q8S: int8 weights against activations of up to 16 bits, on AVX-512 (half Q16's weight bytes).
  const bool q8_split_ok = wmin >= -128 && wmax <= 127 && span <= 65535 && uses_avx512(isa);
  Packing packing;
  if (q8_ok && isa != Isa::avx2) {
    packing = Packing::q8;
    L->act_offset = (in.lo >= 0 && in.hi <= 255) ? 0 : in.lo;
  } else if (q8_split_ok) {
    packing = Packing::q8_split;
    L->act_offset = (in.lo >= 0 && in.hi <= 65535) ? 0 : in.lo;
  } else if (q16_ok) {
    packing = Packing::q16;
    L->act_offset = (in.lo >= -32768 && in.hi <= 32767) ? 0 : in.lo + 32768;
  } else {
    why = "operands wider than int16 (weights [" + std::to_string(wmin) + ", " + std::to_string(wmax) + "], input span " +
          std::to_string(static_cast<int64_t>(std::min<__int128>(span, kInt64Max))) + ")";
    return nullptr;
  }
  L->kernel = gemm_kernel(isa, packing);
  L->granule = packing == Packing::q16 ? 2 : 4;
  L->cq = (L->Cg + L->granule - 1) / L->granule;
  L->pq = packing == Packing::q8_split ? 2 * L->cq : L->cq;
  L->kg = L->KH * L->KW * L->cq;
  L->blocks = (L->Og + 15) / 16;

  // The int32 proof and the packed weights, one output channel per task (each writes only its own lane
  // of the panels): [G][blocks][kg][16] granules, k in (ky, kx, cq) order, zero beyond Cg and Og.
  const __int128 amax = std::max(abs128(static_cast<__int128>(in.lo) - L->act_offset), abs128(static_cast<__int128>(in.hi) - L->act_offset));
  L->out_add.resize(static_cast<size_t>(L->O));
  L->acc_min.resize(static_cast<size_t>(L->O)), L->acc_max.resize(static_cast<size_t>(L->O));
  L->weight.assign(static_cast<size_t>(L->G * L->blocks * L->kg * 16), 0);
  std::vector<__int128> bound(static_cast<size_t>(L->O));
  std::vector<uint8_t> leaves_int64(static_cast<size_t>(L->O), 0);
  reference::parallel_for(L->O, threads, [&](int64_t o) {
    const int64_t g = o / L->Og, ol = o % L->Og;
    uint32_t* panel = L->weight.data() + ((g * L->blocks + ol / 16) * L->kg) * 16 + ol % 16;
    const int64_t* wo = w.data.data() + o * K;
    __int128 abs_sum = 0, sum = 0;
    for (int64_t c = 0; c < L->Cg; ++c) {
      const int shift = static_cast<int>(c % L->granule) * (packing == Packing::q16 ? 16 : 8);
      const uint32_t mask = packing == Packing::q16 ? 0xFFFFu : 0xFFu;
      for (int64_t t = 0; t < L->KH * L->KW; ++t) {
        const int64_t v = wo[c * L->KH * L->KW + t];
        abs_sum += abs128(v), sum += v;
        panel[(t * L->cq + c / L->granule) * 16] |= (static_cast<uint32_t>(v) & mask) << shift;  // two's complement lane
      }
    }
    bound[static_cast<size_t>(o)] = amax * abs_sum;
    const __int128 bias = src.bias->has_value() ? (**src.bias).data[static_cast<size_t>(o)] : 0;
    const __int128 add = static_cast<__int128>(L->act_offset) * sum + bias;
    if (abs128(add) + amax * abs_sum > kInt64Max) {
      leaves_int64[static_cast<size_t>(o)] = 1;  // S + add, S summed in int64 when chunked
    } else {
      L->out_add[static_cast<size_t>(o)] = static_cast<int64_t>(add);
      // |acc - add| <= amax*abs_sum: the interval fits int64 as well.
      dot_interval(wo, K, in, static_cast<int64_t>(bias), L->acc_min[static_cast<size_t>(o)], L->acc_max[static_cast<size_t>(o)]);
    }
  });
  for (int64_t o = 0; o < L->O; ++o)
    if (leaves_int64[static_cast<size_t>(o)]) {
      why = "output channel " + std::to_string(o) + ": offset compensation plus bias leaves int64";
      return nullptr;
    }
  const __int128 worst = bound.empty() ? 0 : *std::max_element(bound.begin(), bound.end());
  L->acc_bound = static_cast<int64_t>(std::min(worst, kInt64Max));
  if (worst <= kInt32Max) {
    L->chunk = L->kg;
  } else {
    const __int128 per_granule = L->granule * amax * std::max<__int128>(abs128(wmin), abs128(wmax));
    L->chunk = static_cast<int64_t>(kInt32Max / per_granule);
    if (L->chunk < 1) {
      why = "one granule of products can leave int32";
      return nullptr;
    }
  }
  // AMX tiles for whole int32 reductions over at least one tile of pixels; vpdpbusd otherwise (chunks,
  // a linear layer's single row). On both AVX-512 tiers a Q8 layer that fits the channel-major rows
  // driver takes it: its sums come out [channel][pixel], so the requant reads them contiguously.
  if (isa == Isa::avx512amx && packing == Packing::q8)
    L->kernel = L->chunk >= L->kg && L->OH * L->OW >= 16 ? &kGemmQ8Amx : &kGemmQ8Avx512Vnni;
  if (uses_avx512(isa) && packing == Packing::q8 && rows_fits(*L)) {
    L->rows = isa == Isa::avx512amx ? GemmLayer::Rows::amx : GemmLayer::Rows::vnni;
    prepare_rows(*L);
  }
  L->tap_offset.resize(static_cast<size_t>(L->KH * L->KW));
  for (int64_t ky = 0; ky < L->KH; ++ky)
    for (int64_t kx = 0; kx < L->KW; ++kx)
      L->tap_offset[static_cast<size_t>(ky * L->KW + kx)] = (ky * L->dilation_h * L->PW + kx * L->dilation_w) * L->pq;
  why = std::string(packing == Packing::q8 ? "q8" : packing == Packing::q16 ? "q16" : "q8 split") + " " +
        std::string(L->rows == GemmLayer::Rows::amx    ? to_string(Path::conv_q8_amx_rows)
                    : L->rows == GemmLayer::Rows::vnni ? to_string(Path::conv_q8_vnni_rows)
                                                       : to_string(L->kernel->path)) + " offset " +
        std::to_string(L->act_offset) + (L->chunk >= L->kg ? " acc32" : " acc32 chunks of " + std::to_string(L->chunk) + " -> int64");
  return L;
}

std::unique_ptr<DepthwiseLayer> plan_depthwise(const Conv2dOp& op, const Shape& in_shape, const Shape& out_shape, Range in,
                                               std::string& why) {
  auto L = std::make_unique<DepthwiseLayer>();
  L->C = in_shape[1], L->H = in_shape[2], L->W = in_shape[3];
  L->O = op.weight.dim(0), L->KH = op.weight.dim(2), L->KW = op.weight.dim(3);
  L->OH = out_shape[2], L->OW = out_shape[3];
  L->PH = L->H + op.pad_top + op.pad_bottom, L->PW = L->W + op.pad_left + op.pad_right;
  L->stride_h = op.stride_h, L->stride_w = op.stride_w, L->dilation_h = op.dilation_h, L->dilation_w = op.dilation_w;
  L->pad_top = op.pad_top, L->pad_left = op.pad_left, L->pad_value = op.pad_value;
  if (in.lo < INT32_MIN || in.hi > INT32_MAX) {
    why = "input outside int32";
    return nullptr;
  }
  const int64_t taps = L->KH * L->KW;
  const __int128 amax = std::max(abs128(in.lo), abs128(in.hi));
  __int128 worst = 0;
  L->weight.resize(static_cast<size_t>(L->O * taps));
  L->bias.assign(static_cast<size_t>(L->O), 0);
  L->sum_bound.assign(static_cast<size_t>(L->O), 0);
  L->acc_min.assign(static_cast<size_t>(L->O), 0), L->acc_max.assign(static_cast<size_t>(L->O), 0);
  for (int64_t o = 0; o < L->O; ++o) {
    __int128 abs_sum = 0;
    for (int64_t t = 0; t < taps; ++t) {
      const int64_t v = op.weight.data[static_cast<size_t>(o * taps + t)];
      if (v < INT32_MIN || v > INT32_MAX) {
        why = "weights outside int32";
        return nullptr;
      }
      abs_sum += abs128(v);
      L->weight[static_cast<size_t>(o * taps + t)] = static_cast<int32_t>(v);
    }
    const int64_t bias = op.bias ? op.bias->data[static_cast<size_t>(o)] : 0;
    if (amax * abs_sum + abs128(bias) > kInt64Max) {
      why = "accumulator can leave int64";
      return nullptr;
    }
    L->bias[static_cast<size_t>(o)] = bias;
    L->sum_bound[static_cast<size_t>(o)] = static_cast<int64_t>(amax * abs_sum);
    dot_interval(op.weight.data.data() + o * taps, taps, in, bias, L->acc_min[static_cast<size_t>(o)], L->acc_max[static_cast<size_t>(o)]);
    worst = std::max(worst, amax * abs_sum);
  }
  L->acc32 = worst <= kInt32Max;
  L->int16 = L->acc32 && in.lo >= INT16_MIN && in.hi <= INT16_MAX &&
             std::all_of(L->weight.begin(), L->weight.end(), [](int32_t w) { return w >= INT16_MIN && w <= INT16_MAX; });
  L->int8_weights = std::all_of(L->weight.begin(), L->weight.end(), [](int32_t w) { return w >= INT8_MIN && w <= INT8_MAX; });
  pack_byte_taps(*L);
  pack_register_windows(*L);
  why = std::string("depthwise ") + (L->acc32 ? "acc32" : "acc64");
  return L;
}

// A conv/linear with its fused requant: every accumulator of channel o lies in the planner's exact
// interval [acc_min[o], acc_max[o]], every requant output in the requant's clamp. Both inside their
// declared types, no value can make the evaluator's checks after the node fail, so the output-only
// kernels need not track the ranges.
bool prove_ranges(const NodePlan& np, IntType acc_type, const FusedRequant& rq, IntType out_type) {
  if (!out_type.contains(rq.lo()) || !out_type.contains(rq.hi())) return false;
  const std::vector<int64_t>* lo = np.depthwise ? &np.depthwise->acc_min : np.gemm ? &np.gemm->acc_min : nullptr;
  const std::vector<int64_t>* hi = np.depthwise ? &np.depthwise->acc_max : np.gemm ? &np.gemm->acc_max : nullptr;
  if (lo == nullptr || lo->empty()) return false;
  for (size_t o = 0; o < lo->size(); ++o)
    if (!acc_type.contains((*lo)[o]) || !acc_type.contains((*hi)[o])) return false;
  return true;
}

}  // namespace

Plan::Plan(const Network& network, const Options& options) : network_(&network), isa_(resolve_isa(options.isa)) {
  threads_ = options.threads > 0 ? options.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  nodes_.resize(network.nodes.size());
  for (size_t i = 0; i < network.nodes.size(); ++i) node_index_[network.nodes[i].name] = i;
  consumers_.assign(network.nodes.size(), 0);
  for (const Node& node : network.nodes) {
    std::vector<size_t>& in = input_nodes_.emplace_back();
    for (const std::string& name : node.inputs) {
      const auto it = node_index_.find(name);
      in.push_back(it == node_index_.end() ? kNoNode : it->second);
      if (it != node_index_.end()) ++consumers_[it->second];
    }
  }
  for (size_t i = 0; i < network.nodes.size(); ++i) {
    if (nodes_[i].kernel == NodeKernel::fused) continue;  // planned with its producer
    try {
      plan_node(i);
    } catch (const std::invalid_argument& e) {
      // Parameters that do not fit the node's inputs: the reference kernel runs and reports them as
      // the reference evaluator does (InputError naming the node), at evaluation time.
      nodes_[i] = NodePlan{};
      nodes_[i].description = std::string("reference: ") + e.what();
      if (i + 1 < nodes_.size() && nodes_[i + 1].kernel == NodeKernel::fused) nodes_[i + 1] = NodePlan{};
    }
  }
}

void Plan::plan_node(size_t i) {
  const Network& network = *network_;
  const Node& node = network.nodes[i];
  NodePlan& np = nodes_[i];
  {
    switch (node.kind()) {
      case OpKind::input: np.kernel = NodeKernel::input; break;
      case OpKind::conv2d:
      case OpKind::linear: {
        const Node& in = producer(network, node);
        std::string why;
        if (const auto* op = std::get_if<Conv2dOp>(&node.op)) {
          const Shape& s = in.output.shape;
          if (s.size() != 4) throw std::invalid_argument("node '" + node.name + "': conv2d input must be NCHW");
          const bool padded = op->pad_top > 0 || op->pad_bottom > 0 || op->pad_left > 0 || op->pad_right > 0;
          const Range r = input_range(in.output.type, padded, op->pad_value);
          const Shape out = reference::conv2d_output_shape(*op, s);
          if (op->weight.dim(1) == 1 && op->groups > 1 && op->groups == s[1]) {
            np.depthwise = plan_depthwise(*op, s, out, r, why);
            if (np.depthwise) np.kernel = NodeKernel::depthwise;
          } else {
            GemmLayer g;
            g.C = s[1], g.H = s[2], g.W = s[3], g.O = op->weight.dim(0), g.G = op->groups;
            g.Cg = op->weight.dim(1), g.Og = g.O / g.G, g.KH = op->weight.dim(2), g.KW = op->weight.dim(3);
            g.OH = out[2], g.OW = out[3];
            g.PH = g.H + op->pad_top + op->pad_bottom, g.PW = g.W + op->pad_left + op->pad_right;
            g.stride_h = op->stride_h, g.stride_w = op->stride_w, g.dilation_h = op->dilation_h, g.dilation_w = op->dilation_w;
            g.pad_top = op->pad_top, g.pad_left = op->pad_left, g.pad_value = op->pad_value;
            np.gemm = plan_gemm(std::move(g), GemmSource{&op->weight, &op->bias}, r, isa_, threads_, why);
            if (np.gemm) np.kernel = NodeKernel::gemm;
          }
        } else {
          const auto& lin = std::get<LinearOp>(node.op);
          const Shape& s = in.output.shape;
          if (s.size() != 2) throw std::invalid_argument("node '" + node.name + "': linear input must be NC");
          reference::linear_output_shape(lin, s);  // throws on a weight that does not fit the input
          GemmLayer g;
          g.C = s[1], g.Cg = s[1], g.H = 1, g.W = 1, g.O = lin.weight.dim(0), g.Og = g.O;
          np.gemm = plan_gemm(std::move(g), GemmSource{&lin.weight, &lin.bias}, input_range(in.output.type, false, 0), isa_, threads_, why);
          if (np.gemm) np.kernel = NodeKernel::gemm;
        }
        np.description = np.kernel == NodeKernel::reference ? "reference: " + why : why;
        // Fuse the requant that directly follows and reads only this node.
        if (np.kernel != NodeKernel::reference && i + 1 < network.nodes.size()) {
          const Node& next = network.nodes[i + 1];
          if (next.kind() == OpKind::requant && next.inputs.size() == 1 && next.inputs[0] == node.name &&
              std::get<RequantOp>(next.op).requant.channels() == static_cast<size_t>(node.output.shape.at(1))) {
            np.fuses_next = true;
            NodePlan& rp = nodes_[i + 1];
            rp.kernel = NodeKernel::fused;
            rp.requant = std::make_unique<FusedRequant>(std::get<RequantOp>(next.op).requant, node.output.type.min(),
                                                        node.output.type.max(), isa_);
            rp.description = "fused into " + node.name + " (" + rp.requant->routes() + ")";
            // The 16-lane requant of the AVX-512 output-only stages (AMX row convs and depthwise).
            if (uses_avx512(isa_) && np.depthwise) {
              np.high_mul = high_mul_channels(*rp.requant, np.depthwise->bias, np.depthwise->sum_bound, true);
            } else if (uses_avx512(isa_) && np.gemm && np.gemm->rows != GemmLayer::Rows::none) {
              np.high_mul = high_mul_channels(*rp.requant, np.gemm->out_add, std::vector<int64_t>(np.gemm->out_add.size(), np.gemm->acc_bound), true);
              plan_fused_blocks(*np.gemm, np.high_mul);
            }
            np.ranges_proven = prove_ranges(np, node.output.type, *rp.requant, next.output.type);
            if (np.ranges_proven) rp.description += ", ranges proven";
            if (!np.high_mul.empty()) {
              int64_t on = 0, fma = 0;
              for (const HighMulChannel& h : np.high_mul) on += h.ok ? 1 : 0, fma += h.fma ? 1 : 0;
              rp.description += ", 16-lane int32 requant on " + std::to_string(on) + " of " + std::to_string(np.high_mul.size()) + " channels";
              if (fma > 0) rp.description += " (" + std::to_string(fma) + " of them in the fma form)";
              np.high_mul_fma = fma > 0;
            }
          }
        }
        break;
      }
      case OpKind::requant: {
        const Node& in = producer(network, node);
        np.kernel = NodeKernel::requant;
        // The range its routes are proven over: the input's type, or, right after an add_requant whose
        // branches are tabulated, the sums that add can produce (much narrower where the branches are
        // 8-bit and the sum type is declared wide, as QuantLab's integer adds are).
        const NodePlan* add = i > 0 && network.nodes[i - 1].name == node.inputs.at(0) ? &nodes_[i - 1] : nullptr;
        const bool sums_bounded = add && add->add_requant && add->add_requant->sums_bounded;
        const int64_t in_lo = sums_bounded ? add->add_requant->sum_lo : in.output.type.min(),
                      in_hi = sums_bounded ? add->add_requant->sum_hi : in.output.type.max();
        np.requant = std::make_unique<FusedRequant>(std::get<RequantOp>(node.op).requant, in_lo, in_hi, isa_);
        np.requant_table = tabulate_range(*np.requant, in_lo, in_hi);  // requant_into_bytes checks each input against it
        np.description = "requant stage (" + np.requant->routes() + ")" +
                         (np.requant_table ? ", tabulated over " + std::to_string(np.requant_table->values) + " input values" : "") +
                         (sums_bounded ? ", proven over its add's sums" : "");
        // After an add_requant of two affine byte branches (output mode, AVX-512): one int32 form of the
        // pair per channel, checked on every pair. Its 8-bit branches are always packed, so the evaluator
        // takes it whenever it exists, and the 16-lane route below is then not planned.
        if (uses_avx512(isa_) && in.kind() == OpKind::add_requant && add && add->add_requant && node.output.type.bits <= 8 &&
            in.inputs.size() == 2) {
          const Node* b0 = network.find(in.inputs[0]);
          const Node* b1 = network.find(in.inputs[1]);
          if (b0 != nullptr && b1 != nullptr)
            np.pair_dyadic = pair_dyadic_channels(*add->add_requant, b0->output.type, b1->output.type, in.output.type,
                                                  std::get<RequantOp>(node.op).requant, *np.requant);
          if (!np.pair_dyadic.empty()) np.description += ", with its add: one int32 form of the two bytes per channel, checked on every pair";
        }
        // After an add_requant (output mode, AVX-512): the 16-lane route on the int32 sums in registers.
        if (np.pair_dyadic.empty() && uses_avx512(isa_) && in.kind() == OpKind::add_requant && in_lo >= INT32_MIN && in_hi <= INT32_MAX) {
          const int64_t bound = std::max(-in_lo, in_hi);
          np.high_mul = high_mul_channels(*np.requant, std::vector<int64_t>(np.requant->channels(), 0),
                                          std::vector<int64_t>(np.requant->channels(), bound), false);  // the add kernels run the shift route
          if (!np.high_mul.empty() &&
              std::all_of(np.high_mul.begin(), np.high_mul.end(), [](const HighMulChannel& h) { return h.ok; }))
            np.description += ", with its add: 16-lane int32 requant on every channel";
          else
            np.high_mul.clear();  // the fused pass needs every channel
        }
        break;
      }
      case OpKind::add_requant: {
        const auto& op = std::get<AddRequantOp>(node.op);
        if (op.branches.size() != node.inputs.size()) {
          np.kernel = NodeKernel::reference;  // the reference reports the mismatch
          np.description = "reference";
          break;
        }
        np.add_requant = std::make_unique<AddRequantLayer>();
        for (size_t b = 0; b < op.branches.size(); ++b) {
          const Node* in = network.find(node.inputs[b]);
          if (in == nullptr) throw std::invalid_argument("node '" + node.name + "': unknown input '" + node.inputs[b] + "'");
          np.add_requant->branches.push_back(
              std::make_unique<FusedRequant>(op.branches[b], in->output.type.min(), in->output.type.max(), isa_));
          np.add_requant->tables.push_back(tabulate(*np.add_requant->branches.back(), in->output.type));
          np.add_requant->tables64.push_back(np.add_requant->tables.back() ? nullptr : tabulate64(*np.add_requant->branches.back(), in->output.type));
          const RequantTable* table = np.add_requant->tables.back().get();
          const bool vbmi = uses_avx512(isa_) && cpu_has_avx512vbmi();  // add_planes_vbmi.h, the only reader
          np.add_requant->planes16.push_back(table && vbmi ? byte_planes16(*table, np.add_requant->branches.back()->channels(), in->output.type) : nullptr);
        }
        np.kernel = NodeKernel::add_requant;
        AddRequantLayer& a = *np.add_requant;
        // The sums' range: each term lies between its table's smallest and largest entries (the tables
        // hold every value the branch's requant takes over its input's type), then the add clamps.
        {
          __int128 lo = 0, hi = 0;
          a.sums_bounded = !a.tables.empty();
          auto widen = [&](const auto& y) {
            if (y.empty()) return false;
            const auto [mn, mx] = std::minmax_element(y.begin(), y.end());
            lo += *mn, hi += *mx;
            return true;
          };
          for (size_t b = 0; b < a.tables.size() && a.sums_bounded; ++b)
            a.sums_bounded = a.tables[b] ? widen(a.tables[b]->y) : a.tables64[b] ? widen(a.tables64[b]->y) : false;
          if (a.sums_bounded) {
            a.sum_lo = static_cast<int64_t>(std::max<__int128>(lo, node.output.type.min()));
            a.sum_hi = static_cast<int64_t>(std::min<__int128>(hi, node.output.type.max()));
            a.sums_bounded = a.sum_lo <= a.sum_hi;
          }
        }
        bool tabulated = true, wide = false;
        for (size_t b = 0; b < a.tables.size(); ++b) tabulated = tabulated && (a.tables[b] || a.tables64[b]), wide = wide || a.tables64[b];
        np.description = !tabulated ? "add_requant stages" : wide ? "add_requant stages, tabulated (int64 entries on some branches)" : "add_requant stages, tabulated";
        if (a.sums_bounded) np.description += ", sums proven in [" + std::to_string(a.sum_lo) + ", " + std::to_string(a.sum_hi) + "]";
        break;
      }
      case OpKind::max_pool2d: np.kernel = NodeKernel::max_pool2d; np.description = "max_pool2d"; break;
      default:
        np.kernel = NodeKernel::reference;
        // evaluate_output adds two packed 8-bit operands into an 8-bit type on bytes (add_saturating_bytes)
        // and pools packed bytes (avg_pool2d.h).
        np.description = node.kind() == OpKind::add_saturating ? "reference (output mode: bytes when operands and output fit 8 bits)"
                         : node.kind() == OpKind::avg_pool2d   ? "reference (output mode: int32 window sums of bytes when the input fits 8 bits)"
                                                               : "reference";
        break;
    }
  }
}

}  // namespace qv::integer

namespace qv::integer {

std::string describe(const Plan& plan) {
  std::string s = "isa " + std::string(to_string(plan.isa())) + ", " + std::to_string(plan.threads()) + " threads\n";
  for (size_t i = 0; i < plan.nodes().size(); ++i) {
    const Node& node = plan.network().nodes[i];
    s += node.name + " (" + std::string(qv::to_string(node.kind())) + "): " + plan.nodes()[i].description + "\n";
  }
  return s;
}

}  // namespace qv::integer
