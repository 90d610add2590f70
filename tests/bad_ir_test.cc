// Damaged IR files are refused with an InputError naming the file, the node and the field, and never
// with any other exception: a table of deliberate corruptions of a valid saved network (every_op),
// applied to the JSON or to the .bin, plus sweeps of truncations and byte mutations that must either
// load or be refused cleanly.
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "ir/error.h"
#include "ir/serialize.h"
#include "tests/support/ir_files.h"

namespace qv {
namespace {

namespace fs = std::filesystem;
using qv::testing::every_op_network;
using qv::testing::read_bytes;
using qv::testing::TempDirTest;
using qv::testing::write_bytes;
using json = nlohmann::ordered_json;

json& node(json& j, const std::string& name) {
  for (json& n : j["nodes"])
    if (n["name"] == name) return n;
  throw std::logic_error("test bug: no node " + name);
}

struct Corruption {
  const char* name;
  // Exactly one of the two is set: an edit of the parsed JSON, or of the raw texts.
  std::function<void(json&)> edit_json;
  std::function<void(std::string& json_text, std::string& bin)> edit_raw;
  std::vector<std::string> expected;  // substrings of the message, besides the file name
};

Corruption json_edit(const char* name, std::function<void(json&)> f, std::vector<std::string> expected) {
  return {name, std::move(f), nullptr, std::move(expected)};
}
Corruption raw_edit(const char* name, std::function<void(std::string&, std::string&)> f, std::vector<std::string> expected) {
  return {name, nullptr, std::move(f), std::move(expected)};
}

const std::vector<Corruption>& corruptions() {
  static const std::vector<Corruption> table = {
      // ---- the .bin ----
      // fc's bias (int32 x 6) is the last tensor: cutting 8 bytes cuts into it.
      raw_edit("truncated bin", [](std::string&, std::string& b) { b.resize(b.size() - 8); },
               {"nodes[8] 'fc': bias.offset", "run past the end of the tensor file", "truncated"}),
      raw_edit("flipped byte in a tensor", [](std::string&, std::string& b) { b[5] = static_cast<char>(b[5] ^ 0x01); },
               {"nodes[1] 'conv': weight.crc32", "CRC-32"}),
      // The conv weight is 36 int8 bytes, so bytes 36..39 are alignment padding before its bias.
      raw_edit("flipped padding byte", [](std::string&, std::string& b) { b[37] = 'x'; }, {"tensors.crc32", "CRC-32"}),
      raw_edit("appended bytes", [](std::string&, std::string& b) { b += "extra"; }, {"tensors.bytes", "truncated or replaced"}),
      raw_edit("deleted bin", [](std::string&, std::string& b) { b = "<delete>"; }, {"tensors.file", "cannot open"}),
      json_edit("bin outside the folder", [](json& j) { j["tensors"]["file"] = "../net.bin"; }, {"tensors.file", "file name beside"}),
      // ---- types ----
      json_edit("bit width 0", [](json& j) { node(j, "conv")["weight"]["type"] = "int0"; },
                {"nodes[1] 'conv': weight.type", "invalid type 'int0'"}),
      json_edit("bit width 65", [](json& j) { node(j, "x")["output"]["type"] = "int65"; },
                {"nodes[0] 'x': output.type", "invalid type 'int65'"}),
      json_edit("uint64", [](json& j) { node(j, "x")["output"]["type"] = "uint64"; },
                {"nodes[0] 'x': output.type", "'uint64'", "uintN with N in 1..63"}),
      json_edit("type name", [](json& j) { node(j, "fc")["output"]["type"] = "float32"; }, {"nodes[8] 'fc': output.type", "'float32'"}),
      json_edit("value outside declared type", [](json& j) { node(j, "conv")["weight"]["type"] = "int2"; },
                {"nodes[1] 'conv': weight", "is outside the declared type int2"}),
      json_edit("storage", [](json& j) { node(j, "conv")["bias"]["storage"] = "int32"; },
                {"nodes[1] 'conv': bias.storage", "expected 'int16' for type int16"}),
      // ---- scales ----
      json_edit("negative scale", [](json& j) { node(j, "x")["output"]["scale"] = {-0.5}; },
                {"nodes[0] 'x': output.scale[0]", "positive and finite"}),
      json_edit("zero scale", [](json& j) { node(j, "conv")["weight"]["scale"][2] = 0.0; },
                {"nodes[1] 'conv': weight.scale[2]", "positive and finite"}),
      json_edit("scale count", [](json& j) { node(j, "fc")["output"]["scale"] = {1.0, 2.0}; },
                {"nodes[8] 'fc': output.scale", "expected 0, 1 or 6 scale values, got 2"}),
      raw_edit("infinite scale", [](std::string& t, std::string&) { t.replace(t.find("0.0078125"), 9, "1e999"); },
               {"not valid JSON", "1e999"}),
      json_edit("scale not a number", [](json& j) { node(j, "x")["output"]["scale"] = {"0.5"}; },
                {"nodes[0] 'x': output.scale[0]", "expected a number"}),
      // ---- rationals and rounding ----
      json_edit("nan alpha", [](json& j) { node(j, "rq_exact")["requant"]["alpha"][3] = "nan"; },
                {"nodes[2] 'rq_exact': requant.alpha[3]", "expected a rational 'p/q'", "got 'nan'"}),
      json_edit("inf delta", [](json& j) { node(j, "rq_exact")["requant"]["delta"][0] = "inf"; },
                {"nodes[2] 'rq_exact': requant.delta[0]", "got 'inf'"}),
      json_edit("zero denominator", [](json& j) { node(j, "rq_exact")["requant"]["alpha"][0] = "1/0"; },
                {"nodes[2] 'rq_exact': requant.alpha[0]", "q != 0", "got '1/0'"}),
      json_edit("garbage rational", [](json& j) { node(j, "addrq")["branches"][1]["delta"][2] = "1/2/3"; },
                {"nodes[6] 'addrq': branches[1].delta[2]", "got '1/2/3'"}),
      json_edit("rounding name", [](json& j) { node(j, "avg")["rounding"] = "half_odd"; },
                {"nodes[4] 'avg': rounding", "unknown rounding 'half_odd'"}),
      // ---- structure ----
      json_edit("unknown op", [](json& j) { node(j, "flat")["op"] = "reshape"; }, {"nodes[7] 'flat': op", "unknown op 'reshape'"}),
      json_edit("unknown key", [](json& j) { node(j, "conv")["bias_scale"] = 2; }, {"nodes[1] 'conv': bias_scale", "unknown key"}),
      json_edit("unknown tensor key", [](json& j) { node(j, "fc")["weight"]["zero_point"] = 0; },
                {"nodes[8] 'fc': weight.zero_point", "unknown key"}),
      json_edit("unknown top-level key", [](json& j) { j["comment"] = "hi"; }, {"comment", "unknown key 'comment'"}),
      json_edit("missing key", [](json& j) { node(j, "conv").erase("pad_value"); }, {"nodes[1] 'conv': pad_value", "missing key"}),
      json_edit("missing requant key", [](json& j) { node(j, "rq_fp")["requant"].erase("zero_point"); },
                {"nodes[11] 'rq_fp': requant.zero_point", "missing key"}),
      json_edit("wrong JSON type", [](json& j) { node(j, "conv")["groups"] = "four"; },
                {"nodes[1] 'conv': groups", "expected an integer, got string"}),
      json_edit("float for an integer", [](json& j) { node(j, "had")["out_features"] = 5.0; },
                {"nodes[12] 'had': out_features", "expected an integer"}),
      json_edit("integer above int64", [](json& j) { node(j, "rq_mas")["requant"]["add"][0] = uint64_t{1} << 63; },
                {"nodes[9] 'rq_mas': requant.add[0]", "above 2^63 - 1"}),
      json_edit("wrong format", [](json& j) { j["format"] = "onnx"; }, {"format", "expected \"qverify-ir\""}),
      json_edit("wrong version", [](json& j) { j["version"] = 2; }, {"version", "unsupported version"}),
      json_edit("dangling input", [](json& j) { node(j, "fc")["inputs"][0] = "flatt"; },
                {"nodes[8] 'fc': inputs[0]", "'flatt' is not the name of an earlier node"}),
      json_edit("input from a later node", [](json& j) { node(j, "fc")["inputs"][0] = "had"; },
                {"nodes[8] 'fc': inputs[0]", "'had' is not the name of an earlier node"}),
      json_edit("duplicate name", [](json& j) { node(j, "avg")["name"] = "pool"; }, {"nodes[4] 'pool': name", "duplicate node name"}),
      json_edit("output not a node", [](json& j) { j["output"] = "logits"; }, {"output", "'logits' is not a node"}),
      json_edit("metadata not a string", [](json& j) { j["metadata"]["seed"] = 7; }, {"metadata.seed", "expected a string"}),
      raw_edit("malformed JSON", [](std::string& t, std::string&) { t.resize(t.size() / 2); }, {"byte ", "not valid JSON"}),
      // ---- shapes ----
      // A depthwise weight [4, 1, 3, 3] in a dense conv (groups 1) over 4 input channels.
      json_edit("wrong weight shape", [](json& j) { node(j, "conv")["groups"] = 1; },
                {"nodes[1] 'conv': weight.shape", "expected [O, 4, KH, KW] for 4 input channels in 1 groups, got [4, 1, 3, 3]"}),
      json_edit("weight count", [](json& j) { node(j, "conv")["weight"]["shape"] = {4, 1, 3, 4}; },
                {"nodes[1] 'conv': weight.count", "expected 48 elements for shape [4, 1, 3, 4], got 36"}),
      json_edit("non-positive dimension", [](json& j) { node(j, "x")["output"]["shape"][1] = 0; },
                {"nodes[0] 'x': output.shape[1]", "dimensions must be positive, got 0"}),
      json_edit("declared output shape", [](json& j) { node(j, "conv")["output"]["shape"][3] = 9; },
                {"nodes[1] 'conv': output.shape", "declared [1, 4, 8, 9] but the op produces [1, 4, 8, 8]"}),
      json_edit("groups do not divide", [](json& j) { node(j, "conv")["groups"] = 3; }, {"nodes[1] 'conv': groups", "must divide"}),
      json_edit("zero stride", [](json& j) { node(j, "conv")["stride"] = {1, 0}; }, {"nodes[1] 'conv': stride", ">= 1"}),
      json_edit("negative padding", [](json& j) { node(j, "conv")["padding"][2] = -1; }, {"nodes[1] 'conv': padding", ">= 0"}),
      json_edit("pad value outside input type", [](json& j) { node(j, "conv")["pad_value"] = 256; },
                {"nodes[1] 'conv': pad_value", "256 is outside the input type uint8"}),
      json_edit("pool output shape", [](json& j) { node(j, "pool")["output"]["shape"] = {1, 4, 5, 5}; },
                {"nodes[3] 'pool': output.shape", "the op produces [1, 4, 4, 4]"}),
      json_edit("pool zero kernel", [](json& j) { node(j, "pool")["kernel"] = {0, 2}; }, {"nodes[3] 'pool': kernel", ">= 1"}),
      json_edit("avg pool shift", [](json& j) { node(j, "avg")["shift"] = 63; }, {"nodes[4] 'avg': shift", "expected 0..62, got 63"}),
      json_edit("add operands differ", [](json& j) { node(j, "sat")["inputs"][1] = "pool"; },
                {"nodes[5] 'sat': inputs", "same shape, got [1, 4, 2, 2] and [1, 4, 4, 4]"}),
      json_edit("add_requant one input", [](json& j) {
                  node(j, "addrq")["inputs"].erase(1);
                  node(j, "addrq")["branches"].erase(1);
                }, {"nodes[6] 'addrq': inputs", "at least 2 inputs"}),
      json_edit("add_requant branch count", [](json& j) { node(j, "addrq")["branches"].erase(1); },
                {"nodes[6] 'addrq': branches", "one requant per input"}),
      json_edit("add_requant branch channels", [](json& j) { node(j, "addrq")["branches"][0]["alpha"].erase(3); },
                {"nodes[6] 'addrq': branches[0].alpha", "one value per channel (4), got 3"}),
      json_edit("hadamard out_features", [](json& j) { node(j, "had")["out_features"] = 0; },
                {"nodes[12] 'had': out_features", ">= 1"}),
      json_edit("flatten type", [](json& j) { node(j, "flat")["output"]["type"] = "int11"; },
                {"nodes[7] 'flat': output.type", "flatten keeps the input type int10"}),
      // ---- requantization ----
      json_edit("requant channel count", [](json& j) { node(j, "rq_mas")["requant"]["mul"].erase(0); },
                {"nodes[9] 'rq_mas': requant.mul", "one value per channel (6)"}),
      json_edit("clamp outside output type", [](json& j) { node(j, "rq_exact")["requant"]["hi"] = 256; },
                {"nodes[2] 'rq_exact': requant.lo", "clamp [0, 256] is outside the output type uint8"}),
      json_edit("lo above hi", [](json& j) {
                  node(j, "rq_exact")["requant"]["lo"] = 200;
                  node(j, "rq_exact")["requant"]["hi"] = 100;
                },
                {"nodes[2] 'rq_exact': requant.lo", "lo 200 exceeds hi 100"}),
      json_edit("mul_add_shift shift", [](json& j) { node(j, "rq_mas")["requant"]["shift"] = 63; },
                {"nodes[9] 'rq_mas': requant.shift", "expected 0..62, got 63"}),
      json_edit("mul_add_shift mul", [](json& j) { node(j, "rq_mas")["requant"]["mul"][2] = int64_t{1} << 62; },
                {"nodes[9] 'rq_mas': requant.mul[2]", "|mul| must be below 2^62"}),
      json_edit("thresholds decreasing", [](json& j) {
                  auto& t = node(j, "rq_th")["requant"]["thresholds"][1];
                  std::swap(t[10], t[200]);
                }, {"nodes[10] 'rq_th': requant.thresholds[1]", "non-decreasing"}),
      json_edit("thresholds count", [](json& j) { node(j, "rq_th")["requant"]["thresholds"][4].erase(0); },
                {"nodes[10] 'rq_th': requant.thresholds[4]", "expected hi - lo = 255 thresholds, got 254"}),
      json_edit("threshold sign", [](json& j) { node(j, "rq_th")["requant"]["sign"][0] = 2; },
                {"nodes[10] 'rq_th': requant.sign", "expected -1, 0 or 1, got 2"}),
      json_edit("fixed_point shift", [](json& j) { node(j, "rq_fp")["requant"]["shift"][0] = 40; },
                {"nodes[11] 'rq_fp': requant.shift[0]", "got 40"}),
      json_edit("fixed_point multiplier", [](json& j) { node(j, "rq_fp")["requant"]["multiplier"][0] = int64_t{1} << 31; },
                {"nodes[11] 'rq_fp': requant.multiplier", "expected int32 multipliers"}),
      json_edit("fixed_point missing bias", [](json& j) { node(j, "rq_fp")["requant"]["bias"].erase(5); },
                {"nodes[11] 'rq_fp': requant.bias", "one value per channel (6)"}),
      json_edit("unknown requant form", [](json& j) { node(j, "rq_exact")["requant"]["form"] = "lut"; },
                {"nodes[2] 'rq_exact': requant.form", "unknown requant form 'lut'"}),
      // ---- the accumulator proof ----
      json_edit("declared accumulator too narrow", [](json& j) { node(j, "conv")["output"]["type"] = "int12"; },
                {"nodes[1] 'conv': output.type", "declared accumulator int12 cannot hold the worst case [", "]; needs int"}),
      json_edit("linear accumulator too narrow", [](json& j) { node(j, "fc")["output"]["type"] = "int16"; },
                {"nodes[8] 'fc': output.type", "declared accumulator int16 cannot hold the worst case ["}),
      json_edit("hadamard accumulator too narrow", [](json& j) { node(j, "had")["output"]["type"] = "int8"; },
                {"nodes[12] 'had': output.type", "declared accumulator int8 cannot hold the worst case [-768, 768]; needs int11"}),
  };
  return table;
}

class BadIr : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    save_network(every_op_network(), path("good.json"));
    good_json_ = read_bytes(path("good.json"));
    good_bin_ = read_bytes(path("good.bin"));
  }

  // Writes net.json/net.bin from the given texts ("<delete>" for no .bin) and returns the message of the
  // InputError load_network throws, or a failure.
  ::testing::AssertionResult refused(std::string json_text, const std::string& bin, std::string* message) {
    const std::string original = "\"file\": \"good.bin\"";
    const auto at = json_text.find(original);
    if (at != std::string::npos) json_text.replace(at, original.size(), "\"file\": \"net.bin\"");
    write_bytes(path("net.json"), json_text);
    fs::remove(path("net.bin"));
    if (bin != "<delete>") write_bytes(path("net.bin"), bin);
    try {
      load_network(path("net.json"));
      return ::testing::AssertionFailure() << "accepted";
    } catch (const InputError& e) {
      *message = e.what();
      if (e.file() != path("net.json")) return ::testing::AssertionFailure() << "file '" << e.file() << "' in " << e.what();
      return ::testing::AssertionSuccess();
    } catch (const std::exception& e) {
      return ::testing::AssertionFailure() << "not an InputError: " << e.what();
    } catch (...) {
      return ::testing::AssertionFailure() << "a non-standard exception";
    }
  }

  std::string good_json_, good_bin_;
};

TEST_F(BadIr, TheUncorruptedCopyLoads) {
  std::string json_text = good_json_;
  json_text.replace(json_text.find("good.bin"), 8, "net.bin");
  write_bytes(path("net.json"), json_text);
  write_bytes(path("net.bin"), good_bin_);
  EXPECT_NO_THROW(load_network(path("net.json")));
}

TEST_F(BadIr, EachCorruptionIsRefusedNamingFileNodeAndField) {
  for (const Corruption& c : corruptions()) {
    std::string json_text = good_json_, bin = good_bin_;
    if (c.edit_json) {
      json j = json::parse(json_text);
      c.edit_json(j);
      json_text = j.dump(2);
    } else {
      c.edit_raw(json_text, bin);
    }
    std::string message;
    ASSERT_TRUE(refused(json_text, bin, &message)) << c.name;
    EXPECT_EQ(message.rfind(path("net.json") + ": ", 0), 0u) << c.name << ": " << message;
    for (const std::string& part : c.expected)
      EXPECT_NE(message.find(part), std::string::npos) << c.name << ": expected '" << part << "' in\n  " << message;
  }
}

TEST_F(BadIr, AccumulatorMessageGivesTheProvenRangeAndTheNeededType) {
  // The builder declares the narrowest type covering its own bound (reference/accumulator_bound.h), so
  // one bit less must be refused, and validation (ir/value_range.h) must name the builder's type.
  const json j = json::parse(good_json_);
  const std::string declared = j["nodes"][1]["output"]["type"];
  ASSERT_EQ(declared.rfind("int", 0), 0u) << declared;
  const int bits = std::stoi(declared.substr(3));
  json narrower = j;
  narrower["nodes"][1]["output"]["type"] = "int" + std::to_string(bits - 1);
  std::string message;
  ASSERT_TRUE(refused(narrower.dump(2), good_bin_, &message));
  EXPECT_NE(message.find("needs " + declared), std::string::npos) << message;
}

// Every prefix of the JSON (sampled) is refused cleanly.
TEST_F(BadIr, TruncatedJsonIsAlwaysAnInputError) {
  int cases = 0;
  for (size_t n = 0; n < good_json_.size() - 1; n += 37) {
    std::string message;
    ASSERT_TRUE(refused(good_json_.substr(0, n), good_bin_, &message)) << "prefix of " << n << " bytes";
    ++cases;
  }
  EXPECT_GT(cases, 100);
}

// Random single-byte changes to the JSON or the .bin either still describe a valid network or are
// refused with an InputError; nothing else may escape (no crash, no raw library exception).
TEST_F(BadIr, RandomByteMutationsLoadOrThrowInputError) {
  std::mt19937_64 rng(7);
  const std::string alphabet = "0123456789-+.eE\"[]{},:/ abcxyz\\";
  int refused_count = 0, loaded = 0;
  for (int trial = 0; trial < 1500; ++trial) {
    std::string json_text = good_json_, bin = good_bin_;
    const bool in_json = trial % 3 != 0;
    std::string& target = in_json ? json_text : bin;
    const size_t at = rng() % target.size();
    target[at] = in_json ? alphabet[rng() % alphabet.size()] : static_cast<char>(rng());
    std::string message;
    const auto result = refused(json_text, bin, &message);
    if (result) {
      ++refused_count;
    } else {
      ASSERT_EQ(std::string(result.message()), "accepted") << "mutation at byte " << at << (in_json ? " of the JSON" : " of the .bin");
      ++loaded;
    }
  }
  EXPECT_GT(refused_count, 1000);  // most mutations break something
  EXPECT_GT(loaded, 0);            // some (a name, a metadata character) are harmless
}

}  // namespace
}  // namespace qv
