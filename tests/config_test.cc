// Quantization configs: the shipped qverify configs load without warnings; the peers' own files
// (copies in fixtures/configs) map onto the same struct with the numbers they state; the resolver
// applies rules in order; and every bad file is refused naming the file, the key (or line) and what
// was expected.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "fakequant/config/read_config.h"
#include "ir/error.h"

namespace qv::config {
namespace {

namespace fs = std::filesystem;

std::string fixture(const std::string& name) { return std::string(QV_FIXTURE_DIR) + "/configs/" + name; }

// A scratch folder removed at the end of the test.
class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("qv_config_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++))) {
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string write(const std::string& name, const std::string& body) const {
    const std::string p = (path_ / name).string();
    std::ofstream(p) << body;
    return p;
  }
  std::string path() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += "\n  " + x;
  return s;
}

// The warnings besides the ones saying that a stated pretrained / float_pretrained path or URL is never
// fetched; each of those is checked to be there, word for word.
std::vector<std::string> other_warnings(const QuantConfig& c) {
  std::vector<std::string> rest = c.warnings;
  for (const auto& [field, value] : {std::pair{"pretrained", c.pretrained}, std::pair{"float_pretrained", c.float_pretrained}}) {
    if (!value) continue;
    const std::string want = c.source_file + ": " + field + " '" + *value +
                             "' is never fetched or opened by qverify; download it yourself and pass --weights FILE";
    const auto it = std::find(rest.begin(), rest.end(), want);
    EXPECT_NE(it, rest.end()) << "missing warning: " << want << joined(c.warnings);
    if (it != rest.end()) rest.erase(it);
  }
  return rest;
}

// ---- shipped configs ----

TEST(ShippedConfigs, AllLoadByNameWithoutWarnings) {
  const std::vector<std::string> names = shipped_configs();
  ASSERT_EQ(names, (std::vector<std::string>{"brevitas_4b.json", "brevitas_8b.json", "fp32.json", "pact.json", "tqt.json"}))
      << "from " << shipped_config_dir();
  for (const std::string& n : names) {
    const QuantConfig c = read_config(n);
    EXPECT_EQ(c.format, Format::qverify) << n;
    EXPECT_EQ(c.name + ".json", n);
    EXPECT_TRUE(c.warnings.empty()) << n << ":" << joined(c.warnings);
    EXPECT_EQ(c.source_file, (fs::path(shipped_config_dir()) / n).string());
  }
  EXPECT_EQ(read_config("tqt").name, "tqt") << "a shipped name without .json";
}

TEST(ShippedConfigs, StatedValues) {
  const QuantConfig fp32 = read_config("fp32.json");
  EXPECT_EQ(fp32.scheme, Scheme::fp32);
  EXPECT_FALSE(resolve(fp32, "features.0.conv", LayerKind::conv).quantize);

  const QuantConfig pact = read_config("pact.json");
  EXPECT_EQ(pact.scheme, Scheme::pact);
  EXPECT_EQ(pact.conv_weight, (WeightQuant{.bits = 8, .narrow_range = false, .granularity = Granularity::per_channel,
                                           .init = WeightInit::max, .std_factor = 3.0, .learn_clip = false}));
  EXPECT_EQ(pact.depthwise_weight, pact.conv_weight) << "inherits conv_weight";
  EXPECT_EQ(pact.first_layer_weight, pact.conv_weight);
  EXPECT_EQ(pact.linear_weight.granularity, Granularity::per_tensor);
  EXPECT_EQ(pact.linear_weight.bits, 8);
  EXPECT_EQ(pact.activation, (ActQuant{.bits = 8, .is_signed = false, .rounding = Rounding::half_even,
                                       .clip_init = ClipInit::const_value, .init_value = 6.0, .learn_clip = true,
                                       .power_of_two = false, .granularity = Granularity::per_tensor}));
  EXPECT_TRUE(pact.signed_activation.is_signed);
  EXPECT_EQ(pact.signed_activation.clip_init, ClipInit::max);
  EXPECT_EQ(pact.input.init_value, 2.64);
  EXPECT_EQ(pact.harmonize.add_eps, QuantConfig::Harmonize::AddEps::widest_input);
  EXPECT_TRUE(pact.harmonize.insert_identity);
  EXPECT_EQ(pact.requant.form, "exact");
  EXPECT_EQ(pact.requant.mulshift_bits, 24);

  const QuantConfig tqt = read_config("tqt.json");
  EXPECT_EQ(tqt.scheme, Scheme::tqt);
  EXPECT_TRUE(tqt.conv_weight.learn_clip);
  EXPECT_FALSE(tqt.activation.power_of_two);
  EXPECT_EQ(tqt.harmonize.add_eps, QuantConfig::Harmonize::AddEps::force_output);

  const QuantConfig b4 = read_config("brevitas_4b.json");
  EXPECT_EQ(b4.scheme, Scheme::brevitas);
  EXPECT_EQ(b4.conv_weight.bits, 4);
  EXPECT_TRUE(b4.conv_weight.narrow_range);
  EXPECT_EQ(b4.first_layer_weight.bits, 8);
  EXPECT_TRUE(b4.first_layer_weight.narrow_range) << "first_layer_weight inherits conv_weight's other fields";
  EXPECT_EQ(b4.activation.bits, 4);
  EXPECT_EQ(b4.signed_activation.bits, 4) << "signed_activation inherits activation";
  EXPECT_TRUE(b4.signed_activation.is_signed);
  EXPECT_EQ(b4.avgpool_bits, 4);
  EXPECT_EQ(b4.avgpool_rounding, Rounding::floor);
  EXPECT_EQ(b4.preprocess.std, (std::vector<double>{0.226, 0.226, 0.226}));

  const QuantConfig b8 = read_config("brevitas_8b.json");
  EXPECT_EQ(b8.conv_weight.bits, 8);
  EXPECT_EQ(b8.activation.bits, 8);
  EXPECT_EQ(b8.avgpool_bits, 8);
}

TEST(ShippedConfigs, EnvironmentOverridesTheFolder) {
  TempDir dir;
  dir.write("mine.json", R"({"format": "qverify-config", "version": 1, "name": "mine", "scheme": "pact"})");
  dir.write("notes.txt", "not a config");
  ASSERT_EQ(::setenv("QVERIFY_CONFIG_DIR", dir.path().c_str(), 1), 0);
  EXPECT_EQ(shipped_config_dir(), dir.path());
  EXPECT_EQ(shipped_configs(), std::vector<std::string>{"mine.json"});
  EXPECT_EQ(read_config("mine").scheme, Scheme::pact);
  ::unsetenv("QVERIFY_CONFIG_DIR");
  EXPECT_NE(shipped_config_dir(), dir.path());
}

TEST(ShippedConfigs, UnknownNameListsTheShippedOnes) {
  try {
    read_config("nonexistent.json");
    FAIL() << "accepted";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("nonexistent.json"), std::string::npos) << m;
    EXPECT_NE(m.find("pact.json"), std::string::npos) << m;
    EXPECT_NE(m.find("tqt.json"), std::string::npos) << m;
  }
}

// ---- QuantLab ----

TEST(QuantLab, Pact8b) {
  const QuantConfig c = read_config(fixture("config.pact.8b.json"));
  EXPECT_EQ(c.format, Format::quantlab);
  EXPECT_EQ(c.name, "config.pact.8b");
  EXPECT_TRUE(other_warnings(c).empty()) << "every key of the peer file is mapped:" << joined(c.warnings);
  EXPECT_EQ(c.scheme, Scheme::pact);
  EXPECT_EQ(c.model, "mobilenet_v2");
  EXPECT_EQ(c.width_mult, 1.0);
  ASSERT_TRUE(c.pretrained.has_value());
  EXPECT_EQ(*c.pretrained, "/home/georgr/projects/mixed-precision-inference/ql-pact/systems/ILSVRC12/MobileNetV2/pretrained/MNv2_224_1.0.ckpt");
  // PACTConv2d kwargs: n_levels 256 -> 8 bits, per_channel, init_clip max, learn_clip false, symm_wts.
  EXPECT_EQ(c.conv_weight, (WeightQuant{.bits = 8, .narrow_range = false, .granularity = Granularity::per_channel,
                                        .init = WeightInit::max, .std_factor = 3.0, .learn_clip = false}));
  EXPECT_EQ(c.depthwise_weight, c.conv_weight);
  EXPECT_EQ(c.first_layer_weight, c.conv_weight);
  // PACTLinear: per_layer.
  EXPECT_EQ(c.linear_weight.bits, 8);
  EXPECT_EQ(c.linear_weight.granularity, Granularity::per_tensor);
  // PACTUnsignedAct: 256 levels, init_clip const with the controllers' init_clip_hi 6.0, rounding true.
  EXPECT_EQ(c.activation, (ActQuant{.bits = 8, .is_signed = false, .rounding = Rounding::half_even,
                                    .clip_init = ClipInit::const_value, .init_value = 6.0, .learn_clip = true,
                                    .power_of_two = false, .granularity = Granularity::per_tensor}));
  // harmonize: the add operands' quantizers, init_clip max, learn_clip false, force_out_eps false.
  EXPECT_EQ(c.signed_activation.bits, 8);
  EXPECT_TRUE(c.signed_activation.is_signed);
  EXPECT_EQ(c.signed_activation.clip_init, ClipInit::max);
  EXPECT_FALSE(c.signed_activation.learn_clip);
  EXPECT_EQ(c.harmonize.add_eps, QuantConfig::Harmonize::AddEps::widest_input);
  EXPECT_TRUE(c.harmonize.insert_identity);
  // One rule leaving unnamed layers in float, then 52 conv keys, 1 linear key and 35 activation keys.
  ASSERT_EQ(c.overrides.size(), 1u + 52 + 1 + 35);
  EXPECT_EQ(c.overrides[0].quantize, false);
  EXPECT_EQ(c.overrides[1].pattern, "pilot.0$");
  EXPECT_EQ(c.overrides[3].pattern, "features.0.residual_branch.1.0$");
}

TEST(QuantLab, PactResolvesOnlyTheNamedLayers) {
  const QuantConfig c = read_config(fixture("config.pact.8b.json"));
  const ResolvedLayer pilot = resolve(c, "pilot.0", LayerKind::first_conv);
  ASSERT_TRUE(pilot.quantize);
  EXPECT_EQ(pilot.weight->bits, 8);
  EXPECT_EQ(pilot.rules, (std::vector<size_t>{0, 1}));
  const ResolvedLayer dw = resolve(c, "features.11.residual_branch.1.0", LayerKind::depthwise_conv);
  ASSERT_TRUE(dw.quantize);
  EXPECT_EQ(dw.weight->init, WeightInit::max);
  EXPECT_EQ(dw.rules.size(), 2u) << "features.1.residual_branch.1.0$ must not match features.11";
  const ResolvedLayer fc = resolve(c, "classifier.1", LayerKind::linear);
  ASSERT_TRUE(fc.quantize);
  EXPECT_EQ(fc.weight->granularity, Granularity::per_tensor);
  const ResolvedLayer act = resolve(c, "features.16.residual_branch.1.2", LayerKind::activation);
  ASSERT_TRUE(act.quantize);
  EXPECT_EQ(act.act->init_value, 6.0);
  EXPECT_FALSE(act.weight.has_value());
  // The projection has no activation in QuantLab's config: a module there stays float.
  EXPECT_FALSE(resolve(c, "features.16.residual_branch.2.2", LayerKind::activation).quantize);
  EXPECT_FALSE(resolve(c, "features.16.residual_branch.2.2", LayerKind::activation).act.has_value());
  // Harmonization quantizers are not named by regex: always on.
  EXPECT_TRUE(resolve(c, "features.5.add", LayerKind::signed_activation).quantize);
}

TEST(QuantLab, Tqt8b) {
  const QuantConfig c = read_config(fixture("config.tqt.8b.json"));
  EXPECT_TRUE(other_warnings(c).empty()) << joined(c.warnings);
  EXPECT_EQ(c.scheme, Scheme::tqt);
  EXPECT_EQ(c.conv_weight.bits, 8);
  EXPECT_TRUE(c.conv_weight.learn_clip);
  EXPECT_TRUE(c.linear_weight.learn_clip);
  EXPECT_EQ(c.activation.init_value, 6.0);
  EXPECT_FALSE(c.activation.power_of_two) << "QuantLib never rounds log_t";
  EXPECT_TRUE(c.signed_activation.learn_clip);
  EXPECT_EQ(c.harmonize.add_eps, QuantConfig::Harmonize::AddEps::force_output);
}

TEST(QuantLab, Fp32) {
  const QuantConfig c = read_config(fixture("config.fp32.json"));
  EXPECT_TRUE(c.warnings.empty()) << joined(c.warnings);
  EXPECT_EQ(c.scheme, Scheme::fp32);
  EXPECT_EQ(c.model, "mobilenet_v2");
  EXPECT_FALSE(c.pretrained.has_value());
  EXPECT_TRUE(c.overrides.empty());
  EXPECT_FALSE(resolve(c, "pilot.0", LayerKind::first_conv).quantize);
}

// The shipped configs state the QuantLab files' defaults in qverify's schema.
TEST(QuantLab, ShippedConfigsMatchThePeerFiles) {
  for (const auto& [ours, theirs] : {std::pair{"pact.json", "config.pact.8b.json"}, std::pair{"tqt.json", "config.tqt.8b.json"}}) {
    const QuantConfig a = read_config(ours), b = read_config(fixture(theirs));
    SCOPED_TRACE(ours);
    EXPECT_EQ(a.scheme, b.scheme);
    EXPECT_EQ(a.conv_weight, b.conv_weight);
    EXPECT_EQ(a.depthwise_weight, b.depthwise_weight);
    EXPECT_EQ(a.first_layer_weight, b.first_layer_weight);
    EXPECT_EQ(a.linear_weight, b.linear_weight);
    EXPECT_EQ(a.activation, b.activation);
    EXPECT_EQ(a.signed_activation, b.signed_activation);
    EXPECT_EQ(a.input, b.input);
    EXPECT_EQ(a.harmonize.add_eps, b.harmonize.add_eps);
    EXPECT_EQ(a.harmonize.insert_identity, b.harmonize.insert_identity);
  }
}

TEST(QuantLab, UnknownKeysWarnWrongTypesFail) {
  TempDir dir;
  const std::string ok = dir.write("config.new.json", R"({
    "network": {"class": "MobileNetV2", "kwargs": {"capacity": 0.75, "shiny": 1},
      "quantize": {"function": "pact_recipe", "kwargs": {"config": {
        "PACTConv2d": {"kwargs": {"n_levels": 16, "quantize": "per_layer", "future_option": true}},
        "PACTHyperAct": {}}}}},
    "training": {"n_epochs": 1}, "mystery": {}})");
  const QuantConfig c = read_config(ok);
  EXPECT_EQ(c.conv_weight.bits, 4) << "16 levels";
  EXPECT_EQ(c.width_mult, 0.75);
  ASSERT_EQ(c.warnings.size(), 4u) << joined(c.warnings);
  EXPECT_NE(c.warnings[0].find("network.kwargs: key 'shiny'"), std::string::npos) << c.warnings[0];
  EXPECT_NE(c.warnings[1].find("'future_option'"), std::string::npos) << c.warnings[1];
  EXPECT_NE(c.warnings[2].find("'PACTHyperAct'"), std::string::npos) << c.warnings[2];
  EXPECT_NE(c.warnings[3].find("'mystery'"), std::string::npos) << c.warnings[3];
}

// ---- Brevitas ----

TEST(Brevitas, MobileNetV1_4b) {
  const QuantConfig c = read_config(fixture("quant_mobilenet_v1_4b.ini"));
  EXPECT_EQ(c.format, Format::brevitas_ini);
  EXPECT_EQ(c.name, "quant_mobilenet_v1_4b");
  EXPECT_TRUE(other_warnings(c).empty()) << joined(c.warnings);
  EXPECT_EQ(c.scheme, Scheme::brevitas);
  EXPECT_EQ(c.model, "mobilenet_v1");
  EXPECT_EQ(c.width_mult, 1.0);
  EXPECT_EQ(c.pretrained, "https://github.com/Xilinx/brevitas/releases/download/quant_mobilenet_v1_4b-r1/quant_mobilenet_v1_4b-0100a667.pth");
  EXPECT_EQ(c.float_pretrained, "https://github.com/osmr/imgclsmob/releases/download/v0.0.155/mobilenet_w1-0895-7e1d739f.pth.zip");
  // BIT_WIDTH: 4; the first layer is 8-bit in Brevitas's code.
  EXPECT_EQ(c.conv_weight, (WeightQuant{.bits = 4, .narrow_range = true, .granularity = Granularity::per_channel,
                                        .init = WeightInit::max, .std_factor = 3.0, .learn_clip = false}));
  EXPECT_EQ(c.depthwise_weight.bits, 4);
  EXPECT_EQ(c.first_layer_weight.bits, 8);
  EXPECT_EQ(c.linear_weight.bits, 4);
  EXPECT_EQ(c.linear_weight.granularity, Granularity::per_tensor);
  EXPECT_EQ(c.activation.bits, 4);
  EXPECT_FALSE(c.activation.is_signed);
  EXPECT_EQ(c.activation.rounding, Rounding::half_even);
  EXPECT_EQ(c.activation.clip_init, ClipInit::percentile);
  EXPECT_EQ(c.activation.init_value, 99.999);
  EXPECT_EQ(c.avgpool_bits, 4);
  EXPECT_EQ(c.avgpool_rounding, Rounding::floor) << "ROUND_AVG_POOL = FALSE";
  EXPECT_EQ(c.preprocess.mean, (std::vector<double>{0.485, 0.456, 0.406}));
  EXPECT_EQ(c.preprocess.std, (std::vector<double>{0.226, 0.226, 0.226}));
  // Per-channel activations after the init block and the pointwise convs of stages 1-4.
  EXPECT_EQ(resolve(c, "features.init_block.activ", LayerKind::activation).act->granularity, Granularity::per_channel);
  EXPECT_EQ(resolve(c, "features.stage4.unit6.pw_conv.activ", LayerKind::activation).act->granularity, Granularity::per_channel);
  EXPECT_EQ(resolve(c, "features.stage5.unit1.pw_conv.activ", LayerKind::activation).act->granularity, Granularity::per_tensor);
  EXPECT_EQ(resolve(c, "features.stage2.unit1.dw_conv.activ", LayerKind::activation).act->granularity, Granularity::per_tensor);

  const QuantConfig round = read_config(fixture("quant_mobilenet_v1_4b_round_avgpool.ini"));
  EXPECT_EQ(round.avgpool_rounding, Rounding::half_even) << "ROUND_AVG_POOL = TRUE";
  EXPECT_TRUE(other_warnings(round).empty()) << joined(round.warnings);
}

TEST(Brevitas, MobileNetV1WithoutBitWidthWarns) {
  const QuantConfig c = read_config(fixture("quant_mobilenet_v1.ini"));
  const std::vector<std::string> rest = other_warnings(c);
  ASSERT_EQ(rest.size(), 1u) << joined(c.warnings);
  EXPECT_NE(rest[0].find("BIT_WIDTH missing"), std::string::npos) << rest[0];
  EXPECT_EQ(c.warnings.size(), 2u) << "and the float_pretrained URL is never fetched" << joined(c.warnings);
  EXPECT_EQ(c.conv_weight.bits, 8);
  EXPECT_EQ(c.avgpool_rounding, Rounding::half_even);
  EXPECT_FALSE(c.pretrained.has_value());
  EXPECT_TRUE(c.float_pretrained.has_value());
}

TEST(Brevitas, ProxylessNas) {
  const double m = 0.5019607843137255;  // 128 / 255
  for (const char* f : {"quant_proxylessnas_mobile14_4b.ini", "quant_proxylessnas_mobile14_4b5b.ini",
                        "quant_proxylessnas_mobile14_4b_round_avgpool.ini", "quant_proxylessnas_mobile14_hadamard_4b.ini"}) {
    SCOPED_TRACE(f);
    const QuantConfig c = read_config(fixture(f));
    EXPECT_TRUE(other_warnings(c).empty()) << joined(c.warnings);
    EXPECT_EQ(c.model, "proxylessnas_mobile14");
    EXPECT_FALSE(c.width_mult.has_value());
    EXPECT_EQ(c.first_layer_weight.bits, 8);
    EXPECT_EQ(c.conv_weight.bits, 4);
    EXPECT_EQ(c.linear_weight.bits, 4);
    EXPECT_EQ(c.activation.bits, 4);
    EXPECT_EQ(c.signed_activation.bits, 4);
    EXPECT_TRUE(c.signed_activation.is_signed);
    EXPECT_EQ(c.preprocess.mean, (std::vector<double>{m, m, m}));
    EXPECT_EQ(c.preprocess.std, (std::vector<double>{m, m, m}));
    ASSERT_TRUE(c.pretrained.has_value());
    EXPECT_EQ(c.pretrained->rfind("https://github.com/Xilinx/brevitas/releases/download/", 0), 0u);
  }
  const QuantConfig b45 = read_config(fixture("quant_proxylessnas_mobile14_4b5b.ini"));
  EXPECT_EQ(b45.depthwise_weight.bits, 5);
  const ResolvedLayer bc = resolve(b45, "features.stage2.unit1.body.bc_conv.activ", LayerKind::activation);
  EXPECT_EQ(bc.act->bits, 5) << "DEPTHWISE_BIT_WIDTH also sets the depthwise conv's input";
  EXPECT_EQ(bc.act->granularity, Granularity::per_channel);
  EXPECT_EQ(resolve(b45, "features.stage2.unit1.body.dw_conv.activ", LayerKind::activation).act->bits, 4);
  EXPECT_EQ(resolve(b45, "features.init_block.activ", LayerKind::activation).act->granularity, Granularity::per_tensor);
  EXPECT_EQ(read_config(fixture("quant_proxylessnas_mobile14_4b.ini")).depthwise_weight.bits, 4);
  EXPECT_EQ(read_config(fixture("quant_proxylessnas_mobile14_4b.ini")).hadamard_classifier, false);
  EXPECT_EQ(read_config(fixture("quant_proxylessnas_mobile14_hadamard_4b.ini")).hadamard_classifier, true);
  EXPECT_EQ(read_config(fixture("quant_proxylessnas_mobile14_4b_round_avgpool.ini")).avgpool_rounding, Rounding::half_even);
}

TEST(Brevitas, ShippedBrevitas4bMatchesTheMobileNetV1File) {
  const QuantConfig a = read_config("brevitas_4b.json"), b = read_config(fixture("quant_mobilenet_v1_4b.ini"));
  EXPECT_EQ(a.scheme, b.scheme);
  EXPECT_EQ(a.conv_weight, b.conv_weight);
  EXPECT_EQ(a.depthwise_weight, b.depthwise_weight);
  EXPECT_EQ(a.first_layer_weight, b.first_layer_weight);
  EXPECT_EQ(a.linear_weight, b.linear_weight);
  EXPECT_EQ(a.activation, b.activation);
  EXPECT_EQ(a.signed_activation, b.signed_activation);
  EXPECT_EQ(a.input, b.input);
  EXPECT_EQ(a.overrides, b.overrides);
  EXPECT_EQ(a.avgpool_bits, b.avgpool_bits);
  EXPECT_EQ(a.avgpool_rounding, b.avgpool_rounding);
  EXPECT_EQ(a.preprocess.mean, b.preprocess.mean);
  EXPECT_EQ(a.preprocess.std, b.preprocess.std);
}

TEST(Brevitas, SeparatorsCaseAndComments) {
  TempDir dir;
  const std::string p = dir.write("mixed.ini",
                                  "# a comment\n; another\n[MODEL]\narch = quant_mobilenet_v1\nWidth_Scale: 0.5\n\n"
                                  "[QUANT]\r\nbit_width:3\r\nRound_Avg_Pool = yes\n[EXTRA]\nX: 1\n");
  const QuantConfig c = read_config(p);
  EXPECT_EQ(c.width_mult, 0.5);
  EXPECT_EQ(c.conv_weight.bits, 3);
  EXPECT_EQ(c.avgpool_rounding, Rounding::half_even);
  ASSERT_EQ(c.warnings.size(), 1u) << joined(c.warnings);
  EXPECT_NE(c.warnings[0].find(p + ":10: section [EXTRA]"), std::string::npos) << c.warnings[0];
  // Detected by its sections without the .ini extension.
  EXPECT_EQ(read_config(dir.write("noext.cfg", "[MODEL]\nARCH: quant_mobilenet_v1\nWIDTH_SCALE: 1.0\n[QUANT]\nBIT_WIDTH: 4\n")).format,
            Format::brevitas_ini);
}

// ---- pretrained weights: stored, never fetched, and the user is told so ----

TEST(PretrainedNeverFetched, EachStatedPathOrUrlGetsOneWarningNamingWeights) {
  TempDir dir;
  // A URL that cannot resolve and a path that does not exist: reading the config must not touch either.
  const std::string q = dir.write("w.json", R"({"format": "qverify-config", "version": 1, "name": "w", "scheme": "pact",
    "pretrained": "https://example.invalid/q.pth", "float_pretrained": "/nonexistent/float.pth"})");
  const QuantConfig c = read_config(q);
  EXPECT_EQ(c.pretrained, "https://example.invalid/q.pth");
  EXPECT_EQ(c.float_pretrained, "/nonexistent/float.pth");
  EXPECT_EQ(c.warnings, (std::vector<std::string>{
                            q + ": pretrained 'https://example.invalid/q.pth' is never fetched or opened by qverify; "
                                "download it yourself and pass --weights FILE",
                            q + ": float_pretrained '/nonexistent/float.pth' is never fetched or opened by qverify; "
                                "download it yourself and pass --weights FILE"}));
  // Without either key: no such warning.
  EXPECT_TRUE(read_config(dir.write("n.json", R"({"format": "qverify-config", "version": 1, "name": "n", "scheme": "pact"})"))
                  .warnings.empty());
}

TEST(PretrainedNeverFetched, PeerFilesSayItToo) {
  // QuantLab: network.kwargs.pretrained, a path on the authors' machine.
  const QuantConfig ql = read_config(fixture("config.pact.8b.json"));
  ASSERT_EQ(ql.warnings.size(), 1u) << joined(ql.warnings);
  EXPECT_EQ(ql.warnings[0], fixture("config.pact.8b.json") +
                                ": pretrained '/home/georgr/projects/mixed-precision-inference/ql-pact/systems/ILSVRC12/"
                                "MobileNetV2/pretrained/MNv2_224_1.0.ckpt' is never fetched or opened by qverify; "
                                "download it yourself and pass --weights FILE");
  // Brevitas: PRETRAINED_URL and FLOAT_PRETRAINED_URL, in that order.
  const QuantConfig br = read_config(fixture("quant_mobilenet_v1_4b.ini"));
  ASSERT_EQ(br.warnings.size(), 2u) << joined(br.warnings);
  EXPECT_NE(br.warnings[0].find(": pretrained 'https://github.com/Xilinx/brevitas/releases/download/quant_mobilenet_v1_4b-r1/"
                                "quant_mobilenet_v1_4b-0100a667.pth' is never fetched"),
            std::string::npos)
      << br.warnings[0];
  EXPECT_NE(br.warnings[1].find(": float_pretrained 'https://github.com/osmr/imgclsmob/releases/download/v0.0.155/"
                                "mobilenet_w1-0895-7e1d739f.pth.zip' is never fetched"),
            std::string::npos)
      << br.warnings[1];
  for (const auto& w : br.warnings) EXPECT_NE(w.find("pass --weights FILE"), std::string::npos) << w;
  // The readers behind read_config add it as well.
  std::ifstream in(fixture("quant_mobilenet_v1_4b.ini"));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(parse_brevitas_ini(text, "x.ini").warnings.size(), 2u);
}

// ---- resolve ----

TEST(Resolve, DefaultsByKindThenRulesInOrder) {
  QuantConfig c;
  c.scheme = Scheme::pact;
  c.conv_weight.bits = 8;
  c.depthwise_weight.bits = 6;
  c.first_layer_weight.bits = 7;
  c.linear_weight.bits = 5;
  c.activation.bits = 8;
  c.signed_activation = ActQuant{.bits = 3, .is_signed = true};
  c.overrides = {
      {.pattern = R"(features\.3\..*)", .weight = {.bits = 4, .granularity = Granularity::per_tensor}, .act = {.bits = 4}},
      {.pattern = R"(features\.3\.conv2)", .weight = {.bits = 2}},
      {.pattern = R"(\.act$)", .kinds = {LayerKind::activation}, .quantize = false},
      {.pattern = R"(features\.3\.act)", .quantize = true, .act = {.rounding = Rounding::floor}},
      {.pattern = "^classifier", .kinds = {LayerKind::conv}, .weight = {.bits = 1}},
  };
  EXPECT_EQ(resolve(c, "features.0.conv", LayerKind::first_conv).weight->bits, 7);
  EXPECT_EQ(resolve(c, "features.1.conv", LayerKind::depthwise_conv).weight->bits, 6);
  EXPECT_EQ(resolve(c, "features.1.conv", LayerKind::conv).weight->bits, 8);
  const ResolvedLayer c31 = resolve(c, "features.3.conv1", LayerKind::conv);
  EXPECT_EQ(c31.weight->bits, 4);
  EXPECT_EQ(c31.weight->granularity, Granularity::per_tensor);
  EXPECT_FALSE(c31.act.has_value());
  EXPECT_EQ(c31.rules, std::vector<size_t>{0});
  const ResolvedLayer c32 = resolve(c, "features.3.conv2", LayerKind::conv);
  EXPECT_EQ(c32.weight->bits, 2) << "the later rule wins";
  EXPECT_EQ(c32.weight->granularity, Granularity::per_tensor) << "fields the later rule does not set stay";
  EXPECT_EQ(c32.rules, (std::vector<size_t>{0, 1}));
  const ResolvedLayer a1 = resolve(c, "features.1.act", LayerKind::activation);
  EXPECT_FALSE(a1.quantize);
  EXPECT_FALSE(a1.act.has_value());
  EXPECT_TRUE(resolve(c, "features.1.act", LayerKind::signed_activation).quantize) << "kinds restrict a rule";
  EXPECT_EQ(resolve(c, "features.1.act", LayerKind::signed_activation).act->bits, 3);
  const ResolvedLayer a3 = resolve(c, "features.3.act", LayerKind::activation);
  ASSERT_TRUE(a3.quantize) << "quantize false, then true again";
  EXPECT_EQ(a3.act->bits, 4);
  EXPECT_EQ(a3.act->rounding, Rounding::floor);
  EXPECT_EQ(a3.rules, (std::vector<size_t>{0, 2, 3}));
  EXPECT_EQ(resolve(c, "classifier.1", LayerKind::linear).weight->bits, 5) << "rule for kind conv only";
  c.scheme = Scheme::fp32;
  EXPECT_FALSE(resolve(c, "features.3.conv1", LayerKind::conv).quantize);
}

TEST(Resolve, OverridesFromAQverifyFile) {
  TempDir dir;
  const std::string p = dir.write("o.json", R"({"format": "qverify-config", "version": 1, "name": "o", "scheme": "tqt",
    "defaults": {"conv_weight": {"levels": 16}, "activation": {"bits": 6, "power_of_two": true}},
    "overrides": [
      {"match": "features\\.3\\..*", "weight": {"bits": 2}, "activation": {"levels": 4}},
      {"match": "features\\.3\\.1", "kinds": ["depthwise_conv"], "weight": {"bits": 3}},
      {"match": "^head", "quantize": false}]})");
  const QuantConfig c = read_config(p);
  EXPECT_EQ(c.conv_weight.bits, 4) << "16 levels";
  EXPECT_EQ(c.depthwise_weight.bits, 4);
  EXPECT_EQ(resolve(c, "features.3.0", LayerKind::conv).weight->bits, 2);
  EXPECT_EQ(resolve(c, "features.3.1", LayerKind::conv).weight->bits, 2);
  EXPECT_EQ(resolve(c, "features.3.1", LayerKind::depthwise_conv).weight->bits, 3);
  const ResolvedLayer act = resolve(c, "features.3.2", LayerKind::activation);
  EXPECT_EQ(act.act->bits, 2) << "4 levels";
  EXPECT_TRUE(act.act->power_of_two);
  EXPECT_FALSE(resolve(c, "head.fc", LayerKind::linear).quantize);
}

// ---- bad files ----

struct Bad {
  const char* name;  // file name; its extension picks the reader
  const char* body;
  std::vector<std::string> expect;  // substrings of the message besides the path
};

const char* const kHead = R"("format": "qverify-config", "version": 1, "name": "x", )";

std::string qv(const std::string& rest) { return std::string("{") + kHead + rest + "}"; }

TEST(BadConfigs, RefusedNamingFileKeyAndExpectation) {
  const std::string ini_head = "[MODEL]\nARCH: quant_mobilenet_v1\nWIDTH_SCALE: 1.0\n\n[QUANT]\n";
  const std::string quantlab_head = R"({"network": {"class": "MobileNetV2", "quantize": {"function": "pact_recipe", "kwargs": {"config": )";
  const std::vector<Bad> cases = {
      // qverify JSON
      {"unknown_key.json", nullptr, {"colour", "unknown key 'colour'"}},
      {"wrong_type.json", nullptr, {"defaults.activation.bits", "expected an integer, got string \"eight\""}},
      {"bits_zero.json", nullptr, {"defaults.conv_weight.bits", "between 1 and 32, got 0"}},
      {"bits_65.json", nullptr, {"defaults.activation.bits", "between 1 and 32, got 65"}},
      {"negative_clip.json", nullptr, {"defaults.activation.init_value", "clipping threshold must be positive"}},
      {"levels_65_signed_1bit.json", nullptr, {"defaults.signed_activation.levels", "65 levels do not fit a signed 1-bit quantizer"}},
      {"narrow_1bit.json", nullptr, {"defaults.conv_weight.bits", "narrow signed 1-bit quantizer has a single level"}},
      {"levels_1.json", nullptr, {"defaults.activation.levels", "at least 2 levels"}},
      {"bad_regex.json", nullptr, {"overrides[0].match", "invalid regular expression 'features.(3'"}},
      {"bad_rounding.json", nullptr, {"defaults.activation.rounding", "unknown rounding 'nearest'", "half_even"}},
      {"bad_scheme.json", nullptr, {"scheme", "unknown value 'lsq'", "fp32, brevitas, pact, tqt"}},
      {"bad_form.json", nullptr, {"requant.form", "unknown value 'magic'"}},
      {"bad_kind.json", nullptr, {"overrides[0].kinds[0]", "unknown layer kind 'pool'"}},
      {"bad_percentile.json", nullptr, {"defaults.activation.init_value", "percentile must be in (0, 100]"}},
      {"bad_preprocess.json", nullptr, {"preprocess.std", "expected as many values as mean (3), got 2"}},
      {"bad_version.json", nullptr, {"version", "unsupported version"}},
      {"malformed.json", nullptr, {"not valid JSON"}},
      // QuantLab JSON
      {"ql_type.json", nullptr, {"network.quantize.kwargs.config.PACTConv2d.kwargs.n_levels", "expected an integer, got string"}},
      {"ql_levels.json", nullptr, {"PACTUnsignedAct.kwargs.n_levels", "expected a power of two", "65 levels"}},
      {"ql_levels_1.json", nullptr, {"PACTLinear.kwargs.n_levels", "at least 2 levels, got 1"}},
      {"ql_regex.json", nullptr, {"PACTConv2d['features.(3$']", "invalid regular expression 'features.(3$'"}},
      {"ql_asymm.json", nullptr, {"PACTConv2d.kwargs.symm_wts", "not supported"}},
      {"ql_init.json", nullptr, {"PACTUnsignedAct['pilot.2$'].init_clip", "unknown value 'mean'"}},
      // Brevitas INI
      {"no_separator.ini", nullptr, {":6: expected KEY: VALUE or KEY = VALUE, got 'BIT_WIDTH 4'"}},
      {"not_integer.ini", nullptr, {":6: expected an integer for BIT_WIDTH, got 'four'"}},
      {"bits_zero.ini", nullptr, {":6: BIT_WIDTH: a quantizer bit width must be between 1 and 32, got 0"}},
      {"one_bit.ini", nullptr, {":6: BIT_WIDTH: a narrow signed 1-bit quantizer"}},
      {"bad_bool.ini", nullptr, {":7: expected a boolean", "ROUND_AVG_POOL, got 'maybe'"}},
      {"bad_arch.ini", nullptr, {":2: unknown ARCH 'quant_resnet18'"}},
      {"no_arch.ini", nullptr, {"[MODEL] ARCH: missing"}},
      {"dup_key.ini", nullptr, {":7: key bit_width appears twice in [QUANT] (first on line 6)"}},
      {"before_section.ini", nullptr, {":1: a key before any [SECTION] header"}},
      {"mean_gap.ini", nullptr, {"MEAN_2: expected index 1 next"}},
      {"bad_float.ini", nullptr, {":3: expected a finite number for WIDTH_SCALE, got 'wide'"}},
  };
  const std::map<std::string, std::string> bodies = {
      {"unknown_key.json", qv(R"("scheme": "pact", "colour": 1)")},
      {"wrong_type.json", qv(R"("scheme": "pact", "defaults": {"activation": {"bits": "eight"}})")},
      {"bits_zero.json", qv(R"("scheme": "pact", "defaults": {"conv_weight": {"bits": 0}})")},
      {"bits_65.json", qv(R"("scheme": "pact", "defaults": {"activation": {"bits": 65}})")},
      {"negative_clip.json", qv(R"("scheme": "pact", "defaults": {"activation": {"clip_init": "const", "init_value": -6.0}})")},
      {"levels_65_signed_1bit.json", qv(R"("scheme": "pact", "defaults": {"signed_activation": {"bits": 1, "levels": 65}})")},
      {"narrow_1bit.json", qv(R"("scheme": "brevitas", "defaults": {"conv_weight": {"bits": 1, "narrow_range": true}})")},
      {"levels_1.json", qv(R"("scheme": "pact", "defaults": {"activation": {"levels": 1}})")},
      {"bad_regex.json", qv(R"("scheme": "pact", "overrides": [{"match": "features.(3", "weight": {"bits": 4}}])")},
      {"bad_rounding.json", qv(R"("scheme": "pact", "defaults": {"activation": {"rounding": "nearest"}})")},
      {"bad_scheme.json", qv(R"("scheme": "lsq")")},
      {"bad_form.json", qv(R"("scheme": "pact", "requant": {"form": "magic"})")},
      {"bad_kind.json", qv(R"("scheme": "pact", "overrides": [{"match": "x", "kinds": ["pool"]}])")},
      {"bad_percentile.json", qv(R"("scheme": "brevitas", "defaults": {"activation": {"clip_init": "percentile", "init_value": 150}})")},
      {"bad_preprocess.json", qv(R"("scheme": "pact", "preprocess": {"mean": [0.1, 0.2, 0.3], "std": [0.2, 0.2]})")},
      {"bad_version.json", R"({"format": "qverify-config", "version": 2, "name": "x", "scheme": "pact"})"},
      {"malformed.json", std::string("{") + kHead},
      {"ql_type.json", quantlab_head + R"({"PACTConv2d": {"kwargs": {"n_levels": "256"}}}}}}})"},
      {"ql_levels.json", quantlab_head + R"({"PACTUnsignedAct": {"kwargs": {"n_levels": 65}}}}}}})"},
      {"ql_levels_1.json", quantlab_head + R"({"PACTLinear": {"kwargs": {"n_levels": 1}}}}}}})"},
      {"ql_regex.json", quantlab_head + R"({"PACTConv2d": {"features.(3$": {}}}}}}})"},
      {"ql_asymm.json", quantlab_head + R"({"PACTConv2d": {"kwargs": {"symm_wts": false}}}}}}})"},
      {"ql_init.json", quantlab_head + R"({"PACTUnsignedAct": {"pilot.2$": {"init_clip": "mean"}}}}}}})"},
      {"no_separator.ini", ini_head + "BIT_WIDTH 4\n"},
      {"not_integer.ini", ini_head + "BIT_WIDTH: four\n"},
      {"bits_zero.ini", ini_head + "BIT_WIDTH: 0\n"},
      {"one_bit.ini", ini_head + "BIT_WIDTH: 1\n"},
      {"bad_bool.ini", ini_head + "BIT_WIDTH: 4\nROUND_AVG_POOL = maybe\n"},
      {"bad_arch.ini", "[MODEL]\nARCH: quant_resnet18\n"},
      {"no_arch.ini", "[MODEL]\nWIDTH_SCALE: 1.0\n"},
      {"dup_key.ini", ini_head + "BIT_WIDTH: 4\nbit_width = 8\n"},
      {"before_section.ini", "ARCH: quant_mobilenet_v1\n[MODEL]\n"},
      {"mean_gap.ini", ini_head + "BIT_WIDTH: 4\n[PREPROCESS]\nMEAN_0: 0.5\nMEAN_2: 0.5\nSTD_0: 0.2\nSTD_1: 0.2\n"},
      {"bad_float.ini", "[MODEL]\nARCH: quant_mobilenet_v1\nWIDTH_SCALE: wide\n"},
  };
  TempDir dir;
  int checked = 0;
  for (const Bad& b : cases) {
    SCOPED_TRACE(b.name);
    ASSERT_TRUE(bodies.count(b.name)) << "no body";
    const std::string path = dir.write(b.name, bodies.at(b.name));
    try {
      const QuantConfig c = read_config(path);
      ADD_FAILURE() << "accepted" << joined(c.warnings);
    } catch (const InputError& e) {
      const std::string m = e.what();
      EXPECT_EQ(m.rfind(path, 0), 0u) << "the message starts with the file: " << m;
      for (const std::string& s : b.expect) EXPECT_NE(m.find(s), std::string::npos) << "'" << s << "' not in: " << m;
      ++checked;
    }
  }
  EXPECT_EQ(checked, static_cast<int>(cases.size()));
}

TEST(BadConfigs, UnknownFormat) {
  TempDir dir;
  for (const char* body : {R"({"layers": []})", "just some text\n", R"([1, 2])"}) {
    const std::string p = dir.write("thing.cfg", body);
    EXPECT_THROW(read_config(p), InputError) << body;
  }
  try {
    read_config(dir.write("thing.json", R"({"network": {"class": "X"}})"));
    FAIL() << "accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("not a known config"), std::string::npos) << e.what();
  }
  try {
    read_config(dir.write("fmt.json", R"({"format": "onnx"})"));
    FAIL() << "accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("format: expected \"qverify-config\""), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qv::config
