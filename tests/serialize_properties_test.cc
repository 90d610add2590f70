// Property: random networks survive save and load exactly (same_network), and saving the reloaded
// network gives the same bytes. The generators aim at what a file form gets wrong: types from 1 to 64
// bits signed and 1 to 63 unsigned with values at both ends, rationals far beyond 64 bits of either
// sign, INT64_MIN/INT64_MAX thresholds, extreme doubles as scales, names and metadata needing escapes.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cfloat>
#include <filesystem>
#include <limits>

#include "ir/builder.h"
#include "ir/compare.h"
#include "ir/serialize.h"
#include "tests/support/ir_files.h"

namespace qv {
namespace {

namespace fs = std::filesystem;
using qv::testing::read_bytes;

IntType any_type() {
  const bool is_signed = *rc::gen::arbitrary<bool>();
  const int max_bits = is_signed ? IntType::kMaxSignedBits : IntType::kMaxUnsignedBits;
  return IntType{*rc::gen::oneOf(rc::gen::element(1, max_bits), rc::gen::inRange(1, max_bits + 1)), is_signed};
}

IntType type_up_to(int max_bits) {
  const bool is_signed = *rc::gen::arbitrary<bool>();
  return IntType{*rc::gen::inRange(1, max_bits + 1), is_signed};
}

// Values of the type, its ends and their neighbours half of the time.
int64_t value_of(IntType t) {
  const int64_t near_min = t.min() == t.max() ? t.min() : t.min() + 1, near_max = t.max() == t.min() ? t.max() : t.max() - 1;
  return *rc::gen::oneOf(rc::gen::element(t.min(), t.max(), near_min, near_max, t.contains(0) ? int64_t{0} : t.min()),
                         rc::gen::inRange(t.min(), t.max()), rc::gen::just(t.max()));
}

IntTensor tensor_of(Shape shape, IntType type, std::string layout) {
  IntTensor t(std::move(shape), type, std::move(layout));
  for (int64_t& v : t.data) v = value_of(type);
  return t;
}

// Positive finite doubles, including the smallest subnormal and the largest double.
double any_scale() {
  return *rc::gen::oneOf(rc::gen::element(std::numeric_limits<double>::denorm_min(), DBL_MIN, DBL_MAX, 1.0, 1.0 / 3.0, 0.1),
                         rc::gen::map(rc::gen::inRange(1, 1 << 30), [](int m) { return std::ldexp(m, -37); }));
}

std::vector<double> scales_for(int64_t channels) {
  switch (*rc::gen::inRange(0, 3)) {
    case 0: return {};
    case 1: return {any_scale()};
    default: {
      std::vector<double> s(static_cast<size_t>(channels));
      for (double& v : s) v = any_scale();
      return s;
    }
  }
}

BigInt big_magnitude() {
  const int bits = *rc::gen::inRange(0, 200);
  return (BigInt(1) << bits) + *rc::gen::inRange(0, 1000);
}

Rational any_rational() {
  const BigInt n = *rc::gen::arbitrary<bool>() ? big_magnitude() : BigInt(*rc::gen::arbitrary<int64_t>());
  const BigInt d = big_magnitude();
  return *rc::gen::arbitrary<bool>() ? Rational(n, d) : Rational(BigInt(-n), d);
}

// A clamp [lo, hi] inside the type, at most `span` apart.
std::pair<int64_t, int64_t> clamp_in(IntType t, int64_t span) {
  const int64_t lo = value_of(t);
  const int64_t room = t.max() - lo;  // >= 0, no overflow: lo >= min
  const int64_t hi = lo + *rc::gen::inRange<int64_t>(0, std::min({room, span, INT64_MAX - 1}) + 1);
  return {lo, hi};
}

Requant exact_requant(int64_t channels, IntType out) {
  ExactRequant e;
  e.rounding = *rc::gen::elementOf(kAllRoundings);
  for (int64_t o = 0; o < channels; ++o) {
    e.alpha.push_back(any_rational());
    e.delta.push_back(any_rational());
  }
  const auto [lo, hi] = clamp_in(out, INT64_MAX);
  return Requant{e, lo, hi};
}

Requant threshold_requant(int64_t channels, IntType out) {
  const auto [lo, hi] = clamp_in(out, 6);
  ThresholdRequant t;
  for (int64_t o = 0; o < channels; ++o) {
    t.sign.push_back(static_cast<int8_t>(*rc::gen::element(-1, 0, 1)));
    std::vector<int64_t> row(static_cast<size_t>(hi - lo));
    for (int64_t& v : row) v = *rc::gen::oneOf(rc::gen::element(INT64_MIN, INT64_MAX, int64_t{0}), rc::gen::arbitrary<int64_t>());
    std::sort(row.begin(), row.end());
    t.thresholds.push_back(std::move(row));
  }
  return Requant{t, lo, hi};
}

Requant mul_add_shift_requant(int64_t channels, IntType out) {
  MulAddShiftRequant m;
  const int64_t limit = (int64_t{1} << 62) - 1;
  for (int64_t o = 0; o < channels; ++o) {
    m.mul.push_back(*rc::gen::oneOf(rc::gen::element(-limit, limit, int64_t{0}), rc::gen::inRange(-limit, limit + 1)));
    m.add.push_back(*rc::gen::oneOf(rc::gen::element(INT64_MIN, INT64_MAX), rc::gen::arbitrary<int64_t>()));
  }
  m.shift = *rc::gen::inRange(0, 63);
  const auto [lo, hi] = clamp_in(out, INT64_MAX);
  return Requant{m, lo, hi};
}

// Accumulators of at most 16 bits: acc + bias, left-shifted by up to 2^14, stays inside int32.
Requant fixed_point_requant(int64_t channels, IntType out) {
  FixedPointRequant f;
  f.double_rounding = *rc::gen::arbitrary<bool>();
  for (int64_t o = 0; o < channels; ++o) {
    f.bias.push_back(*rc::gen::inRange(-1024, 1025));
    f.multiplier.push_back(*rc::gen::oneOf(rc::gen::element(INT32_MIN, INT32_MAX, 0), rc::gen::arbitrary<int32_t>()));
    f.shift.push_back(*rc::gen::inRange(-31, f.double_rounding ? 15 : 31));
  }
  f.zero_point = *rc::gen::inRange(-(int64_t{1} << 62), (int64_t{1} << 62) + 1);
  const auto [lo, hi] = clamp_in(out, INT64_MAX);
  return Requant{f, lo, hi};
}

// Valid UTF-8 (JSON text is UTF-8): ASCII including control characters, and multi-byte characters.
std::string any_text() {
  const auto piece = rc::gen::oneOf(rc::gen::map(rc::gen::inRange(0, 128), [](int ch) { return std::string(1, static_cast<char>(ch)); }),
                                    rc::gen::element<std::string>("\xc3\xbc", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\"", "\\"));
  std::string out;
  for (const std::string& p : *rc::gen::container<std::vector<std::string>>(piece)) out += p;
  return out;
}

Network random_network() {
  NetworkBuilder b(*rc::gen::element<std::string>("random", "net \"q\"", "\xce\xbb"));
  const int64_t c = *rc::gen::inRange(1, 5);

  // A wide-typed activation straight into an exact requant: any input type, any output type.
  const int64_t hw = *rc::gen::inRange(1, 4);
  b.input("wide", {1, c, hw, hw}, any_type());
  const IntType exact_out = any_type();
  b.requant("rq_exact", "wide", exact_requant(c, exact_out), exact_out);

  // Accumulator-like inputs (<= 62 bits, as thresholds and mul_add_shift require) into those forms.
  b.input("acc", {*rc::gen::inRange<int64_t>(1, 3), c}, type_up_to(62));
  const IntType th_out = any_type(), mas_out = any_type();
  b.requant("rq_th", "acc", threshold_requant(c, th_out), th_out);
  b.requant("rq_mas", "acc", mul_add_shift_requant(c, mas_out), mas_out);
  b.input("acc16", {1, c}, IntType{*rc::gen::inRange(1, 17), true});
  const IntType fp_out = any_type();
  b.requant("rq_fp", "acc16", fixed_point_requant(c, fp_out), fp_out);

  // A small conv over a narrow input, so that its accumulator fits 64 bits whatever the weights.
  const IntType in_type = type_up_to(16);
  const int groups = *rc::gen::element(1, static_cast<int>(c));
  const int64_t o = groups * *rc::gen::inRange<int64_t>(1, 3), k = *rc::gen::inRange<int64_t>(1, 4);
  const int stride = *rc::gen::inRange(1, 3), pad = *rc::gen::inRange(0, 2), dilation = *rc::gen::inRange(1, 3);
  const int64_t side = dilation * (k - 1) + 1 + *rc::gen::inRange<int64_t>(0, 3);
  b.input("x", {1, c, side, side}, in_type);
  IntTensor weight = tensor_of({o, c / groups, k, k}, type_up_to(16), "OIHW");
  weight.scale = scales_for(o);
  std::optional<IntTensor> bias;
  if (*rc::gen::arbitrary<bool>()) bias = tensor_of({o}, type_up_to(32), "O");
  b.conv2d("conv", "x", weight, bias, stride, pad, value_of(in_type), groups, dilation);
  b.flatten("flat", "conv");
  const int64_t features = b.info("flat").shape[1];
  b.linear("fc", "flat", tensor_of({*rc::gen::inRange<int64_t>(1, 4), features}, type_up_to(8), "OI"),
           std::nullopt);

  for (int i = *rc::gen::inRange(0, 3); i > 0; --i) b.set_metadata(any_text(), any_text());
  Network net = b.build(*rc::gen::element<std::string>("fc", "rq_exact", "rq_fp"));
  net.nodes[0].output.scale = scales_for(c);
  return net;
}

RC_GTEST_PROP(SerializeProperties, RandomNetworksRoundTripExactly, ()) {
  const Network net = random_network();
  const fs::path dir = fs::temp_directory_path() / ("qv_ser_prop_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string a = (dir / "a.json").string(), b = (dir / "b.json").string();
  save_network(net, a);
  const Network back = load_network(a);
  std::string difference;
  const bool same = same_network(net, back, &difference);
  RC_LOG() << difference << "\n";
  RC_ASSERT(same);
  save_network(back, b);
  RC_ASSERT(read_bytes(dir / "a.bin") == read_bytes(dir / "b.bin"));
  std::string json_b = read_bytes(b);
  json_b.replace(json_b.find("\"b.bin\""), 7, "\"a.bin\"");
  RC_ASSERT(read_bytes(a) == json_b);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace qv
