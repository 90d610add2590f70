// qverify's config schema: the shipped configs load with their documented values; bad configs are
// refused naming the file, the key and what was expected.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "fakequant/config/quant_config.h"
#include "ir/error.h"

namespace qv::config {
namespace {

TEST(Config, ShippedConfigsLoadByName) {
  const auto names = shipped_configs();
  EXPECT_EQ(names, (std::vector<std::string>{"brevitas_4b.json", "brevitas_8b.json", "fp32.json", "pact.json", "tqt.json"}));
  for (const auto& n : names) EXPECT_NO_THROW(read_config(n)) << n;
  const QuantConfig pact = read_config("pact.json");
  EXPECT_EQ(pact.scheme, Scheme::pact);
  EXPECT_EQ(pact.act_bits, 8);
  EXPECT_EQ(pact.act_init_clip, 6.0);
  EXPECT_EQ(pact.act_rounding, Rounding::half_even);
  const QuantConfig b4 = read_config("brevitas_4b.json");
  EXPECT_EQ(b4.scheme, Scheme::brevitas);
  EXPECT_EQ(b4.weight_bits, 4);
  EXPECT_EQ(b4.first_layer_weight_bits, 8);
  EXPECT_EQ(b4.avg_pool_rounding, Rounding::floor);
  EXPECT_EQ(b4.requant_form, "thresholds");
  EXPECT_EQ(read_config("tqt.json").add_eps, "force_output");
}

struct Bad {
  const char* name;
  const char* body;
  const char* where;
  const char* what;
};

const char* const kHead = R"("format": "qverify-config", "version": 1, "name": "x", )";

TEST(Config, BadConfigsNameFileKeyAndExpectation) {
  const Bad cases[] = {
      {"unknown_key", R"("scheme": "pact", "colour": 1)", "colour", "unknown key"},
      {"wrong_type", R"("scheme": "pact", "activations": {"bits": "eight"})", "activations.bits", "expected an integer"},
      {"bits_zero", R"("scheme": "pact", "weights": {"bits": 0})", "weights.bits", "between 1 and 32"},
      {"bits_65", R"("scheme": "pact", "activations": {"bits": 65})", "activations.bits", "between 1 and 32"},
      {"signed_1bit_narrow", R"("scheme": "brevitas", "weights": {"bits": 1})", "weights.bits", "at least 2 bits"},
      {"negative_clip", R"("scheme": "pact", "activations": {"bits": 8, "init_clip": -6.0})", "activations.init_clip", "positive"},
      {"bad_regex", R"("scheme": "pact", "overrides": [{"match": "features.(3", "weight_bits": 4}])", "overrides[0].match", "invalid regular expression"},
      {"bad_rounding", R"("scheme": "pact", "activations": {"bits": 8, "rounding": "nearest"})", "activations.rounding", "unknown rounding"},
      {"bad_scheme", R"("scheme": "lsq")", "scheme", "expected one of fp32, brevitas, pact, tqt"},
      {"bad_form", R"("scheme": "pact", "requant": {"form": "magic"})", "requant.form", "expected one of"},
  };
  const auto dir = std::filesystem::temp_directory_path() / ("qv_cfg_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const Bad& b : cases) {
    const std::string path = (dir / (std::string(b.name) + ".json")).string();
    std::ofstream(path) << "{" << kHead << b.body << "}";
    try {
      read_config(path);
      ADD_FAILURE() << b.name << " accepted";
    } catch (const InputError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(path), std::string::npos) << m;
      EXPECT_NE(m.find(b.where), std::string::npos) << b.name << ": " << m;
      EXPECT_NE(m.find(b.what), std::string::npos) << b.name << ": " << m;
    }
  }
  const std::string broken = (dir / "broken.json").string();
  std::ofstream(broken) << "{" << kHead;
  EXPECT_THROW(read_config(broken), InputError);
  try {
    read_config("nonexistent.json");
    ADD_FAILURE() << "accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("pact.json"), std::string::npos) << "lists the shipped configs: " << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace qv::config
