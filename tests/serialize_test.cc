// IR files: a network with every op and every requantization form survives save and load exactly;
// the file layout is the documented one (narrowest storage, little-endian, 8-byte alignment, stable
// key order); saving is deterministic and atomic. Refusal of damaged files is in bad_ir_test.cc.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "ir/compare.h"
#include "ir/crc32.h"
#include "ir/error.h"
#include "ir/serialize.h"
#include "tests/support/ir_files.h"

namespace qv {
namespace {

namespace fs = std::filesystem;
using qv::testing::every_op_network;
using qv::testing::read_bytes;
using qv::testing::TempDirTest;
using json = nlohmann::ordered_json;

class Serialize : public TempDirTest {};

TEST_F(Serialize, EveryOpAndRequantFormRoundTrips) {
  const Network net = every_op_network();
  // Every op kind and every requant form is present, so the round trip covers them all.
  std::set<OpKind> kinds;
  std::set<RequantForm> forms;
  for (const Node& n : net.nodes) {
    kinds.insert(n.kind());
    if (const auto* rq = std::get_if<RequantOp>(&n.op)) forms.insert(rq->requant.kind());
  }
  ASSERT_EQ(kinds.size(), std::variant_size_v<Op>);
  ASSERT_EQ(forms.size(), 4u);

  save_network(net, path("net.json"));
  const Network back = load_network(path("net.json"));
  std::string difference;
  EXPECT_TRUE(same_network(net, back, &difference)) << difference;
  // Huge rationals travel as exact text, not as doubles.
  EXPECT_NE(read_bytes(path("net.json")).find("\"1267650600228229401496703205377/717897987691852588770249\""),
            std::string::npos);
}

TEST_F(Serialize, SavingTwiceGivesIdenticalBytesAndNoTemporaries) {
  const Network net = every_op_network();
  save_network(net, path("a.json"));
  const std::string json1 = read_bytes(path("a.json")), bin1 = read_bytes(path("a.bin"));
  save_network(load_network(path("a.json")), path("a.json"));  // overwrite in place, from the reloaded copy
  EXPECT_EQ(read_bytes(path("a.json")), json1);
  EXPECT_EQ(read_bytes(path("a.bin")), bin1);
  std::set<std::string> files;
  for (const auto& e : fs::directory_iterator(dir_)) files.insert(e.path().filename().string());
  EXPECT_EQ(files, (std::set<std::string>{"a.json", "a.bin"}));
}

TEST_F(Serialize, AFailedSaveLeavesNoTemporaryAndKeepsTheOldFile) {
  save_network(every_op_network(), path("net.json"));
  const std::string before = read_bytes(path("net.json"));
  // A folder where the .bin should go makes the rename fail after the temporary was written.
  fs::remove(path("net.bin"));
  fs::create_directories(path("net.bin") + "/occupied");
  EXPECT_THROW(save_network(every_op_network(), path("net.json")), InputError);
  EXPECT_EQ(read_bytes(path("net.json")), before);
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

TEST_F(Serialize, BinPathIsRelativeAndBesideTheJson) {
  save_network(every_op_network(), path("model.json"));
  const json j = json::parse(read_bytes(path("model.json")));
  EXPECT_EQ(j["tensors"]["file"], "model.bin");
  EXPECT_EQ(j["tensors"]["bytes"], read_bytes(path("model.bin")).size());
  char crc[16];
  std::snprintf(crc, sizeof crc, "%08x", crc32(read_bytes(path("model.bin"))));
  EXPECT_EQ(j["tensors"]["crc32"], crc);
  // Without a .json suffix, .bin is appended.
  save_network(every_op_network(), path("plain"));
  EXPECT_TRUE(fs::exists(path("plain.bin")));
  EXPECT_EQ(json::parse(read_bytes(path("plain")))["tensors"]["file"], "plain.bin");
}

TEST_F(Serialize, KeysComeInTheDocumentedOrder) {
  save_network(every_op_network(), path("net.json"));
  const json j = json::parse(read_bytes(path("net.json")));
  auto keys = [](const json& o) {
    std::vector<std::string> k;
    for (auto it = o.begin(); it != o.end(); ++it) k.push_back(it.key());
    return k;
  };
  EXPECT_EQ(keys(j), (std::vector<std::string>{"format", "version", "name", "output", "metadata", "tensors", "nodes"}));
  EXPECT_EQ(j["format"], "qverify-ir");
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(keys(j["nodes"][1]), (std::vector<std::string>{"name", "op", "inputs", "output", "weight", "bias", "stride",
                                                           "padding", "pad_value", "dilation", "groups"}));
  EXPECT_EQ(keys(j["nodes"][1]["weight"]),
            (std::vector<std::string>{"shape", "type", "layout", "scale", "storage", "offset", "count", "crc32"}));
  EXPECT_EQ(keys(j["nodes"][1]["bias"]),  // no scale key when there is no scale
            (std::vector<std::string>{"shape", "type", "layout", "storage", "offset", "count", "crc32"}));
  EXPECT_EQ(keys(j["nodes"][2]["requant"]), (std::vector<std::string>{"form", "lo", "hi", "rounding", "alpha", "delta"}));
  // Two-space indentation.
  EXPECT_EQ(read_bytes(path("net.json")).substr(0, 27), "{\n  \"format\": \"qverify-ir\",");
}

// Storage is the narrowest standard integer holding the declared type; values are little-endian two's
// complement at 8-byte-aligned offsets.
TEST_F(Serialize, TensorStorageIsNarrowestLittleEndianAligned) {
  struct Case {
    IntType type;
    const char* storage;
    size_t bytes;
  };
  const Case cases[] = {{{1, true}, "int8", 1},      {{8, true}, "int8", 1},     {{8, false}, "uint8", 1},
                        {{9, true}, "int16", 2},     {{16, false}, "uint16", 2}, {{17, false}, "uint32", 4},
                        {{32, true}, "int32", 4},    {{33, true}, "int64", 8},   {{32, false}, "uint32", 4},
                        {{33, false}, "int64", 8},   {{63, false}, "int64", 8},  {{64, true}, "int64", 8}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.type.name());
    NetworkBuilder b("storage");
    b.input("x", {1, 1}, IntType{1, false});
    IntTensor w({3, 1}, c.type, "OI");
    w.data = {c.type.min(), c.type.max(), c.type.is_signed ? -1 : 1};
    // Three weights of a one-feature input: each output is w * x, inside any type holding w.
    b.linear("fc", "x", w);
    const Network net = b.build("fc");
    save_network(net, path("s.json"));
    const json t = json::parse(read_bytes(path("s.json")))["nodes"][1]["weight"];
    EXPECT_EQ(t["storage"], c.storage);
    EXPECT_EQ(t["offset"], 0);
    EXPECT_EQ(t["count"], 3);
    const std::string bin = read_bytes(path("s.bin"));
    ASSERT_EQ(bin.size(), 3 * c.bytes);
    for (size_t i = 0; i < 3; ++i) {
      uint64_t u = 0;
      for (size_t k = 0; k < c.bytes; ++k) u |= uint64_t{static_cast<unsigned char>(bin[i * c.bytes + k])} << (8 * k);
      const uint64_t mask = c.bytes == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * c.bytes)) - 1;
      EXPECT_EQ(u, static_cast<uint64_t>(w.data[i]) & mask) << "element " << i;
    }
    std::string difference;
    EXPECT_TRUE(same_network(net, load_network(path("s.json")), &difference)) << difference;
  }
}

TEST_F(Serialize, EveryTensorStartsAtAMultipleOfEight) {
  save_network(every_op_network(), path("net.json"));
  const json j = json::parse(read_bytes(path("net.json")));
  int tensors = 0;
  int64_t previous_end = 0;
  for (const auto& n : j["nodes"])
    for (const char* key : {"weight", "bias"})
      if (n.contains(key)) {
        const int64_t offset = n[key]["offset"];
        EXPECT_EQ(offset % 8, 0) << n["name"] << "." << key;
        EXPECT_GE(offset, previous_end);
        EXPECT_LT(offset - previous_end, 8);  // no more padding than alignment needs
        const std::string storage = n[key]["storage"];
        previous_end = offset + n[key]["count"].get<int64_t>() * (std::stoi(storage.substr(storage.find('t') + 1)) / 8);
        ++tensors;
      }
  EXPECT_EQ(tensors, 4);  // conv weight and bias, fc weight and bias
  EXPECT_EQ(previous_end, j["tensors"]["bytes"].get<int64_t>());
}

TEST(Crc32, StandardCheckValue) {
  EXPECT_EQ(crc32(std::string_view("123456789")), 0xCBF43926u);
  EXPECT_EQ(crc32(std::string_view("")), 0u);
  // Continuing a running checksum equals checksumming the concatenation.
  EXPECT_EQ(crc32(std::string_view("56789"), crc32(std::string_view("1234"))), 0xCBF43926u);
}

}  // namespace
}  // namespace qv
