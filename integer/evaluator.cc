#include "integer/evaluator.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <stdexcept>
#include <string>

#include "integer/add_planes_vbmi.h"
#include "integer/avg_pool2d.h"
#include "integer/conv_gemm.h"
#include "integer/depthwise.h"
#include "integer/max_pool2d.h"
#include "integer/path_counters.h"
#include "integer/requant16_avx512.h"
#include "integer/tensor_alloc.h"
#include "integer/per_thread.h"
#include "integer/thread_pool.h"
#include "ir/error.h"
#include "reference/add_requant.h"
#include "reference/add_saturating.h"
#include "reference/avg_pool2d.h"
#include "reference/conv2d.h"
#include "reference/flatten.h"
#include "reference/hadamard.h"
#include "reference/linear.h"
#include "reference/max_pool2d.h"
#include "reference/requant.h"
#include "reference/shapes.h"

namespace qv::integer {

namespace {

std::string where(const Node& node) { return "node '" + node.name + "' (" + std::string(qv::to_string(node.kind())) + ")"; }

// The reference evaluator's check, with its message.
void check_value(const Node& node, const IntTensor& value) {
  if (value.shape != node.output.shape)
    throw InputError("", where(node), "shape " + qv::to_string(value.shape) + " differs from the declared " + qv::to_string(node.output.shape));
  for (size_t i = 0; i < value.data.size(); ++i)
    if (!node.output.type.contains(value.data[i]))
      throw InputError("", where(node), "value " + std::to_string(value.data[i]) + " at flat index " + std::to_string(i) +
                                           " is outside the declared type " + node.output.type.name());
}

// check_value when the kernel already knows min/max: the full pass only to name a failure.
void check_known_range(const Node& node, const IntTensor& value, int64_t mn, int64_t mx) {
  if (value.shape != node.output.shape || (!value.data.empty() && (!node.output.type.contains(mn) || !node.output.type.contains(mx))))
    check_value(node, value);
}

IntTensor reference_op(const Node& node, const std::vector<const IntTensor*>& in, int threads) {
  const reference::ReferenceOptions opt{.threads = threads};
  const IntType type = node.output.type;
  auto one = [&]() -> const IntTensor& {
    if (in.size() != 1) throw std::invalid_argument("expects 1 input, has " + std::to_string(in.size()));
    return *in[0];
  };
  PathCounters& pc = path_counters();
  switch (node.kind()) {
    case OpKind::conv2d: pc.add(Path::conv2d_reference); return reference::conv2d(std::get<Conv2dOp>(node.op), one(), type, opt);
    case OpKind::linear: pc.add(Path::linear_reference); return reference::linear(std::get<LinearOp>(node.op), one(), type, opt);
    default: break;
  }
  pc.add(Path::other_reference);
  switch (node.kind()) {
    case OpKind::max_pool2d: return reference::max_pool2d(std::get<MaxPool2dOp>(node.op), one(), type, opt);
    case OpKind::avg_pool2d: return reference::avg_pool2d(std::get<AvgPool2dOp>(node.op), one(), type, opt);
    case OpKind::add_saturating:
      if (in.size() != 2) throw std::invalid_argument("expects 2 inputs, has " + std::to_string(in.size()));
      return reference::add_saturating(*in[0], *in[1], type, opt);
    case OpKind::add_requant: return reference::add_requant(std::get<AddRequantOp>(node.op), in, type, opt);
    case OpKind::hadamard: return reference::hadamard(std::get<HadamardOp>(node.op), one(), type, opt);
    case OpKind::flatten: return reference::flatten(one(), type, opt);
    case OpKind::requant: return reference::requant(std::get<RequantOp>(node.op), one(), type, opt);
    default: throw std::logic_error("no reference dispatch for " + std::string(qv::to_string(node.kind())));
  }
}

// A requant node on its own: the prepared stage over every (n, c) run.
IntTensor run_requant(const FusedRequant& rq, const RequantOp& op, const IntTensor& in, IntType type, ThreadPool& pool,
                      std::vector<int64_t>* recycled) {
  if (in.rank() < 2) throw std::invalid_argument("requant input needs a channel axis");
  const int64_t N = in.dim(0), C = in.dim(1), inner = in.numel() / std::max<int64_t>(N * C, 1);
  if (op.requant.channels() != static_cast<size_t>(C))
    throw std::invalid_argument("requant has " + std::to_string(op.requant.channels()) + " channels, input has " + std::to_string(C));
  IntTensor out = new_tensor(in.shape, type, in.layout.c_str(), recycled);
  pool.run(N * C, [&](int64_t nc) {
    rq.apply(static_cast<size_t>(nc % C), in.data.data() + nc * inner, out.data.data() + nc * inner, inner);
  });
  return out;
}

}  // namespace

Trace evaluate(const Plan& plan, const std::vector<IntTensor>& inputs, Trace recycled) {
  const Network& network = plan.network();
  ThreadPool pool(plan.threads());
  Workspace workspace;
  Trace trace;
  trace.reserve(network.nodes.size());
  std::map<std::string, size_t> index;
  size_t next_input = 0;
  IntTensor fused_value;  // the requant tensor computed by the previous node's output stage
  MinMax fused_range;
  auto storage = [&](size_t node_index) -> std::vector<int64_t>* {
    if (node_index >= recycled.size() || recycled[node_index].node != network.nodes[node_index].name) return nullptr;
    return &recycled[node_index].value.data;
  };
  for (size_t i = 0; i < network.nodes.size(); ++i) {
    const Node& node = network.nodes[i];
    const NodePlan& np = plan.nodes()[i];
    IntTensor value;
    if (node.kind() == OpKind::input) {
      if (next_input >= inputs.size())
        throw InputError("", where(node), "no input tensor given (" + std::to_string(inputs.size()) + " given)");
      value = inputs[next_input++];
      value.type = node.output.type;
      check_value(node, value);  // the planner's packing relies on the declared type
    } else {
      std::vector<const IntTensor*> in;
      for (const std::string& name : node.inputs) {
        const auto it = index.find(name);
        if (it == index.end()) throw InputError("", where(node), "input '" + name + "' is not an earlier node");
        in.push_back(&trace[it->second].value);
      }
      try {
        switch (np.kernel) {
          case NodeKernel::gemm:
          case NodeKernel::depthwise: {
            const IntTensor& x = *in.at(0);
            const bool conv = node.kind() == OpKind::conv2d;
            const Shape shape = conv ? reference::conv2d_output_shape(std::get<Conv2dOp>(node.op), x.shape)
                                     : reference::linear_output_shape(std::get<LinearOp>(node.op), x.shape);
            if (shape != node.output.shape)
              throw InputError("", where(node), "shape " + qv::to_string(shape) + " differs from the declared " + qv::to_string(node.output.shape));
            const char* layout = conv ? "NCHW" : "NC";
            value = new_tensor(shape, node.output.type, layout, storage(i));
            OutputStage stage;
            stage.acc_out = value.data.data();
            stage.O = shape[1];
            stage.plane = conv ? shape[2] * shape[3] : 1;
            stage.min_max = min_max_for(plan.isa());
            stage.acc_lo = node.output.type.min(), stage.acc_hi = node.output.type.max();
            if (np.fuses_next) {
              const Node& next = network.nodes[i + 1];
              fused_value = new_tensor(shape, next.output.type, layout, storage(i + 1));
              stage.requant_out = fused_value.data.data();
              stage.requant = plan.nodes()[i + 1].requant.get();
          if (!np.high_mul.empty()) stage.high_mul = np.high_mul.data(), stage.high_mul_fma = np.high_mul_fma;
            }
            const MinMax mm = np.kernel == NodeKernel::gemm ? run_gemm(*np.gemm, x, stage, pool, workspace)
                                                            : run_depthwise(*np.depthwise, x, stage, plan.isa(), pool, workspace);
            check_known_range(node, value, mm.acc_min, mm.acc_max);
            fused_range = mm;
            break;
          }
          case NodeKernel::fused: {
            path_counters().add(Path::requant_fused);
            value = std::move(fused_value);
            check_known_range(node, value, fused_range.y_min, fused_range.y_max);
            break;
          }
          case NodeKernel::max_pool2d: {
            path_counters().add(Path::max_pool2d);
            if (in.size() != 1) throw std::invalid_argument("expects 1 input, has " + std::to_string(in.size()));
            value = run_max_pool2d(std::get<MaxPool2dOp>(node.op), *in[0], node.output.type, pool, storage(i));
            check_value(node, value);
            break;
          }
          case NodeKernel::add_requant:
            path_counters().add(Path::add_requant);
            value = run_add_requant(*np.add_requant, in, node.output.type, pool, storage(i));
            check_value(node, value);
            break;
          case NodeKernel::requant:
            value = run_requant(*np.requant, std::get<RequantOp>(node.op), *in.at(0), node.output.type, pool, storage(i));
            check_value(node, value);
            break;
          default:
            value = reference_op(node, in, plan.threads());
            check_value(node, value);
            break;
        }
      } catch (const std::invalid_argument& e) {
        throw InputError("", where(node), e.what());
      } catch (const std::range_error& e) {
        throw InputError("", where(node), e.what());
      }
    }
    value.scale = node.output.scale;
    index[node.name] = trace.size();
    trace.push_back({node.name, std::move(value)});
  }
  if (next_input != inputs.size())
    throw InputError("", "inputs", std::to_string(inputs.size()) + " tensors given for " + std::to_string(next_input) + " input nodes");
  return trace;
}

namespace {

// A node's value in evaluate_output: packed bytes (types of <= 8 bits) or an int64 tensor.
struct Value {
  bool present = false;
  bool narrow = false;
  const uint8_t* bytes = nullptr;
  IntTensor wide;  // !narrow
  Shape shape;
  IntType type;
  std::string layout;
  ActSource source() const { return narrow ? ActSource{nullptr, bytes, type.is_signed} : ActSource::of(wide.data.data()); }
};

bool fits_byte(IntType t) { return t.bits <= 8; }

IntTensor unpack(const Value& v) {
  if (!v.narrow) return v.wide;
  IntTensor t;
  t.shape = v.shape, t.type = v.type, t.layout = v.layout;
  const size_t n = static_cast<size_t>(element_count(v.shape));
  t.data.resize(n);
  if (v.type.is_signed)
    for (size_t i = 0; i < n; ++i) t.data[i] = static_cast<int8_t>(v.bytes[i]);
  else
    for (size_t i = 0; i < n; ++i) t.data[i] = v.bytes[i];
  return t;
}

uint8_t* narrow_storage(OutputBuffers& b, size_t i, const Shape& shape) {
  std::vector<uint8_t>& buf = b.bytes[i];
  buf.resize(static_cast<size_t>(element_count(shape)));
  return buf.data();
}

// Stores a checked tensor as node i's value (packed when its type has <= 8 bits).
void store(Value& v, IntTensor t, OutputBuffers& b, size_t i) {
  v.present = true;
  v.shape = t.shape, v.type = t.type, v.layout = t.layout;
  v.narrow = fits_byte(t.type);
  if (!v.narrow) {
    v.wide = std::move(t);
    return;
  }
  uint8_t* dst = narrow_storage(b, i, t.shape);
  for (size_t k = 0; k < t.data.size(); ++k) dst[k] = static_cast<uint8_t>(t.data[k]);
  v.bytes = dst;
}

// y = clamp(a + b) to `type` on packed bytes (each operand int8 or uint8 by its own type); the sum of two
// bytes fits int16, so the clamp is exact. AVX-512: 32 values per step, each operand widened to int16
// by its signedness, clamped and narrowed back.
__attribute__((target("avx512f,avx512bw,avx512vl"))) void add_saturating_bytes_avx512(const uint8_t* a, bool a_signed, const uint8_t* b,
                                                                             bool b_signed, int64_t begin, int64_t end, int16_t lo,
                                                                             int16_t hi, uint8_t* out) {
  const __m512i vlo = _mm512_set1_epi16(lo), vhi = _mm512_set1_epi16(hi);
  for (int64_t k = begin; k < end; k += 32) {
    const __mmask32 mask = end - k >= 32 ? 0xFFFFFFFFu : (1u << (end - k)) - 1;
    const __m256i ra = _mm256_maskz_loadu_epi8(mask, a + k), rb = _mm256_maskz_loadu_epi8(mask, b + k);
    const __m512i wa = a_signed ? _mm512_cvtepi8_epi16(ra) : _mm512_cvtepu8_epi16(ra);
    const __m512i wb = b_signed ? _mm512_cvtepi8_epi16(rb) : _mm512_cvtepu8_epi16(rb);
    const __m512i sum = _mm512_min_epi16(_mm512_max_epi16(_mm512_add_epi16(wa, wb), vlo), vhi);
    _mm256_mask_storeu_epi8(out + k, mask, _mm512_maskz_cvtepi16_epi8(0xFFFFFFFFu, sum));
  }
}

void add_saturating_bytes(const uint8_t* a, bool a_signed, const uint8_t* b, bool b_signed, int64_t n, IntType type, uint8_t* out,
                          bool avx512, ThreadPool& pool) {
  const int16_t lo = static_cast<int16_t>(type.min()), hi = static_cast<int16_t>(type.max());
  constexpr int64_t kChunk = 16384;
  pool.run((n + kChunk - 1) / kChunk, [&](int64_t task) {
    const int64_t begin = task * kChunk, end = std::min(n, begin + kChunk);
    if (avx512) return add_saturating_bytes_avx512(a, a_signed, b, b_signed, begin, end, lo, hi, out);
    auto run = [&](auto sa, auto sb) {  // the operands' element types pick the widening
      using A = decltype(sa);
      using Bt = decltype(sb);
      const A* pa = reinterpret_cast<const A*>(a);
      const Bt* pb = reinterpret_cast<const Bt*>(b);
      for (int64_t k = begin; k < end; ++k) {
        const int16_t s = static_cast<int16_t>(static_cast<int16_t>(pa[k]) + static_cast<int16_t>(pb[k]));
        out[k] = static_cast<uint8_t>(std::clamp(s, lo, hi));
      }
    };
    if (a_signed && b_signed) run(int8_t{}, int8_t{});
    else if (a_signed) run(int8_t{}, uint8_t{});
    else if (b_signed) run(uint8_t{}, int8_t{});
    else run(uint8_t{}, uint8_t{});
  });
}

bool in_type(IntType t, int64_t lo, int64_t hi) { return lo > hi || (t.contains(lo) && t.contains(hi)); }

// Whether a table covers the whole type of a packed 8-bit branch input, for C channels.
template <class Table>
bool covers(const Table* t, const Value& in, int64_t C) {
  return t != nullptr && in.narrow && t->in_lo == in.type.min() && t->in_lo + t->values - 1 == in.type.max() &&
         static_cast<int64_t>(t->y.size()) == C * t->values;
}

// Whether every branch of an add_requant has such an int32 table, so that a term is one lookup; and the
// bound of a sum of lookups (the largest entries).
bool branches_tabulated(const AddRequantLayer& L, const std::vector<const Value*>& in, int64_t C) {
  if (L.tables.size() != in.size()) return false;
  for (size_t br = 0; br < in.size(); ++br)
    if (!covers(L.tables[br].get(), *in[br], C)) return false;
  return true;
}

int64_t tables_bound(const AddRequantLayer& L) {
  int64_t bound = 0;
  for (const auto& t : L.tables) bound += t->max_abs;
  return bound;
}

// The same with int64 tables (L.tables64) standing in for the branches without an int32 table: a term
// is one lookup either way, and int64 sums of up to 4 of them cannot overflow (each entry < 2^60).
bool branches_tabulated_any(const AddRequantLayer& L, const std::vector<const Value*>& in, int64_t C) {
  if (L.tables.size() != in.size() || L.tables64.size() != in.size()) return false;
  for (size_t br = 0; br < in.size(); ++br)
    if (!covers(L.tables[br].get(), *in[br], C) && !covers(L.tables64[br].get(), *in[br], C)) return false;
  return true;
}

// One (n, c) plane's terms of a tabulated add_requant: per branch the channel's table row (offset by
// the table's first input, so a value is its own index), the packed input and its signedness.
struct PlaneTerms {
  const int32_t* rows[4];
  const int64_t* rows64[4];  // the int64 table's row instead, where the branch has one (add_tabulated_sums64)
  const uint8_t* src[4];
  bool is_signed[4];
  size_t branches = 0;
  // Every branch's table row is affine (RequantTableOf::affine): term = at_zero + slope * x.
  bool affine = false;
  int64_t slope[4] = {}, at_zero = 0;  // at_zero: the branches' sum
};

PlaneTerms plane_terms(const AddRequantLayer& L, const std::vector<const Value*>& in, size_t channel, int64_t at) {
  PlaneTerms t;
  t.branches = in.size();
  for (size_t br = 0; br < in.size(); ++br) {
    const RequantTable* narrow = L.tables[br].get();
    const RequantTable64* wide = L.tables64[br].get();
    t.rows[br] = narrow ? narrow->channel(channel) - narrow->in_lo : nullptr;
    t.rows64[br] = narrow == nullptr && wide ? wide->channel(channel) - wide->in_lo : nullptr;
    t.src[br] = in[br]->bytes + at;
    t.is_signed[br] = in[br]->type.is_signed;
    const std::vector<uint8_t>* affine = narrow ? &narrow->affine : wide ? &wide->affine : nullptr;
    t.affine = (br == 0 || t.affine) && affine != nullptr && (*affine)[channel] != 0;
    if (!t.affine) continue;
    t.slope[br] = narrow ? narrow->slope[channel] : wide->slope[channel];
    // Wrapping: the kernels' sums are exact modulo 2^32 or 2^64, and the true sums are proven to fit.
    t.at_zero = static_cast<int64_t>(static_cast<uint64_t>(t.at_zero) + static_cast<uint64_t>(narrow ? narrow->at_zero[channel] : wide->at_zero[channel]));
  }
  return t;
}

// Branch br's values k .. k+15 (lanes in `mask`) widened to int32 by their signedness: the lookups'
// indices (each table row is offset by its first input).
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) inline __m512i table_index16(const PlaneTerms& t, size_t br, int64_t k,
                                                                                                 __mmask16 mask) {
  const __m128i bytes = _mm_maskz_loadu_epi8(mask, t.src[br] + k);
  return t.is_signed[br] ? _mm512_maskz_cvtepi8_epi32(0xFFFF, bytes) : _mm512_maskz_cvtepu8_epi32(0xFFFF, bytes);  // maskz: GCC 12
}

// The sum of the terms of values k .. k+15 (lanes in `mask`), each looked up by one vpgatherdd, added
// in int32 (the callers proved the sum fits).
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) inline __m512i gathered_terms16(const PlaneTerms& t, int64_t k,
                                                                                                    __mmask16 mask) {
  __m512i sum = _mm512_setzero_si512();
  for (size_t br = 0; br < t.branches; ++br) {
    const __m512i index = table_index16(t, br, k, mask);
    sum = _mm512_maskz_add_epi32(0xFFFF, sum, _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), mask, index, t.rows[br], 4));
  }
  return sum;
}

// The same sums from affine rows (t.affine): at_zero + sum of slope * x by vpmulld, in wrapping int32.
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) inline __m512i affine_terms16(const PlaneTerms& t, int64_t k, __mmask16 mask) {
  __m512i sum = _mm512_set1_epi32(static_cast<int32_t>(static_cast<uint32_t>(t.at_zero)));
  for (size_t br = 0; br < t.branches; ++br)
    sum = _mm512_add_epi32(sum, _mm512_mullo_epi32(table_index16(t, br, k, mask), _mm512_set1_epi32(static_cast<int32_t>(t.slope[br]))));
  return sum;
}

// The tabulated add_requant of one (n, c) plane on AVX-512: the gathered sums clamped to [lo, hi] and
// narrowed into bytes (dst) or widened into int64 (wide).
__attribute__((target("avx512f,avx512bw,avx512vl"))) void add_tabulated_avx512(const PlaneTerms& t, int64_t n, int32_t lo, int32_t hi,
                                                                                    uint8_t* dst, int64_t* wide) {
  const __m512i vlo = _mm512_set1_epi32(lo), vhi = _mm512_set1_epi32(hi);
  for (int64_t k = 0; k < n; k += 16) {
    const __mmask16 mask = static_cast<__mmask16>(n - k >= 16 ? 0xFFFFu : (1u << (n - k)) - 1);
    const __m512i sum = t.affine ? affine_terms16(t, k, mask) : gathered_terms16(t, k, mask);
    const __m512i y = _mm512_maskz_min_epi32(0xFFFF, _mm512_maskz_max_epi32(0xFFFF, sum, vlo), vhi);
    if (dst != nullptr) {
      _mm_mask_storeu_epi8(dst + k, mask, _mm512_maskz_cvtepi32_epi8(0xFFFF, y));
    } else {
      _mm512_mask_storeu_epi64(wide + k, static_cast<__mmask8>(mask), _mm512_maskz_cvtepi32_epi64(0xFF, _mm512_maskz_extracti64x4_epi64(0xFF, y, 0)));
      _mm512_mask_storeu_epi64(wide + k + 8, static_cast<__mmask8>(mask >> 8), _mm512_maskz_cvtepi32_epi64(0xFF, _mm512_maskz_extracti64x4_epi64(0xFF, y, 1)));
    }
  }
}

// The same lookups for one (n, c) plane, the sums (clamped to [lo, hi], the add's type) then requantized
// in registers by the 16-lane route of the requant that reads them (requant_high_mul16_step): bytes out.
template <Form16 kForm>
__attribute__((target("avx512f,avx512bw,avx512vl"))) void add_tabulated_high_mul16(const PlaneTerms& t, int64_t n, int32_t lo, int32_t hi, const HighMulChannel& hm,
                                                                                  int32_t rq_lo, int32_t rq_hi, uint8_t* dst, Ranges32& r) {
  const __m512i vlo = _mm512_set1_epi32(lo), vhi = _mm512_set1_epi32(hi);
  const HighMul16 h = high_mul16(hm.params, hm.add, rq_lo, rq_hi);
  Ranges32 local = r;  // in registers (the byte stores may alias r)
  for (int64_t k = 0; k < n; k += 16) {
    const __mmask16 mask = static_cast<__mmask16>(n - k >= 16 ? 0xFFFFu : (1u << (n - k)) - 1);
    __m512i sum = t.affine ? affine_terms16(t, k, mask) : gathered_terms16(t, k, mask);
    sum = _mm512_maskz_min_epi32(0xFFFF, _mm512_maskz_max_epi32(0xFFFF, sum, vlo), vhi);
    requant_high_mul16_step<kForm>(sum, mask, h, dst + k, local);
  }
  r = local;
}

// The gathered terms of one (n, c) plane added in int64 (int32 entries, or int64 ones below 2^60 from
// the branches' int64 tables, so up to 4 branches cannot overflow), clamped to [lo, hi] (the add's
// type) into `sums` (n values: a buffer that stays in L1), for a requant route with no 16-lane form or
// sums that int32 cannot hold.
__attribute__((target("avx512f,avx512bw,avx512vl"))) void add_tabulated_sums64(const PlaneTerms& t, int64_t n, int64_t lo, int64_t hi, int64_t* sums) {
  const __m512i vlo = _mm512_set1_epi64(lo), vhi = _mm512_set1_epi64(hi);
  for (int64_t k = 0; k < n; k += 16) {
    const __mmask16 mask = static_cast<__mmask16>(n - k >= 16 ? 0xFFFFu : (1u << (n - k)) - 1);
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    for (size_t br = 0; br < t.branches; ++br) {
      const __m512i index = table_index16(t, br, k, mask);
      if (t.rows64[br] != nullptr) {
        const __m256i i0 = _mm512_maskz_extracti64x4_epi64(0xFF, index, 0), i1 = _mm512_maskz_extracti64x4_epi64(0xFF, index, 1);
        s0 = _mm512_add_epi64(s0, _mm512_mask_i32gather_epi64(_mm512_setzero_si512(), static_cast<__mmask8>(mask), i0, t.rows64[br], 8));
        s1 = _mm512_add_epi64(s1, _mm512_mask_i32gather_epi64(_mm512_setzero_si512(), static_cast<__mmask8>(mask >> 8), i1, t.rows64[br], 8));
        continue;
      }
      const __m512i term = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), mask, index, t.rows[br], 4);
      s0 = _mm512_add_epi64(s0, _mm512_maskz_cvtepi32_epi64(0xFF, _mm512_maskz_extracti64x4_epi64(0xFF, term, 0)));
      s1 = _mm512_add_epi64(s1, _mm512_maskz_cvtepi32_epi64(0xFF, _mm512_maskz_extracti64x4_epi64(0xFF, term, 1)));
    }
    _mm512_mask_storeu_epi64(sums + k, static_cast<__mmask8>(mask), _mm512_maskz_min_epi64(0xFF, _mm512_maskz_max_epi64(0xFF, s0, vlo), vhi));
    _mm512_mask_storeu_epi64(sums + k + 8, static_cast<__mmask8>(mask >> 8), _mm512_maskz_min_epi64(0xFF, _mm512_maskz_max_epi64(0xFF, s1, vlo), vhi));
  }
}

// The same sums from affine rows (t.affine): at_zero + sum of slope * x, each product exact in int64 by
// vpmuldq (x and slope inside int32), the additions wrapping (the true sums fit int64).
__attribute__((target("avx512f,avx512bw,avx512vl"))) void add_affine_sums64(const PlaneTerms& t, int64_t n, int64_t lo, int64_t hi, int64_t* sums) {
  const __m512i vlo = _mm512_set1_epi64(lo), vhi = _mm512_set1_epi64(hi), start = _mm512_set1_epi64(t.at_zero);
  __m512i slope[4];
  for (size_t br = 0; br < t.branches; ++br) slope[br] = _mm512_set1_epi64(t.slope[br]);
  for (int64_t k = 0; k < n; k += 16) {
    const __mmask16 mask = static_cast<__mmask16>(n - k >= 16 ? 0xFFFFu : (1u << (n - k)) - 1);
    __m512i s0 = start, s1 = start;
    for (size_t br = 0; br < t.branches; ++br) {
      const __m128i bytes = _mm_maskz_loadu_epi8(mask, t.src[br] + k);
      const __m128i high = _mm_srli_si128(bytes, 8);
      // maskz forms: GCC 12 warns on the unmasked ones' undefined source under -Werror.
      const __m512i x0 = t.is_signed[br] ? _mm512_maskz_cvtepi8_epi64(0xFF, bytes) : _mm512_maskz_cvtepu8_epi64(0xFF, bytes);
      const __m512i x1 = t.is_signed[br] ? _mm512_maskz_cvtepi8_epi64(0xFF, high) : _mm512_maskz_cvtepu8_epi64(0xFF, high);
      s0 = _mm512_add_epi64(s0, _mm512_maskz_mul_epi32(0xFF, x0, slope[br]));
      s1 = _mm512_add_epi64(s1, _mm512_maskz_mul_epi32(0xFF, x1, slope[br]));
    }
    _mm512_mask_storeu_epi64(sums + k, static_cast<__mmask8>(mask), _mm512_maskz_min_epi64(0xFF, _mm512_maskz_max_epi64(0xFF, s0, vlo), vhi));
    _mm512_mask_storeu_epi64(sums + k + 8, static_cast<__mmask8>(mask >> 8), _mm512_maskz_min_epi64(0xFF, _mm512_maskz_max_epi64(0xFF, s1, vlo), vhi));
  }
}

// add_requant_then_requant for two affine byte branches with the planner's int32 form of the pair per
// channel (add_pair_dyadic.h), over plane_count (N*C) planes of `inner` outputs: no sums, no tables, no
// 64-bit requant.
bool add_pair_then_requant(const NodePlan& rq_plan, const std::vector<const Value*>& in, const Node& rq_node, int64_t plane_count, int64_t inner,
                           Value& v, OutputBuffers& B, size_t j, ThreadPool& pool) {
  const Value& first = *in[0];
  const int64_t C = static_cast<int64_t>(rq_plan.pair_dyadic.size());
  const int32_t lo = static_cast<int32_t>(rq_plan.requant->lo()), hi = static_cast<int32_t>(rq_plan.requant->hi());
  uint8_t* dst = narrow_storage(B, j, first.shape);
  PerThread<MinMax> totals(pool);
  // Tasks of whole planes, at least ~2048 outputs each, as add_requant_then_requant's.
  const int64_t planes_per_task = std::max<int64_t>(1, 2048 / std::max<int64_t>(inner, 1));
  pool.run((plane_count + planes_per_task - 1) / planes_per_task, [&](int64_t task) {
    int32_t y_lo = INT32_MAX, y_hi = INT32_MIN;
    for (int64_t nc = task * planes_per_task; nc < std::min(plane_count, (task + 1) * planes_per_task); ++nc)
      add_pair_dyadic_bytes(in[0]->bytes + nc * inner, in[0]->type.is_signed, in[1]->bytes + nc * inner, in[1]->type.is_signed, inner,
                            rq_plan.pair_dyadic[static_cast<size_t>(nc % C)], lo, hi, dst + nc * inner, y_lo, y_hi);
    MinMax& m = totals.local();
    m.y_min = std::min<int64_t>(m.y_min, y_lo), m.y_max = std::max<int64_t>(m.y_max, y_hi);
  });
  const MinMax total = merged(totals);
  if (total.y_min <= total.y_max && !in_type(rq_node.output.type, total.y_min, total.y_max)) return false;
  v.present = true, v.narrow = true, v.shape = first.shape, v.type = rq_node.output.type, v.layout = first.layout;
  v.bytes = dst;
  PathCounters& pc = path_counters();
  pc.add(Path::add_requant_pair_dyadic);
  pc.add(Path::add_requant_then_requant);
  return true;
}

// Output only: an add_requant (node i) whose only consumer is the next node, a requant into bytes, in
// one pass from the packed branches to the requant's bytes. When every channel has the requant's 16-lane
// route (the planner proved it over the add's whole type) the sums never leave the registers; otherwise
// each plane's sums go through an L1 buffer into the channel's own route (apply_narrow), with no sum
// tensor in memory and no second pass. False, with only the destination buffer touched, when the
// branches or tables do not fit or an output leaves the requant's declared type (the caller then runs
// both nodes as usual, which reports any error).
bool add_requant_then_requant(const AddRequantLayer& L, const std::vector<const Value*>& in, const Node& sum_node, const Node& rq_node,
                              const NodePlan& rq_plan, Value& v, OutputBuffers& B, size_t j, ThreadPool& pool) {
  if (in.empty() || in.size() > 4 || !fits_byte(rq_node.output.type) || !rq_plan.requant) return false;
  const Value& first = *in[0];
  if (first.shape.size() < 2 || first.shape != rq_node.output.shape || first.shape != sum_node.output.shape) return false;
  const int64_t N = first.shape[0], C = first.shape[1], inner = element_count(first.shape) / std::max<int64_t>(N * C, 1);
  if (static_cast<int64_t>(rq_plan.requant->channels()) != C) return false;
  for (const Value* x : in)
    if (x->shape != first.shape) return false;
  if (!branches_tabulated_any(L, in, C)) return false;
  if (in.size() == 2 && static_cast<int64_t>(rq_plan.pair_dyadic.size()) == C && in[0]->narrow && in[1]->narrow)
    return add_pair_then_requant(rq_plan, in, rq_node, N * C, inner, v, B, j, pool);
  const IntType sum_type = sum_node.output.type;
  const bool sums32 = branches_tabulated(L, in, C) && tables_bound(L) <= INT32_MAX && sum_type.min() >= INT32_MIN && sum_type.max() <= INT32_MAX;
  const bool registers = sums32 && static_cast<int64_t>(rq_plan.high_mul.size()) == C;
  // Terms by vpermt2b where every branch's table fits int16 and so does any sum of terms.
  bool planes = registers && cpu_has_avx512vbmi() && tables_bound(L) <= INT16_MAX && L.planes16.size() == in.size();
  for (const auto& p : L.planes16) planes = planes && p != nullptr;
  uint8_t* dst = narrow_storage(B, j, first.shape);
  const int32_t rq_lo = static_cast<int32_t>(rq_plan.requant->lo()), rq_hi = static_cast<int32_t>(rq_plan.requant->hi());
  // The requant's clamp inside its output type: the outputs cannot leave it, nothing to track (the sums
  // are clamped to the add's type, which bounds the accumulator the route was proven for).
  const bool track = !in_type(rq_node.output.type, rq_lo, rq_hi);
  const int16_t lo16 = static_cast<int16_t>(std::max<int64_t>(sum_type.min(), INT16_MIN)),
                hi16 = static_cast<int16_t>(std::min<int64_t>(sum_type.max(), INT16_MAX));
  PerThread<MinMax> totals(pool);
  std::atomic<bool> any_affine{false}, any_gather{false};  // the terms' routes taken (path counters)
  // Tasks of whole planes, at least ~2048 elements each: the late layers' 7x7 planes would otherwise be
  // tasks of 49 elements, their set-up and the range merge costing as much as the work.
  const int64_t planes_per_task = std::max<int64_t>(1, 2048 / std::max<int64_t>(inner, 1)), plane_count = N * C;
  pool.run((plane_count + planes_per_task - 1) / planes_per_task, [&](int64_t task) {
    MinMax mm;
    for (int64_t nc = task * planes_per_task; nc < std::min(plane_count, (task + 1) * planes_per_task); ++nc) {
      const size_t channel = static_cast<size_t>(nc % C);
      const PlaneTerms terms = plane_terms(L, in, channel, nc * inner);
      if (!planes) mark_taken(terms.affine ? any_affine : any_gather);
      if (planes) {
        const HighMulChannel& hm = rq_plan.high_mul[channel];
        const uint8_t* rows[4];
        for (size_t br = 0; br < in.size(); ++br) rows[br] = L.planes16[br]->channel(channel);
        Ranges32 r;
        init_ranges32(r);
        add_planes16_then_high_mul16(rows, terms.src, in.size(), inner, lo16, hi16, hm.params, hm.add, rq_lo, rq_hi, dst + nc * inner, r,
                                     track);
        if (track) merge_ranges32(r, mm);
      } else if (registers) {
        const HighMulChannel& hm = rq_plan.high_mul[channel];
        Ranges32 r;
        init_ranges32(r);
        (hm.params.lshift == 0 ? add_tabulated_high_mul16<Form16::shift> : add_tabulated_high_mul16<Form16::shift_left>)(
            terms, inner, static_cast<int32_t>(sum_type.min()), static_cast<int32_t>(sum_type.max()), hm, rq_lo, rq_hi, dst + nc * inner, r);
        merge_ranges32(r, mm);
      } else {
        thread_local std::vector<int64_t> sums;
        if (sums.size() < static_cast<size_t>(inner)) sums.resize(static_cast<size_t>(inner));
        (terms.affine ? add_affine_sums64 : add_tabulated_sums64)(terms, inner, sum_type.min(), sum_type.max(), sums.data());
        rq_plan.requant->apply_narrow(channel, sums.data(), dst + nc * inner, inner, mm.y_min, mm.y_max);
      }
    }
    totals.local().merge(mm);
  });
  const MinMax total = merged(totals);
  if (track && !in_type(rq_node.output.type, total.y_min, total.y_max)) return false;
  v.present = true, v.narrow = true, v.shape = first.shape, v.type = rq_node.output.type, v.layout = first.layout;
  v.bytes = dst;
  PathCounters& pc = path_counters();
  pc.add(Path::requant_table);
  if (planes) pc.add(Path::add_requant_planes_vbmi);
  if (any_gather.load()) pc.add(Path::add_requant_gather_avx512);
  if (any_affine.load()) pc.add(Path::add_requant_affine);
  pc.add(registers ? Path::add_requant_then_high_mul16 : Path::add_requant_then_requant);
  if (!registers && rq_plan.requant->narrows_by_ifma()) pc.add(Path::requant_exact_div64_ifma_narrow);
  return true;
}

// add_requant on packed or wide branches, as run_add_requant (sum in __int128, clamp to the type).
void add_requant_packed(const AddRequantLayer& L, const AddRequantOp& op, const std::vector<const Value*>& in, Value& out,
                        OutputBuffers& b, size_t i, bool avx512, ThreadPool& pool) {
  if (in.empty() || in.size() != L.branches.size())
    throw std::invalid_argument("add_requant has " + std::to_string(L.branches.size()) + " branches and " + std::to_string(in.size()) + " inputs");
  const Value& first = *in[0];
  if (first.shape.size() < 2) throw std::invalid_argument("add_requant inputs need a channel axis");
  for (const Value* v : in)
    if (v->shape != first.shape) throw std::invalid_argument("add_requant shapes differ");
  const int64_t N = first.shape[0], C = first.shape[1], inner = element_count(first.shape) / std::max<int64_t>(N * C, 1);
  for (const auto& br : L.branches)
    if (br->channels() != static_cast<size_t>(C)) throw std::invalid_argument("add_requant branch channels differ from the input's");
  const int64_t lo = out.type.min(), hi = out.type.max();
  const bool narrow = fits_byte(out.type);
  // Each term lies in its branch's clamp range [lo, hi]: when the magnitudes add up below 2^62 the sum
  // is formed in int64, exactly (otherwise in __int128, as the reference).
  __int128 bound = 0;
  for (const Requant& r : op.branches)
    bound += std::max<__int128>(-static_cast<__int128>(r.lo), static_cast<__int128>(r.hi));
  const bool sum64 = op.branches.size() == L.branches.size() && bound < (static_cast<__int128>(1) << 62);
  uint8_t* dst8 = nullptr;
  if (narrow) {
    dst8 = narrow_storage(b, i, first.shape);
    out.narrow = true, out.bytes = dst8;
  } else {
    out.wide = new_tensor(first.shape, out.type, first.layout.c_str());
  }
  out.present = true, out.shape = first.shape, out.layout = first.layout;
  // Packed 8-bit branches whose requants are tabulated over their whole input type: one lookup per term.
  if (sum64 && branches_tabulated(L, in, C)) {
    // AVX-512, a few branches whose entries cannot push an int32 sum over: lookups by gathers.
    const bool gathered = avx512 && in.size() <= 4 && tables_bound(L) <= INT32_MAX;
    // With every sum inside int32, clamping to the type's range clipped to int32 is the same clamp.
    const int32_t lo32 = static_cast<int32_t>(std::max<int64_t>(lo, INT32_MIN)), hi32 = static_cast<int32_t>(std::min<int64_t>(hi, INT32_MAX));
    std::atomic<bool> any_affine{false}, any_gather{false};  // the terms' routes taken (path counters)
    pool.run(N * C, [&](int64_t nc) {
      const size_t channel = static_cast<size_t>(nc % C);
      if (gathered) {
        const PlaneTerms terms = plane_terms(L, in, channel, nc * inner);
        mark_taken(terms.affine ? any_affine : any_gather);
        add_tabulated_avx512(terms, inner, lo32, hi32, narrow ? dst8 + nc * inner : nullptr, narrow ? nullptr : out.wide.data.data() + nc * inner);
        return;
      }
      thread_local std::vector<int64_t> sum;
      sum.assign(static_cast<size_t>(inner), 0);
      for (size_t br = 0; br < in.size(); ++br) {
        const RequantTable& t = *L.tables[br];
        const uint8_t* p = in[br]->bytes + nc * inner;
        // Byte to value (two's complement when signed), then to the table's index.
        const int32_t* row = t.channel(channel) - t.in_lo;
        if (in[br]->type.is_signed)
          for (int64_t k = 0; k < inner; ++k) sum[static_cast<size_t>(k)] += row[static_cast<int8_t>(p[k])];
        else
          for (int64_t k = 0; k < inner; ++k) sum[static_cast<size_t>(k)] += row[p[k]];
      }
      for (int64_t k = 0; k < inner; ++k) {
        const int64_t y = std::min(std::max(sum[static_cast<size_t>(k)], lo), hi);
        if (narrow)
          dst8[nc * inner + k] = static_cast<uint8_t>(y);
        else
          out.wide.data[static_cast<size_t>(nc * inner + k)] = y;
      }
    });
    path_counters().add(Path::requant_table);
    if (any_gather.load()) path_counters().add(Path::add_requant_gather_avx512);
    if (any_affine.load()) path_counters().add(Path::add_requant_affine);
    return;
  }
  pool.run(N * C, [&](int64_t nc) {
    const size_t channel = static_cast<size_t>(nc % C);
    thread_local std::vector<int64_t> term, x;
    thread_local std::vector<__int128> sum;
    thread_local std::vector<int64_t> sum64v;
    term.resize(static_cast<size_t>(inner));
    x.resize(static_cast<size_t>(inner));
    if (sum64)
      sum64v.assign(static_cast<size_t>(inner), 0);
    else
      sum.assign(static_cast<size_t>(inner), 0);
    for (size_t br = 0; br < L.branches.size(); ++br) {
      const Value& v = *in[br];
      const int64_t* src;
      if (v.narrow) {
        const uint8_t* p = v.bytes + nc * inner;
        if (v.type.is_signed)
          for (int64_t k = 0; k < inner; ++k) x[static_cast<size_t>(k)] = static_cast<int8_t>(p[k]);
        else
          for (int64_t k = 0; k < inner; ++k) x[static_cast<size_t>(k)] = p[k];
        src = x.data();
      } else {
        src = v.wide.data.data() + nc * inner;
      }
      L.branches[br]->apply(channel, src, term.data(), inner);
      if (sum64)
        for (int64_t k = 0; k < inner; ++k) sum64v[static_cast<size_t>(k)] += term[static_cast<size_t>(k)];
      else
        for (int64_t k = 0; k < inner; ++k) sum[static_cast<size_t>(k)] += term[static_cast<size_t>(k)];
    }
    if (sum64 && narrow) {
      for (int64_t k = 0; k < inner; ++k)
        dst8[nc * inner + k] = static_cast<uint8_t>(std::min(std::max(sum64v[static_cast<size_t>(k)], lo), hi));
      return;
    }
    for (int64_t k = 0; k < inner; ++k) {
      const __int128 s = sum64 ? sum64v[static_cast<size_t>(k)] : sum[static_cast<size_t>(k)];
      const int64_t y = s < lo ? lo : s > hi ? hi : static_cast<int64_t>(s);
      if (narrow)
        dst8[nc * inner + k] = static_cast<uint8_t>(y);
      else
        out.wide.data[static_cast<size_t>(nc * inner + k)] = y;
    }
  });
}

// A standalone requant into an 8-bit type, straight into packed bytes (no int64 output tensor, no
// separate range pass): by its table (RequantTable) when it has one, else through its stage. False,
// with nothing stored, when an input lies outside the table or an output outside the declared type:
// the generic path then runs and reports exactly as the reference.
bool requant_into_bytes(const NodePlan& np, const Value& x, const Node& node, Value& v, OutputBuffers& B, size_t i, ThreadPool& pool) {
  const RequantTable* t = np.requant_table.get();
  if (x.shape != node.output.shape || x.shape.size() < 2) return false;
  const int64_t N = x.shape[0], C = x.shape[1], count = element_count(x.shape), inner = count / std::max<int64_t>(N * C, 1);
  if (static_cast<int64_t>(np.requant->channels()) != C || (t != nullptr && static_cast<int64_t>(t->y.size()) != C * t->values)) return false;
  uint8_t* dst = narrow_storage(B, i, x.shape);
  std::atomic<bool> ok{true};
  PerThread<MinMax> ranges(pool);
  pool.run(N * C, [&](int64_t nc) {
    const size_t channel = static_cast<size_t>(nc % C);
    auto value = [&](int64_t k) -> int64_t {  // input k of the plane, packed (two's complement when signed) or int64
      if (!x.narrow) return x.wide.data[static_cast<size_t>(nc * inner + k)];
      return x.type.is_signed ? static_cast<int64_t>(static_cast<int8_t>(x.bytes[nc * inner + k])) : x.bytes[nc * inner + k];
    };
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    if (t != nullptr) {
      const int32_t* row = t->channel(channel);
      for (int64_t k = 0; k < inner; ++k) {
        const int64_t at = value(k) - t->in_lo;
        if (at < 0 || at >= t->values) {
          ok = false;
          return;
        }
        lo = std::min<int64_t>(lo, row[at]), hi = std::max<int64_t>(hi, row[at]);
        dst[nc * inner + k] = static_cast<uint8_t>(row[at]);
      }
    } else {
      const int64_t* src = x.narrow ? nullptr : x.wide.data.data() + nc * inner;
      thread_local std::vector<int64_t> unpacked;
      if (x.narrow) {
        unpacked.resize(static_cast<size_t>(inner));
        for (int64_t k = 0; k < inner; ++k) unpacked[static_cast<size_t>(k)] = value(k);
        src = unpacked.data();
      }
      np.requant->apply_narrow(channel, src, dst + nc * inner, inner, lo, hi);
    }
    MinMax& r = ranges.local();
    r.y_min = std::min(r.y_min, lo), r.y_max = std::max(r.y_max, hi);
  });
  const MinMax range = merged(ranges);
  if (!ok || !in_type(node.output.type, range.y_min, range.y_max)) return false;
  v.present = true, v.narrow = true, v.shape = x.shape, v.type = node.output.type, v.layout = x.layout;
  v.bytes = dst;
  path_counters().add(t != nullptr ? Path::requant_table : Path::requant_narrow);
  if (t == nullptr && np.requant->narrows_by_ifma()) path_counters().add(Path::requant_exact_div64_ifma_narrow);
  return true;
}

Trace evaluate_output_impl(const Plan& plan, const std::vector<IntTensor>& inputs, const std::vector<char>& wanted, OutputBuffers& B) {
  const Network& network = plan.network();
  const size_t count = network.nodes.size();
  B.bytes.resize(count);
  std::vector<int> consumers = plan.consumers();
  std::vector<Value> values(count);
  if (!B.pool || B.pool->threads() != plan.threads()) B.pool = std::make_unique<ThreadPool>(plan.threads());
  ThreadPool& pool = *B.pool;
  size_t next_input = 0;
  size_t skip = count;  // a node already computed by the one before it
  MinMax fused_range;
  const bool timed = !B.node_seconds.empty();
  if (timed) B.node_seconds.resize(count, 0.0);
  auto node_start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < count; ++i) {
    if (timed && i > 0) {
      const auto now = std::chrono::steady_clock::now();
      B.node_seconds[i - 1] += std::chrono::duration<double>(now - node_start).count();
      node_start = now;
    }
    if (i == skip) continue;  // computed with the node before it (add_requant_then_high_mul)
    const Node& node = network.nodes[i];
    const NodePlan& np = plan.nodes()[i];
    Value& v = values[i];
    if (node.kind() == OpKind::input) {
      if (next_input >= inputs.size()) throw InputError("", where(node), "no input tensor given");
      const IntTensor& given = inputs[next_input++];
      if (fits_byte(node.output.type) && given.shape == node.output.shape) {
        // Straight into packed bytes (no copy of the tensor), in chunks on the pool: each chunk's
        // vectorized range check and its narrowing while it is in cache. No node reads the bytes before
        // the whole range is checked.
        const int64_t n = static_cast<int64_t>(given.data.size());
        constexpr int64_t kChunk = 16384;
        const int64_t chunks = (n + kChunk - 1) / kChunk;
        std::vector<int64_t> lo(static_cast<size_t>(chunks), INT64_MAX), hi(static_cast<size_t>(chunks), INT64_MIN);
        uint8_t* dst = narrow_storage(B, i, given.shape);
        const MinMaxFn min_max = min_max_for(plan.isa());
        const NarrowFn narrow = narrow_for(plan.isa());
        pool.run(chunks, [&](int64_t c) {
          const int64_t begin = c * kChunk, len = std::min(kChunk, n - begin);
          min_max(given.data.data() + begin, len, lo[static_cast<size_t>(c)], hi[static_cast<size_t>(c)]);
          narrow(given.data.data() + begin, len, dst + begin);
        });
        const int64_t mn = chunks > 0 ? *std::min_element(lo.begin(), lo.end()) : INT64_MAX;
        const int64_t mx = chunks > 0 ? *std::max_element(hi.begin(), hi.end()) : INT64_MIN;
        check_known_range(node, given, mn, mx);
        v.present = true, v.narrow = true, v.shape = given.shape, v.type = node.output.type, v.layout = given.layout;
        v.bytes = dst;
        continue;
      }
      IntTensor t = given;
      t.type = node.output.type;
      check_value(node, t);
      store(v, std::move(t), B, i);
      continue;
    }
    std::vector<const Value*> in;
    // A fused requant's value came from the previous node's output stage (which may not have kept its accumulators).
    if (np.kernel != NodeKernel::fused)
      for (size_t k = 0; k < node.inputs.size(); ++k) {
      const size_t from = plan.input_nodes()[i][k];
      if (from == Plan::kNoNode || from >= i || !values[from].present)
        throw InputError("", where(node), "input '" + node.inputs[k] + "' is not an earlier node");
      in.push_back(&values[from]);
    }
    switch (np.kernel) {
      case NodeKernel::gemm:
      case NodeKernel::depthwise: {
        if (in.size() != 1) throw std::invalid_argument("expects 1 input");
        const Value& x = *in[0];
        const bool conv = node.kind() == OpKind::conv2d;
        const Shape shape = conv ? reference::conv2d_output_shape(std::get<Conv2dOp>(node.op), x.shape)
                                 : reference::linear_output_shape(std::get<LinearOp>(node.op), x.shape);
        if (shape != node.output.shape) throw InputError("", where(node), "shape differs from the declared one");
        const char* layout = conv ? "NCHW" : "NC";
        const bool fused = np.fuses_next;
        const bool keep_acc = wanted[i] || consumers[i] > (fused ? 1 : 0);
        OutputStage stage;
        IntTensor acc, rq_wide;
        if (keep_acc) {
          acc = new_tensor(shape, node.output.type, layout);
          stage.acc_out = acc.data.data();
        }
        stage.O = shape[1];
        stage.plane = conv ? shape[2] * shape[3] : 1;
        stage.min_max = min_max_for(plan.isa());
        stage.narrow = narrow_for(plan.isa());
        stage.acc_lo = node.output.type.min(), stage.acc_hi = node.output.type.max();
        Value* next = nullptr;
        if (fused) {
          const Node& nn = network.nodes[i + 1];
          next = &values[i + 1];
          stage.requant = plan.nodes()[i + 1].requant.get();
          if (!np.high_mul.empty()) stage.high_mul = np.high_mul.data(), stage.high_mul_fma = np.high_mul_fma;
          stage.ranges_proven = np.ranges_proven;
          next->present = true, next->shape = shape, next->type = nn.output.type, next->layout = layout;
          if (fits_byte(nn.output.type)) {
            next->narrow = true;
            next->bytes = stage.narrow_out = narrow_storage(B, i + 1, shape);
          } else {
            rq_wide = new_tensor(shape, nn.output.type, layout);
            stage.requant_out = rq_wide.data.data();
          }
        }
        const int64_t N = x.shape.at(0);
        const MinMax mm = np.kernel == NodeKernel::gemm ? run_gemm(*np.gemm, x.source(), N, stage, pool, B.workspace)
                                                        : run_depthwise(*np.depthwise, x.source(), N, stage, plan.isa(), pool, B.workspace);
        if (!in_type(node.output.type, mm.acc_min, mm.acc_max)) throw InputError("", where(node), "accumulator outside its type");
        if (keep_acc) store(v, std::move(acc), B, i);
        if (next != nullptr && !next->narrow) next->wide = std::move(rq_wide);
        fused_range = mm;
        break;
      }
      case NodeKernel::fused:
        path_counters().add(Path::requant_fused);
        if (!in_type(node.output.type, fused_range.y_min, fused_range.y_max)) throw InputError("", where(node), "value outside its type");
        break;
      case NodeKernel::add_requant: {
        path_counters().add(Path::add_requant);
        v.type = node.output.type;
        // A sum read only by the next node, a requant into bytes: both in one pass.
        if (uses_avx512(plan.isa()) && i + 1 < count && !wanted[i] && consumers[i] == 1) {
          const Node& next = network.nodes[i + 1];
          const NodePlan& nnp = plan.nodes()[i + 1];
          if (nnp.kernel == NodeKernel::requant && next.inputs.size() == 1 && next.inputs[0] == node.name &&
              add_requant_then_requant(*np.add_requant, in, node, next, nnp, values[i + 1], B, i + 1, pool)) {
            skip = i + 1;
            break;
          }
        }
        add_requant_packed(*np.add_requant, std::get<AddRequantOp>(node.op), in, v, B, i, uses_avx512(plan.isa()), pool);
        break;
      }
      case NodeKernel::max_pool2d:
        // Packed bytes in and out when the output type holds every input value (the max is one of them).
        if (in.size() == 1 && in[0]->narrow && fits_byte(node.output.type) && node.output.type.contains(in[0]->type.min()) &&
            node.output.type.contains(in[0]->type.max())) {
          const Shape shape = reference::max_pool2d_output_shape(std::get<MaxPool2dOp>(node.op), in[0]->shape);
          if (shape != node.output.shape) throw InputError("", where(node), "shape differs from the declared one");
          path_counters().add(Path::max_pool2d_bytes);
          v.present = true, v.narrow = true, v.shape = shape, v.type = node.output.type, v.layout = "NCHW";
          uint8_t* dst = narrow_storage(B, i, shape);
          v.bytes = dst;
          run_max_pool2d_bytes(std::get<MaxPool2dOp>(node.op), in[0]->bytes, in[0]->shape, in[0]->type.is_signed, dst, pool);
          break;
        }
        [[fallthrough]];
      default: {
        // avg_pool2d of packed bytes, into bytes or (a wider output type) int64 values clamped to the type.
        if (node.kind() == OpKind::avg_pool2d && in.size() == 1 && in[0]->narrow && avg_pool2d_bytes_applies(std::get<AvgPool2dOp>(node.op))) {
          const AvgPool2dOp& op = std::get<AvgPool2dOp>(node.op);
          const Shape shape = reference::avg_pool2d_output_shape(op, in[0]->shape);
          if (shape != node.output.shape) throw InputError("", where(node), "shape differs from the declared one");
          path_counters().add(Path::avg_pool2d_bytes);
          if (fits_byte(node.output.type)) {
            v.present = true, v.narrow = true, v.shape = shape, v.type = node.output.type, v.layout = "NCHW";
            uint8_t* dst = narrow_storage(B, i, shape);
            v.bytes = dst;
            run_avg_pool2d_bytes(op, in[0]->bytes, in[0]->shape, in[0]->type.is_signed, node.output.type, dst, pool);
          } else {
            IntTensor value = new_tensor(shape, node.output.type, "NCHW", nullptr);
            run_avg_pool2d_bytes(op, in[0]->bytes, in[0]->shape, in[0]->type.is_signed, node.output.type, value.data.data(), pool);
            store(v, std::move(value), B, i);
          }
          break;
        }
        // add_saturating of two packed 8-bit operands into an 8-bit type: bytes in, bytes out.
        if (node.kind() == OpKind::add_saturating && in.size() == 2 && in[0]->narrow && in[1]->narrow && fits_byte(node.output.type) &&
            in[0]->shape == in[1]->shape) {
          path_counters().add(Path::add_saturating_bytes);
          v.present = true, v.narrow = true, v.shape = in[0]->shape, v.type = node.output.type, v.layout = in[0]->layout;
          uint8_t* dst = narrow_storage(B, i, v.shape);
          v.bytes = dst;
          add_saturating_bytes(in[0]->bytes, in[0]->type.is_signed, in[1]->bytes, in[1]->type.is_signed, element_count(v.shape),
                               node.output.type, dst, uses_avx512(plan.isa()), pool);
          break;
        }
        if (np.kernel == NodeKernel::requant && in.size() == 1 && fits_byte(node.output.type) &&
            requant_into_bytes(np, *in[0], node, v, B, i, pool))
          break;
        std::vector<IntTensor> unpacked;
        unpacked.reserve(in.size());
        std::vector<const IntTensor*> args;
        for (const Value* x : in) {
          if (x->narrow) {
            unpacked.push_back(unpack(*x));
            args.push_back(&unpacked.back());
          } else {
            args.push_back(&x->wide);
          }
        }
        IntTensor value;
        if (np.kernel == NodeKernel::max_pool2d) {
          path_counters().add(Path::max_pool2d);
          if (args.size() != 1) throw std::invalid_argument("expects 1 input");
          value = run_max_pool2d(std::get<MaxPool2dOp>(node.op), *args[0], node.output.type, pool, nullptr);
        } else if (np.kernel == NodeKernel::requant) {
          value = run_requant(*np.requant, std::get<RequantOp>(node.op), *args.at(0), node.output.type, pool, nullptr);
        } else {
          // The reference kernels start their own threads per call: worth it on large inputs only.
          int64_t elements = 0;
          for (const IntTensor* a : args) elements += static_cast<int64_t>(a->data.size());
          value = reference_op(node, args, elements < (int64_t{1} << 20) ? 1 : plan.threads());
        }
        check_value(node, value);
        store(v, std::move(value), B, i);
        break;
      }
    }
  }
  if (timed && count > 0)
    B.node_seconds[count - 1] += std::chrono::duration<double>(std::chrono::steady_clock::now() - node_start).count();
  if (next_input != inputs.size()) throw InputError("", "inputs", "wrong number of input tensors");
  uint64_t packed = 0;
  for (const Value& v : values) packed += v.narrow ? 1 : 0;
  path_counters().add(Path::output_packed, packed);
  Trace out;
  for (size_t i = 0; i < count; ++i) {
    if (!wanted[i]) continue;
    IntTensor t = unpack(values[i]);
    t.scale = network.nodes[i].output.scale;
    out.push_back({network.nodes[i].name, std::move(t)});
  }
  return out;
}

}  // namespace

Trace evaluate_output(const Plan& plan, const std::vector<IntTensor>& inputs, const std::vector<std::string>& keep, OutputBuffers* buffers) {
  const Network& network = plan.network();
  const std::map<std::string, size_t>& index = plan.node_index();
  std::vector<char> wanted(network.nodes.size(), 0);
  for (const std::string& name : keep) {
    const auto it = index.find(name);
    if (it == index.end()) throw std::invalid_argument("evaluate_output: no node named '" + name + "'");
    wanted[it->second] = 1;
  }
  if (const auto it = index.find(network.output); it != index.end()) wanted[it->second] = 1;
  OutputBuffers local;
  OutputBuffers& b = buffers != nullptr ? *buffers : local;
  try {
    return evaluate_output_impl(plan, inputs, wanted, b);
  } catch (...) {
    evaluate(plan, inputs);  // throws the error of the full evaluation (the reference's)
    throw;
  }
}

Trace evaluate_optimized(const Network& network, const std::vector<IntTensor>& inputs, const Options& options) {
  const Plan plan(network, options);
  return evaluate(plan, inputs);
}

}  // namespace qv::integer
