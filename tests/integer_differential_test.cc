// The optimized backend (integer/) against the reference evaluator, with zero tolerance, on every ISA
// tier this binary was built with:
//   - random conv2d / linear layers followed by a random requant (all four forms, built from random exact
//     requantizations with the conversions of ir/requant.h, every rounding mode), with shapes aimed at the
//     tiles: channels around the granules (4, 2) and blocks (16, 48), output rows around the pixel strips
//     (6, 7), 2^k +- 1 and primes; strides, dilations, asymmetric padding with any pad_value, groups and
//     depthwise (with channel multipliers); bit widths 2..16 of either signedness;
//   - extreme values: inputs and weights at their largest magnitudes with the largest fan-ins, where the
//     int32 proof fails and the planner must chunk, switch to int64 or fall back to the reference;
//   - whole synthetic networks (MobileNetV2, VGG16 at several bit widths);
//   - path coverage: every kernel path of a tier ran (a tier the CPU lacks is skipped, never passed).
// A mismatch prints the tier, node, flat index, expected and actual values and the layer's plan.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integer/evaluator.h"
#include "integer/isa.h"
#include "integer/path_counters.h"
#include "integer/per_thread.h"
#include "integer/thread_pool.h"
#include "ir/error.h"
#include "ir/requant.h"
#include "ir/synthetic.h"
#include "reference/accumulator_bound.h"
#include "reference/evaluator.h"
#include "reference/shapes.h"

namespace qv {
namespace {

using integer::Isa;
using integer::Path;

constexpr Isa kTiers[] = {Isa::scalar, Isa::avx2, Isa::avx512vnni, Isa::avx512amx};

// ---------------------------------------------------------------------------------------------------
// Generators.

rc::Gen<IntType> gen_type(int min_bits, int max_bits) {
  return rc::gen::apply([](int bits, bool is_signed) { return IntType{bits, is_signed}; }, rc::gen::inRange(min_bits, max_bits + 1),
                        rc::gen::arbitrary<bool>());
}

// A value of `t`: an edge (min, max, +-2^i + {-2..2} inside the type) or uniform.
int64_t gen_value(IntType t) {
  switch (*rc::gen::inRange(0, 3)) {
    case 0: return *rc::gen::element(t.min(), t.max());
    case 1: {
      const int i = *rc::gen::inRange(0, std::min(t.bits, 62));
      const int64_t v = (*rc::gen::arbitrary<bool>() ? -(int64_t{1} << i) : (int64_t{1} << i)) + *rc::gen::inRange(-2, 3);
      return std::clamp(v, t.min(), t.max());
    }
    default: return *rc::gen::inRange(t.min(), t.max() == INT64_MAX ? t.max() : t.max() + 1);
  }
}

// Tensor data from a seeded engine (rapidcheck draws per element would be slow for thousands of values):
// a mix of uniform values and the type's edges.
IntTensor random_tensor(Shape shape, IntType t, const char* layout, std::mt19937_64& rng) {
  IntTensor out(std::move(shape), t, layout);
  std::uniform_int_distribution<int> pick(0, 9);
  for (int64_t& v : out.data) {
    const int p = pick(rng);
    if (p == 0) v = t.min();
    else if (p == 1) v = t.max();
    else v = uniform(rng, t.min(), t.max());
  }
  return out;
}

// Sizes around the tiles: granules of 4/2 channels, blocks of 16 (and 48 = 3 blocks), strips of 6/7 pixels.
rc::Gen<int64_t> gen_channels() {
  return rc::gen::element<int64_t>(1, 2, 3, 4, 5, 7, 8, 9, 13, 15, 16, 17, 31, 32, 33, 47, 48, 49, 64, 65);
}
rc::Gen<int64_t> gen_spatial() { return rc::gen::element<int64_t>(1, 2, 3, 5, 6, 7, 8, 9, 11, 13, 14, 15, 16, 17); }
// Depthwise rows also around the int16 kernel's 32-output blocks (it runs rows of more than 16).
rc::Gen<int64_t> gen_row_width() {
  return rc::gen::oneOf(gen_spatial(), rc::gen::element<int64_t>(31, 32, 33, 34, 47, 63, 64, 65, 66, 97));
}

Rational gen_rational(bool dyadic, int max_log_den) {
  const BigInt num = *rc::gen::inRange<int64_t>(-(int64_t{1} << 20), int64_t{1} << 20);
  const BigInt den = dyadic ? BigInt(1) << *rc::gen::inRange(0, max_log_den + 1) : BigInt(*rc::gen::inRange<int64_t>(1, int64_t{1} << 20));
  return Rational(num, den);
}

// A random exact requantization of `channels` channels from accumulator range [acc_lo, acc_hi] to a random
// output type, converted to a random form when the conversion accepts it (else kept exact).
struct RequantCase {
  Requant rq;
  IntType out_type;
  std::string form;
};

RequantCase gen_requant(int64_t channels, int64_t acc_lo, int64_t acc_hi, int min_out_bits = 2, int max_out_bits = 16) {
  const IntType out = *gen_type(min_out_bits, max_out_bits);
  const int64_t span = std::max<int64_t>(1, std::max(-acc_lo, acc_hi));
  ExactRequant f;
  f.rounding = *rc::gen::elementOf(kAllRoundings);
  const bool dyadic = *rc::gen::inRange(0, 4) != 0;
  for (int64_t c = 0; c < channels; ++c) {
    // alpha ~ out range / accumulator range so that outputs spread; sometimes zero or negative.
    const int kind = *rc::gen::inRange(0, 10);
    Rational alpha = kind == 0 ? Rational(0) : gen_rational(dyadic, 40);
    if (kind != 0 && alpha != 0) {
      const Rational target = Rational(std::max<int64_t>(1, out.max() - out.min())) / Rational(span);
      alpha = target * Rational(*rc::gen::inRange<int64_t>(-3000, 3001), 1000);
      if (dyadic) alpha = Rational(round_rational(alpha * Rational(BigInt(1) << 40), Rounding::floor), BigInt(1) << 40);
    }
    f.alpha.push_back(alpha);
    f.delta.push_back(gen_rational(dyadic, 30) / Rational(1 << 10));
  }
  Requant exact;
  exact.form = f;
  exact.lo = gen_value(out), exact.hi = gen_value(out);
  if (exact.lo > exact.hi) std::swap(exact.lo, exact.hi);
  RequantCase k{exact, IntType::covering(exact.lo, exact.hi), "exact"};
  const int form = *rc::gen::inRange(0, 4);
  try {
    if (form == 1 && exact.hi - exact.lo <= 300) {
      k.rq = to_thresholds(exact, acc_lo, acc_hi).requant, k.form = "thresholds";
    } else if (form == 2) {
      k.rq = to_mul_add_shift(exact, *rc::gen::inRange(0, 48), acc_lo, acc_hi).requant, k.form = "mul_add_shift";
    } else if (form == 3) {
      const bool double_rounding = *rc::gen::arbitrary<bool>();
      k.rq = to_fixed_point(exact, double_rounding, acc_lo, acc_hi).requant;
      k.form = double_rounding ? "fixed_point double" : "fixed_point single";
    }
  } catch (const std::invalid_argument&) {
    // The form cannot represent this layer (alpha = 0 for fixed_point, range outside int32, ...): stay exact.
  }
  return k;
}

// An exact requant with integer alpha and delta per channel, small enough that no output over
// [in_lo, in_hi] reaches the clamp: its table over the input type is exactly affine (the residual adds'
// branches onto a fine common scale, RequantTableOf::affine). Some channels get alpha = 0.
RequantCase gen_affine_requant(int64_t channels, int64_t in_lo, int64_t in_hi, int out_bits) {
  const IntType out{out_bits, true};
  const int64_t max_x = std::max<int64_t>({1, -in_lo, in_hi});
  const int64_t max_alpha = std::max<int64_t>(0, out.max() / 2 / max_x), max_delta = out.max() / 2;
  ExactRequant f;
  f.rounding = *rc::gen::elementOf(kAllRoundings);
  for (int64_t c = 0; c < channels; ++c) {
    f.alpha.push_back(Rational(*rc::gen::inRange<int64_t>(-max_alpha, max_alpha + 1)));
    f.delta.push_back(Rational(*rc::gen::inRange<int64_t>(-max_delta, max_delta + 1)));
  }
  Requant rq;
  rq.form = f;
  rq.lo = out.min(), rq.hi = out.max();
  return RequantCase{rq, out, "exact affine"};
}

// ---------------------------------------------------------------------------------------------------
// Building and comparing.

// One conv2d (or linear) with a requant after it, nodes written out by hand so that every parameter
// (asymmetric padding, separate strides and dilations) can be set.
struct LayerCase {
  Network net;
  std::vector<IntTensor> inputs;
  std::string summary;
};

IntType accumulator_type(const reference::AccumulatorBound& b) { return *b.covering_type(); }

LayerCase make_conv_case(Conv2dOp op, IntTensor input, bool with_requant, int max_out_bits = 16) {
  LayerCase k;
  k.net.name = "conv_case";
  const IntType in_type = input.type;
  k.net.nodes.push_back(Node{"x", {}, ValueInfo{input.shape, in_type, {}}, InputOp{}});
  const Shape out_shape = reference::conv2d_output_shape(op, input.shape);
  const IntType acc_type = accumulator_type(reference::accumulator_bound(op, in_type));
  std::ostringstream s;
  s << "conv in " << to_string(input.shape) << " " << in_type.name() << " w " << to_string(op.weight.shape) << " "
    << op.weight.type.name() << " groups " << op.groups << " stride " << op.stride_h << "x" << op.stride_w << " dil "
    << op.dilation_h << "x" << op.dilation_w << " pad " << op.pad_top << "," << op.pad_bottom << "," << op.pad_left << ","
    << op.pad_right << " pad_value " << op.pad_value << " bias " << (op.bias ? "yes" : "no") << " acc " << acc_type.name();
  k.net.nodes.push_back(Node{"conv", {"x"}, ValueInfo{out_shape, acc_type, {}}, std::move(op)});
  k.net.output = "conv";
  if (with_requant) {
    RequantCase rq = gen_requant(out_shape[1], acc_type.min(), acc_type.max(), 2, max_out_bits);
    s << " requant " << rq.form << " -> " << rq.out_type.name();
    k.net.nodes.push_back(Node{"rq", {"conv"}, ValueInfo{out_shape, rq.out_type, {}}, RequantOp{std::move(rq.rq)}});
    k.net.output = "rq";
  }
  k.summary = s.str();
  k.inputs.push_back(std::move(input));
  return k;
}

LayerCase make_linear_case(LinearOp op, IntTensor input, bool with_requant) {
  LayerCase k;
  k.net.name = "linear_case";
  const IntType in_type = input.type;
  k.net.nodes.push_back(Node{"x", {}, ValueInfo{input.shape, in_type, {}}, InputOp{}});
  const Shape out_shape = reference::linear_output_shape(op, input.shape);
  const IntType acc_type = accumulator_type(reference::accumulator_bound(op, in_type));
  k.summary = "linear in " + to_string(input.shape) + " " + in_type.name() + " w " + to_string(op.weight.shape) + " " +
              op.weight.type.name() + " acc " + acc_type.name();
  k.net.nodes.push_back(Node{"fc", {"x"}, ValueInfo{out_shape, acc_type, {}}, std::move(op)});
  k.net.output = "fc";
  if (with_requant) {
    RequantCase rq = gen_requant(out_shape[1], acc_type.min(), acc_type.max());
    k.summary += " requant " + rq.form + " -> " + rq.out_type.name();
    k.net.nodes.push_back(Node{"rq", {"fc"}, ValueInfo{out_shape, rq.out_type, {}}, RequantOp{std::move(rq.rq)}});
    k.net.output = "rq";
  }
  k.inputs.push_back(std::move(input));
  return k;
}

// "" when the traces are identical; else the first difference with its context.
std::string first_difference(const Trace& expected, const Trace& actual) {
  if (expected.size() != actual.size())
    return "trace has " + std::to_string(actual.size()) + " entries, expected " + std::to_string(expected.size());
  for (size_t n = 0; n < expected.size(); ++n) {
    const IntTensor& e = expected[n].value;
    const IntTensor& a = actual[n].value;
    if (expected[n].node != actual[n].node) return "entry " + std::to_string(n) + " is '" + actual[n].node + "', expected '" + expected[n].node + "'";
    if (e.shape != a.shape || e.type != a.type || e.layout != a.layout || e.scale != a.scale)
      return "node '" + expected[n].node + "': shape/type/layout/scale " + to_string(a.shape) + " " + a.type.name() + " " + a.layout +
             ", expected " + to_string(e.shape) + " " + e.type.name() + " " + e.layout;
    for (size_t i = 0; i < e.data.size(); ++i)
      if (e.data[i] != a.data[i])
        return "node '" + expected[n].node + "' flat index " + std::to_string(i) + ": expected " + std::to_string(e.data[i]) +
               ", actual " + std::to_string(a.data[i]);
  }
  return "";
}

std::string plan_of(const Network& net, Isa isa) {
  return integer::describe(integer::Plan(net, integer::Options{.threads = 1, .isa = std::string(to_string(isa))}));
}

// Which tiers (single-threaded) agree with the reference on this case: on a failure, tells a kernel bug
// of one tier from a planner or packing bug shared by all (ruy's test harness does the same).
std::string tiers_agreeing(const LayerCase& k, const Trace& expected) {
  std::string s = "tiers agreeing with the reference:";
  for (const Isa other : kTiers) {
    if (!integer::cpu_supports(other)) continue;
    const Trace t = integer::evaluate_optimized(k.net, k.inputs, integer::Options{.threads = 1, .isa = std::string(to_string(other))});
    s += " " + std::string(to_string(other)) + (first_difference(expected, t).empty() ? "=yes" : "=no");
  }
  return s;
}

// The optimized trace on `isa` equals the reference trace.
void check_identical(const LayerCase& k, Isa isa, int threads) {
  const Trace expected = evaluate_reference(k.net, k.inputs, reference::ReferenceOptions{.threads = 1});
  const Trace actual = integer::evaluate_optimized(k.net, k.inputs, integer::Options{.threads = threads, .isa = std::string(to_string(isa))});
  const std::string diff = first_difference(expected, actual);
  if (!diff.empty())
    RC_FAIL(std::string(to_string(isa)) + ", " + std::to_string(threads) + " threads: " + diff + "\n" + k.summary + "\n" +
            tiers_agreeing(k, expected) + "\n" + plan_of(k.net, isa));
}

// evaluate_output on `isa`: the network output alone, and every node kept, equal the reference's entries.
void check_output_only(const LayerCase& k, Isa isa, int threads) {
  const Trace expected = evaluate_reference(k.net, k.inputs, reference::ReferenceOptions{.threads = 1});
  const integer::Plan plan(k.net, integer::Options{.threads = threads, .isa = std::string(to_string(isa))});
  const Trace only = integer::evaluate_output(plan, k.inputs);
  const Trace expected_only = {*find_entry(expected, k.net.output)};
  std::string diff = first_difference(expected_only, only);
  if (diff.empty()) {
    std::vector<std::string> all;
    for (const Node& n : k.net.nodes) all.push_back(n.name);
    diff = first_difference(expected, integer::evaluate_output(plan, k.inputs, all));
  }
  if (!diff.empty())
    RC_FAIL("evaluate_output, " + std::string(to_string(isa)) + ", " + std::to_string(threads) + " threads: " + diff + "\n" +
            k.summary + "\n" + plan_of(k.net, isa));
}

class IntegerTier : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!integer::cpu_supports(GetParam())) GTEST_SKIP() << "this CPU lacks " << to_string(GetParam());
  }
  std::string isa() const { return std::string(to_string(GetParam())); }
};

std::string tier_name(const ::testing::TestParamInfo<Isa>& info) { return std::string(to_string(info.param)); }

// ---------------------------------------------------------------------------------------------------
// Random layers.

Conv2dOp gen_conv_op(int64_t C, IntType w_type, bool depthwise, std::mt19937_64& rng) {
  Conv2dOp op;
  int64_t Cg, O;
  if (depthwise) {
    op.groups = static_cast<int>(C);
    Cg = 1;
    O = C * *rc::gen::element<int64_t>(1, 1, 2);
  } else {
    std::vector<int> divisors;
    for (int g = 1; g <= 4; ++g)
      if (C % g == 0) divisors.push_back(g);
    op.groups = *rc::gen::elementOf(divisors);
    Cg = C / op.groups;
    O = op.groups * std::max<int64_t>(1, *gen_channels() / op.groups);
  }
  const int64_t KH = *rc::gen::element<int64_t>(1, 1, 2, 3, 3, 5), KW = *rc::gen::element<int64_t>(1, 1, 2, 3, 3, 5);
  // stride_w up to 4: the rows driver's widest phase split (four phases, two source vector pairs).
  op.stride_h = *rc::gen::element(1, 1, 2, 3), op.stride_w = *rc::gen::element(1, 1, 2, 3, 4);
  op.dilation_h = *rc::gen::element(1, 1, 1, 2), op.dilation_w = *rc::gen::element(1, 1, 1, 2);
  op.pad_top = *rc::gen::inRange(0, 3), op.pad_bottom = *rc::gen::inRange(0, 3);
  op.pad_left = *rc::gen::inRange(0, 3), op.pad_right = *rc::gen::inRange(0, 3);
  op.weight = random_tensor({O, Cg, KH, KW}, w_type, "OIHW", rng);
  if (*rc::gen::arbitrary<bool>()) op.bias = random_tensor({O}, *gen_type(2, 24), "O", rng);
  return op;
}

using Checker = void (*)(const LayerCase&, Isa, int);

void conv_property(Isa isa, bool depthwise, Checker check = check_identical) {
  std::mt19937_64 rng(*rc::gen::arbitrary<uint64_t>());
  const IntType in_type = *gen_type(2, 16), w_type = *gen_type(2, 16);
  const int64_t C = *gen_channels();
  Conv2dOp op = gen_conv_op(C, w_type, depthwise, rng);
  // pad_value: usually inside the input type, sometimes anywhere in 16 bits (e.g. an offset zero point).
  op.pad_value = *rc::gen::arbitrary<bool>() ? gen_value(in_type) : gen_value(IntType{16, true});
  const int64_t min_h = std::max<int64_t>(1, op.dilation_h * (op.weight.dim(2) - 1) + 1 - op.pad_top - op.pad_bottom);
  const int64_t min_w = std::max<int64_t>(1, op.dilation_w * (op.weight.dim(3) - 1) + 1 - op.pad_left - op.pad_right);
  // Rows past 16 and 32 granules too: a strided row's phase split reads 16 * stride_w columns at a time.
  const int64_t H = std::max(min_h, *gen_spatial()), W = std::max(min_w, *gen_row_width());
  const int64_t N = *rc::gen::element<int64_t>(1, 1, 2);
  IntTensor input = random_tensor({N, C, H, W}, in_type, "NCHW", rng);
  const LayerCase k = make_conv_case(std::move(op), std::move(input), *rc::gen::inRange(0, 5) != 0);
  check(k, isa, *rc::gen::inRange(1, 4));
}

TEST_P(IntegerTier, RandomConvEqualsReference) {
  const Isa tier = GetParam();
  EXPECT_TRUE(rc::check("conv2d + requant on " + isa(), [tier] { conv_property(tier, false); }));
}

TEST_P(IntegerTier, RandomDepthwiseEqualsReference) {
  const Isa tier = GetParam();
  EXPECT_TRUE(rc::check("depthwise conv2d + requant on " + isa(), [tier] { conv_property(tier, true); }));
}

// Depthwise layers of <= 8-bit inputs and weights in output-only mode, where the activations stay packed
// bytes: on an AVX-512 tier of a CPU with AVX512-VBMI the byte kernel (depthwise_bytes_vbmi.h) must run
// whenever its conditions hold, through both its row and flat layouts, signed and unsigned.
bool cpu_has_vbmi() { return __builtin_cpu_supports("avx512vbmi"); }

// flat_shapes: only shapes of the kernel's flat layout (stride_h == stride_w, padded rows narrower than
// 16). A flat plane of <= 256 positions, or rows of <= 16 outputs, must have its fused requant
// compacted in registers (requant_compact_bytes).
void byte_depthwise_property(Isa isa, bool flat_shapes) {
  std::mt19937_64 rng(*rc::gen::arbitrary<uint64_t>());
  const IntType in_type = *gen_type(2, 8), w_type = *gen_type(2, 8);
  const int64_t C = *rc::gen::element<int64_t>(2, 3, 5, 16, 17);  // groups == C > 1: the planner's depthwise layers
  Conv2dOp op;
  op.groups = static_cast<int>(C);
  const int64_t O = C * *rc::gen::element<int64_t>(1, 1, 2);
  // Half the cases the kernels' compiled shapes (3x3, 5x5, 7x7: their own loops), the rest any size.
  const bool square = *rc::gen::arbitrary<bool>();
  const int64_t KH = square ? *rc::gen::element<int64_t>(3, 3, 5, 7) : *rc::gen::element<int64_t>(1, 2, 3, 3, 4, 5, 7, 8);
  const int64_t KW = square ? KH : *rc::gen::element<int64_t>(1, 2, 3, 3, 4, 5, 7, 8, 9);
  op.stride_h = *rc::gen::element(1, 1, 2, 3), op.stride_w = flat_shapes ? op.stride_h : *rc::gen::element(1, 1, 2, 2, 3, 4);
  op.dilation_h = *rc::gen::element(1, 1, 2), op.dilation_w = flat_shapes ? 1 : *rc::gen::element(1, 1, 1, 1, 2);
  op.pad_top = *rc::gen::inRange(0, 4), op.pad_bottom = *rc::gen::inRange(0, 4);
  op.pad_left = *rc::gen::inRange(0, 4), op.pad_right = *rc::gen::inRange(0, 4);
  op.weight = random_tensor({O, 1, KH, KW}, w_type, "OIHW", rng);
  if (*rc::gen::arbitrary<bool>()) op.bias = random_tensor({O}, *gen_type(2, 20), "O", rng);
  // Mostly inside the input type (a zero point), sometimes outside the bytes' range (no byte kernel).
  op.pad_value = *rc::gen::inRange(0, 8) != 0 ? gen_value(in_type) : gen_value(IntType{12, true});
  const int64_t min_h = std::max<int64_t>(1, op.dilation_h * (KH - 1) + 1 - op.pad_top - op.pad_bottom);
  const int64_t min_w = std::max<int64_t>(1, op.dilation_w * (KW - 1) + 1 - op.pad_left - op.pad_right);
  const int64_t H = std::max(min_h, *gen_spatial());
  // Flat: W up to 15 - pads (the padded row narrower than 16), at least the kernel's width.
  const int64_t W = flat_shapes ? std::max(min_w, *rc::gen::inRange<int64_t>(1, std::max<int64_t>(2, 16 - op.pad_left - op.pad_right)))
                                : std::max(min_w, *rc::gen::oneOf(gen_row_width(), rc::gen::inRange<int64_t>(17, 41)));  // also 2-block rows
  IntTensor input = random_tensor({*rc::gen::element<int64_t>(1, 1, 2), C, H, W}, in_type, "NCHW", rng);
  const bool pad_fits = in_type.is_signed ? op.pad_value >= -128 && op.pad_value <= 127 : op.pad_value >= 0 && op.pad_value <= 255;
  // vpdpbusd multiplies by signed bytes: an unsigned 8-bit weight above 127 keeps the layer off the kernel.
  const bool int8_weights = std::all_of(op.weight.data.begin(), op.weight.data.end(), [](int64_t w) { return w >= -128 && w <= 127; });
  const bool applies =
      integer::uses_avx512(isa) && cpu_has_vbmi() && pad_fits && int8_weights && op.dilation_w == 1 && op.stride_w <= 3 && KW <= 8;
  const Shape out_shape = reference::conv2d_output_shape(op, input.shape);
  const int64_t PW = W + op.pad_left + op.pad_right, OH = out_shape[2], OW = out_shape[3];
  const bool flat = applies && op.stride_h == op.stride_w && PW < 16;
  const bool compact_fits = applies && (flat ? (OH - 1) * PW + OW <= 256 : OW <= 16);
  // Half the requants into <= 8 bits: the fused routes into packed bytes (requant_plane_bytes, compaction).
  const LayerCase k = make_conv_case(std::move(op), std::move(input), flat_shapes || *rc::gen::inRange(0, 5) != 0,
                                     *rc::gen::arbitrary<bool>() ? 8 : 16);
  const int threads = *rc::gen::inRange(1, 4);
  // The compaction runs where it fits when the requant is fused into bytes and the planner granted some
  // channel the 16-lane route (only the output kept: no int32 plane wanted).
  bool compact = false, compact_run = false;
  if (compact_fits && k.net.nodes.size() == 3 && k.net.nodes[2].output.type.bits <= 8) {
    const integer::Plan plan(k.net, integer::Options{.threads = threads, .isa = std::string(to_string(isa))});
    const integer::NodePlan& np = plan.nodes()[1];
    compact = np.fuses_next && std::any_of(np.high_mul.begin(), np.high_mul.end(), [](const integer::HighMulChannel& h) { return h.ok; });
    // A depth multiplier of 1 with every channel on the 16-lane route: each task's channels in one call.
    compact_run = compact && O == C && std::all_of(np.high_mul.begin(), np.high_mul.end(), [](const integer::HighMulChannel& h) { return h.ok; });
  }
  integer::PathCounters& pc = integer::path_counters();
  const uint64_t before = pc.get(Path::depthwise_bytes_vbmi), compact_before = pc.get(Path::depthwise_bytes_compact);
  const uint64_t run_before = pc.get(Path::depthwise_bytes_compact_run);
  check_output_only(k, isa, threads);
  const uint64_t ran = pc.get(Path::depthwise_bytes_vbmi) - before, compacted = pc.get(Path::depthwise_bytes_compact) - compact_before;
  const uint64_t ran_run = pc.get(Path::depthwise_bytes_compact_run) - run_before;
  if (compact_run && ran_run == 0) RC_FAIL("the channels were not compacted in one run per task\n" + k.summary + "\n" + plan_of(k.net, isa));
  if (O != C && ran_run != 0) RC_FAIL("the run of channels was taken with a depth multiplier of 2\n" + k.summary);
  if (applies && ran == 0) RC_FAIL("the byte depthwise kernel did not run\n" + k.summary + "\n" + plan_of(k.net, isa));
  if (!applies && ran != 0) RC_FAIL("the byte depthwise kernel ran outside its conditions\n" + k.summary);
  if (compact && compacted == 0) RC_FAIL("the planes were not compacted in registers\n" + k.summary + "\n" + plan_of(k.net, isa));
  if (!compact_fits && compacted != 0) RC_FAIL("the compaction ran on a plane it does not fit\n" + k.summary);
  RC_TAG(applies ? std::string(flat ? "byte kernel, flat" : "byte kernel, rows") + (compact ? compact_run ? ", compacted in runs" : ", compacted" : "")
                 : "other kernel");
  RC_TAG(int8_weights ? "int8 weights" : "weights beyond int8");
}

TEST_P(IntegerTier, RandomByteDepthwiseEqualsReference) {
  const Isa tier = GetParam();
  if (integer::uses_avx512(tier) && !cpu_has_vbmi()) std::cout << "[ SKIPPED  ] depthwise_bytes_vbmi: this CPU lacks AVX512-VBMI\n";
  EXPECT_TRUE(rc::check("output only: depthwise on packed bytes on " + isa(), [tier] { byte_depthwise_property(tier, false); }));
}

TEST_P(IntegerTier, RandomFlatByteDepthwiseEqualsReference) {
  const Isa tier = GetParam();
  if (integer::uses_avx512(tier) && !cpu_has_vbmi()) std::cout << "[ SKIPPED  ] depthwise_bytes_compact: this CPU lacks AVX512-VBMI\n";
  EXPECT_TRUE(rc::check("output only: flat depthwise planes on packed bytes on " + isa(), [tier] { byte_depthwise_property(tier, true); }));
}

// A dyadic requant of the conv (nodes[1]) into uint8 as the network's output: channel o scaled by
// (1 + o) / 2^(bits - 10) of the conv's declared type, offset by o, half up. The 16-lane route's shape.
void add_dyadic_byte_requant(LayerCase& k) {
  const Node& conv = k.net.nodes[1];
  ExactRequant f;
  f.rounding = Rounding::half_up;
  for (int64_t o = 0; o < conv.output.shape[1]; ++o)
    f.alpha.push_back(Rational(1 + o, int64_t{1} << std::max(1, conv.output.type.bits - 10))), f.delta.push_back(Rational(o));
  k.net.nodes.push_back(Node{"rq", {"conv"}, ValueInfo{conv.output.shape, IntType{8, false}, {}}, RequantOp{Requant{f, 0, 255}}});
  k.net.output = "rq";
}

// Every block edge of the byte kernel's rows: 3x3, 5x5 and 7x7 (the compiled shapes), strides 1..3,
// left and right padding 0..3, row widths around the 16-lane blocks up to past 128 (the widest rows
// with per-layer block masks), a pad value that differs from the inputs, signed and unsigned inputs,
// and a dyadic requant into bytes, so that the fused 16-lane route runs in every case.
TEST_P(IntegerTier, ByteDepthwiseAtEveryBlockEdgeEqualsReference) {
  const Isa tier = GetParam();
  if (!integer::uses_avx512(tier) || !cpu_has_vbmi()) GTEST_SKIP() << "the byte depthwise kernel runs on AVX-512 tiers with AVX512-VBMI";
  std::mt19937_64 rng(20261204);
  integer::PathCounters& pc = integer::path_counters();
  const uint64_t runs_before = pc.get(Path::depthwise_bytes_compact_run);
  int cases = 0;
  for (const int64_t K : {3, 5, 7})
    for (const int s : {1, 2, 3})
      for (int pl = 0; pl <= 3; ++pl)
        for (int pr = 0; pr <= 3; ++pr)
          for (const int64_t W : {15, 16, 17, 31, 32, 33, 47, 49, 63, 64, 65, 97, 112, 127, 128, 129, 130}) {
            const bool is_signed = (cases++ % 2) != 0;
            const IntType in_type{8, is_signed};
            Conv2dOp op;
            op.groups = 2;
            op.weight = random_tensor({2, 1, K, K}, IntType{8, true}, "OIHW", rng);
            op.stride_h = op.stride_w = s;
            op.pad_top = op.pad_bottom = 1, op.pad_left = pl, op.pad_right = pr;
            op.pad_value = is_signed ? -100 : 200;
            LayerCase k = make_conv_case(std::move(op), random_tensor({1, 2, K + 1, W}, in_type, "NCHW", rng), false);
            add_dyadic_byte_requant(k);
            const Trace expected = {*find_entry(evaluate_reference(k.net, k.inputs), k.net.output)};
            const uint64_t bytes_before = pc.get(Path::depthwise_bytes_vbmi);
            const uint64_t fused_before = pc.get(Path::requant_high_mul16) + pc.get(Path::requant_high_mul16_untracked);
            const integer::Plan plan(k.net, integer::Options{.threads = 1 + cases % 2, .isa = std::string(to_string(tier))});
            const std::string diff = first_difference(expected, integer::evaluate_output(plan, k.inputs));
            ASSERT_EQ(diff, "") << k.summary;
            ASSERT_GT(pc.get(Path::depthwise_bytes_vbmi), bytes_before) << "the byte kernel did not run: " << k.summary;
            ASSERT_GT(pc.get(Path::requant_high_mul16) + pc.get(Path::requant_high_mul16_untracked), fused_before)
                << "the 16-lane route did not run: " << k.summary;
          }
  EXPECT_EQ(cases, 3 * 3 * 4 * 4 * 17);
  // Its rows of <= 16 outputs and its flat planes (W = 15 without side padding) are compacted, every
  // channel on the 16-lane route with a depth multiplier of 1: each task's channels in one run.
  EXPECT_GT(pc.get(Path::depthwise_bytes_compact_run), runs_before) << "no layer compacted a task's channels in one run";
}

// Planes that fit one register (H*W <= 64 bytes): the byte kernel's run builds every window from the
// plane in a register (L.register_windows). Every such plane of 1..8 rows
// and columns under 3x3, 5x5 and 7x7 kernels, strides 1..3, padding 0..3 on each side (top and left
// drawn apart from bottom and right), signed and unsigned inputs and a pad value unlike the inputs:
// each case equals the reference, and the register windows ran.
TEST_P(IntegerTier, ByteDepthwiseOnPlanesInOneRegisterEqualsReference) {
  const Isa tier = GetParam();
  if (!integer::uses_avx512(tier) || !cpu_has_vbmi()) GTEST_SKIP() << "the byte depthwise kernel runs on AVX-512 tiers with AVX512-VBMI";
  std::mt19937_64 rng(20261207);
  integer::PathCounters& pc = integer::path_counters();
  int cases = 0, in_register = 0;
  for (const int64_t K : {3, 5, 7})
    for (const int s : {1, 2, 3})
      for (int64_t H = 1; H <= 8; ++H)
        for (int64_t W = 1; W <= 8; ++W) {
          const int pt = static_cast<int>(rng() % 4), pl = static_cast<int>(rng() % 4), pb = static_cast<int>(rng() % 4), pr = static_cast<int>(rng() % 4);
          if (H + pt + pb < K || W + pl + pr < K) continue;
          const bool is_signed = (cases++ % 2) != 0;
          Conv2dOp op;
          op.groups = 3;
          op.weight = random_tensor({3, 1, K, K}, IntType{8, true}, "OIHW", rng);
          op.stride_h = op.stride_w = s;
          op.pad_top = pt, op.pad_bottom = pb, op.pad_left = pl, op.pad_right = pr;
          op.pad_value = is_signed ? -100 : 200;
          LayerCase k = make_conv_case(std::move(op), random_tensor({1, 3, H, W}, IntType{8, is_signed}, "NCHW", rng), false);
          add_dyadic_byte_requant(k);
          const Trace expected = {*find_entry(evaluate_reference(k.net, k.inputs), k.net.output)};
          const uint64_t before = pc.get(Path::depthwise_bytes_register_windows);
          const integer::Plan plan(k.net, integer::Options{.threads = 1 + cases % 2, .isa = std::string(to_string(tier))});
          const std::string diff = first_difference(expected, integer::evaluate_output(plan, k.inputs));
          ASSERT_EQ(diff, "") << k.summary << " pad " << pt << "," << pb << "," << pl << "," << pr;
          in_register += pc.get(Path::depthwise_bytes_register_windows) > before;
        }
  // Every plane here fits a register; the run takes them all but those whose sums span more than 256 positions.
  EXPECT_GT(cases, 350);
  EXPECT_GT(in_register, cases * 9 / 10) << in_register << " of " << cases << " cases built their windows in a register";
}

void linear_property(Isa tier, Checker check) {
  std::mt19937_64 rng(*rc::gen::arbitrary<uint64_t>());
  const IntType in_type = *gen_type(2, 16), w_type = *gen_type(2, 16);
  const int64_t I = *rc::gen::element<int64_t>(1, 2, 3, 4, 5, 7, 8, 31, 63, 64, 65, 127, 257, 1000);
  const int64_t O = *gen_channels(), N = *rc::gen::inRange<int64_t>(1, 4);
  LinearOp op;
  op.weight = random_tensor({O, I}, w_type, "OI", rng);
  if (*rc::gen::arbitrary<bool>()) op.bias = random_tensor({O}, *gen_type(2, 30), "O", rng);
  IntTensor input = random_tensor({N, I}, in_type, "NC", rng);
  check(make_linear_case(std::move(op), std::move(input), *rc::gen::inRange(0, 5) != 0), tier, *rc::gen::inRange(1, 4));
}

TEST_P(IntegerTier, RandomLinearEqualsReference) {
  const Isa tier = GetParam();
  EXPECT_TRUE(rc::check("linear + requant on " + isa(), [tier] { linear_property(tier, check_identical); }));
}

// The output-only mode (evaluate_output: packed 8-bit activations, accumulators in per-task buffers) on
// the same random layers: its output, and every node when all are kept, equal the reference's.
TEST_P(IntegerTier, OutputOnlyRandomLayersEqualReference) {
  const Isa tier = GetParam();
  EXPECT_TRUE(rc::check("output only: conv2d + requant on " + isa(), [tier] { conv_property(tier, false, check_output_only); }));
  EXPECT_TRUE(rc::check("output only: depthwise + requant on " + isa(), [tier] { conv_property(tier, true, check_output_only); }));
  EXPECT_TRUE(rc::check("output only: linear + requant on " + isa(), [tier] { linear_property(tier, check_output_only); }));
}

// The rows driver's fused output stage (evaluate_output, requant to bytes in registers) where it is
// fastest and most intricate: dyadic requants on the 16-lane route, accumulator types that hold their
// bound (ranges untracked), outputs clamped to all of u8 or s8 or to a drawn part of either (the byte
// packs of pack4_bytes, their byte clamps), channel counts around the packs' 2 and 4 channels, and row
// widths around the 16-pixel vectors (the tail pixels by channels). Each case must equal the
// reference; over the run, both the packed narrowing and the tail pixels must have been taken.
void fused_rows_property(Isa isa) {
  std::mt19937_64 rng(*rc::gen::arbitrary<uint64_t>());
  const IntType in_type = *rc::gen::element(IntType{8, false}, IntType{8, true}, IntType{4, false}, IntType{6, true});
  const IntType w_type = *gen_type(2, 8);
  const int64_t C = *gen_channels();
  const int64_t O = *rc::gen::element<int64_t>(1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 40, 63, 64, 65);
  Conv2dOp op;
  const bool flat = *rc::gen::inRange(0, 5) < 3;
  const int64_t K = flat ? 1 : 3;
  op.stride_h = op.stride_w = flat ? 1 : *rc::gen::element(1, 2);
  op.pad_top = op.pad_bottom = op.pad_left = op.pad_right = flat ? 0 : 1;
  op.pad_value = gen_value(in_type);
  op.weight = random_tensor({O, C, K, K}, w_type, "OIHW", rng);
  const int64_t H = *rc::gen::element<int64_t>(1, 2, 3, 5, 7), W = *rc::gen::element<int64_t>(7, 14, 15, 16, 17, 28, 31, 32, 33, 47, 48, 49, 56);
  const reference::AccumulatorBound bound = reference::accumulator_bound(op, in_type);
  LayerCase k = make_conv_case(std::move(op), random_tensor({1, C, H, W}, in_type, "NCHW", rng), false);
  const int range = *rc::gen::inRange(0, 4);
  const bool is_signed = range == 1 || (range == 3 && *rc::gen::arbitrary<bool>());
  int64_t lo = is_signed ? -128 : 0, hi = is_signed ? 127 : 255;
  if (range >= 2) {
    lo = *rc::gen::inRange<int64_t>(lo, hi + 1), hi = *rc::gen::inRange<int64_t>(lo, hi + 1);
  }
  ExactRequant f;
  f.rounding = *rc::gen::elementOf(kAllRoundings);
  const int64_t span = std::max<int64_t>(1, std::max(-bound.min.convert_to<int64_t>(), bound.max.convert_to<int64_t>()));
  // Half the layers with positive multipliers of 4 significant bits and half-integer offsets, as
  // calibrated scales near a power of two are: the fma form (requant_fma16.h) then holds on most
  // channels, so whole blocks take it and their tail pixels the requant across channels
  // (tail_pixels_fma).
  const bool short_scales = *rc::gen::arbitrary<bool>();
  for (int64_t o = 0; o < O; ++o) {
    // Outputs spread over the clamp range (up to four times it over the bound), on a 2^-20 grid (the
    // multiplier then fits int32, as the 16-lane route needs).
    const Rational target = Rational(std::max<int64_t>(1, hi - lo)) / Rational(span) * Rational(*rc::gen::inRange<int64_t>(-4000, 4001), 1000);
    int64_t q = round_rational(target * Rational(BigInt(1) << 20), Rounding::floor).convert_to<int64_t>();
    if (short_scales) {  // positive, as scales are (the fma form needs a positive multiplier)
      q = std::max<int64_t>(1, std::abs(q));
      int shift = 0;
      while ((q >> shift) >= 16) ++shift;
      q = (q >> shift) << shift;
    }
    f.alpha.push_back(Rational(BigInt(q), BigInt(1) << 20));
    f.delta.push_back(short_scales ? Rational(*rc::gen::inRange<int64_t>(-64, 65), 2) : Rational(*rc::gen::inRange<int64_t>(-4096, 4097), 64));
  }
  const Shape out_shape = k.net.nodes[1].output.shape;
  k.net.nodes.push_back(Node{"rq", {"conv"}, ValueInfo{out_shape, IntType::covering(lo, hi), {}}, RequantOp{Requant{f, lo, hi}}});
  k.net.output = "rq";
  k.summary += " requant to [" + std::to_string(lo) + ", " + std::to_string(hi) + "] " + std::string(to_string(f.rounding));
  const integer::Plan plan(k.net, integer::Options{.threads = *rc::gen::inRange(1, 3), .isa = std::string(to_string(isa))});
  integer::PathCounters& pc = integer::path_counters();
  const uint64_t packed = pc.get(Path::requant_in_block_packed), tail = pc.get(Path::conv_q8_vnni_rows_tail);
  const uint64_t fma_tail = pc.get(Path::rows_tail_requant_fma);
  const std::string diff = first_difference({*find_entry(evaluate_reference(k.net, k.inputs), "rq")}, integer::evaluate_output(plan, k.inputs));
  if (!diff.empty()) RC_FAIL(diff + "\n" + k.summary + "\n" + plan_of(k.net, isa));
  RC_TAG(pc.get(Path::requant_in_block_packed) > packed ? "packed" : "not packed", pc.get(Path::conv_q8_vnni_rows_tail) > tail ? "tail" : "no tail",
         pc.get(Path::rows_tail_requant_fma) > fma_tail ? "tail in registers" : "tail through the tile");
}

TEST_P(IntegerTier, RandomFusedConvRowsEqualReference) {
  const Isa tier = GetParam();
  integer::PathCounters& pc = integer::path_counters();
  const uint64_t packed = pc.get(Path::requant_in_block_packed), tail = pc.get(Path::conv_q8_vnni_rows_tail);
  const uint64_t vbmi_packs = pc.get(Path::pack_rows_vbmi), per_thread = pc.get(Path::pack_rows_per_thread);
  const uint64_t prefetches = pc.get(Path::rows_weight_prefetch), fma_tails = pc.get(Path::rows_tail_requant_fma);
  EXPECT_TRUE(rc::check("output only: conv rows with fused byte requants on " + isa(), [tier] { fused_rows_property(tier); }));
  if (tier == Isa::avx512vnni) {
    EXPECT_GT(pc.get(Path::rows_weight_prefetch), prefetches) << "no block prefetched the next block's weights";
    EXPECT_GT(pc.get(Path::rows_tail_requant_fma), fma_tails) << "no block requantized its tail pixels across channels";
    EXPECT_GT(pc.get(Path::requant_in_block_packed), packed) << "the packed narrowing never ran";
    EXPECT_GT(pc.get(Path::pack_rows_per_thread), per_thread) << "no flat layer on two threads packed its image per thread";
    EXPECT_GT(pc.get(Path::conv_q8_vnni_rows_tail), tail) << "the tail pixels never ran";
    // Flat 1x1 layers of up to 7 x 56 pixels: rows of 64 pixels and more, packed 64 at a time.
    if (cpu_has_vbmi()) {
      EXPECT_GT(pc.get(Path::pack_rows_vbmi), vbmi_packs) << "the 64-pixel byte packing never ran";
    } else {
      std::cout << "[ SKIPPED  ] pack_rows_vbmi: this CPU lacks AVX512-VBMI\n";
    }
  }
}

// The conv/linear node (nodes[1]) of k declared as the narrowest type covering the accumulators this
// input actually produces (a reference run), minus `fewer_bits` bits: narrower than the proven bound,
// as a hand-written network may declare it.
void declare_observed_acc_type(LayerCase& k, int fewer_bits) {
  Network wide = k.net;
  wide.output = wide.nodes[1].name;
  const Trace trace = evaluate_reference(wide, k.inputs);
  const IntTensor& acc = find_entry(trace, wide.output)->value;
  const auto [lo, hi] = std::minmax_element(acc.data.begin(), acc.data.end());
  IntType t = IntType::covering(std::min<int64_t>(*lo, 0), std::max<int64_t>(*hi, 0));
  t.bits = std::max(2, t.bits - fewer_bits);
  k.net.nodes[1].output.type = t;
  k.summary += " declared acc " + t.name();
}

// Packed <= 8-bit layers in output-only mode with drawn accumulator types: the bound's covering type,
// the covering type of the actual accumulators, or a bit narrower than that (the reference's InputError
// then). The planner must skip range tracking (NodePlan::ranges_proven) exactly when the declared type
// holds the reference's accumulator_bound, and the output or the error must be the reference's.
void declared_acc_property(Isa isa) {
  std::mt19937_64 rng(*rc::gen::arbitrary<uint64_t>());
  const IntType in_type = *gen_type(2, 8), w_type = *gen_type(2, 8);
  const bool depthwise = *rc::gen::arbitrary<bool>();
  const int64_t C = depthwise ? *rc::gen::element<int64_t>(2, 3, 16, 17) : *gen_channels();
  Conv2dOp op = gen_conv_op(C, w_type, depthwise, rng);
  op.pad_value = gen_value(in_type);
  const int64_t min_h = std::max<int64_t>(1, op.dilation_h * (op.weight.dim(2) - 1) + 1 - op.pad_top - op.pad_bottom);
  const int64_t min_w = std::max<int64_t>(1, op.dilation_w * (op.weight.dim(3) - 1) + 1 - op.pad_left - op.pad_right);
  const int64_t H = std::max(min_h, *gen_spatial()), W = std::max(min_w, *gen_row_width());
  const reference::AccumulatorBound bound = reference::accumulator_bound(op, in_type);
  LayerCase k = make_conv_case(std::move(op), random_tensor({1, C, H, W}, in_type, "NCHW", rng), true);
  const int declared = *rc::gen::inRange(0, 3);  // 0: the bound's type; 1: the observed one; 2: one bit less
  if (declared > 0) declare_observed_acc_type(k, declared - 1);
  const IntType acc_type = k.net.nodes[1].output.type;
  const bool proof_holds = bound.min >= acc_type.min() && bound.max <= acc_type.max();
  const integer::Plan plan(k.net, integer::Options{.threads = *rc::gen::inRange(1, 4), .isa = std::string(to_string(isa))});
  const integer::NodePlan& np = plan.nodes()[1];
  if (np.kernel != integer::NodeKernel::reference && np.fuses_next && np.ranges_proven != proof_holds)
    RC_FAIL(std::string("ranges_proven is ") + (np.ranges_proven ? "true" : "false") + ", the bound [" + bound.min.str() + ", " +
            bound.max.str() + "] in " + acc_type.name() + " says otherwise\n" + k.summary);
  std::string expected_error, actual_error;
  Trace expected, actual;
  try {
    expected = {*find_entry(evaluate_reference(k.net, k.inputs), k.net.output)};
  } catch (const InputError& e) {
    expected_error = e.what();
  }
  integer::PathCounters& pc = integer::path_counters();
  const uint64_t untracked = pc.get(Path::requant_high_mul16_untracked);
  try {
    actual = integer::evaluate_output(plan, k.inputs);
  } catch (const InputError& e) {
    actual_error = e.what();
  }
  RC_ASSERT(actual_error == expected_error);
  if (expected_error.empty()) {
    const std::string diff = first_difference(expected, actual);
    if (!diff.empty()) RC_FAIL(diff + "\n" + k.summary + "\n" + plan_of(k.net, isa));
  }
  if (!proof_holds && pc.get(Path::requant_high_mul16_untracked) != untracked)
    RC_FAIL("ranges were left untracked without a proof\n" + k.summary);
  RC_TAG(proof_holds ? "proven" : expected_error.empty() ? "tracked, in type" : "tracked, accumulator outside its type");
}

TEST_P(IntegerTier, RandomDeclaredAccumulatorTypesEqualReference) {
  const Isa tier = GetParam();
  EXPECT_TRUE(rc::check("output only: declared accumulator types on " + isa(), [tier] { declared_acc_property(tier); }));
}

// x -> pool: one pooling node of `op` on `input`, into out_type.
template <class PoolOp>
LayerCase make_pool_case(const PoolOp& op, IntTensor input, Shape out_shape, IntType out_type, std::string summary) {
  LayerCase k;
  k.net.nodes.push_back(Node{"x", {}, ValueInfo{input.shape, input.type, {}}, InputOp{}});
  k.net.nodes.push_back(Node{"pool", {"x"}, ValueInfo{std::move(out_shape), out_type, {}}, op});
  k.net.output = "pool";
  k.summary = std::move(summary) + " on " + to_string(input.shape);
  k.inputs.push_back(std::move(input));
  return k;
}

TEST_P(IntegerTier, RandomMaxPoolEqualsReference) {
  const Isa tier = GetParam();
  EXPECT_TRUE(rc::check("max_pool2d on " + isa(), [tier] {
    std::mt19937_64 rng(*rc::gen::arbitrary<uint64_t>());
    MaxPool2dOp op;
    op.kernel_h = *rc::gen::inRange(1, 4), op.kernel_w = *rc::gen::inRange(1, 4);
    op.stride_h = *rc::gen::inRange(1, 4), op.stride_w = *rc::gen::inRange(1, 4);
    op.pad_top = *rc::gen::inRange(0, op.kernel_h), op.pad_bottom = *rc::gen::inRange(0, op.kernel_h);
    op.pad_left = *rc::gen::inRange(0, op.kernel_w), op.pad_right = *rc::gen::inRange(0, op.kernel_w);
    if (*rc::gen::arbitrary<bool>()) op = MaxPool2dOp{};  // the 2x2 stride-2 row kernel
    const IntType t = *gen_type(2, 64);
    const int64_t H = std::max<int64_t>(op.kernel_h, *gen_spatial()), W = std::max<int64_t>(op.kernel_w, *gen_spatial());
    IntTensor input = random_tensor({*rc::gen::inRange<int64_t>(1, 3), *gen_channels(), H, W}, t, "NCHW", rng);
    const Shape out_shape = reference::max_pool2d_output_shape(op, input.shape);
    const LayerCase k =
        make_pool_case(op, std::move(input), out_shape, t, "max_pool2d " + std::to_string(op.kernel_h) + "x" + std::to_string(op.kernel_w));
    const int threads = *rc::gen::inRange(1, 4);
    check_identical(k, tier, threads);
    check_output_only(k, tier, threads);  // types of <= 8 bits: max_pool2d on packed bytes
  }));
}

// avg_pool2d of any input and output types, every rounding mode: evaluate_output runs it on packed bytes
// (avg_pool2d.h) exactly when the input fits 8 bits (bytes or int64 out), and the reference otherwise.
TEST_P(IntegerTier, RandomAvgPoolEqualsReference) {
  const Isa tier = GetParam();
  EXPECT_TRUE(rc::check("avg_pool2d on " + isa(), [tier] {
    std::mt19937_64 rng(*rc::gen::arbitrary<uint64_t>());
    AvgPool2dOp op;
    op.kernel_h = *rc::gen::inRange(1, 8), op.kernel_w = *rc::gen::inRange(1, 8);
    op.stride_h = *rc::gen::inRange(1, 4), op.stride_w = *rc::gen::inRange(1, 4);
    op.shift = *rc::gen::inRange(0, 10);
    op.rounding = *rc::gen::elementOf(kAllRoundings);
    const IntType in_t = *gen_type(2, 16), out_t = *gen_type(2, 16);
    // A quarter of the cases full-width windows (a global pool when kernel_h == H too): the byte kernel's
    // contiguous-run sum.
    const bool full_width = *rc::gen::inRange(0, 4) == 0;
    const int64_t H = std::max<int64_t>(op.kernel_h, *gen_spatial()), W = full_width ? op.kernel_w : std::max<int64_t>(op.kernel_w, *gen_spatial());
    IntTensor input = random_tensor({*rc::gen::inRange<int64_t>(1, 3), *gen_channels(), H, W}, in_t, "NCHW", rng);
    const Shape out_shape = reference::avg_pool2d_output_shape(op, input.shape);
    const LayerCase k = make_pool_case(op, std::move(input), out_shape, out_t,
                                       "avg_pool2d " + std::to_string(op.kernel_h) + "x" + std::to_string(op.kernel_w) + " stride " +
                                           std::to_string(op.stride_h) + "x" + std::to_string(op.stride_w) + " shift " +
                                           std::to_string(op.shift) + " " + std::string(to_string(op.rounding)) + " " + in_t.name() +
                                           " -> " + out_t.name());
    const int threads = *rc::gen::inRange(1, 4);
    check_identical(k, tier, threads);
    integer::PathCounters& pc = integer::path_counters();
    const uint64_t before = pc.get(Path::avg_pool2d_bytes);
    check_output_only(k, tier, threads);
    const uint64_t ran = pc.get(Path::avg_pool2d_bytes) - before;
    const bool applies = in_t.bits <= 8;
    if (applies && ran == 0) RC_FAIL("avg_pool2d on packed bytes did not run: " + k.summary);
    if (!applies && ran != 0) RC_FAIL("avg_pool2d on packed bytes ran on a wide input: " + k.summary);
    RC_TAG(!applies ? "reference" : out_t.bits <= 8 ? "bytes to bytes" : "bytes to int64", op.kernel_w == W ? "full-width windows" : "windows");
  }));
}

// add_saturating of two inputs of any types (packed bytes in evaluate_output when both fit 8 bits and the
// output does), into an output type of 2..16 bits of either signedness.
TEST_P(IntegerTier, RandomAddSaturatingEqualsReference) {
  const Isa tier = GetParam();
  const uint64_t before = integer::path_counters().get(Path::add_saturating_bytes);
  EXPECT_TRUE(rc::check("add_saturating on " + isa(), [tier] {
    std::mt19937_64 rng(*rc::gen::arbitrary<uint64_t>());
    const Shape shape = {*rc::gen::inRange<int64_t>(1, 3), *gen_channels(), *gen_spatial(), *gen_spatial()};
    const IntType ta = *gen_type(2, 10), tb = *gen_type(2, 10), out = *gen_type(2, 16);
    LayerCase k;
    k.net.nodes.push_back(Node{"a", {}, ValueInfo{shape, ta, {}}, InputOp{}});
    k.net.nodes.push_back(Node{"b", {}, ValueInfo{shape, tb, {}}, InputOp{}});
    k.net.nodes.push_back(Node{"add", {"a", "b"}, ValueInfo{shape, out, {}}, AddSaturatingOp{}});
    k.net.output = "add";
    k.summary = "add_saturating on " + to_string(shape);
    k.inputs.push_back(random_tensor(shape, ta, "NCHW", rng));
    k.inputs.push_back(random_tensor(shape, tb, "NCHW", rng));
    const int threads = *rc::gen::inRange(1, 4);
    check_identical(k, tier, threads);
    check_output_only(k, tier, threads);
  }));
  EXPECT_GT(integer::path_counters().get(Path::add_saturating_bytes), before) << "no case took the packed-byte add";
}

// A residual add as the networks lower it: inputs a and b (random values of ta, tb), their add_requant
// "sum" (branch requants ra, rb) and a requant "rq" of the sum into `out`, the output.
LayerCase residual_add_case(const Shape& shape, IntType ta, IntType tb, IntType sum, const Requant& ra, const Requant& rb, const Requant& rq,
                            IntType out, std::mt19937_64& rng) {
  LayerCase k;
  k.net.nodes.push_back(Node{"a", {}, ValueInfo{shape, ta, {}}, InputOp{}});
  k.net.nodes.push_back(Node{"b", {}, ValueInfo{shape, tb, {}}, InputOp{}});
  k.net.nodes.push_back(Node{"sum", {"a", "b"}, ValueInfo{shape, sum, {}}, AddRequantOp{{ra, rb}}});
  k.net.nodes.push_back(Node{"rq", {"sum"}, ValueInfo{shape, out, {}}, RequantOp{rq}});
  k.net.output = "rq";
  k.inputs.push_back(random_tensor(shape, ta, "NCHW", rng));
  k.inputs.push_back(random_tensor(shape, tb, "NCHW", rng));
  return k;
}

// Residual adds as QuantLab lowers them: two byte branches (either signedness) onto a fine common scale
// by integer alphas (affine tables, sums past int32 in half the cases), then a requant whose scale maps
// the sums' actual span onto a byte, so that the outputs spread over the byte instead of saturating
// (the random requants above see the sum type's whole range and mostly clamp). On AVX-512 these take
// the int32 form of the pair that the planner checked on every pair of values (add_pair_dyadic.h).
TEST_P(IntegerTier, RandomAffineResidualAddsEqualReference) {
  const Isa tier = GetParam();
  const uint64_t before = integer::path_counters().get(Path::add_requant_pair_dyadic);
  EXPECT_TRUE(rc::check("affine residual add + requant on " + isa(), [tier] {
    std::mt19937_64 rng(*rc::gen::arbitrary<uint64_t>());
    const Shape shape = {*rc::gen::inRange<int64_t>(1, 3), *gen_channels(), *gen_spatial(), *gen_spatial()};
    const int64_t C = shape[1];
    const IntType ta = *gen_type(2, 8), tb = *gen_type(2, 8);
    const bool wide = *rc::gen::arbitrary<bool>();
    const IntType sum{wide ? 36 : 24, true};
    const int64_t max_slope = wide ? int64_t{1} << 24 : int64_t{1} << 12;
    auto branch = [&](IntType t, int64_t& span) {
      ExactRequant f;
      f.rounding = Rounding::floor;  // integer alphas and deltas: exact, any rounding
      span = 0;
      for (int64_t c = 0; c < C; ++c) {
        const int64_t slope = *rc::gen::inRange<int64_t>(-max_slope, max_slope + 1), delta = *rc::gen::inRange<int64_t>(-max_slope, max_slope + 1);
        f.alpha.push_back(Rational(slope)), f.delta.push_back(Rational(delta));
        span = std::max(span, std::abs(slope) * std::max(-t.min(), t.max()) + std::abs(delta));
      }
      Requant rq;
      rq.form = f;
      rq.lo = sum.min(), rq.hi = sum.max();
      return rq;
    };
    int64_t span_a = 0, span_b = 0;
    const Requant ra = branch(ta, span_a), rb = branch(tb, span_b);
    const bool is_signed = *rc::gen::arbitrary<bool>();
    const IntType out{8, is_signed};
    ExactRequant f;
    f.rounding = *rc::gen::elementOf(kAllRoundings);
    for (int64_t c = 0; c < C; ++c) {
      // About the byte's span over the sums' span, times 0.5..2, with a non-dyadic denominator.
      const int64_t den = *rc::gen::element<int64_t>(3, 5, 7, 1000, 999983);
      const Rational scale = Rational(out.max() - out.min(), std::max<int64_t>(1, span_a + span_b));
      f.alpha.push_back(scale * Rational(*rc::gen::inRange<int64_t>(den / 2, 2 * den + 1), den));
      f.delta.push_back(Rational(*rc::gen::inRange<int64_t>(-4 * den, 4 * den + 1), den) + Rational(is_signed ? 0 : 128));
    }
    Requant rq;
    rq.form = f;
    rq.lo = out.min(), rq.hi = out.max();
    LayerCase k = residual_add_case(shape, ta, tb, sum, ra, rb, rq, out, rng);
    k.summary = "affine add_requant " + ta.name() + " + " + tb.name() + " -> " + sum.name() + ", requant " +
                std::string(to_string(f.rounding)) + " -> " + out.name() + " on " + to_string(shape);
    const int threads = *rc::gen::inRange(1, 4);
    const uint64_t pair = integer::path_counters().get(Path::add_requant_pair_dyadic);
    check_output_only(k, tier, threads);
    RC_TAG(ta.is_signed || tb.is_signed ? "a signed branch" : "unsigned branches",
           integer::path_counters().get(Path::add_requant_pair_dyadic) != pair ? "int32 form of the pair" : "other route");
  }));
  if (integer::uses_avx512(tier)) {
    EXPECT_GT(integer::path_counters().get(Path::add_requant_pair_dyadic), before) << "no case took the int32 form of the pair";
  }
}

// A residual add as the real networks lower it: add_requant of two packed inputs (random requants of
// every form onto a sum type of 2..16 bits), then a requant that alone reads the sum. On AVX-512 in the
// output mode the pair runs as one pass when the requant's output fits a byte: tables by gathers, then
// the 16-lane route in registers when every channel has it, else each channel's own route on the plane's
// sums; both must occur, and so must the int32 form of the pair that the planner checked on every pair of
// values (two affine branches, add_pair_dyadic.h).
TEST_P(IntegerTier, RandomResidualAddThenRequantEqualsReference) {
  const Isa tier = GetParam();
  const uint64_t before = integer::path_counters().get(Path::add_requant_then_high_mul16);
  const uint64_t before_any = integer::path_counters().get(Path::add_requant_then_requant);
  const uint64_t before_planes = integer::path_counters().get(Path::add_requant_planes_vbmi);
  const uint64_t before_gather = integer::path_counters().get(Path::add_requant_gather_avx512);
  const uint64_t before_ifma = integer::path_counters().get(Path::requant_exact_div64_ifma_narrow);
  const uint64_t before_affine = integer::path_counters().get(Path::add_requant_affine);
  const uint64_t before_pair = integer::path_counters().get(Path::add_requant_pair_dyadic);
  EXPECT_TRUE(rc::check("add_requant + requant on " + isa(), [tier] {
    std::mt19937_64 rng(*rc::gen::arbitrary<uint64_t>());
    const Shape shape = {*rc::gen::inRange<int64_t>(1, 3), *gen_channels(), *gen_spatial(), *gen_spatial()};
    const int64_t C = shape[1];
    // Sometimes wide branch outputs, as the real networks declare them: sums past int32 (int64 sums).
    const bool wide = *rc::gen::arbitrary<bool>();
    const IntType ta = *gen_type(2, 8), tb = *gen_type(2, 8), sum = wide ? *gen_type(32, 38) : *gen_type(2, 16);
    // Sometimes integer alphas onto the sum's scale: affine tables, terms by multiplies (add_requant_affine).
    const bool affine = *rc::gen::inRange(0, 3) == 0;
    const int bits_a = *rc::gen::inRange(wide ? 30 : 4, wide ? 37 : 17), bits_b = *rc::gen::inRange(wide ? 30 : 4, wide ? 37 : 17);
    RequantCase ra = affine ? gen_affine_requant(C, ta.min(), ta.max(), bits_a) : gen_requant(C, ta.min(), ta.max(), wide ? 30 : 2, wide ? 36 : 16),
                rb = affine ? gen_affine_requant(C, tb.min(), tb.max(), bits_b) : gen_requant(C, tb.min(), tb.max(), wide ? 30 : 2, wide ? 36 : 16);
    RC_TAG(affine ? "affine branches" : "branches of any form");
    RequantCase rq = gen_requant(C, sum.min(), sum.max());
    LayerCase k = residual_add_case(shape, ta, tb, sum, ra.rq, rb.rq, rq.rq, rq.out_type, rng);
    RC_TAG(wide ? "wide branches" : "narrow branches");
    k.summary = "add_requant (" + ra.form + ", " + rb.form + ") -> " + sum.name() + ", requant " + rq.form + " -> " + rq.out_type.name() +
                " on " + to_string(shape);
    const int threads = *rc::gen::inRange(1, 4);
    check_identical(k, tier, threads);
    const uint64_t planes = integer::path_counters().get(Path::add_requant_planes_vbmi);
    const uint64_t pair = integer::path_counters().get(Path::add_requant_pair_dyadic);
    check_output_only(k, tier, threads);
    if (integer::path_counters().get(Path::add_requant_planes_vbmi) != planes) RC_TAG("terms by vpermt2b");
    if (integer::path_counters().get(Path::add_requant_pair_dyadic) != pair) RC_TAG("int32 form of the pair");
  }));
  if (integer::uses_avx512(tier)) {
    EXPECT_GT(integer::path_counters().get(Path::add_requant_then_high_mul16), before) << "no case took the one-pass add and requant";
    EXPECT_GT(integer::path_counters().get(Path::add_requant_then_requant), before_any) << "no case took the one-pass add and any-route requant";
    EXPECT_GT(integer::path_counters().get(Path::add_requant_gather_avx512), before_gather) << "no case looked its terms up by gathers";
    EXPECT_GT(integer::path_counters().get(Path::add_requant_affine), before_affine) << "no case computed affine terms by multiplies";
    EXPECT_GT(integer::path_counters().get(Path::add_requant_pair_dyadic), before_pair) << "no case took the int32 form of the pair";
    if (__builtin_cpu_supports("avx512ifma"))
      EXPECT_GT(integer::path_counters().get(Path::requant_exact_div64_ifma_narrow), before_ifma) << "no case divided into bytes by IFMA";
    else
      std::cout << "[ SKIPPED  ] path requant_exact_div64_ifma_narrow: this CPU lacks AVX-512 IFMA\n";
    if (cpu_has_vbmi())
      EXPECT_GT(integer::path_counters().get(Path::add_requant_planes_vbmi), before_planes) << "no case looked its terms up by vpermt2b";
    else
      std::cout << "[ SKIPPED  ] path add_requant_planes_vbmi: this CPU lacks AVX512-VBMI\n";
  }
}

// The same pair aimed at the vpermt2b lookups (add_planes_vbmi.h): narrow sums and terms, so that the
// tables fit int16 in most cases; planes of up to ~1600 elements, around the kernel's 64-element blocks
// and its 16-lane groups; 1 to 4 branches.
TEST_P(IntegerTier, RandomResidualAddOnBytePlanesEqualsReference) {
  const Isa tier = GetParam();
  const uint64_t before = integer::path_counters().get(Path::add_requant_planes_vbmi);
  EXPECT_TRUE(rc::check("add_requant + requant, int16 terms, on " + isa(), [tier] {
    std::mt19937_64 rng(*rc::gen::arbitrary<uint64_t>());
    const Shape shape = {*rc::gen::inRange<int64_t>(1, 3), *gen_channels(), *gen_spatial(), *gen_row_width()};
    const int64_t C = shape[1];
    const size_t branches = static_cast<size_t>(*rc::gen::inRange(1, 5));
    const IntType sum = *gen_type(2, 13);
    LayerCase k;
    std::vector<Requant> terms;
    std::vector<std::string> names;
    std::string forms;
    for (size_t b = 0; b < branches; ++b) {
      const IntType t = *gen_type(2, 8);
      const RequantCase r = gen_requant(C, t.min(), t.max(), 2, 12);
      names.push_back("x" + std::to_string(b));
      k.net.nodes.push_back(Node{names.back(), {}, ValueInfo{shape, t, {}}, InputOp{}});
      k.inputs.push_back(random_tensor(shape, t, "NCHW", rng));
      terms.push_back(r.rq);
      forms += (b ? ", " : "") + r.form + " from " + t.name();
    }
    // Half the cases a mul-add-shift requant after the add (the 16-lane route's form, which the kernel needs),
    // with multipliers of either sign that spread the outputs over the clamp range.
    RequantCase rq = gen_requant(C, sum.min(), sum.max(), 2, 8);
    if (*rc::gen::arbitrary<bool>()) {
      MulAddShiftRequant m;
      m.shift = *rc::gen::inRange(0, 31);
      const double span = static_cast<double>(std::max<int64_t>(1, std::max(-sum.min(), sum.max())));
      for (int64_t c = 0; c < C; ++c) {
        const double scale = std::ldexp(static_cast<double>(rq.out_type.max() - rq.out_type.min() + 1) / span, m.shift);
        m.mul.push_back(static_cast<int64_t>(scale * *rc::gen::inRange(-3000, 3001) / 1000.0));
        m.add.push_back(*rc::gen::inRange<int64_t>(-(int64_t{1} << m.shift), (int64_t{1} << m.shift) + 1));
      }
      rq.rq = Requant{m, rq.rq.lo, rq.rq.hi};
      rq.form = "mul_add_shift (direct)";
    }
    k.net.nodes.push_back(Node{"sum", names, ValueInfo{shape, sum, {}}, AddRequantOp{terms}});
    k.net.nodes.push_back(Node{"rq", {"sum"}, ValueInfo{shape, rq.out_type, {}}, RequantOp{rq.rq}});
    k.net.output = "rq";
    k.summary = "add_requant (" + forms + ") -> " + sum.name() + ", requant " + rq.form + " -> " + rq.out_type.name() + " on " + to_string(shape);
    const int threads = *rc::gen::inRange(1, 4);
    const uint64_t planes = integer::path_counters().get(Path::add_requant_planes_vbmi);
    check_output_only(k, tier, threads);
    RC_TAG(integer::path_counters().get(Path::add_requant_planes_vbmi) != planes ? "terms by vpermt2b" : "other route");
  }));
  if (integer::uses_avx512(tier) && cpu_has_vbmi())
    EXPECT_GT(integer::path_counters().get(Path::add_requant_planes_vbmi), before) << "no case looked its terms up by vpermt2b";
  else if (integer::uses_avx512(tier))
    std::cout << "[ SKIPPED  ] path add_requant_planes_vbmi: this CPU lacks AVX512-VBMI\n";
}

// ---------------------------------------------------------------------------------------------------
// Extreme values: every input and weight at its largest magnitude.

IntTensor filled(Shape shape, IntType t, const char* layout, int64_t v) {
  IntTensor out(std::move(shape), t, layout);
  std::fill(out.data.begin(), out.data.end(), v);
  return out;
}

struct Extreme {
  const char* name;
  IntType in, w;
  int64_t in_value, w_value;
  int64_t fan_in;  // linear in_features
  Path expected;   // the accumulator path the planner must choose
};

TEST_P(IntegerTier, ExtremeLinearUsesTheProvenAccumulator) {
  const Isa tier = GetParam();
  const Extreme cases[] = {
      // 255 * 128 * 140001 > 2^31 (and 128 * 128 * 140001 for int8 packed as Q16 on avx2): chunks.
      {"uint8 x int8, fan-in 140001", IntType{8, false}, IntType{8, true}, 255, -128, 140001, Path::gemm_acc32_chunked},
      {"int8 x int8, fan-in 140001 (offset 128)", IntType{8, true}, IntType{8, true}, -128, -128, 140001, Path::gemm_acc32_chunked},
      // 127 * 127 * 4096 < 2^31: one int32 pass.
      {"int8 x int8, fan-in 4096", IntType{8, true}, IntType{8, true}, 127, 127, 4096, Path::gemm_acc32},
      // 32768 * 128 * 2 per granule: chunks of 255 granules.
      {"int16 x int8, fan-in 1025", IntType{16, true}, IntType{8, true}, -32768, -128, 1025, Path::gemm_acc32_chunked},
      // 65535 * 128 * 256 < 2^31 (by 32767): the largest fan-in of one int32 pass at uint16 x int8 (Q8S on
      // AVX-512: every low and high byte 255); at 520 chunks on every tier (Q16 packs it offset by 32768).
      {"uint16 x int8, fan-in 256", IntType{16, false}, IntType{8, true}, 65535, -128, 256, Path::gemm_acc32},
      {"uint16 x int8, fan-in 520", IntType{16, false}, IntType{8, true}, 65535, -128, 520, Path::gemm_acc32_chunked},
      {"int16 x int8 at 32767, fan-in 1025 (offset -32768)", IntType{16, true}, IntType{8, true}, 32767, 127, 1025, Path::gemm_acc32_chunked},
      // 2 * 2^30 per granule does not fit int32: the reference kernel.
      {"int16 x int16", IntType{16, true}, IntType{16, true}, -32768, -32768, 33, Path::linear_reference},
      // 20-bit activations cannot be packed.
      {"int20 x int8", IntType{20, true}, IntType{8, true}, -(1 << 19), -128, 17, Path::linear_reference},
  };
  for (const Extreme& e : cases) {
    SCOPED_TRACE(e.name);
    for (const int O : {1, 17}) {
      LinearOp op;
      op.weight = filled({O, e.fan_in}, e.w, "OI", e.w_value);
      op.bias = filled({O}, IntType{16, true}, "O", -32768);
      const LayerCase k = make_linear_case(std::move(op), filled({1, e.fan_in}, e.in, "NC", e.in_value), false);
      const uint64_t before = integer::path_counters().get(e.expected);
      const Trace expected = evaluate_reference(k.net, k.inputs);
      const Trace actual = integer::evaluate_optimized(k.net, k.inputs, {.threads = 2, .isa = isa()});
      EXPECT_EQ(first_difference(expected, actual), "") << plan_of(k.net, tier);
      EXPECT_GT(integer::path_counters().get(e.expected), before) << "expected path " << to_string(e.expected) << "\n" << plan_of(k.net, tier);
    }
  }
}

TEST_P(IntegerTier, ExtremeConvAndDepthwise) {
  const Isa tier = GetParam();
  struct Case {
    const char* name;
    IntType in, w;
    int64_t in_value, w_value, pad_value;
    int64_t C;
    bool depthwise;
    Path expected;
  };
  const Case cases[] = {
      {"uint8 x int8 3x3, C 64", IntType{8, false}, IntType{8, true}, 255, -128, 255, 64, false, Path::gemm_acc32},
      {"int8 x int8 3x3, pad_value 127 beyond", IntType{8, true}, IntType{8, true}, -128, -128, 127, 33, false, Path::gemm_acc32},
      {"uint16 x int9 3x3, C 33 (offset 2^15)", IntType{16, false}, IntType{9, true}, 65535, -256, 0, 33, false, Path::gemm_acc32_chunked},
      {"depthwise uint8 x int8", IntType{8, false}, IntType{8, true}, 255, -128, 255, 17, true, Path::depthwise_acc32},
      {"depthwise int16 x int16: int64", IntType{16, true}, IntType{16, true}, -32768, -32768, -32768, 9, true, Path::depthwise_acc64},
      {"int24 input: reference", IntType{24, true}, IntType{8, true}, -(1 << 23), -128, 0, 3, false, Path::conv2d_reference},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Conv2dOp op;
    op.groups = c.depthwise ? static_cast<int>(c.C) : 1;
    op.weight = filled({c.C, c.depthwise ? 1 : c.C, 3, 3}, c.w, "OIHW", c.w_value);
    op.pad_top = op.pad_bottom = op.pad_left = op.pad_right = 1;
    op.pad_value = c.pad_value;
    const LayerCase k = make_conv_case(std::move(op), filled({1, c.C, 9, 15}, c.in, "NCHW", c.in_value), false);
    const uint64_t before = integer::path_counters().get(c.expected);
    const Trace expected = evaluate_reference(k.net, k.inputs);
    const Trace actual = integer::evaluate_optimized(k.net, k.inputs, {.threads = 2, .isa = isa()});
    EXPECT_EQ(first_difference(expected, actual), "") << plan_of(k.net, tier);
    EXPECT_GT(integer::path_counters().get(c.expected), before) << "expected path " << to_string(c.expected) << "\n" << plan_of(k.net, tier);
  }
}

// ---------------------------------------------------------------------------------------------------
// Whole networks.

void expect_network_identical(const Network& net, uint64_t input_seed, const std::string& isa) {
  const std::vector<IntTensor> in = synthetic_inputs(net, input_seed);
  const Trace expected = evaluate_reference(net, in);
  for (const int threads : {1, 2}) {
    const Trace actual = integer::evaluate_optimized(net, in, {.threads = threads, .isa = isa});
    EXPECT_EQ(first_difference(expected, actual), "") << net.name << " on " << isa << ", " << threads << " threads";
  }
  // Recycling the storage of a trace of other inputs: every element must be overwritten.
  const integer::Plan plan(net, {.threads = 2, .isa = isa});
  Trace other = integer::evaluate(plan, synthetic_inputs(net, input_seed + 1));
  const Trace recycled = integer::evaluate(plan, in, std::move(other));
  EXPECT_EQ(first_difference(expected, recycled), "") << net.name << " on " << isa << ", recycled trace";
}

TEST_P(IntegerTier, SyntheticMobileNetV2IsIdentical) {
  for (const int resolution : {32, 47, 64}) expect_network_identical(synthetic_mobilenet_v2(resolution, 7), 3, isa());
}

TEST_P(IntegerTier, SyntheticVgg16IsIdentical) {
  struct Bits {
    int act, weight;
  };
  for (const Bits b : {Bits{8, 8}, Bits{2, 3}, Bits{12, 8}, Bits{16, 16}})
    expect_network_identical(synthetic_vgg16(32, 11, b.act, b.weight), 5, isa());
}

// evaluate_output on whole networks: the output alone, the output with selected nodes, on 1 and 2 threads,
// into buffers that held another evaluation (every packed byte must be overwritten).
void expect_output_only_identical(const Network& net, uint64_t input_seed, const std::string& isa) {
  const std::vector<IntTensor> in = synthetic_inputs(net, input_seed);
  const Trace expected = evaluate_reference(net, in);
  // A few nodes: every fifth, whatever its kind (inputs, convs, fused requants, adds, pools).
  std::vector<std::string> keep;
  Trace expected_keep;
  for (size_t i = 0; i < net.nodes.size(); ++i)
    if (i % 5 == 2 || net.nodes[i].name == net.output) {
      if (i % 5 == 2) keep.push_back(net.nodes[i].name);
      expected_keep.push_back(expected[i]);
    }
  const Trace expected_only = {*find_entry(expected, net.output)};
  for (const int threads : {1, 2}) {
    const integer::Plan plan(net, {.threads = threads, .isa = isa});
    integer::OutputBuffers buffers;
    integer::evaluate_output(plan, synthetic_inputs(net, input_seed + 1), {}, &buffers);
    EXPECT_EQ(first_difference(expected_only, integer::evaluate_output(plan, in, {}, &buffers)), "")
        << net.name << " on " << isa << ", " << threads << " threads, output only";
    EXPECT_EQ(first_difference(expected_keep, integer::evaluate_output(plan, in, keep, &buffers)), "")
        << net.name << " on " << isa << ", " << threads << " threads, selected nodes";
  }
}

TEST_P(IntegerTier, OutputOnlySyntheticNetworksEqualReference) {
  for (const int resolution : {32, 47, 64}) expect_output_only_identical(synthetic_mobilenet_v2(resolution, 7), 3, isa());
  struct Bits {
    int act, weight;
  };
  for (const Bits b : {Bits{8, 8}, Bits{2, 3}, Bits{12, 8}})
    expect_output_only_identical(synthetic_vgg16(32, 11, b.act, b.weight), 5, isa());
}

TEST(IntegerErrors, OutputOnlyErrorsAreTheReferenceErrors) {
  const Network net = synthetic_mobilenet_v2(32, 1);
  std::vector<IntTensor> in = synthetic_inputs(net, 1);
  in[0].data[5] = 256;  // uint8 input
  std::string reference_message, output_message;
  try {
    evaluate_reference(net, in);
  } catch (const InputError& e) {
    reference_message = e.what();
  }
  try {
    integer::evaluate_output(integer::Plan(net, {}), in);
  } catch (const InputError& e) {
    output_message = e.what();
  }
  EXPECT_FALSE(reference_message.empty());
  EXPECT_EQ(output_message, reference_message);
  EXPECT_THROW(integer::evaluate_output(integer::Plan(net, {}), synthetic_inputs(net, 1), {"no such node"}), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------------
// Every path of a tier runs: a fixed set of layers, one per path, and the counters must move.

TEST_P(IntegerTier, EveryPathOfTheTierRuns) {
  const Isa tier = GetParam();
  integer::PathCounters& pc = integer::path_counters();
  std::map<Path, uint64_t> before;
  for (size_t p = 0; p < integer::kPathCount; ++p) before[static_cast<Path>(p)] = pc.get(static_cast<Path>(p));
  std::mt19937_64 rng(99);
  auto run = [&](LayerCase k) {
    const Trace expected = evaluate_reference(k.net, k.inputs);
    const Trace actual = integer::evaluate_optimized(k.net, k.inputs, {.threads = 2, .isa = isa()});
    EXPECT_EQ(first_difference(expected, actual), "") << k.summary << "\n" << plan_of(k.net, tier);
  };
  // Convs with Q8-range and Q16-range operands, each requant form in turn.
  for (const IntType in : {IntType{8, false}, IntType{12, true}}) {
    for (int form = 0; form < 5; ++form) {
      Conv2dOp op;
      op.weight = random_tensor({20, 6, 3, 3}, IntType{8, true}, "OIHW", rng);
      op.pad_top = op.pad_bottom = op.pad_left = op.pad_right = 1;
      LayerCase k = make_conv_case(std::move(op), random_tensor({1, 6, 8, 8}, in, "NCHW", rng), false);
      const Node& conv = k.net.nodes[1];
      ExactRequant f;
      f.rounding = Rounding::half_even;
      for (int o = 0; o < 20; ++o) {
        f.alpha.push_back(Rational(form == 4 ? 3 : 1 + 2 * o, form == 4 ? 7 : 1 << 12));  // 3/7: not dyadic
        f.delta.push_back(Rational(o, 8));
      }
      Requant exact;
      exact.form = f;
      exact.lo = -100, exact.hi = 100;
      const int64_t lo = conv.output.type.min(), hi = conv.output.type.max();
      Requant rq = form == 0 ? to_thresholds(exact, lo, hi).requant
                   : form == 1 ? to_mul_add_shift(exact, 20, lo, hi).requant
                   : form == 2 ? to_fixed_point(exact, true, lo, hi).requant
                   : form == 3 ? to_fixed_point(exact, false, lo, hi).requant
                               : exact;
      k.net.nodes.push_back(Node{"rq", {"conv"}, ValueInfo{conv.output.shape, IntType{8, true}, {}}, RequantOp{std::move(rq)}});
      k.net.output = "rq";
      run(std::move(k));
    }
  }
  // A mul_add_shift whose products need __int128, exact requants of a huge multiplier, and a
  // requant that is not fused (its input is not the node before it).
  {
    LinearOp op;
    op.weight = random_tensor({3, 40}, IntType{8, true}, "OI", rng);
    LayerCase k = make_linear_case(std::move(op), random_tensor({2, 40}, IntType{8, true}, "NC", rng), false);
    const Node fc = k.net.nodes[1];
    MulAddShiftRequant m{{int64_t{1} << 50, -(int64_t{1} << 49), 3}, {0, 1, 2}, 58};
    Requant wide{m, -1000, 1000};
    k.net.nodes.push_back(Node{"rq_wide", {"fc"}, ValueInfo{fc.output.shape, IntType{11, true}, {}}, RequantOp{wide}});
    ExactRequant f;
    f.rounding = Rounding::half_away;
    for (int o = 0; o < 3; ++o) f.alpha.push_back(Rational(BigInt(1) << 61, 3)), f.delta.push_back(Rational(1, 2));
    Requant big{f, -5, 5};  // 11 output values: their exact step positions (exact_steps)
    k.net.nodes.push_back(Node{"rq_big", {"fc"}, ValueInfo{fc.output.shape, IntType{4, true}, {}}, RequantOp{big}});
    Requant huge{f, -10000, 10000};  // too many steps to tabulate: BigInt
    k.net.nodes.push_back(Node{"rq_huge", {"fc"}, ValueInfo{fc.output.shape, IntType{15, true}, {}}, RequantOp{huge}});
    k.net.output = "rq_big";
    // Output only: the standalone requant of a wide accumulator straight into bytes (requant_narrow).
    const Trace expected = evaluate_reference(k.net, k.inputs);
    const integer::Plan plan(k.net, integer::Options{.threads = 2, .isa = isa()});
    EXPECT_EQ(first_difference({*find_entry(expected, k.net.output)}, integer::evaluate_output(plan, k.inputs)), "") << k.summary;
    run(std::move(k));
  }
  // Depthwise, int32 and int64 accumulators.
  for (const IntType w : {IntType{8, true}, IntType{16, true}}) {
    Conv2dOp op;
    op.groups = 8;
    op.weight = filled({8, 1, 3, 3}, w, "OIHW", w.min());
    op.pad_top = op.pad_bottom = op.pad_left = op.pad_right = 1;
    run(make_conv_case(std::move(op), filled({1, 8, 6, 6}, IntType{16, true}, "NCHW", -32768), false));
  }
  // Operands too wide for int16: the reference kernels; a pool for the other reference ops.
  {
    Conv2dOp op;
    op.weight = random_tensor({2, 2, 1, 1}, IntType{20, true}, "OIHW", rng);
    run(make_conv_case(std::move(op), random_tensor({1, 2, 3, 3}, IntType{8, true}, "NCHW", rng), false));
    LinearOp lin;
    lin.weight = random_tensor({2, 3}, IntType{20, true}, "OI", rng);
    run(make_linear_case(std::move(lin), random_tensor({1, 3}, IntType{8, true}, "NC", rng), false));
  }
  // Chunked int32 accumulation.
  {
    LinearOp op;
    op.weight = filled({2, 2000}, IntType{16, true}, "OI", -32768);
    run(make_linear_case(std::move(op), filled({1, 2000}, IntType{8, false}, "NC", 255), false));
  }
  // A conv strided by more than the rows driver's phases (4): the pixel-major kernels (gemm_q8_amx, and
  // gemm_q8_avx512vnni on the avx512vnni tier, where every other conv of these cases runs conv_q8_vnni_rows).
  {
    Conv2dOp op;
    op.stride_h = op.stride_w = 5;
    op.weight = random_tensor({20, 8, 3, 3}, IntType{8, true}, "OIHW", rng);
    run(make_conv_case(std::move(op), random_tensor({1, 8, 40, 40}, IntType{8, false}, "NCHW", rng), false));
  }
  // Output only, an accumulator type declared narrower than the proven bound (but holding this input's
  // accumulators): the 16-lane requant tracks the ranges. The synthetic networks' types hold their
  // bounds, so their layers run it untracked.
  {
    Conv2dOp op;
    op.weight = random_tensor({32, 64, 3, 3}, IntType{8, true}, "OIHW", rng);  // fan-in 576: sums far inside the bound
    LayerCase k = make_conv_case(std::move(op), random_tensor({1, 64, 10, 10}, IntType{8, false}, "NCHW", rng), false);
    declare_observed_acc_type(k, 0);
    ExactRequant f;
    f.rounding = Rounding::half_up;
    for (int o = 0; o < 32; ++o) f.alpha.push_back(Rational(1 + 2 * o, 1 << 14)), f.delta.push_back(Rational(o, 8));
    k.net.nodes.push_back(Node{"rq", {"conv"}, ValueInfo{k.net.nodes[1].output.shape, IntType{8, true}, {}}, RequantOp{Requant{f, -128, 127}}});
    k.net.output = "rq";
    const integer::Plan plan(k.net, {.threads = 2, .isa = isa()});
    EXPECT_FALSE(plan.nodes()[1].ranges_proven) << k.summary;
    EXPECT_EQ(first_difference({*find_entry(evaluate_reference(k.net, k.inputs), "rq")}, integer::evaluate_output(plan, k.inputs)), "")
        << k.summary << "\n" << plan_of(k.net, tier);
  }
  // Output only, a 1x1 conv over a 7x7 plane (three vectors and one pixel) with calibrated-like scales
  // (positive, 4 significant bits): every channel in the fma form, ranges proven, so each block's last
  // pixel is requantized across its channels (tail_pixels_fma); 40 channels are two blocks, the first
  // prefetching the second's weights.
  {
    Conv2dOp op;
    op.weight = random_tensor({40, 24, 1, 1}, IntType{8, true}, "OIHW", rng);
    LayerCase k = make_conv_case(std::move(op), random_tensor({1, 24, 7, 7}, IntType{8, false}, "NCHW", rng), false);
    ExactRequant f;
    f.rounding = Rounding::half_up;
    for (int o = 0; o < 40; ++o) f.alpha.push_back(Rational(1 + o % 15, 1 << 12)), f.delta.push_back(Rational(o % 7, 2));
    k.net.nodes.push_back(Node{"rq", {"conv"}, ValueInfo{k.net.nodes[1].output.shape, IntType{8, false}, {}}, RequantOp{Requant{f, 0, 255}}});
    k.net.output = "rq";
    const integer::Plan plan(k.net, {.threads = 1, .isa = isa()});
    EXPECT_EQ(first_difference({*find_entry(evaluate_reference(k.net, k.inputs), "rq")}, integer::evaluate_output(plan, k.inputs)), "")
        << k.summary << "\n" << plan_of(k.net, tier);
  }
  expect_network_identical(synthetic_mobilenet_v2(32, 1), 1, isa());  // other ops: pools, adds, flatten
  expect_network_identical(synthetic_vgg16(32, 1), 1, isa());          // max pools
  expect_output_only_identical(synthetic_mobilenet_v2(32, 1), 1, isa());  // evaluate_output's packed paths
  // Depthwise rows of 32 outputs: the int16 kernel on AVX-512, with the 16-lane requant.
  expect_output_only_identical(synthetic_mobilenet_v2(64, 1), 1, isa());
  expect_output_only_identical(synthetic_vgg16(32, 1), 1, isa());          // max pools on packed bytes

  std::vector<Path> expected = {Path::gemm_acc32, Path::gemm_acc32_chunked, Path::depthwise_acc32, Path::depthwise_acc64,
                                Path::conv2d_reference, Path::linear_reference, Path::requant_fused, Path::requant_exact_shift,
                                Path::requant_exact_bigint, Path::requant_exact_steps, Path::requant_mul_add_shift_int64, Path::requant_mul_add_shift_int128,
                                Path::requant_thresholds, Path::requant_fixed_point_single, Path::requant_fixed_point_double,
                                Path::add_requant, Path::max_pool2d, Path::max_pool2d_bytes, Path::avg_pool2d_bytes, Path::other_reference, Path::output_packed,
                                Path::requant_table, Path::requant_narrow};
  switch (tier) {
    case Isa::scalar: expected.insert(expected.end(), {Path::gemm_q8_scalar, Path::gemm_q16_scalar, Path::depthwise_scalar}); break;
    case Isa::avx2: expected.insert(expected.end(), {Path::gemm_q16_avx2, Path::depthwise_avx2}); break;
    case Isa::avx512vnni:
      expected.insert(expected.end(), {Path::gemm_q8_avx512vnni, Path::conv_q8_vnni_rows, Path::conv_q8_vnni_rows_tail, Path::rows_weight_prefetch, Path::rows_tail_requant_fma, Path::requant_in_block_vnni, Path::requant_in_block_packed, Path::gemm_q16_avx512vnni,
                                       Path::pack_rows_per_thread,
                                       Path::gemm_q8_split_avx512vnni,
                                       Path::depthwise_avx512, Path::gemm_requant8_avx512, Path::add_requant_gather_avx512,
                                       Path::requant_high_mul16, Path::requant_high_mul16_untracked, Path::requant_fma16,
                                       Path::depthwise_int16_avx512});
      break;
    case Isa::avx512amx:  // vpdpbusd still runs the chunked and single-row layers
      expected.insert(expected.end(), {Path::gemm_q8_amx, Path::conv_q8_amx_rows, Path::conv_q8_amx_im2col, Path::pack_rows_per_thread, Path::gemm_q8_avx512vnni, Path::gemm_q16_avx512vnni, Path::gemm_q8_split_avx512vnni,
                                       Path::depthwise_avx512,
                                       Path::add_requant_gather_avx512,
                                       Path::gemm_requant8_avx512, Path::requant_high_mul16, Path::requant_high_mul16_untracked,
                                       Path::requant_fma16, Path::depthwise_int16_avx512});
      break;
  }
  if (integer::uses_avx512(tier)) {
    if (cpu_has_vbmi())
      expected.insert(expected.end(), {Path::depthwise_bytes_vbmi, Path::depthwise_bytes_compact});  // the packed depthwise layers of evaluate_output
    else
      std::cout << "[ SKIPPED  ] paths depthwise_bytes_vbmi, depthwise_bytes_compact: this CPU lacks AVX512-VBMI\n";
  }
  for (const Path p : expected) EXPECT_GT(pc.get(p), before[p]) << "path " << to_string(p) << " never ran on " << isa();
}

// Output only, one requant with channels on different routes: dyadic channels (16-lane or 8-lane shift
// routes in the AMX row conv) and a channel whose exact alpha has a 61-bit numerator over 3 (no shift
// route: it goes through its own BigInt route inside the same block).
TEST_P(IntegerTier, OutputOnlyConvWithMixedRequantRoutes) {
  std::mt19937_64 rng(20261130);
  Conv2dOp op;
  op.weight = random_tensor({40, 8, 3, 3}, IntType{8, true}, "OIHW", rng);
  op.pad_top = op.pad_bottom = op.pad_left = op.pad_right = 1;
  LayerCase k = make_conv_case(std::move(op), random_tensor({1, 8, 12, 37}, IntType{8, false}, "NCHW", rng), false);
  const Node& conv = k.net.nodes[1];
  ExactRequant f;
  f.rounding = Rounding::half_even;
  for (int o = 0; o < 40; ++o) {
    f.alpha.push_back(o == 17 ? Rational(BigInt(1) << 61, BigInt(3) << 80) : Rational(1 + 2 * o, 1 << 12));
    f.delta.push_back(Rational(o, 8));
  }
  Requant rq{f, -100, 100};
  k.net.nodes.push_back(Node{"rq", {"conv"}, ValueInfo{conv.output.shape, IntType{8, true}, {}}, RequantOp{std::move(rq)}});
  k.net.output = "rq";
  const Trace expected = evaluate_reference(k.net, k.inputs);
  for (const int threads : {1, 2}) {
    const integer::Plan plan(k.net, integer::Options{.threads = threads, .isa = isa()});
    EXPECT_EQ(first_difference({*find_entry(expected, "rq")}, integer::evaluate_output(plan, k.inputs)), "")
        << threads << " threads\n" << plan_of(k.net, GetParam());
  }
}

INSTANTIATE_TEST_SUITE_P(Tiers, IntegerTier, ::testing::ValuesIn(kTiers), tier_name);

// ---------------------------------------------------------------------------------------------------
// The pool: every index exactly once, for any thread count; a task's exception reaches the caller and the
// pool stays usable.

TEST(IntegerThreadPool, EveryIndexOnceAndExceptionsPropagate) {
  for (const int threads : {1, 2, 3, 5}) {
    integer::ThreadPool pool(threads);
    for (const int64_t n : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      for (int round = 0; round < 3; ++round) pool.run(n, [&](int64_t i) { hits[static_cast<size_t>(i)]++; });
      for (const auto& h : hits) ASSERT_EQ(h.load(), 3) << threads << " threads, n " << n;
    }
    EXPECT_THROW(pool.run(100, [](int64_t i) {
      if (i == 37) throw std::runtime_error("task 37");
    }), std::runtime_error);
    std::atomic<int64_t> sum{0};
    pool.run(10, [&](int64_t i) { sum += i; });
    EXPECT_EQ(sum.load(), 45);
    // Uneven work: the first share's tasks are slow, so the other threads finish theirs and take
    // indices from it. Still every index once, and on 2+ threads some of the first share ran elsewhere.
    if (threads > 1) {
      const int64_t n = 40, first_share = n / threads;
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::vector<std::thread::id> ran_on(static_cast<size_t>(n));
      pool.run(n, [&](int64_t i) {
        if (i < first_share) std::this_thread::sleep_for(std::chrono::milliseconds(2));
        hits[static_cast<size_t>(i)]++;
        ran_on[static_cast<size_t>(i)] = std::this_thread::get_id();
      });
      for (const auto& h : hits) ASSERT_EQ(h.load(), 1) << threads << " threads, uneven";
      std::set<std::thread::id> first_share_threads(ran_on.begin(), ran_on.begin() + first_share);
      EXPECT_GT(first_share_threads.size(), 1u) << threads << " threads: nobody took work from the slow share";
      // The sleeping paths: workers idle for longer than their spin (0.1 ms) sleep and the next run
      // wakes them; a caller that waits longer than its spin for a worker inside a slow task sleeps and
      // that worker wakes it. Each run still runs every index once.
      for (int round = 0; round < 3; ++round) {
        std::this_thread::sleep_for(std::chrono::milliseconds(3));
        std::vector<std::atomic<int>> once(static_cast<size_t>(n));
        pool.run(n, [&](int64_t i) {
          if (i == n - 1) std::this_thread::sleep_for(std::chrono::milliseconds(2));
          once[static_cast<size_t>(i)]++;
        });
        for (const auto& h : once) ASSERT_EQ(h.load(), 1) << threads << " threads, after sleeping";
      }
    }
  }
}

// The drivers' per-thread ranges (PerThread, merged after the run): every task's value reaches the
// merge, whichever thread ran it, and a thread's index is its own inside a nested run and after it.
TEST(IntegerThreadPool, PerThreadValuesReachTheMerge) {
  for (const int threads : {1, 2, 3, 5}) {
    integer::ThreadPool pool(threads), inner(1);
    integer::PerThread<integer::MinMax> ranges(pool);
    const int64_t n = 200, first_share = n / threads;
    std::vector<std::atomic<int>> seen(static_cast<size_t>(threads));
    std::atomic<bool> index_kept{true};
    pool.run(n, [&](int64_t i) {
      // The first share's tasks are slow, so the others run the rest (the extremes at both ends).
      if (i < first_share && threads > 1) std::this_thread::sleep_for(std::chrono::microseconds(200));
      const int self = integer::ThreadPool::current_thread();
      seen[static_cast<size_t>(self)]++;
      inner.run(2, [&](int64_t) {
        if (integer::ThreadPool::current_thread() != 0) index_kept = false;
      });
      if (integer::ThreadPool::current_thread() != self) index_kept = false;
      integer::MinMax m;
      m.acc_min = m.acc_max = 3 * i - 100, m.y_min = m.y_max = -i;
      ranges.local().merge(m);
    });
    const integer::MinMax total = integer::merged(ranges);
    EXPECT_EQ(total.acc_min, -100) << threads << " threads";
    EXPECT_EQ(total.acc_max, 3 * (n - 1) - 100) << threads << " threads";
    EXPECT_EQ(total.y_min, -(n - 1)) << threads << " threads";
    EXPECT_EQ(total.y_max, 0) << threads << " threads";
    EXPECT_TRUE(index_kept.load()) << threads << " threads";
    int used = 0;
    for (const auto& k : seen) used += k.load() > 0;
    if (threads > 1) {
      EXPECT_GT(used, 1) << threads << " threads: one thread ran every task";
    }
    EXPECT_EQ(integer::ThreadPool::current_thread(), 0);
  }
}

// ---------------------------------------------------------------------------------------------------
// Dispatch.

TEST(IntegerIsa, ParsesAndRefusesWhatTheCpuLacks) {
  EXPECT_EQ(integer::parse_isa("avx2"), Isa::avx2);
  EXPECT_EQ(integer::parse_isa("sse"), std::nullopt);
  EXPECT_THROW(integer::resolve_isa("sse"), std::invalid_argument);
  EXPECT_EQ(integer::resolve_isa("scalar"), Isa::scalar);
  for (const Isa isa : kTiers) {
    if (!integer::cpu_supports(isa)) {
      EXPECT_THROW(integer::resolve_isa(std::string(to_string(isa))), std::invalid_argument);
    }
  }
}

TEST(IntegerIsa, EnvironmentOverridesAuto) {
  ASSERT_EQ(setenv("QVERIFY_ISA", "scalar", 1), 0);
  EXPECT_EQ(integer::resolve_isa("auto"), Isa::scalar);
  EXPECT_EQ(integer::resolve_isa("scalar"), Isa::scalar);
  ASSERT_EQ(unsetenv("QVERIFY_ISA"), 0);
  EXPECT_EQ(integer::resolve_isa("auto"), integer::best_supported_isa());
}

TEST(IntegerErrors, InputOutsideItsTypeIsTheReferenceError) {
  const Network net = synthetic_mobilenet_v2(32, 1);
  std::vector<IntTensor> in = synthetic_inputs(net, 1);
  in[0].data[5] = 256;  // uint8 input
  std::string reference_message, optimized_message;
  try {
    evaluate_reference(net, in);
  } catch (const InputError& e) {
    reference_message = e.what();
  }
  try {
    integer::evaluate_optimized(net, in);
  } catch (const InputError& e) {
    optimized_message = e.what();
  }
  EXPECT_FALSE(reference_message.empty());
  EXPECT_EQ(optimized_message, reference_message);
}

// A conv whose declared accumulator type is too narrow (a hand-made network that skipped validation):
// the same InputError as the reference, naming the conv, and the fused requant is never applied to the
// out-of-type accumulators.
TEST(IntegerErrors, AccumulatorOutsideItsDeclaredTypeIsTheReferenceError) {
  for (const Isa isa : kTiers) {
    if (!integer::cpu_supports(isa)) continue;
    std::mt19937_64 rng(5);
    Conv2dOp op;
    op.weight = random_tensor({20, 8, 3, 3}, IntType{8, true}, "OIHW", rng);
    Network net;
    net.nodes.push_back(Node{"x", {}, ValueInfo{{1, 8, 9, 9}, IntType{8, false}, {}}, InputOp{}});
    net.nodes.push_back(Node{"conv", {"x"}, ValueInfo{{1, 20, 7, 7}, IntType{6, true}, {}}, op});
    ExactRequant f;
    // 2^57 * acc fits int64 for the declared int6 range (the shift route is proven) but not for the real accumulators.
    for (int o = 0; o < 20; ++o) f.alpha.push_back(Rational(BigInt(1) << 57)), f.delta.push_back(Rational(0));
    net.nodes.push_back(Node{"rq", {"conv"}, ValueInfo{{1, 20, 7, 7}, IntType{8, true}, {}}, RequantOp{Requant{f, -128, 127}}});
    net.output = "rq";
    const std::vector<IntTensor> in = {random_tensor({1, 8, 9, 9}, IntType{8, false}, "NCHW", rng)};
    std::string reference_message, optimized_message;
    try {
      evaluate_reference(net, in);
    } catch (const InputError& e) {
      reference_message = e.what();
    }
    try {
      integer::evaluate_optimized(net, in, {.threads = 2, .isa = std::string(to_string(isa))});
    } catch (const InputError& e) {
      optimized_message = e.what();
    }
    EXPECT_NE(reference_message.find("'conv'"), std::string::npos) << reference_message;
    EXPECT_EQ(optimized_message, reference_message) << to_string(isa);
    std::string output_message;  // evaluate_output: accumulators only in per-task buffers, the same error
    try {
      integer::evaluate_output(integer::Plan(net, {.threads = 2, .isa = std::string(to_string(isa))}), in);
    } catch (const InputError& e) {
      output_message = e.what();
    }
    EXPECT_EQ(output_message, reference_message) << to_string(isa) << ", evaluate_output";
  }
}

// Parameters that do not fit their inputs (a hand-made network): the plan falls back to the reference
// kernel for that node, and the evaluation raises the reference evaluator's error.
TEST(IntegerErrors, MismatchedParametersAreTheReferenceError) {
  std::mt19937_64 rng(6);
  LinearOp lin;
  lin.weight = random_tensor({4, 9}, IntType{8, true}, "OI", rng);  // 9 inputs, the tensor has 8
  Network net;
  net.nodes.push_back(Node{"x", {}, ValueInfo{{1, 8}, IntType{8, false}, {}}, InputOp{}});
  net.nodes.push_back(Node{"fc", {"x"}, ValueInfo{{1, 4}, IntType{20, true}, {}}, lin});
  ExactRequant f;
  f.alpha = {Rational(1, 2)};  // one channel for four
  f.delta = {Rational(0)};
  net.nodes.push_back(Node{"rq", {"fc"}, ValueInfo{{1, 4}, IntType{8, true}, {}}, RequantOp{Requant{f, -128, 127}}});
  net.output = "rq";
  const std::vector<IntTensor> in = {random_tensor({1, 8}, IntType{8, false}, "NC", rng)};
  std::string reference_message, optimized_message;
  try {
    evaluate_reference(net, in);
  } catch (const InputError& e) {
    reference_message = e.what();
  }
  try {
    integer::evaluate_optimized(net, in);
  } catch (const InputError& e) {
    optimized_message = e.what();
  }
  EXPECT_NE(reference_message.find("'fc'"), std::string::npos) << reference_message;
  EXPECT_EQ(optimized_message, reference_message);
  // The linear fixed, the requant's channel count still wrong: reported at the requant node.
  net.nodes[1] = Node{"fc", {"x"}, ValueInfo{{1, 4}, IntType{20, true}, {}}, LinearOp{random_tensor({4, 8}, IntType{8, true}, "OI", rng), {}}};
  reference_message.clear(), optimized_message.clear();
  try {
    evaluate_reference(net, in);
  } catch (const InputError& e) {
    reference_message = e.what();
  }
  try {
    integer::evaluate_optimized(net, in);
  } catch (const InputError& e) {
    optimized_message = e.what();
  }
  EXPECT_NE(reference_message.find("'rq'"), std::string::npos) << reference_message;
  EXPECT_EQ(optimized_message, reference_message);
}

}  // namespace
}  // namespace qv
