// IR files: a network with every op and every requantization form survives save and load exactly;
// saving is deterministic and atomic; every kind of corruption is refused with a message naming the
// file, the node and the field.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>

#include "ir/builder.h"
#include "ir/crc32.h"
#include "ir/error.h"
#include "ir/serialize.h"

namespace qv {
namespace {

namespace fs = std::filesystem;

IntTensor tensor(Shape shape, IntType type, std::string layout, int64_t seed) {
  IntTensor t(std::move(shape), type, std::move(layout));
  for (size_t i = 0; i < t.data.size(); ++i) {
    const int64_t span = type.max() - type.min() + 1;
    t.data[i] = type.min() + static_cast<int64_t>((static_cast<uint64_t>(seed) * 2654435761u + i * 40503u) % static_cast<uint64_t>(span));
  }
  return t;
}

Requant exact(size_t channels, int64_t lo, int64_t hi, bool huge_delta = false) {
  ExactRequant e;
  e.rounding = Rounding::half_even;
  for (size_t o = 0; o < channels; ++o) {
    e.alpha.push_back(Rational(static_cast<int>(3 + o), 1 << 12) * (o % 2 ? -1 : 1));
    if (huge_delta)  // numerator and denominator coprime, far beyond 64 bits
      e.delta.push_back(Rational((BigInt(1) << 100) + 1, boost::multiprecision::pow(BigInt(3), 50)));
    else
      e.delta.push_back(Rational(static_cast<int>(o) - 2, 7));
  }
  return Requant{e, lo, hi};
}

// Every op kind and every requant form.
Network every_op() {
  NetworkBuilder b("every_op");
  b.input("x", {1, 4, 8, 8}, IntType{8, false});
  b.conv2d("conv", "x", tensor({4, 1, 3, 3}, IntType{4, true}, "OIHW", 1), tensor({4}, IntType{16, true}, "O", 2), 1, 1, 128, 4);
  b.requant("rq_exact", "conv", exact(4, 0, 255, true), IntType{8, false});
  b.max_pool2d("pool", "rq_exact", 2, 2);
  b.avg_pool2d("avg", "pool", 2, 2, 2, Rounding::floor, IntType{8, false});
  b.add_saturating("sat", "avg", "avg", IntType{8, false});
  const Requant branch = exact(4, -1000, 1000);
  b.add_requant("addrq", {"sat", "avg"}, {branch, branch}, IntType{10, true});
  b.flatten("flat", "addrq");
  b.linear("fc", "flat", tensor({6, 16}, IntType{8, true}, "OI", 3), tensor({6}, IntType{32, true}, "O", 4));
  const Requant e6 = exact(6, -128, 127);
  const int64_t lo = -(int64_t{1} << 20), hi = int64_t{1} << 20;
  b.requant("rq_mas", "fc", to_mul_add_shift(e6, 24, lo, hi).requant, IntType{8, true});
  b.requant("rq_th", "fc", to_thresholds(e6, lo, hi).requant, IntType{8, true});
  b.requant("rq_fp", "fc", to_fixed_point(e6, true, lo, hi).requant, IntType{8, true});
  b.hadamard("had", "rq_th", 5, true);
  b.set_metadata("model", "every_op");
  return b.build("had");
}

class IrFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("qv_ir_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& n) const { return (dir_ / n).string(); }
  static std::string slurp(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  }
  fs::path dir_;
};

void expect_same(const Network& a, const Network& b) {
  ASSERT_EQ(a.nodes.size(), b.nodes.size());
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.output, b.output);
  EXPECT_EQ(a.metadata, b.metadata);
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    const Node &x = a.nodes[i], &y = b.nodes[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.inputs, y.inputs) << x.name;
    EXPECT_EQ(x.output.shape, y.output.shape) << x.name;
    EXPECT_EQ(x.output.type, y.output.type) << x.name;
    ASSERT_EQ(x.op.index(), y.op.index()) << x.name;
    // Field by field through the serialized form is circular; compare the ops structurally instead.
    std::visit(
        [&](const auto& ox) {
          using T = std::decay_t<decltype(ox)>;
          const T& oy = std::get<T>(y.op);
          if constexpr (std::is_same_v<T, Conv2dOp>) {
            EXPECT_EQ(ox.weight, oy.weight);
            EXPECT_EQ(ox.bias, oy.bias);
            EXPECT_EQ(ox.pad_value, oy.pad_value);
            EXPECT_EQ(ox.groups, oy.groups);
          } else if constexpr (std::is_same_v<T, LinearOp>) {
            EXPECT_EQ(ox.weight, oy.weight);
            EXPECT_EQ(ox.bias, oy.bias);
          } else if constexpr (std::is_same_v<T, RequantOp>) {
            ASSERT_EQ(ox.requant.kind(), oy.requant.kind());
            EXPECT_EQ(ox.requant.lo, oy.requant.lo);
            EXPECT_EQ(ox.requant.hi, oy.requant.hi);
            if (const auto* e = std::get_if<ExactRequant>(&ox.requant.form)) {
              EXPECT_EQ(e->alpha, std::get<ExactRequant>(oy.requant.form).alpha);
              EXPECT_EQ(e->delta, std::get<ExactRequant>(oy.requant.form).delta);
            }
            if (const auto* t = std::get_if<ThresholdRequant>(&ox.requant.form)) {
              EXPECT_EQ(t->thresholds, std::get<ThresholdRequant>(oy.requant.form).thresholds);
              EXPECT_EQ(t->sign, std::get<ThresholdRequant>(oy.requant.form).sign);
            }
            if (const auto* f = std::get_if<FixedPointRequant>(&ox.requant.form)) {
              EXPECT_EQ(f->multiplier, std::get<FixedPointRequant>(oy.requant.form).multiplier);
              EXPECT_EQ(f->shift, std::get<FixedPointRequant>(oy.requant.form).shift);
              EXPECT_EQ(f->bias, std::get<FixedPointRequant>(oy.requant.form).bias);
            }
            if (const auto* m = std::get_if<MulAddShiftRequant>(&ox.requant.form)) {
              EXPECT_EQ(m->mul, std::get<MulAddShiftRequant>(oy.requant.form).mul);
              EXPECT_EQ(m->add, std::get<MulAddShiftRequant>(oy.requant.form).add);
            }
          } else if constexpr (std::is_same_v<T, HadamardOp>) {
            EXPECT_EQ(ox.out_features, oy.out_features);
            EXPECT_EQ(ox.negate, oy.negate);
          } else if constexpr (std::is_same_v<T, AvgPool2dOp>) {
            EXPECT_EQ(ox.shift, oy.shift);
            EXPECT_EQ(ox.rounding, oy.rounding);
          }
        },
        x.op);
  }
}

TEST_F(IrFile, EveryOpAndRequantFormRoundTrips) {
  const Network net = every_op();
  save_network(net, path("net.json"));
  expect_same(net, load_network(path("net.json")));
  // Huge rationals survive as text.
  EXPECT_NE(slurp(path("net.json")).find("1267650600228229401496703205377/717897987691852588770249"), std::string::npos);
}

TEST_F(IrFile, SavingIsDeterministicAndLeavesNoTemporaries) {
  const Network net = every_op();
  save_network(net, path("a.json"));
  save_network(load_network(path("a.json")), path("b.json"));
  EXPECT_EQ(slurp(path("a.bin")), slurp(path("b.bin")));
  std::string a = slurp(path("a.json")), b = slurp(path("b.json"));
  b = std::regex_replace(b, std::regex("\"b.bin\""), "\"a.bin\"");
  EXPECT_EQ(a, b);
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
}

struct Corruption {
  const char* name;
  std::string (*edit)(std::string json);
  const char* expect_where;  // substring naming the place
  const char* expect_what;   // substring naming the expectation
};

std::string replace_first(std::string s, const std::string& from, const std::string& to, size_t start = 0) {
  const auto at = s.find(from, start);
  if (at == std::string::npos) return s + "<<no '" + from + "' to replace>>";
  return s.replace(at, from.size(), to);
}

const Corruption kCorruptions[] = {
    {"bit width 0", [](std::string j) { return replace_first(j, "\"type\": \"int4\"", "\"type\": \"int0\""); }, "'conv': weight.type", "int0"},
    {"bit width 65", [](std::string j) { return replace_first(j, "\"type\": \"uint8\"", "\"type\": \"int65\""); }, "'x': output.type", "int65"},
    {"uint64", [](std::string j) { return replace_first(j, "\"type\": \"uint8\"", "\"type\": \"uint64\""); }, "'x': output.type", "uint64"},
    {"nan alpha", [](std::string j) { return replace_first(j, "\"3/4096\"", "\"nan\""); }, "'rq_exact': requant.alpha[0]", "rational"},
    {"zero denominator", [](std::string j) { return replace_first(j, "\"3/4096\"", "\"1/0\""); }, "requant.alpha[0]", "q != 0"},
    {"negative scale", [](std::string j) { return replace_first(j, "\"type\": \"uint8\"", "\"type\": \"uint8\", \"scale\": [-0.5]"); }, "'x': output.scale[0]", "positive"},
    {"zero scale", [](std::string j) { return replace_first(j, "\"type\": \"uint8\"", "\"type\": \"uint8\", \"scale\": [0.0]"); }, "'x': output.scale[0]", "positive"},
    {"unknown op", [](std::string j) { return replace_first(j, "\"op\": \"flatten\"", "\"op\": \"reshape\""); }, "'flat': op", "unknown op 'reshape'"},
    {"unknown key", [](std::string j) { return replace_first(j, "\"groups\": 4", "\"groups\": 4, \"bias_scale\": 2"); }, "'conv': bias_scale", "unknown key"},
    {"missing key", [](std::string j) { return replace_first(j, "\"pad_value\": 128,", ""); }, "'conv': pad_value", "missing key"},
    {"wrong type", [](std::string j) { return replace_first(j, "\"groups\": 4", "\"groups\": \"four\""); }, "'conv': groups", "expected an integer"},
    {"dangling input", [](std::string j) { return replace_first(j, "\"inputs\": [\n        \"flat\"", "\"inputs\": [\n        \"flatt\""); }, "'fc': inputs[0]", "'flatt' is not the name of an earlier node"},
    {"wrong weight shape", [](std::string j) { return replace_first(j, "\"groups\": 4", "\"groups\": 2"); }, "'conv'", "expected [O, 2, KH, KW]"},
    {"accumulator too narrow", [](std::string j) {
       // The first type after the conv's name is its declared accumulator type.
       const size_t conv = j.find("\"name\": \"conv\"");
       const size_t at = j.find("\"type\": \"int", conv);
       const size_t end = j.find('"', at + 13);
       return j.replace(at, end + 1 - at, "\"type\": \"int12\"");
     }, "'conv': output.type", "cannot hold the worst case"},
    {"clamp outside type", [](std::string j) { return replace_first(j, "\"hi\": 255", "\"hi\": 256"); }, "'rq_exact': requant.lo", "outside the output type"},
    {"malformed JSON", [](std::string j) { return j.substr(0, j.size() / 2); }, "byte", "not valid JSON"},
    {"wrong format", [](std::string j) { return replace_first(j, "qverify-ir", "onnx"); }, "format", "qverify-ir"},
};

TEST_F(IrFile, CorruptJsonIsRefusedNamingNodeAndField) {
  save_network(every_op(), path("net.json"));
  const std::string good = slurp(path("net.json"));
  for (const Corruption& c : kCorruptions) {
    const std::string edited = c.edit(good);
    ASSERT_EQ(edited.find("<<no"), std::string::npos) << c.name << ": " << edited.substr(edited.find("<<no"));
    const std::string p = path("bad.json");
    std::ofstream(p) << edited;
    fs::copy_file(path("net.bin"), path("bad.bin"), fs::copy_options::overwrite_existing);
    std::ofstream(p, std::ios::trunc) << std::regex_replace(edited, std::regex("\"net.bin\""), "\"bad.bin\"");
    try {
      load_network(p);
      ADD_FAILURE() << c.name << ": accepted";
    } catch (const InputError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("bad.json"), std::string::npos) << c.name << ": " << msg;
      EXPECT_NE(msg.find(c.expect_where), std::string::npos) << c.name << ": " << msg;
      EXPECT_NE(msg.find(c.expect_what), std::string::npos) << c.name << ": " << msg;
    } catch (const std::exception& e) {
      ADD_FAILURE() << c.name << ": wrong exception type: " << e.what();
    }
  }
}

TEST_F(IrFile, DamagedTensorFileIsRefused) {
  save_network(every_op(), path("net.json"));
  const std::string bin = slurp(path("net.bin"));
  auto expect_refused = [&](const std::string& what, const std::string& needle) {
    try {
      load_network(path("net.json"));
      ADD_FAILURE() << what << ": accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("net.json"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << what << ": " << e.what();
    }
  };
  std::ofstream(path("net.bin"), std::ios::binary | std::ios::trunc) << bin.substr(0, bin.size() - 8);
  expect_refused("truncated", "expected");
  std::string flipped = bin;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x10);
  std::ofstream(path("net.bin"), std::ios::binary | std::ios::trunc) << flipped;
  expect_refused("flipped byte", "CRC-32");
  fs::remove(path("net.bin"));
  expect_refused("missing", "cannot open");
}

TEST_F(IrFile, ValueOutsideItsDeclaredTypeIsRefused) {
  // A weight stored as int8 but declared int4 holds 100: outside [-8, 7].
  Network net = every_op();
  std::get<Conv2dOp>(net.nodes[1].op).weight.data[0] = 100;
  save_network(net, path("net.json"));
  try {
    load_network(path("net.json"));
    ADD_FAILURE() << "accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'conv': weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("outside the declared type int4"), std::string::npos) << e.what();
  }
}

TEST(Crc32, StandardCheckValue) { EXPECT_EQ(crc32(std::string_view("123456789")), 0xCBF43926u); }

}  // namespace
}  // namespace qv
