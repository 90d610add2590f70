// `qverify compare DIR --actual DUMP` and `qverify explain` as a hardware team meets them: run as child
// processes (QVERIFY set by tests/meson.build) on golden vectors of MobileNet V1 under 4-bit Brevitas,
// against dumps with planted faults (wrong rounding at ties, missing saturation, wrong shift, NHWC
// layout, one corrupted channel), each of which must be diagnosed; an unmodified dump must pass.
// The faults are planted with exact arithmetic written here (boost rationals from the .requant.json).
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ir/bigint.h"
#include "ir/crc32.h"
#include "ir/rounding.h"
#include "vectors/formats.h"
#include "vectors/golden.h"
#include "vectors/npy.h"
#include "vectors/sha256.h"

namespace qv {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct Result {
  int status;
  std::string output;  // stdout and stderr together
};

std::string exe() {
  const char* e = std::getenv("QVERIFY");
  if (!e) ADD_FAILURE() << "QVERIFY is not set";
  return e ? e : "qverify";
}

Result run(const std::string& args) {
  const std::string cmd = exe() + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int raw = pclose(p);
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw), out};
}

// stdout only (for --json).
Result run_stdout(const std::string& args) {
  const std::string cmd = exe() + " " + args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int raw = pclose(p);
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw), out};
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

fs::path root() {
  static const fs::path r = [] {
    const fs::path p = fs::temp_directory_path() / ("qverify_compare_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
  }();
  return r;
}

class Cleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root(), ec);
  }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new Cleanup);

const std::string kV1 = "--model mobilenet_v1 --config brevitas_4b.json --resolution 64 --threads 2";

// The golden vectors, generated once: every readable format.
fs::path golden() {
  static const fs::path d = [] {
    const fs::path p = root() / "golden";
    const Result r = run("vectors " + kV1 + " --formats npy,hex,bin,csv --out " + p.string());
    EXPECT_EQ(r.status, 0) << r.output;
    return p;
  }();
  return d;
}

json manifest(const fs::path& d) { return json::parse(read_file(d / "manifest.json")); }

std::string fc(const std::string& node) { return vectors::file_component(node); }

// The golden output of a node, from its .npy, with the manifest's declared type.
IntTensor golden_output(const fs::path& g, const std::string& node) {
  const json run0 = manifest(g).at("runs").at(0);
  const json& t = run0.at("tensors").at("in0000/" + node + ".output");
  IntTensor x = read_npy((g / t.at("files").at("npy").get<std::string>()).string());
  x.type = *IntType::parse(t.at("type").get<std::string>());
  x.layout = t.at("layout").get<std::string>();
  return x;
}

std::string input_of(const fs::path& g, const std::string& node) {
  const json m = manifest(g);
  for (const json& n : m.at("runs").at(0).at("nodes"))
    if (n.at("name") == node) return n.at("inputs").at(0).get<std::string>();
  ADD_FAILURE() << "no node " << node;
  return "";
}

// A clean dump: every node's output copied as <node>.<ext>.
fs::path clean_dump(const fs::path& g, const std::string& name, const std::string& ext) {
  const fs::path d = root() / name;
  fs::remove_all(d);
  fs::create_directories(d);
  const json m = manifest(g);
  for (const json& n : m.at("runs").at(0).at("nodes")) {
    const std::string node = n.at("name").get<std::string>();
    fs::copy_file(g / "in0000" / (fc(node) + ".output." + ext), d / (fc(node) + "." + ext));
  }
  return d;
}

void put_npy(const fs::path& dump, const std::string& node, const IntTensor& t) { write_file(dump / (fc(node) + ".npy"), encode_npy(t)); }

// p = alpha[c] * acc + delta[c] for every element of a requant node (NCHW), exact.
std::vector<Rational> pre_rounding(const fs::path& g, const std::string& node) {
  const json rq = json::parse(read_file(g / "in0000" / (fc(node) + ".requant.json"))).at("exact");
  const IntTensor acc = golden_output(g, input_of(g, node));
  std::vector<Rational> p(acc.data.size());
  const int64_t C = acc.shape[1], per = acc.numel() / acc.shape[0] / C;
  for (size_t i = 0; i < p.size(); ++i) {
    const size_t c = static_cast<size_t>((static_cast<int64_t>(i) / per) % C);
    auto rat = [](const std::string& s) {
      const size_t sl = s.find('/');
      return sl == std::string::npos ? Rational(BigInt(s)) : Rational(BigInt(s.substr(0, sl)), BigInt(s.substr(sl + 1)));
    };
    p[i] = rat(rq.at("alpha").at(c).get<std::string>()) * Rational(acc.data[i]) + rat(rq.at("delta").at(c).get<std::string>());
  }
  return p;
}

int64_t clamp(const BigInt& v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : static_cast<int64_t>(v); }

// Layers of MobileNet V1 (4-bit activations, clamp [0, 15]) the faults go into.
const std::string kTieLayer = "features.stage1.unit1.dw_conv.activ";
const std::string kSatLayer = "features.stage2.unit1.dw_conv.activ";
const std::string kLayoutLayer = "features.stage2.unit2.pw_conv.activ";
const std::string kShiftLayer = "features.stage3.unit1.pw_conv.activ";
const std::string kChannelLayer = "features.stage3.unit2.dw_conv.activ";

std::string diagnosis_of(const std::string& output) {
  const size_t at = output.find("diagnosis: ");
  return at == std::string::npos ? "" : output.substr(at, output.find('\n', at) - at);
}

// ---- An unmodified dump passes, in every format. ----

TEST(Compare, UnmodifiedDumpPassesInEveryFormat) {
  for (const std::string ext : {"npy", "hex", "csv", "bin"}) {
    const fs::path d = clean_dump(golden(), "clean_" + ext, ext);
    const Result r = run("compare " + golden().string() + " --actual " + d.string() + " --format " + ext);
    EXPECT_EQ(r.status, 0) << ext << "\n" << r.output;
    EXPECT_NE(r.output.find("verdict: match: 58 layer(s) equal bit for bit"), std::string::npos) << r.output;
  }
  // Without --format, and with the golden names (<node>.output.npy) under the run's directory.
  const fs::path d = root() / "clean_golden_names";
  fs::remove_all(d);
  fs::create_directories(d / "in0000");
  for (const auto& e : fs::directory_iterator(golden() / "in0000"))
    if (e.path().string().size() > 11 && e.path().string().ends_with(".output.npy")) fs::copy_file(e.path(), d / "in0000" / e.path().filename());
  const Result r = run("compare " + golden().string() + " --actual " + d.string());
  EXPECT_EQ(r.status, 0) << r.output;
  const Result j = run_stdout("compare " + golden().string() + " --actual " + d.string() + " --json");
  ASSERT_EQ(j.status, 0);
  const json report = json::parse(j.output);
  EXPECT_TRUE(report.at("ok").get<bool>());
  EXPECT_EQ(report.at("layers_compared"), 58);
}

// ---- Wrong rounding at exact ties. ----

// The natural layers have no exact ties (alpha and delta carry BN-folded denominators), so one layer is
// constructed with alpha = 1/8, delta = 0: p = acc / 8 is a tie whenever acc = 4 mod 8. Its golden
// output, its requant file and the manifest's checksums are rewritten so that the directory is valid.
fs::path tie_golden() {
  static const fs::path t = [] {
    const fs::path d = root() / "tie_golden";
    fs::remove_all(d);
    fs::copy(golden(), d, fs::copy_options::recursive);
    json m = manifest(d);
    json& run0 = m.at("runs").at(0);
    const std::string rq_rel = "in0000/" + fc(kTieLayer) + ".requant.json";
    json rq = json::parse(read_file(d / rq_rel));
    const size_t C = rq.at("exact").at("alpha").size();
    for (const char* form : {"exact", "used"}) {
      rq.at(form)["alpha"] = std::vector<std::string>(C, "1/8");
      rq.at(form)["delta"] = std::vector<std::string>(C, "0");
    }
    const IntTensor acc = golden_output(d, input_of(d, kTieLayer));
    IntTensor y = golden_output(d, kTieLayer);
    for (size_t i = 0; i < y.data.size(); ++i) y.data[i] = clamp(round_div(BigInt(acc.data[i]), 8, Rounding::half_even), 0, 15);
    std::map<std::string, std::string> files;
    files[rq_rel] = rq.dump(2) + "\n";
    const json& entry = run0.at("tensors").at("in0000/" + kTieLayer + ".output");
    for (const auto& [ext, rel] : entry.at("files").items()) {
      const auto f = vectors::parse_formats(ext).at(0);
      files[rel.get<std::string>()] = f == vectors::Format::npy ? encode_npy(y) : vectors::encode(f, y, "x", "x");
    }
    for (const auto& [rel, bytes] : files) {
      write_file(d / rel, bytes);
      char crc[16];
      std::snprintf(crc, sizeof crc, "%08x", crc32(bytes));
      run0.at("files")[rel] = {{"bytes", bytes.size()}, {"sha256", sha256_hex(bytes)}, {"crc32", crc}};
    }
    write_file(d / "manifest.json", vectors::finish_manifest(m));
    return d;
  }();
  return t;
}

TEST(Compare, HalfUpAtExactTiesIsDiagnosed) {
  const fs::path g = tie_golden();
  // The constructed golden directory is valid and an unmodified dump of it passes.
  const fs::path d = clean_dump(g, "ties", "npy");
  ASSERT_EQ(run("compare " + g.string() + " --actual " + d.string()).status, 0);
  const IntTensor acc = golden_output(g, input_of(g, kTieLayer));
  IntTensor y = golden_output(g, kTieLayer);
  int64_t differing = 0, ties = 0;
  for (size_t i = 0; i < y.data.size(); ++i) {
    const int64_t up = clamp(round_div(BigInt(acc.data[i]), 8, Rounding::half_up), 0, 15);
    ties += (((acc.data[i] % 8) + 8) % 8 == 4) ? 1 : 0;
    differing += up != y.data[i] ? 1 : 0;
    y.data[i] = up;
  }
  ASSERT_GT(differing, 10);
  ASSERT_GE(ties, differing);
  put_npy(d, kTieLayer, y);
  const Result r = run("compare " + g.string() + " --actual " + d.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("first diverging layer: " + kTieLayer), std::string::npos) << r.output;
  EXPECT_NE(diagnosis_of(r.output).find("all " + std::to_string(differing) + " differing outputs sit on exact ties and match half_up"), std::string::npos)
      << r.output;
  EXPECT_NE(diagnosis_of(r.output).find("where the model uses half_even"), std::string::npos) << r.output;
  // The element's computation: p is a tie k + 1/2 shown as a rational.
  EXPECT_NE(r.output.find("(an exact tie: k + 1/2)"), std::string::npos) << r.output;
  const Result j = run_stdout("compare " + g.string() + " --actual " + d.string() + " --json");
  ASSERT_EQ(j.status, 1);
  const json report = json::parse(j.output);
  EXPECT_EQ(report.at("diagnosis").at("kind"), "rounding");
  EXPECT_EQ(report.at("diagnosis").at("detail").at("matches").at(0), "half_up");
  const json& rq = report.at("first_diverging").at("computation").at("requant").at(0);
  EXPECT_EQ(rq.at("alpha"), "1/8");
  EXPECT_TRUE(rq.at("tie").get<bool>());
  EXPECT_EQ(rq.at("rounding"), "half_even");
}

// A natural layer computed with floor instead of half_even: not ties, but still the convention.
TEST(Compare, FloorInsteadOfHalfEvenIsDiagnosed) {
  const fs::path d = clean_dump(golden(), "floor", "npy");
  const std::vector<Rational> p = pre_rounding(golden(), kSatLayer);
  IntTensor y = golden_output(golden(), kSatLayer);
  for (size_t i = 0; i < y.data.size(); ++i) y.data[i] = clamp(round_rational(p[i], Rounding::floor), 0, 15);
  put_npy(d, kSatLayer, y);
  const Result r = run("compare " + golden().string() + " --actual " + d.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(diagnosis_of(r.output).find("differing outputs match floor"), std::string::npos) << r.output;
  EXPECT_NE(diagnosis_of(r.output).find("where the model uses half_even (0 of them on exact ties)"), std::string::npos) << r.output;
}

// ---- Missing saturation. ----

TEST(Compare, MissingSaturationIsDiagnosed) {
  const fs::path d = clean_dump(golden(), "saturation", "npy");
  const std::vector<Rational> p = pre_rounding(golden(), kSatLayer);
  IntTensor y = golden_output(golden(), kSatLayer);
  y.type = IntType{16, true};  // the unclamped values need a signed, wider dtype
  int64_t outside = 0;
  for (size_t i = 0; i < y.data.size(); ++i) {
    const BigInt v = round_rational(p[i], Rounding::half_even);
    outside += (v < 0 || v > 15) ? 1 : 0;
    y.data[i] = static_cast<int64_t>(v);
  }
  ASSERT_GT(outside, 0);
  put_npy(d, kSatLayer, y);
  const Result r = run("compare " + golden().string() + " --actual " + d.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("first diverging layer: " + kSatLayer + " (requant), " + std::to_string(outside) + " of"), std::string::npos) << r.output;
  EXPECT_NE(diagnosis_of(r.output).find("outputs equal the model's before the clamp: saturation missing"), std::string::npos) << r.output;
  // The first element's computation: accumulator, alpha, delta, p, rounding and clamp.
  for (const char* s : {"accumulator: " , "alpha = ", "delta = ", "p = alpha * acc + delta = ", "half_even(p) = ", "clamp [0, 15]"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << "\n" << r.output;
  const Result j = run_stdout("compare " + golden().string() + " --actual " + d.string() + " --json");
  const json report = json::parse(j.output);
  EXPECT_EQ(report.at("diagnosis").at("kind"), "saturation");
  const json& first = report.at("first_diverging");
  const json& rq = first.at("computation").at("requant").at(0);
  EXPECT_EQ(rq.at("rounded"), std::to_string(first.at("actual").get<int64_t>()));
  EXPECT_EQ(rq.at("clamped"), first.at("expected"));
  EXPECT_EQ(rq.at("acc"), first.at("computation").at("accumulation").at("golden"));
  EXPECT_TRUE(first.at("computation").at("accumulation").at("matches_golden").get<bool>());
}

// ---- Wrong shift. ----

TEST(Compare, WrongShiftIsDiagnosed) {
  const fs::path d = clean_dump(golden(), "shift", "npy");
  IntTensor y = golden_output(golden(), kShiftLayer);
  for (int64_t& v : y.data) v *= 2;
  y.type = IntType{8, false};
  put_npy(d, kShiftLayer, y);
  const Result r = run("compare " + golden().string() + " --actual " + d.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("first diverging layer: " + kShiftLayer), std::string::npos) << r.output;
  EXPECT_NE(diagnosis_of(r.output).find("off by a factor of 2^1: shift wrong"), std::string::npos) << r.output;
  // An accumulator divided by 4 (an arithmetic shift right by 2).
  const fs::path d2 = clean_dump(golden(), "shift_acc", "npy");
  const std::string conv = input_of(golden(), kShiftLayer);
  IntTensor a = golden_output(golden(), conv);
  for (int64_t& v : a.data) v >>= 2;
  put_npy(d2, conv, a);
  const Result r2 = run("compare " + golden().string() + " --actual " + d2.string());
  EXPECT_EQ(r2.status, 1) << r2.output;
  EXPECT_NE(diagnosis_of(r2.output).find("off by a factor of 2^2: shift wrong (actual = floor(expected / 2^2)"), std::string::npos) << r2.output;
  // The conv element's computation: its input window and weights.
  EXPECT_NE(r2.output.find("terms x * w, x from"), std::string::npos) << r2.output;
}

// ---- Transposed layout. ----

IntTensor nhwc(const IntTensor& t) {
  IntTensor o = t;
  const int64_t N = t.shape[0], C = t.shape[1], H = t.shape[2], W = t.shape[3];
  o.shape = {N, H, W, C};
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) o.data[static_cast<size_t>(((n * H + h) * W + w) * C + c)] = t.at(n, c, h, w);
  return o;
}

TEST(Compare, TransposedLayoutIsDiagnosed) {
  // npy in NHWC shape, and a flat hex dump in NHWC order.
  const IntTensor t = nhwc(golden_output(golden(), kLayoutLayer));
  const fs::path d = clean_dump(golden(), "layout", "npy");
  put_npy(d, kLayoutLayer, t);
  const Result r = run("compare " + golden().string() + " --actual " + d.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(diagnosis_of(r.output).find("transposed layout: the dump holds the golden tensor in NHWC order where NCHW was expected"), std::string::npos)
      << r.output;
  const fs::path h = clean_dump(golden(), "layout_hex", "hex");
  write_file(h / (fc(kLayoutLayer) + ".hex"), vectors::encode_hex(t));
  const Result rh = run("compare " + golden().string() + " --actual " + h.string() + " --format hex");
  EXPECT_EQ(rh.status, 1) << rh.output;
  EXPECT_NE(rh.output.find("first diverging layer: " + kLayoutLayer), std::string::npos) << rh.output;
  EXPECT_NE(diagnosis_of(rh.output).find("transposed layout"), std::string::npos) << rh.output;
}

// ---- One corrupted channel. ----

TEST(Compare, OneCorruptedChannelIsDiagnosed) {
  const fs::path d = clean_dump(golden(), "channel", "csv");
  IntTensor y = golden_output(golden(), kChannelLayer);
  const int64_t C = y.shape[1], per = y.numel() / C;
  for (int64_t i = 0; i < per; ++i) {
    int64_t& v = y.data[static_cast<size_t>(7 * per + i)];
    v = (v + 5) % 16;
  }
  (void)C;
  write_file(d / (fc(kChannelLayer) + ".csv"), vectors::encode_csv(y));
  const Result r = run("compare " + golden().string() + " --actual " + d.string() + " --format csv");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("first diverging layer: " + kChannelLayer), std::string::npos) << r.output;
  EXPECT_NE(diagnosis_of(r.output).find("one corrupted channel: all " + std::to_string(per) + " differences are in output channel 7 (of 256"),
            std::string::npos)
      << r.output;
}

// Faults in two layers: the first in network order is reported; random noise is "unexplained".
TEST(Compare, FirstDivergingLayerInNetworkOrderAndUnexplained) {
  const fs::path d = clean_dump(golden(), "two_faults", "npy");
  IntTensor late = golden_output(golden(), kChannelLayer);
  for (int64_t& v : late.data) v = 15 - v;
  put_npy(d, kChannelLayer, late);
  IntTensor early = golden_output(golden(), kSatLayer);
  uint64_t s = 12345;
  int64_t changed = 0;
  for (int64_t& v : early.data) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    if ((s >> 60) == 0) {
      v = (v + 1 + static_cast<int64_t>((s >> 32) % 14)) % 16;
      ++changed;
    }
  }
  ASSERT_GT(changed, 10);
  put_npy(d, kSatLayer, early);
  const Result r = run("compare " + golden().string() + " --actual " + d.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("first diverging layer: " + kSatLayer), std::string::npos) << r.output;
  EXPECT_NE(diagnosis_of(r.output).find("unexplained: " + std::to_string(changed) + " elements differ"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("verdict: DIVERGES at " + kSatLayer), std::string::npos) << r.output;
}

// ---- Bad input: exit 2, naming the file and what was expected. ----

TEST(Compare, BadInputExitsTwoNamingTheFile) {
  const std::string g = golden().string();
  Result r = run("compare " + g + " --actual " + (root() / "no_such_dump").string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("no_such_dump: no such directory"), std::string::npos) << r.output;

  fs::create_directories(root() / "empty_dump");
  r = run("compare " + g + " --actual " + (root() / "empty_dump").string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("no layer file found"), std::string::npos) << r.output;

  const fs::path b = clean_dump(golden(), "bad_bin", "bin");
  const fs::path f = b / (fc(kSatLayer) + ".bin");
  std::string bytes = read_file(f);
  bytes.pop_back();
  write_file(f, bytes);
  r = run("compare " + g + " --actual " + b.string() + " --format bin");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find(f.string() + ": " + std::to_string(bytes.size()) + " bytes, expected " + std::to_string(bytes.size() + 1)),
            std::string::npos)
      << r.output;

  const fs::path n = clean_dump(golden(), "bad_shape", "npy");
  IntTensor y = golden_output(golden(), kSatLayer);
  y.shape = {1, 64, 256};
  put_npy(n, kSatLayer, y);
  r = run("compare " + g + " --actual " + n.string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find(fc(kSatLayer) + ".npy: shape: shape [1, 64, 256], expected [1, 64, 16, 16]"), std::string::npos) << r.output;

  const fs::path h = clean_dump(golden(), "bad_hex", "hex");
  const fs::path hf = h / (fc(kSatLayer) + ".hex");
  std::string hex = read_file(hf);
  hex.replace(2, 1, "g");  // line 2
  write_file(hf, hex);
  r = run("compare " + g + " --actual " + h.string() + " --format hex");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find(hf.string() + ": line 2: \"g\" is not a hex word"), std::string::npos) << r.output;

  // A 4-bit output holds no 8-bit word.
  hex = read_file(golden() / "in0000" / (fc(kSatLayer) + ".output.hex"));
  write_file(hf, "1f\n" + hex.substr(2));
  r = run("compare " + g + " --actual " + h.string() + " --format hex");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("wider than the stated 4-bit word (uint4)"), std::string::npos) << r.output;

  const fs::path c = clean_dump(golden(), "bad_csv", "csv");
  const fs::path cf = c / (fc(kSatLayer) + ".csv");
  std::string csv = read_file(cf);
  csv.replace(0, 1, "x");
  write_file(cf, csv);
  r = run("compare " + g + " --actual " + c.string() + " --format csv");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find(cf.string() + ": line 1, field 1: \"x"), std::string::npos) << r.output;

  r = run("compare " + g + " --actual " + c.string() + " --format h");
  EXPECT_EQ(r.status, 2) << r.output;

  // A golden directory that fails its checksums is refused.
  const fs::path broken = root() / "broken_golden";
  fs::remove_all(broken);
  fs::copy(golden(), broken, fs::copy_options::recursive);
  const fs::path bf = broken / "in0000" / (fc(kSatLayer) + ".output.npy");
  std::string gb = read_file(bf);
  gb.back() ^= 1;
  write_file(bf, gb);
  r = run("compare " + broken.string() + " --actual " + clean_dump(golden(), "for_broken", "npy").string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find(bf.string()), std::string::npos) << r.output;
}

// ---- explain ----

TEST(Explain, ChainOfOneElementAndOneLevelUp) {
  const std::string g = golden().string();
  const Result r = run("explain " + g + " --layer " + kSatLayer + " --index 0,5,3,7");
  EXPECT_EQ(r.status, 0) << r.output;
  for (const char* s : {"accumulator: features.stage2.unit1.dw_conv.conv [0, 5, 3, 7]", "sum of 9 terms x * w", "recomputed", "matches the golden value",
                        "p = alpha * acc + delta = ", "half_even(p) = ", "one level up: the largest-contribution input element is features.stage1.unit1.pw_conv.activ"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << "\n" << r.output;

  const Result j = run_stdout("explain " + g + " --layer " + kSatLayer + " --index 0,5,3,7 --json");
  ASSERT_EQ(j.status, 0) << j.output;
  const json chain = json::parse(j.output).at("chain");
  ASSERT_EQ(chain.size(), 2u);
  const IntTensor acc = golden_output(golden(), input_of(golden(), kSatLayer));
  const IntTensor out = golden_output(golden(), kSatLayer);
  EXPECT_EQ(chain[0].at("output"), out.at(0, 5, 3, 7));
  const json& rq = chain[0].at("requant").at(0);
  EXPECT_EQ(rq.at("acc"), acc.at(0, 5, 3, 7));
  EXPECT_EQ(rq.at("channel"), 5);
  // p recomputed here from the stored alpha and delta.
  const std::vector<Rational> p = pre_rounding(golden(), kSatLayer);
  const size_t flat = static_cast<size_t>(((0 * 64 + 5) * 16 + 3) * 16 + 7);
  const Rational pv = p[flat];
  const std::string ps = boost::multiprecision::denominator(pv) == 1 ? boost::multiprecision::numerator(pv).str()
                                                                    : boost::multiprecision::numerator(pv).str() + "/" + boost::multiprecision::denominator(pv).str();
  EXPECT_EQ(rq.at("p"), ps);
  EXPECT_EQ(rq.at("clamped"), out.at(0, 5, 3, 7));
  const json& terms = chain[0].at("accumulation").at("terms");
  EXPECT_EQ(terms.size(), 9u);
  // The next link is the largest |x * w| of the window.
  int64_t best = -1;
  json best_index;
  for (const json& t : terms) {
    if (t.at("padding").get<bool>()) continue;
    const int64_t v = std::abs(t.at("x").get<int64_t>() * t.at("w").get<int64_t>());
    if (v > best) best = v, best_index = t.at("index");
  }
  EXPECT_EQ(chain[1].at("node"), "features.stage1.unit1.pw_conv.activ");
  EXPECT_EQ(chain[1].at("index"), best_index);
  EXPECT_EQ(chain[1].at("accumulation").at("terms").size(), 32u);

  // Deeper chains, and the pooling / linear end of the network.
  const Result deep = run_stdout("explain " + g + " --layer output --index 0,3 --depth 3 --json");
  ASSERT_EQ(deep.status, 0) << deep.output;
  const json dc = json::parse(deep.output).at("chain");
  ASSERT_EQ(dc.size(), 4u);
  EXPECT_EQ(dc[0].at("op"), "linear");
  EXPECT_EQ(dc[1].at("op"), "flatten");
  EXPECT_EQ(dc[2].at("op"), "avg_pool2d");
  EXPECT_EQ(dc[3].at("op"), "requant");
  EXPECT_TRUE(dc[0].at("accumulation").at("matches_golden").get<bool>());
  EXPECT_TRUE(dc[2].at("accumulation").at("matches_golden").get<bool>());
}

TEST(Explain, BadRequestsExitTwo) {
  const std::string g = golden().string();
  Result r = run("explain " + g + " --layer " + kSatLayer + " --index 0,64,0,0");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("[0, 64, 0, 0] outside the shape [1, 64, 16, 16]"), std::string::npos) << r.output;
  r = run("explain " + g + " --layer " + kSatLayer + " --index 0,1,2");
  EXPECT_EQ(r.status, 2) << r.output;
  r = run("explain " + g + " --layer no.such.layer --index 0,0,0,0");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("no node 'no.such.layer'"), std::string::npos) << r.output;
  r = run("explain " + g + " --layer " + kSatLayer + " --index 0,a,0,0");
  EXPECT_EQ(r.status, 2) << r.output;
}

// Under --layout nhwc the index and the dump are NHWC; compare and explain work in the stated layout.
TEST(Compare, NhwcDirectory) {
  const fs::path g = root() / "nhwc";
  const Result v = run("vectors " + kV1 + " --layout nhwc --out " + g.string());
  ASSERT_EQ(v.status, 0) << v.output;
  const fs::path d = clean_dump(g, "nhwc_clean", "npy");
  EXPECT_EQ(run("compare " + g.string() + " --actual " + d.string()).status, 0);
  // The NCHW tensor where NHWC was expected.
  const json run0 = manifest(g).at("runs").at(0);
  const json& t = run0.at("tensors").at("in0000/" + kLayoutLayer + ".output");
  IntTensor y = read_npy((g / t.at("files").at("npy").get<std::string>()).string());
  ASSERT_EQ(y.shape, (Shape{1, 16, 16, 128}));
  IntTensor nchw = y;
  nchw.shape = {1, 128, 16, 16};
  for (int64_t c = 0; c < 128; ++c)
    for (int64_t h = 0; h < 16; ++h)
      for (int64_t w = 0; w < 16; ++w) nchw.at(0, c, h, w) = y.data[static_cast<size_t>((h * 16 + w) * 128 + c)];
  put_npy(d, kLayoutLayer, nchw);
  const Result r = run("compare " + g.string() + " --actual " + d.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(diagnosis_of(r.output).find("in NCHW order where NHWC was expected"), std::string::npos) << r.output;
  // explain takes the index in NHWC: [0, h, w, c].
  const Result e = run_stdout("explain " + g.string() + " --layer " + kSatLayer + " --index 0,3,7,5 --json");
  ASSERT_EQ(e.status, 0);
  const json ch = json::parse(e.output).at("chain");
  EXPECT_EQ(ch[0].at("index"), json::array({0, 3, 7, 5}));
  EXPECT_EQ(ch[0].at("requant").at(0).at("channel"), 5);
  const Result n = run_stdout("explain " + golden().string() + " --layer " + kSatLayer + " --index 0,5,3,7 --json");
  EXPECT_EQ(json::parse(n.output).at("chain")[0].at("requant").at(0).at("p"), ch[0].at("requant").at(0).at("p"));
}

}  // namespace
}  // namespace qv

namespace qv {
namespace {

// The requantization scale off by 2: every output is clamp(half_even(2 * p)), not simply twice the
// golden value (the clamp still applies).
TEST(Compare, RequantScaleOffByTwoIsDiagnosed) {
  const fs::path d = clean_dump(golden(), "scale", "npy");
  const std::vector<Rational> p = pre_rounding(golden(), kShiftLayer);
  IntTensor y = golden_output(golden(), kShiftLayer);
  int64_t saturated = 0;
  for (size_t i = 0; i < y.data.size(); ++i) {
    const BigInt v = round_rational(p[i] * 2, Rounding::half_even);
    saturated += v > 15 ? 1 : 0;
    y.data[i] = clamp(v, 0, 15);
  }
  ASSERT_GT(saturated, 0);  // so that "actual = expected * 2" cannot explain it
  put_npy(d, kShiftLayer, y);
  const Result r = run("compare " + golden().string() + " --actual " + d.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(diagnosis_of(r.output).find("off by a factor of 2^1: shift wrong (every output equals clamp(half_even(2^1 * p))"), std::string::npos)
      << r.output;
}

// Several inputs: --run picks the run, and the dump may keep the run directory.
TEST(Compare, RunOfAMultiInputDirectory) {
  const fs::path g = root() / "two_inputs";
  const Result v = run("vectors " + kV1 + " --inputs 2 --out " + g.string());
  ASSERT_EQ(v.status, 0) << v.output;
  const fs::path d = root() / "two_inputs_dump";
  fs::remove_all(d);
  fs::create_directories(d / "in0001");
  for (const auto& e : fs::directory_iterator(g / "in0001"))
    if (e.path().string().ends_with(".output.npy")) fs::copy_file(e.path(), d / "in0001" / e.path().filename());
  EXPECT_EQ(run("compare " + g.string() + " --actual " + d.string() + " --run in0001").status, 0);
  // Against the other input's golden values, the run differs (the first layer already).
  const Result r = run("compare " + g.string() + " --actual " + (d / "in0001").string() + " --run in0000");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("first diverging layer: input_pixels"), std::string::npos) << r.output;
  const Result bad = run("compare " + g.string() + " --actual " + d.string() + " --run in0007");
  EXPECT_EQ(bad.status, 2) << bad.output;
  EXPECT_NE(bad.output.find("no run 'in0007'"), std::string::npos) << bad.output;
}

// MobileNetV2 under PACT: residual adds (add_requant) explained branch by branch; a clean dump passes
// and a floor-rounded requant layer is diagnosed.
TEST(Compare, MobileNetV2AddRequant) {
  const fs::path g = root() / "v2";
  const Result v = run("vectors --model mobilenet_v2 --config pact.json --resolution 64 --threads 2 --out " + g.string());
  ASSERT_EQ(v.status, 0) << v.output;
  const fs::path d = clean_dump(g, "v2_clean", "npy");
  const Result ok = run("compare " + g.string() + " --actual " + d.string());
  EXPECT_EQ(ok.status, 0) << ok.output;
  const Result e = run_stdout("explain " + g.string() + " --layer features.2.add.quant.sum --index 0,3,5,5 --json");
  ASSERT_EQ(e.status, 0) << e.output;
  const json chain = json::parse(e.output).at("chain");
  ASSERT_EQ(chain.size(), 2u);
  const json& rq = chain[0].at("requant");
  ASSERT_EQ(rq.size(), 2u);
  int64_t sum = 0;
  for (const json& b : rq) sum += b.at("clamped").get<int64_t>();
  EXPECT_EQ(chain[0].at("output").get<int64_t>(), sum);
  EXPECT_EQ(chain[1].at("op"), "requant");
  // A PACT requant layer (8-bit) with floor instead of half_even.
  const std::string layer = "features.2.residual_branch.2.1.quant";
  const std::vector<Rational> p = pre_rounding(g, layer);
  const json rqf = json::parse(read_file(g / "in0000" / (fc(layer) + ".requant.json"))).at("exact");
  IntTensor y = golden_output(g, layer);
  for (size_t i = 0; i < y.data.size(); ++i)
    y.data[i] = clamp(round_rational(p[i], Rounding::floor), rqf.at("lo").get<int64_t>(), rqf.at("hi").get<int64_t>());
  put_npy(d, layer, y);
  const Result r = run("compare " + g.string() + " --actual " + d.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("first diverging layer: " + layer), std::string::npos) << r.output;
  EXPECT_NE(diagnosis_of(r.output).find("differing outputs match floor"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace qv
