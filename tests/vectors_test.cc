// `qverify vectors`, `qverify check DIR` and `qverify vectors-merge` as a user meets them: run as child
// processes (QVERIFY set by tests/meson.build), every file read back by readers written here from each
// format's own rules (docs/vectors.md), not by qverify's code.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "ir/crc32.h"
#include "vectors/golden.h"
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

Result run(const std::string& args, const std::string& env = "") {
  const std::string cmd = env + (env.empty() ? "" : " ") + exe() + " " + args + " 2>&1";
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

const std::string kFast = "--resolution 64 --threads 2";
const std::string kV2 = "--model mobilenet_v2 --config pact.json " + kFast;
const std::string kV1 = "--model mobilenet_v1 --config brevitas_4b.json " + kFast;

fs::path root() {
  static const fs::path r = [] {
    const fs::path p = fs::temp_directory_path() / ("qverify_vectors_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
  }();
  return r;
}

// Removes the scratch directory after the last test.
class Cleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root(), ec);
  }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new Cleanup);

// Directories several tests read, each generated once.
fs::path generated(const std::string& name, const std::string& args) {
  static std::map<std::string, fs::path> made;
  if (auto it = made.find(name); it != made.end()) return it->second;
  const fs::path d = root() / name;
  const Result r = run("vectors " + args + " --out " + d.string());
  EXPECT_EQ(r.status, 0) << r.output;
  made[name] = d;
  return d;
}

// All four formats of MobileNet V1 under 4-bit Brevitas (4-bit words, signed and unsigned).
fs::path v1_all() { return generated("v1_all", kV1 + " --formats npy,hex,bin,csv,h"); }
// MobileNetV2 under PACT, npy and hex.
fs::path v2() { return generated("v2", kV2 + " --formats npy,hex"); }

json manifest(const fs::path& d) { return json::parse(read_file(d / "manifest.json")); }

void copy_dir(const fs::path& from, const fs::path& to) {
  fs::remove_all(to);
  fs::copy(from, to, fs::copy_options::recursive);
}

// ---- Independent readers, from each format's rules. ----

struct Npy {
  std::string descr;
  std::vector<int64_t> shape;
  std::vector<int64_t> data;
};

// NumPy's format spec: magic \x93NUMPY, major, minor, header length (u16 LE for 1.x, u32 LE for 2.x/3.x),
// an ASCII Python dict literal padded with spaces and ending in '\n' so that the data start is a multiple
// of 64, then the array in C order.
Npy read_npy_independently(const std::string& b) {
  Npy out;
  EXPECT_GE(b.size(), 10u);
  EXPECT_EQ(b.substr(0, 6), std::string("\x93NUMPY"));
  const int major = static_cast<unsigned char>(b[6]);
  size_t hlen = 0, at = 0;
  if (major == 1) {
    hlen = static_cast<unsigned char>(b[8]) | (static_cast<size_t>(static_cast<unsigned char>(b[9])) << 8);
    at = 10;
  } else {
    for (int i = 0; i < 4; ++i) hlen |= static_cast<size_t>(static_cast<unsigned char>(b[8 + static_cast<size_t>(i)])) << (8 * i);
    at = 12;
  }
  EXPECT_EQ((at + hlen) % 64, 0u);
  const std::string header = b.substr(at, hlen);
  EXPECT_EQ(header.back(), '\n');
  std::smatch m;
  EXPECT_TRUE(std::regex_search(header, m, std::regex(R"('descr':\s*'([<|>][iu][1248])')"))) << header;
  out.descr = m[1];
  EXPECT_TRUE(std::regex_search(header, std::regex(R"('fortran_order':\s*False)"))) << header;
  EXPECT_TRUE(std::regex_search(header, m, std::regex(R"('shape':\s*\(([0-9, ]*)\))"))) << header;
  const std::string dims = m[1];
  const std::regex number("[0-9]+");
  for (std::sregex_iterator i(dims.begin(), dims.end(), number), e; i != e; ++i) out.shape.push_back(std::stoll(i->str()));
  const bool is_signed = out.descr[1] == 'i';
  const int width = out.descr[2] - '0';
  EXPECT_NE(out.descr[0], '>');
  size_t n = 1;
  for (int64_t d : out.shape) n *= static_cast<size_t>(d);
  const size_t data_at = at + hlen;
  EXPECT_EQ(b.size(), data_at + n * static_cast<size_t>(width));
  for (size_t i = 0; i < n && data_at + (i + 1) * static_cast<size_t>(width) <= b.size(); ++i) {
    uint64_t u = 0;
    for (int k = 0; k < width; ++k) u |= uint64_t{static_cast<unsigned char>(b[data_at + i * static_cast<size_t>(width) + static_cast<size_t>(k)])} << (8 * k);
    if (is_signed && width < 8 && (u >> (8 * width - 1)) & 1) u |= ~uint64_t{0} << (8 * width);
    out.data.push_back(static_cast<int64_t>(u));
  }
  return out;
}

// As $readmemh: whitespace-separated hex words; each one a two's complement value of `width` bits.
std::vector<int64_t> read_hex_independently(const std::string& b, int width, bool is_signed) {
  std::vector<int64_t> out;
  size_t i = 0;
  while (i < b.size()) {
    while (i < b.size() && std::isspace(static_cast<unsigned char>(b[i]))) ++i;
    if (i >= b.size()) break;
    uint64_t u = 0;
    size_t digits = 0;
    for (; i < b.size() && std::isxdigit(static_cast<unsigned char>(b[i])); ++i, ++digits) {
      const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(b[i])));
      u = (u << 4) | static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    EXPECT_EQ(static_cast<int>(digits) * 4, width) << "word " << out.size();
    EXPECT_TRUE(i >= b.size() || b[i] == '\n') << "word " << out.size();
    if (is_signed && width < 64 && (u >> (width - 1)) & 1) u |= ~uint64_t{0} << width;
    out.push_back(static_cast<int64_t>(u));
    if (digits == 0) break;
  }
  return out;
}

std::vector<int64_t> read_bin_independently(const std::string& b, const std::string& storage) {
  const bool is_signed = storage[0] == 'i';
  const int bytes = std::stoi(storage.substr(is_signed ? 3 : 4)) / 8;
  EXPECT_EQ(b.size() % static_cast<size_t>(bytes), 0u);
  std::vector<int64_t> out;
  for (size_t at = 0; at + static_cast<size_t>(bytes) <= b.size(); at += static_cast<size_t>(bytes)) {
    uint64_t u = 0;
    for (int k = 0; k < bytes; ++k) u |= uint64_t{static_cast<unsigned char>(b[at + static_cast<size_t>(k)])} << (8 * k);
    if (is_signed && bytes < 8 && (u >> (8 * bytes - 1)) & 1) u |= ~uint64_t{0} << (8 * bytes);
    out.push_back(static_cast<int64_t>(u));
  }
  return out;
}

// Field by field (RFC 4180 records of unquoted integers): every line holds the last dimension.
std::vector<int64_t> read_csv_independently(const std::string& b, int64_t row_length) {
  std::vector<int64_t> out;
  size_t line_start = 0;
  while (line_start < b.size()) {
    size_t end = b.find('\n', line_start);
    EXPECT_NE(end, std::string::npos) << "the last line must end in \\n";
    if (end == std::string::npos) end = b.size();
    const std::string line = b.substr(line_start, end - line_start);
    int64_t fields = 0;
    size_t f = 0;
    while (true) {
      const size_t comma = line.find(',', f);
      const std::string field = line.substr(f, comma == std::string::npos ? std::string::npos : comma - f);
      const size_t digits_at = !field.empty() && field[0] == '-' ? 1 : 0;
      EXPECT_TRUE(field.size() > digits_at && field.find_first_not_of("0123456789", digits_at) == std::string::npos) << "field '" << field << "'";
      out.push_back(std::stoll(field));
      ++fields;
      if (comma == std::string::npos) break;
      f = comma + 1;
    }
    EXPECT_EQ(fields, row_length);
    line_start = end + 1;
  }
  return out;
}

// The C header: its shape macros and the array initializer's integer constants.
std::vector<int64_t> read_c_header_independently(const std::string& b, const std::vector<int64_t>& shape, const std::string& storage) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(b, m, std::regex(R"(#define ([A-Z0-9_]+)_SIZE ([0-9]+))")));
  const std::string upper = m[1];
  int64_t size = 1;
  for (int64_t d : shape) size *= d;
  EXPECT_EQ(std::stoll(m[2]), size);
  EXPECT_NE(b.find("#define " + upper + "_RANK " + std::to_string(shape.size()) + "\n"), std::string::npos);
  for (size_t i = 0; i < shape.size(); ++i)
    EXPECT_NE(b.find("#define " + upper + "_DIM" + std::to_string(i) + " " + std::to_string(shape[i]) + "\n"), std::string::npos) << b.substr(0, 500);
  EXPECT_TRUE(std::regex_search(b, m, std::regex("static const ([a-z0-9]+)_t ([A-Za-z0-9_]+)\\[([0-9]+)\\] = \\{")));
  EXPECT_EQ(m[1].str(), storage);
  const size_t open = b.find('{', static_cast<size_t>(m.position(0))), close = b.find("};", open);
  const std::string body = b.substr(open + 1, close - open - 1);
  // Tokens between commas: an integer literal, INT64_C(v), or the two INT*_MIN spellings.
  std::vector<int64_t> out;
  size_t at = 0;
  while (at < body.size()) {
    size_t comma = body.find(',', at);
    if (comma == std::string::npos) comma = body.size();
    std::string tok = body.substr(at, comma - at);
    at = comma + 1;
    tok.erase(0, tok.find_first_not_of(" \n"));
    tok.erase(tok.find_last_not_of(" \n") + 1);
    if (tok.empty()) continue;
    if (tok == "(-INT64_C(9223372036854775807) - 1)") {
      out.push_back(INT64_MIN);
    } else if (tok == "(-2147483647 - 1)") {
      out.push_back(INT32_MIN);
    } else {
      if (tok.rfind("INT64_C(", 0) == 0 && tok.back() == ')') tok = tok.substr(8, tok.size() - 9);
      if (tok.back() == 'u') tok.pop_back();
      const size_t digits_at = tok[0] == '-' ? 1 : 0;
      EXPECT_TRUE(tok.size() > digits_at && tok.find_first_not_of("0123456789", digits_at) == std::string::npos) << "token '" << tok << "'";
      out.push_back(std::stoll(tok));
    }
  }
  return out;
}

TEST(Vectors, EveryFormatReadsBackToTheSameIntegersAsTheNpy) {
  const fs::path d = v1_all();
  const json m = manifest(d);
  ASSERT_EQ(m.at("runs").size(), 1u);
  const json& run = m.at("runs")[0];
  size_t tensors = 0, narrow = 0;
  for (const auto& [key, t] : run.at("tensors").items()) {
    SCOPED_TRACE(key);
    const auto shape = t.at("shape").get<std::vector<int64_t>>();
    const int bits = t.at("bits").get<int>();
    const bool is_signed = t.at("signed").get<bool>();
    EXPECT_EQ(t.at("hex_word_bits").get<int>(), (bits + 3) / 4 * 4);
    const Npy npy = read_npy_independently(read_file(d / t.at("files").at("npy").get<std::string>()));
    EXPECT_EQ(npy.shape, shape);
    // The .npy dtype is the stated storage.
    const std::string storage = t.at("storage").get<std::string>();
    EXPECT_EQ(npy.descr.substr(1), std::string(storage[0] == 'u' ? "u" : "i") + std::to_string(std::stoi(storage.substr(storage[0] == 'u' ? 4 : 3)) / 8));
    // Every value lies in the declared type.
    const int64_t lo = is_signed ? (bits == 64 ? INT64_MIN : -(int64_t{1} << (bits - 1))) : 0;
    const int64_t hi = is_signed ? (bits == 64 ? INT64_MAX : (int64_t{1} << (bits - 1)) - 1) : (int64_t{1} << bits) - 1;
    for (int64_t v : npy.data) ASSERT_TRUE(v >= lo && v <= hi) << v << " outside " << t.at("type");
    EXPECT_EQ(read_hex_independently(read_file(d / t.at("files").at("hex").get<std::string>()), t.at("hex_word_bits").get<int>(), is_signed), npy.data);
    EXPECT_EQ(read_bin_independently(read_file(d / t.at("files").at("bin").get<std::string>()), storage), npy.data);
    EXPECT_EQ(read_csv_independently(read_file(d / t.at("files").at("csv").get<std::string>()), shape.empty() ? 1 : shape.back()), npy.data);
    EXPECT_EQ(read_c_header_independently(read_file(d / t.at("files").at("h").get<std::string>()), shape, storage), npy.data);
    ++tensors;
    narrow += bits <= 4 ? 1 : 0;
    if (HasFailure()) break;
  }
  EXPECT_GT(tensors, 100u);
  EXPECT_GT(narrow, 10u);  // 4-bit Brevitas: 4-bit words in the hex files
}

TEST(Vectors, ManifestStatesEveryConventionAndEveryNodeHasItsTensors) {
  const fs::path d = v1_all();
  const json m = manifest(d);
  EXPECT_EQ(m.at("format"), "qverify-vectors");
  EXPECT_EQ(m.at("model"), "mobilenet_v1");
  EXPECT_EQ(m.at("config").at("name"), "brevitas_4b.json");
  EXPECT_EQ(m.at("config").at("sha256"), qv::sha256_hex(read_file(m.at("config").at("file").get<std::string>())));
  EXPECT_EQ(m.at("layout"), "NCHW");
  EXPECT_TRUE(m.at("tool").contains("version"));
  const json& run = m.at("runs")[0];
  int convs = 0, requants = 0;
  for (const json& n : run.at("nodes")) {
    const json& t = n.at("tensors");
    EXPECT_TRUE(t.contains("output")) << n.at("name");
    for (const auto& [role, key] : t.items()) EXPECT_TRUE(run.at("tensors").contains(key.get<std::string>())) << key;
    for (const json& in : n.at("input_tensors")) EXPECT_TRUE(run.at("tensors").contains(in.get<std::string>())) << in;
    if (n.at("op") == "conv2d") {
      ++convs;
      EXPECT_TRUE(t.contains("weight"));
    }
    if (n.at("op") == "requant") {
      ++requants;
      const json rq = json::parse(read_file(d / n.at("requant_file").get<std::string>()));
      const json& e = rq.at("exact");
      ASSERT_TRUE(e.contains("alpha")) << rq.dump().substr(0, 300);
      EXPECT_EQ(e.at("alpha").size(), rq.at("channels").get<size_t>());
      EXPECT_TRUE(std::regex_match(e.at("alpha")[0].get<std::string>(), std::regex("-?[0-9]+(/[0-9]+)?")));
      EXPECT_TRUE(e.at("alpha_float")[0].is_number());
      EXPECT_EQ(rq.at("mul_add_shift").at("shift"), 24);
      EXPECT_TRUE(rq.at("thresholds").contains("thresholds_tensor"));
      EXPECT_TRUE(t.contains("rq.mul") && t.contains("rq.thresholds") && t.contains("rq.fps.multiplier"));
      const json& out = run.at("tensors").at(t.at("output").get<std::string>());
      EXPECT_NE(out.at("rounding"), "none");
      EXPECT_TRUE(out.contains("grid"));
    }
  }
  EXPECT_GT(convs, 10);
  EXPECT_GT(requants, 10);
  // Every file is listed with its size, SHA-256 and CRC-32.
  for (const auto& [rel, f] : run.at("files").items()) {
    const std::string bytes = read_file(d / rel);
    EXPECT_EQ(f.at("bytes").get<size_t>(), bytes.size()) << rel;
    EXPECT_EQ(f.at("sha256"), qv::sha256_hex(bytes)) << rel;
  }
}

TEST(Vectors, CHeadersCompile) {
  if (std::system("cc --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "no C compiler";
  const fs::path d = v1_all();
  const json run = manifest(d).at("runs")[0];
  const fs::path c = root() / "headers.c";
  std::string src;
  int n = 0;
  for (const auto& [key, t] : run.at("tensors").items())
    if (n++ < 40) src += "#include \"" + (d / t.at("files").at("h").get<std::string>()).string() + "\"\n";
  src += "int main(void) { return 0; }\n";
  write_file(c, src);
  EXPECT_EQ(std::system(("cc -std=c99 -Wall -Werror -Wno-unused-const-variable -fsyntax-only " + c.string()).c_str()), 0);
}

TEST(Vectors, TwoRunsAreByteIdentical) {
  const fs::path a = v2();
  const fs::path b = root() / "v2_again";
  const Result r = run("vectors " + kV2 + " --formats hex,npy --out " + b.string());
  ASSERT_EQ(r.status, 0) << r.output;
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(a)) {
    if (!e.is_regular_file()) continue;
    const fs::path rel = fs::relative(e.path(), a);
    ASSERT_TRUE(fs::exists(b / rel)) << rel;
    EXPECT_EQ(read_file(e.path()), read_file(b / rel)) << rel;
    ++files;
  }
  size_t other = 0;
  for (const auto& e : fs::recursive_directory_iterator(b)) other += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, other);
  EXPECT_GT(files, 500u);
  fs::remove_all(b);
}

// A tiny XML well-formedness check: balanced tags, quoted attributes, known entities.
bool well_formed_xml(const std::string& x, std::string* why) {
  std::vector<std::string> stack;
  size_t i = 0;
  if (x.rfind("<?xml ", 0) != 0) return *why = "no XML declaration", false;
  i = x.find("?>") + 2;
  bool root_seen = false;
  while (i < x.size()) {
    const size_t lt = x.find('<', i);
    const std::string text = x.substr(i, lt == std::string::npos ? std::string::npos : lt - i);
    for (size_t a = text.find('&'); a != std::string::npos; a = text.find('&', a + 1))
      if (!std::regex_search(text.substr(a), std::regex("^&(amp|lt|gt|quot|apos);"))) return *why = "bad entity in text", false;
    if (lt == std::string::npos) break;
    if (stack.empty() && root_seen) return *why = "content after the root element", false;
    const size_t gt = x.find('>', lt);
    if (gt == std::string::npos) return *why = "unterminated tag", false;
    const std::string tag = x.substr(lt + 1, gt - lt - 1);
    if (tag.empty()) return *why = "empty tag", false;
    if (tag[0] == '/') {
      if (stack.empty() || stack.back() != tag.substr(1)) return *why = "mismatched </" + tag.substr(1) + ">", false;
      stack.pop_back();
    } else {
      const bool self = tag.back() == '/';
      const std::string body = self ? tag.substr(0, tag.size() - 1) : tag;
      std::smatch m;
      if (!std::regex_match(body, m, std::regex(R"(([A-Za-z_][\w.-]*)((\s+[A-Za-z_][\w.-]*="[^"<&]*(&(amp|lt|gt|quot|apos);[^"<&]*)*")*)\s*)")))
        return *why = "bad tag <" + tag.substr(0, 80) + ">", false;
      root_seen = true;
      if (!self) stack.push_back(m[1]);
    }
    i = gt + 1;
  }
  if (!stack.empty()) return *why = "unclosed <" + stack.back() + ">", false;
  return root_seen;
}

TEST(Check, PassesOnAFreshDirectoryAndWritesJUnitWithOneTestcasePerLayer) {
  const fs::path d = v2();
  const fs::path junit = root() / "check.xml";
  const Result r = run("check " + d.string() + " --junit " + junit.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("verdict: no drift"), std::string::npos) << r.output;
  const size_t nodes = manifest(d).at("runs")[0].at("nodes").size();
  const std::string xml = read_file(junit);
  std::string why;
  EXPECT_TRUE(well_formed_xml(xml, &why)) << why << "\n" << xml.substr(0, 1000);
  size_t cases = 0;
  for (size_t at = xml.find("<testcase "); at != std::string::npos; at = xml.find("<testcase ", at + 1)) ++cases;
  EXPECT_EQ(cases, nodes + 1);  // one per layer, plus the checksums
  EXPECT_NE(xml.find("tests=\"" + std::to_string(nodes + 1) + "\" failures=\"0\""), std::string::npos);
  EXPECT_EQ(xml.find("<failure"), std::string::npos);
  // The per-layer report names every layer.
  for (const json& n : manifest(d).at("runs")[0].at("nodes"))
    EXPECT_NE(r.output.find(n.at("name").get<std::string>()), std::string::npos) << n.at("name");
}

TEST(Check, AFlippedByteAMissingFileAnUnknownFileOrAnEditedManifestFailsNamingTheFile) {
  const fs::path d = root() / "tamper";
  copy_dir(v2(), d);
  const std::string victim = "in0000/pilot.2.output.hex";
  ASSERT_TRUE(fs::exists(d / victim));
  const std::string good = read_file(d / victim);
  // A flipped byte.
  std::string bad = good;
  bad[bad.size() / 2] ^= 0x01;
  write_file(d / victim, bad);
  const fs::path junit = root() / "tamper.xml";
  Result r = run("check " + d.string() + " --junit " + junit.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find(victim + ": SHA-256"), std::string::npos) << r.output;
  std::string why;
  const std::string xml = read_file(junit);
  EXPECT_TRUE(well_formed_xml(xml, &why)) << why;
  EXPECT_NE(xml.find("<failure message=\"" + victim), std::string::npos) << xml;
  write_file(d / victim, good);
  // A missing file.
  fs::remove(d / victim);
  r = run("check " + d.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find(victim + ": missing"), std::string::npos) << r.output;
  write_file(d / victim, good);
  // An unknown file.
  write_file(d / "in0000" / "extra.hex", "00\n");
  r = run("check " + d.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("in0000/extra.hex: not listed in the manifest"), std::string::npos) << r.output;
  fs::remove(d / "in0000" / "extra.hex");
  // An edited manifest: one shape changed, still valid JSON with every key.
  const std::string manifest_bytes = read_file(d / "manifest.json");
  std::string edited = manifest_bytes;
  const size_t at = edited.find("\"bits\": 8");
  ASSERT_NE(at, std::string::npos);
  edited.replace(at, 9, "\"bits\": 7");
  write_file(d / "manifest.json", edited);
  r = run("check " + d.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("manifest.json: edited"), std::string::npos) << r.output;
  // Not JSON: exit 2 naming the file.
  write_file(d / "manifest.json", manifest_bytes.substr(0, manifest_bytes.size() / 2));
  r = run("check " + d.string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("manifest.json: not valid JSON"), std::string::npos) << r.output;
  // A missing key: exit 2 naming the key.
  json m = json::parse(manifest_bytes);
  m["runs"][0].erase("files");
  write_file(d / "manifest.json", m.dump(2));
  r = run("check " + d.string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("key 'runs[0].files': missing"), std::string::npos) << r.output;
  m = json::parse(manifest_bytes);
  m["config"].erase("sha256");
  write_file(d / "manifest.json", m.dump(2));
  r = run("check " + d.string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("key 'config.sha256': missing"), std::string::npos) << r.output;
  // Not a vectors directory at all.
  EXPECT_EQ(run("check " + (root() / "absent").string()).status, 2);
  EXPECT_EQ(run("check").status, 2);
}

TEST(Check, AForgedTensorWithConsistentChecksumsIsCaughtByRecomputationAtItsElement) {
  const fs::path d = root() / "forged";
  copy_dir(v2(), d);
  json m = manifest(d);
  json& run0 = m["runs"][0];
  // Change one element of a requant output in the .npy and in the .hex, and re-sign the files and the
  // manifest: the checksums pass, only the recomputation can tell.
  const std::string key = "in0000/pilot.2.output";
  const json t = run0.at("tensors").at(key);
  const std::string npy_rel = t.at("files").at("npy"), hex_rel = t.at("files").at("hex");
  std::string npy = read_file(d / npy_rel);
  const size_t header = npy.size() - 32768;  // uint8, 1x32x32x32
  const size_t flat = 1 * 1024 + 2 * 32 + 3;  // element [0, 1, 2, 3]
  npy[header + flat] = static_cast<char>(static_cast<unsigned char>(npy[header + flat]) ^ 1);
  write_file(d / npy_rel, npy);
  std::string hex = read_file(d / hex_rel);
  char word[4];
  std::snprintf(word, sizeof word, "%02x", static_cast<unsigned char>(npy[header + flat]));
  hex.replace(flat * 3, 2, word);
  write_file(d / hex_rel, hex);
  for (const std::string& rel : {npy_rel, hex_rel}) {
    const std::string bytes = read_file(d / rel);
    char crc[16];
    std::snprintf(crc, sizeof crc, "%08x", crc32(bytes));
    run0["files"][rel] = {{"bytes", bytes.size()}, {"sha256", qv::sha256_hex(bytes)}, {"crc32", crc}};
  }
  write_file(d / "manifest.json", vectors::finish_manifest(m));
  const fs::path junit = root() / "forged.xml";
  const Result r = run("check " + d.string() + " --junit " + junit.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("checksums: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("pilot.2"), std::string::npos);
  EXPECT_NE(r.output.find(npy_rel + ": element [0, 1, 2, 3] (flat " + std::to_string(flat) + ")"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("verdict: DRIFT in 1 of"), std::string::npos) << r.output;
  const std::string xml = read_file(junit);
  std::string why;
  EXPECT_TRUE(well_formed_xml(xml, &why)) << why;
  EXPECT_NE(xml.find("name=\"pilot.2\">"), std::string::npos);
  EXPECT_NE(xml.find("element [0, 1, 2, 3]"), std::string::npos) << xml.substr(0, 2000);
}

size_t entries_named(const fs::path& dir, const std::string& prefix) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().rfind(prefix, 0) == 0 ? 1 : 0;
  return n;
}

TEST(Vectors, AFailedRunLeavesNoDirectory) {
  const fs::path parent = root() / "failing";
  fs::create_directories(parent);
  const fs::path d = parent / "out";
  // A failure after 40 files were written (as a full disk would): internal error, nothing left.
  Result r = run("vectors " + kV1 + " --formats npy,hex --out " + d.string(), "QVERIFY_VECTORS_FAIL_AFTER=40");
  EXPECT_EQ(r.status, 3) << r.output;
  EXPECT_NE(r.output.find("simulated failure after 40 files"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(d));
  EXPECT_EQ(entries_named(parent, "out"), 0u);
  // Bad usage is refused before anything is written.
  r = run("vectors " + kV1 + " --formats npy,xls --out " + d.string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("unknown format 'xls'"), std::string::npos) << r.output;
  r = run("vectors " + kV1 + " --layout nwhc --out " + d.string());
  EXPECT_EQ(r.status, 2) << r.output;
  r = run("vectors " + kV1 + " --shard 2/2 --out " + d.string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_EQ(entries_named(parent, "out"), 0u);
}

TEST(Vectors, AKilledRunLeavesNoDirectory) {
  const fs::path parent = root() / "killed";
  fs::create_directories(parent);
  const fs::path d = parent / "out";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string e = exe();
    const std::string out = d.string();
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    execl(e.c_str(), e.c_str(), "vectors", "--model", "mobilenet_v2", "--config", "pact.json", "--resolution", "64", "--inputs", "3",
          "--formats", "npy,hex,bin,csv,h", "--out", out.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until files are being written into the temporary directory, then SIGTERM.
  bool writing = false;
  for (int i = 0; i < 1200 && !writing; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (const auto& e : fs::directory_iterator(parent))
      if (e.path().filename().string().rfind("out.tmp-", 0) == 0 && fs::exists(e.path() / "in0000")) writing = true;
  }
  EXPECT_TRUE(writing);
  ::kill(pid, SIGTERM);
  // A handler that deadlocks must fail the test, not hang it: 60 s, then SIGKILL.
  int status = 0;
  bool exited = false;
  for (int i = 0; i < 600 && !exited; ++i) {
    exited = ::waitpid(pid, &status, WNOHANG) == pid;
    if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    FAIL() << "qverify vectors did not exit within 60 s of SIGTERM (its signal handler hung)";
  }
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << status;
  EXPECT_FALSE(fs::exists(d));
  EXPECT_EQ(entries_named(parent, "out"), 0u);
}

TEST(Vectors, RefusesANonEmptyDirectoryUnlessForced) {
  const fs::path d = root() / "existing";
  fs::create_directories(d);
  write_file(d / "keep.txt", "mine");
  Result r = run("vectors " + kV1 + " --out " + d.string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("exists and is not empty"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(d / "keep.txt"));
  r = run("vectors " + kV1 + " --out " + d.string() + " --force");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_FALSE(fs::exists(d / "keep.txt"));
  EXPECT_TRUE(fs::exists(d / "manifest.json"));
  EXPECT_EQ(entries_named(root(), "existing."), 0u);  // no temporary or old directory left
}

// NHWC, and the threshold form running (equal to exact on every accumulator, ties included).
TEST(Vectors, NhwcLayoutIsTheNchwTensorsTransposed) {
  const fs::path nchw = v2();
  const fs::path nhwc = generated("v2_nhwc", kV2 + " --layout nhwc --requant thresholds");
  const json a = manifest(nchw).at("runs")[0].at("tensors"), b = manifest(nhwc).at("runs")[0].at("tensors");
  EXPECT_EQ(manifest(nhwc).at("layout"), "NHWC");
  EXPECT_EQ(manifest(nhwc).at("requant"), "thresholds");
  const json rq = json::parse(read_file(nhwc / "in0000/pilot.2.requant.json"));
  EXPECT_EQ(rq.at("form_used"), "thresholds");
  EXPECT_EQ(rq.at("exact").at("rounding"), "half_even");
  int checked = 0;
  for (const std::string key : {"in0000/pilot.2.output", "in0000/pilot.0.weight"}) {
    const json& ta = a.at(key);
    const json& tb = b.at(key);
    EXPECT_EQ(tb.at("layout"), ta.at("layout") == "NCHW" ? "NHWC" : "OHWI");
    const Npy x = read_npy_independently(read_file(nchw / ta.at("files").at("npy").get<std::string>()));
    const Npy y = read_npy_independently(read_file(nhwc / tb.at("files").at("npy").get<std::string>()));
    ASSERT_EQ(x.shape.size(), 4u);
    const int64_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
    EXPECT_EQ(y.shape, (std::vector<int64_t>{n, h, w, c}));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < c; ++k)
        for (int64_t r = 0; r < h; ++r)
          for (int64_t s = 0; s < w; ++s)
            ASSERT_EQ(y.data[static_cast<size_t>(((i * h + r) * w + s) * c + k)], x.data[static_cast<size_t>(((i * c + k) * h + r) * w + s)]);
    ++checked;
  }
  EXPECT_EQ(checked, 2);
  const Result r = run("check " + nhwc.string());
  EXPECT_EQ(r.status, 0) << r.output;
}

TEST(Shards, MergedShardsAreByteIdenticalToOneUnshardedRun) {
  const std::string args = kV1 + " --inputs 3 --formats npy,csv";
  const fs::path whole = generated("whole", args);
  const fs::path s0 = generated("shard0", args + " --shard 0/2");
  const fs::path s1 = generated("shard1", args + " --shard 1/2");
  EXPECT_EQ(manifest(s0).at("runs").size(), 2u);  // inputs 0 and 2
  EXPECT_EQ(manifest(s1).at("runs").size(), 1u);  // input 1
  EXPECT_EQ(manifest(s0).at("shard").at("count"), 2);
  // Seeded inputs are seeds seed, seed+1, ...: different inputs.
  EXPECT_NE(read_file(whole / "in0000/input_pixels.output.npy"), read_file(whole / "in0001/input_pixels.output.npy"));
  const fs::path merged = root() / "merged";
  Result r = run("vectors-merge " + merged.string() + " " + s1.string() + " " + s0.string());
  ASSERT_EQ(r.status, 0) << r.output;
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(whole)) {
    if (!e.is_regular_file()) continue;
    const fs::path rel = fs::relative(e.path(), whole);
    EXPECT_EQ(read_file(e.path()), read_file(merged / rel)) << rel;
    ++files;
  }
  size_t other = 0;
  for (const auto& e : fs::recursive_directory_iterator(merged)) other += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, other);
  // A missing shard, a shard given twice, a corrupted shard: refused, nothing written.
  const fs::path out = root() / "merge_bad";
  r = run("vectors-merge " + out.string() + " " + s0.string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("shard 1/2 is missing"), std::string::npos) << r.output;
  r = run("vectors-merge " + out.string() + " " + s0.string() + " " + s0.string());
  EXPECT_EQ(r.status, 2) << r.output;
  const fs::path broken = root() / "shard1_broken";
  copy_dir(s1, broken);
  const std::string rel = "in0001/input_pixels.output.csv";  // MobileNet V1 reads the pixels themselves
  std::string csv = read_file(broken / rel);
  csv[0] = csv[0] == '1' ? '2' : '1';
  write_file(broken / rel, csv);
  r = run("vectors-merge " + out.string() + " " + s0.string() + " " + broken.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find((broken / rel).string()), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
  // A shard of another job.
  const fs::path other_job = generated("other_shard", kV1 + " --inputs 3 --formats npy --shard 1/2");
  r = run("vectors-merge " + out.string() + " " + s0.string() + " " + other_job.string());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("key '/formats"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
}

TEST(Vectors, FileInputsAreCopiedAndCheckedFromTheDirectory) {
  // A uint8 [64, 64, 3] image as .npy, written here by the format's rules.
  std::string header = "{'descr': '|u1', 'fortran_order': False, 'shape': (64, 64, 3), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ');
  header.push_back('\n');
  std::string npy = std::string("\x93NUMPY\x01\x00", 8);
  npy.push_back(static_cast<char>(header.size() & 0xFF));
  npy.push_back(static_cast<char>(header.size() >> 8));
  npy += header;
  for (int i = 0; i < 64 * 64 * 3; ++i) npy.push_back(static_cast<char>((i * 37 + i / 192 * 11) & 0xFF));
  const fs::path img = root() / "image.npy";
  write_file(img, npy);
  const fs::path d = root() / "from_file";
  Result r = run("vectors " + kV1 + " --out " + d.string() + " --inputs " + img.string());
  ASSERT_EQ(r.status, 0) << r.output;
  const json m = manifest(d);
  EXPECT_EQ(m.at("inputs")[0].at("kind"), "file");
  EXPECT_EQ(m.at("inputs")[0].at("sha256"), qv::sha256_hex(npy));
  EXPECT_EQ(read_file(d / "in0000/input.pixels.npy"), npy);
  fs::remove(img);  // check needs only the directory
  r = run("check " + d.string());
  EXPECT_EQ(r.status, 0) << r.output;
}

}  // namespace
}  // namespace qv
