// Property: random networks (random shapes, types from 1 to 64 bits, rationals far beyond 64 bits,
// extreme thresholds) survive save and load: the reloaded network computes the same trace on the same
// input, and saving it again gives the same bytes.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "ir/builder.h"
#include "ir/serialize.h"
#include "ir/synthetic.h"
#include "reference/evaluator.h"

namespace qv {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

IntTensor random_tensor(Shape shape, IntType type, std::string layout) {
  IntTensor t(std::move(shape), type, std::move(layout));
  const auto edge = rc::gen::element(type.min(), type.max(), int64_t{0}, type.max() / 2);
  for (int64_t& v : t.data) v = *rc::gen::oneOf(edge, rc::gen::inRange(type.min(), type.max()));
  return t;
}

Rational random_rational() {
  const int num_bits = *rc::gen::inRange(1, 120), den_bits = *rc::gen::inRange(0, 120);
  const BigInt n = (BigInt(1) << num_bits) - *rc::gen::inRange(0, 1000);
  const BigInt d = (BigInt(1) << den_bits) + *rc::gen::inRange(0, 1000);
  return *rc::gen::arbitrary<bool>() ? Rational(n, d) : Rational(BigInt(-n), d);
}

RC_GTEST_PROP(SerializeProperties, RandomNetworksRoundTrip, ()) {
  const int c = *rc::gen::inRange(1, 5), o = *rc::gen::inRange(1, 5), hw = *rc::gen::inRange(1, 6), k = *rc::gen::inRange(1, 4);
  const IntType in_type{*rc::gen::inRange(1, 17), *rc::gen::arbitrary<bool>()};
  const IntType w_type{*rc::gen::inRange(1, 9), true};
  NetworkBuilder b("random");
  b.input("x", {1, c, hw + k, hw + k}, in_type);
  const int pad = *rc::gen::inRange(0, 2);
  const int64_t pad_value = *rc::gen::inRange(in_type.min(), in_type.max() + 1);
  b.conv2d("conv", "x", random_tensor({o, c, k, k}, w_type, "OIHW"), random_tensor({o}, IntType{*rc::gen::inRange(1, 33), true}, "O"),
           1, pad, pad_value);
  const IntType out{*rc::gen::element(1, 4, 8, 16, 63), *rc::gen::arbitrary<bool>()};
  ExactRequant e;
  e.rounding = *rc::gen::elementOf(kAllRoundings);
  for (int i = 0; i < o; ++i) {
    e.alpha.push_back(random_rational());
    e.delta.push_back(random_rational());
  }
  b.requant("rq", "conv", Requant{e, out.min(), out.max()}, out);
  b.flatten("flat", "rq");
  const Network net = b.build("flat");

  const fs::path dir = fs::temp_directory_path() / ("qv_ser_prop_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string a = (dir / "a.json").string(), bb = (dir / "b.json").string();
  save_network(net, a);
  const Network back = load_network(a);
  save_network(back, bb);
  RC_ASSERT(slurp((dir / "a.bin").string()) == slurp((dir / "b.bin").string()));

  const auto inputs = synthetic_inputs(net, *rc::gen::arbitrary<uint64_t>());
  const Trace t1 = evaluate_reference(net, inputs), t2 = evaluate_reference(back, inputs);
  RC_ASSERT(t1.size() == t2.size());
  for (size_t i = 0; i < t1.size(); ++i) RC_ASSERT(t1[i].value.data == t2[i].value.data);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace qv
