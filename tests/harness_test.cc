// The main job end to end (harness/pipeline.h): every model under every quantized shipped config at a
// small resolution has zero unexplained differences and an optimized backend identical to the
// reference; deliberately broken integerizations are caught at the right layer with the rounding
// convention their values follow; harmonization changes only what it reports.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "fakequant/from_config.h"
#include "fakequant/config/read_config.h"
#include "harness/pipeline.h"
#include "harness/report.h"
#include "integerize/harmonize.h"
#include "reference/evaluator.h"

namespace qv::harness {
namespace {

PipelineResult run(const std::string& model, const std::string& config, int resolution, const std::string& requant = "") {
  PipelineOptions o;
  o.model = model;
  o.config = config;
  o.resolution = resolution;
  o.requant = requant;
  o.seed = 3;
  return run_pipeline(o);
}

void expect_all_explained(const PipelineResult& r, const std::string& what) {
  for (const CrossCheck* c : {&r.float32, &r.float64}) {
    EXPECT_EQ(c->total_unexplained, 0) << what << " " << c->dtype;
    EXPECT_GT(c->total_elements, 10000) << what;
    EXPECT_GT(c->layers.size(), 8u) << what;
    EXPECT_EQ(c->total_differing, c->total_explained) << what << " " << c->dtype;
    EXPECT_TRUE(c->output.within_bound) << what << " logits differ by " << c->output.max_abs_diff << " > " << c->output.bound;
  }
  ASSERT_TRUE(r.optimized.ran) << what;
  EXPECT_EQ(r.optimized.differing_nodes, 0) << what << ": " << r.optimized.first_difference;
  EXPECT_EQ(verdict(r), 0) << what;
}

class EveryModelAndConfig : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(EveryModelAndConfig, ZeroUnexplainedMismatches) {
  const auto& [model, config] = GetParam();
  const bool vgg = model.rfind("vgg", 0) == 0;
  const PipelineResult r = run(model, config, vgg ? 32 : 64);
  expect_all_explained(r, model + " " + config);
  // Some layers were really compared: the reference produced the traced tensors.
  EXPECT_EQ(r.reference.size(), r.network.nodes.size());
  std::printf("%s %s: float32 %lld differ (all explained), float64 %lld\n", model.c_str(), config.c_str(),
              static_cast<long long>(r.float32.total_differing), static_cast<long long>(r.float64.total_differing));
}

INSTANTIATE_TEST_SUITE_P(Harness, EveryModelAndConfig,
                         ::testing::Combine(::testing::Values("mobilenet_v1", "proxylessnas_mobile14", "proxylessnas_mobile14_hadamard",
                                                              "vgg16", "vgg16_bn", "mobilenet_v2"),
                                            ::testing::Values("pact.json", "tqt.json", "brevitas_4b.json", "brevitas_8b.json")),
                         [](const auto& param_info) {
                           std::string n = std::get<0>(param_info.param) + "_" + std::get<1>(param_info.param);
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

TEST(Harness, EveryRequantFormIsExplained) {
  for (const char* form : {"thresholds", "mulshift:24", "tflite-single", "tflite-double"}) {
    PipelineResult r;
    try {
      r = run("mobilenet_v1", "brevitas_8b.json", 64, form);
    } catch (const integerize::IntegerizeError& e) {
      // A form that cannot hold a layer exactly enough is refused with the layer named, never used.
      EXPECT_NE(std::string(e.what()).find("form"), std::string::npos) << e.what();
      continue;
    }
    expect_all_explained(r, form);
    if (std::string(form) == "thresholds") {
      for (const LayerReport& l : r.float32.layers) EXPECT_EQ(l.form, 0) << "thresholds are exact";
    }
  }
}

// PACT weights initialised by SAWB (symmetric: zero between two levels, so the integers are odd at half
// the scale; asymmetric: the almost symmetric grid) and by mean + k std: integerized exactly.
TEST(Harness, SawbAndStdWeightInitsIntegerizeExactly) {
  for (const char* init : {"sawb_symm", "sawb_asymm", "std"}) {
    const std::string path = (std::filesystem::temp_directory_path() / (std::string("qv_") + init + ".json")).string();
    {
      std::ofstream f(path);
      f << R"({"format": "qverify-config", "version": 1, "name": ")" << init << R"(", "scheme": "pact",
        "defaults": {"conv_weight": {"bits": 8, "granularity": "per_channel", "init": ")" << init << R"("},
                     "linear_weight": {"granularity": "per_tensor", "init": ")" << init << R"("},
                     "activation": {"bits": 8, "clip_init": "const", "init_value": 6.0}}})";
    }
    const PipelineResult r = run("mobilenet_v2", path, 64);
    expect_all_explained(r, init);
    std::filesystem::remove(path);
  }
}

// The 12th requant of MobileNetV2 broken two ways: floor instead of half_even (a wrong rounding mode),
// and QuantLib's old double rounding, floor(x + 1/2 + 1/2) = floor(p) + 1.
PipelineResult broken(const std::string& fault, std::string& target) {
  PipelineOptions o;
  o.model = "mobilenet_v2";
  o.config = "pact.json";
  o.resolution = 64;
  o.run_optimized = false;
  o.plant_fault = [&](Network& net) {
    int seen = 0;
    for (Node& n : net.nodes)
      if (auto* rq = std::get_if<RequantOp>(&n.op); rq && ++seen == 12) {
        auto& ex = std::get<ExactRequant>(rq->requant.form);
        ex.rounding = Rounding::floor;
        if (fault == "double")
          for (Rational& d : ex.delta) d += 1;
        target = n.name;
        return;
      }
  };
  return run_pipeline(o);
}

TEST(Harness, WrongRoundingModeIsCaughtAtItsLayer) {
  std::string target;
  const PipelineResult r = broken("floor", target);
  ASSERT_FALSE(target.empty());
  EXPECT_GT(r.float32.total_unexplained, 0);
  EXPECT_EQ(verdict(r), 1);
  const LayerReport* first = nullptr;
  for (const LayerReport& l : r.float32.layers)
    if (l.unexplained) {
      first = &l;
      break;
    }
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->layer, target);
  ASSERT_TRUE(first->first_unexplained);
  EXPECT_NE(first->convention.find("integer network values follow floor"), std::string::npos) << first->convention;
  EXPECT_NE(first->convention.find("float network values follow half_even"), std::string::npos) << first->convention;
  // Later layers differ too, but only as propagation: the unexplained ones sit at the broken layer.
  for (const LayerReport& l : r.float32.layers)
    if (l.layer != target) {
      EXPECT_EQ(l.unexplained, 0) << l.layer;
    }
}

TEST(Harness, DoubleRoundingIsCaughtWithTheConventionItFollows) {
  std::string target;
  const PipelineResult r = broken("double", target);
  const LayerReport* hit = nullptr;
  for (const LayerReport& l : r.float32.layers)
    if (l.layer == target) hit = &l;
  ASSERT_NE(hit, nullptr);
  EXPECT_GT(hit->unexplained, hit->elements / 5);  // about half the outputs one LSB high
  ASSERT_TRUE(hit->first_unexplained);
  EXPECT_EQ(hit->first_unexplained->local_q - hit->first_unexplained->float_q, 1);
  // floor(p) + 1 is ceil(p) off the integers: the report names it.
  EXPECT_NE(hit->convention.find("integer network values follow ceil"), std::string::npos) << hit->convention;
}

TEST(Harmonize, BrevitasNetworksOnlyGetAnInputQuantizer) {
  const config::QuantConfig c = config::read_config("brevitas_4b.json");
  for (const std::string model : {"mobilenet_v1", "proxylessnas_mobile14", "vgg16"}) {
    fakequant::ModelOptions mo;
    mo.resolution = model == "vgg16" ? 32 : 64;
    auto net = fakequant::build_model(model, c, mo);
    // Only MobileNet V1's unpadded first conv can absorb the normalization of the pixels.
    EXPECT_EQ(integerize::input_folds_into_first_conv(*net), model == "mobilenet_v1") << model;
    const auto changes = integerize::harmonize(*net, fakequant::model_quant(c).signed_act, fakequant::act_quant(c, c.input));
    ASSERT_EQ(changes.size(), 1u) << model;
    EXPECT_EQ(changes[0].inserted, "input_quant");
  }
}

TEST(Harness, MobileNetV1RunsOnThePixelsThemselves) {
  // Brevitas MobileNet V1: one std (0.226) for every channel, unpadded first conv: the integer input is
  // the 8-bit image and (p / 255 - mean) / std folds into the first conv's delta. No quantizer is
  // inserted, and the integer input equals the embedded image's pixels.
  const PipelineResult r = run("mobilenet_v1", "brevitas_4b.json", 64);
  EXPECT_TRUE(r.harmonized.empty());
  const Node* in = r.network.find("input_pixels");
  ASSERT_NE(in, nullptr);
  EXPECT_EQ(in->output.type, (IntType{8, false}));
  expect_all_explained(r, "mobilenet_v1 pixels");
}

TEST(Harmonize, MobileNetV2GetsQuantizersAtEveryBranchEndAndSum) {
  const config::QuantConfig c = config::read_config("pact.json");
  fakequant::ModelOptions mo;
  mo.resolution = 64;
  auto net = fakequant::build_model("mobilenet_v2", c, mo);
  const auto changes = integerize::harmonize(*net, fakequant::model_quant(c).signed_act, fakequant::act_quant(c, c.input));
  // input + 17 projection outputs + 10 residual sums (SEMANTICS.md: 10 of the 17 blocks add).
  int sums = 0, branches = 0;
  for (const auto& ch : changes) {
    if (ch.after.find(".add") != std::string::npos) ++sums;
    if (ch.after.find("residual_branch") != std::string::npos) ++branches;
  }
  EXPECT_EQ(changes.size(), 28u);
  EXPECT_EQ(sums, 10);
  EXPECT_EQ(branches, 17);
}

TEST(Harmonize, LeavesTheFunctionUnchangedWhereNothingIsInserted) {
  // Brevitas ProxylessNAS: only the input quantizer is inserted. On an input already on that grid the
  // harmonized network computes exactly what the original computes.
  const config::QuantConfig c = config::read_config("brevitas_8b.json");
  fakequant::ModelOptions mo;
  mo.resolution = 64;
  torch::manual_seed(7);
  auto net = fakequant::build_model("proxylessnas_mobile14", c, mo);
  net->eval();
  const torch::Tensor raw = torch::randn({1, 3, 64, 64});
  auto harmonized = net;  // the same modules; harmonize edits the graph
  const fakequant::Graph before = net->graph;
  integerize::harmonize(*harmonized, fakequant::model_quant(c).signed_act, fakequant::act_quant(c, c.input));
  torch::NoGradGuard no_grad;
  // Put x on the input quantizer's grid first.
  const fakequant::GraphNode& iq = harmonized->graph.nodes[harmonized->graph.find("input_quant")];
  const torch::Tensor x = iq.act.ptr()->quantize(raw);
  const torch::Tensor y_new = fakequant::run_graph(harmonized->graph, x);
  const torch::Tensor y_old = fakequant::run_graph(before, x);
  EXPECT_TRUE(torch::equal(y_new, y_old));
}

}  // namespace
}  // namespace qv::harness
