// The main job, end to end: model + config -> fake-quant network (seeded init or --weights, harmonized,
// calibrated) -> extraction and exact lowering -> the chosen requant form -> reference (and optimized
// backend) -> the cross-check against the float network in float32 and float64.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "fakequant/config/quant_config.h"
#include "harness/cross_check.h"
#include "integerize/lower.h"
#include "integerize/requant_forms.h"

namespace qv::harness {

struct PipelineOptions {
  std::string model;
  std::string config;                // path or shipped name
  std::string weights;               // empty: seeded init + calibration
  std::string input;                 // empty: the embedded natural image; .npy otherwise
  uint64_t seed = 0;
  int resolution = 224;
  double width_mult = 1.0;
  std::string requant = "";          // empty: the config's requant.form
  int threads = 2;
  bool run_optimized = true;
  std::function<void(const std::string&)> progress;  // stage messages for long runs
  std::function<void(Network&)> plant_fault;          // tests: break the integer network after lowering
};

struct BackendComparison {
  std::string name;         // "optimized"
  bool ran = false;
  std::string skipped_because;
  int64_t nodes = 0, differing_nodes = 0, differing_elements = 0;
  std::string first_difference;
};

struct PipelineResult {
  config::QuantConfig config;
  std::string model;
  std::vector<std::string> harmonized;   // one line per inserted quantizer
  std::vector<std::string> rule_log;
  std::vector<std::string> notes;
  integerize::Lowered exact;
  Network network;                       // in the chosen requant form
  integerize::RequantFormChoice form;
  std::vector<integerize::FormBound> form_bounds;
  Trace reference;
  CrossCheck float32, float64;
  BackendComparison optimized;
  std::string input_description;
  std::vector<std::pair<std::string, double>> seconds;  // stage timings
};

// Throws InputError (bad config, model, weights, input: exit 2) or IntegerizeError.
PipelineResult run_pipeline(const PipelineOptions& options);

// The integer network run_pipeline would check (same model, config, seed, weights, requant form) and its
// quantized input, without the float runs, the evaluations and the cross-check: for the benchmarks.
struct IntegerModel {
  Network network;
  IntTensor input;
  std::string config;  // the config's name
};
IntegerModel integer_model(const PipelineOptions& options);

}  // namespace qv::harness
