// A quantization configuration in qverify's own JSON schema (docs/configs.md): which scheme, the bit
// widths per layer kind, rounding and clipping of activations, per-layer overrides by regex on the
// hierarchical layer name, and the integerization options. Plain data, no LibTorch.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ir/rounding.h"

namespace qv::config {

enum class Scheme { fp32, brevitas, pact, tqt };
std::string_view to_string(Scheme s);

struct Override {
  std::string match;                 // ECMAScript regex, searched in the layer name
  std::optional<int> weight_bits;
  std::optional<int> act_bits;
};

struct QuantConfig {
  std::string file;                  // where it was read from
  std::string name;
  Scheme scheme = Scheme::fp32;
  int weight_bits = 8, first_layer_weight_bits = 8, depthwise_weight_bits = 8, linear_weight_bits = 8;
  bool weight_per_channel = true, linear_per_channel = false;
  int act_bits = 8;
  Rounding act_rounding = Rounding::half_even;
  double act_init_clip = 6.0;
  bool power_of_two = false;         // TQT thresholds 2^ceil(t)
  Rounding avg_pool_rounding = Rounding::floor;
  std::vector<Override> overrides;
  std::string requant_form = "exact";  // exact | thresholds | mulshift | tflite-single | tflite-double
  int mulshift_bits = 24;
  std::string add_eps = "widest_input";  // widest_input | force_output (QuantLab harmonization)
};

// Reads a qverify config by path, or by name among the shipped ones ("pact.json"). Strict: unknown
// keys, wrong types and impossible values throw InputError naming the file and the key.
QuantConfig read_config(const std::string& path_or_name);

// The folder of shipped configs (QVERIFY_CONFIG_DIR overrides the one compiled in) and its files.
std::string shipped_config_dir();
std::vector<std::string> shipped_configs();

}  // namespace qv::config
