// The quantization configuration: which scheme, how each kind of layer quantizes its weights or its
// output, per-layer rules by regex on the hierarchical layer name, and the integerization options.
//
// One plain struct, whatever the file it came from: qverify's own JSON schema, a QuantLab
// config.*.json or a Brevitas .ini all read into QuantConfig (read_config.h). docs/configs.md documents
// every field, the JSON keys, and how the peers' keys map onto them. No LibTorch here: the fake-quant
// models, the integerization passes and the CLI all consume this.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ir/rounding.h"

namespace qv::config {

enum class Scheme { fp32, brevitas, pact, tqt };
enum class Granularity { per_tensor, per_channel };
// Weight clipping initialisation: max |w| (Brevitas and PACT "max"), SAWB symmetric/asymmetric
// coefficients, or std_factor standard deviations.
enum class WeightInit { max, sawb_symm, sawb_asymm, std };
// Activation clipping initialisation: a constant, a running max, mean + k std, or a percentile.
enum class ClipInit { const_value, max, std, percentile };
// The kinds of layer a configuration distinguishes. Weight kinds carry a WeightQuant, the others an ActQuant.
enum class LayerKind { first_conv, conv, depthwise_conv, linear, activation, signed_activation, input };
// The file a QuantConfig was read from.
enum class Format { qverify, quantlab, brevitas_ini };

struct WeightQuant {
  int bits = 8;
  bool narrow_range = false;   // signed range [-(2^(b-1)-1), 2^(b-1)-1] instead of [-2^(b-1), 2^(b-1)-1]
  Granularity granularity = Granularity::per_channel;
  WeightInit init = WeightInit::max;
  double std_factor = 3.0;     // k in k * std(w), for init = std
  bool learn_clip = false;     // TQT learns the weight threshold; Brevitas and PACT recompute it
  friend bool operator==(const WeightQuant&, const WeightQuant&) = default;
};

struct ActQuant {
  int bits = 8;
  bool is_signed = false;
  Rounding rounding = Rounding::half_even;
  ClipInit clip_init = ClipInit::const_value;
  // By clip_init: const_value: the threshold (> 0); std: the number of standard deviations (> 0);
  // percentile: the percentile in (0, 100]; max: unused.
  double init_value = 6.0;
  bool learn_clip = true;
  bool power_of_two = false;   // TQT thresholds rounded up to 2^ceil(log2 t)
  Granularity granularity = Granularity::per_tensor;
  friend bool operator==(const ActQuant&, const ActQuant&) = default;
};

// A LayerRule changes only the fields it sets.
struct WeightPatch {
  std::optional<int> bits;
  std::optional<bool> narrow_range;
  std::optional<Granularity> granularity;
  std::optional<WeightInit> init;
  std::optional<double> std_factor;
  std::optional<bool> learn_clip;
  friend bool operator==(const WeightPatch&, const WeightPatch&) = default;
};
struct ActPatch {
  std::optional<int> bits;
  std::optional<bool> is_signed;
  std::optional<Rounding> rounding;
  std::optional<ClipInit> clip_init;
  std::optional<double> init_value;
  std::optional<bool> learn_clip;
  std::optional<bool> power_of_two;
  std::optional<Granularity> granularity;
  friend bool operator==(const ActPatch&, const ActPatch&) = default;
};

struct LayerRule {
  std::string pattern;               // ECMAScript regex, std::regex_search'ed in the layer name
  std::vector<LayerKind> kinds;      // the kinds it applies to; empty: every kind
  std::optional<bool> quantize;      // false leaves the layer in float
  WeightPatch weight;                // applied to weight kinds only
  ActPatch act;                      // applied to activation kinds only
  friend bool operator==(const LayerRule&, const LayerRule&) = default;
};

struct QuantConfig {
  std::string name;                  // the config's name ("pact"), or the peer file's stem
  std::string source_file;           // the path it was read from
  Format format = Format::qverify;
  Scheme scheme = Scheme::fp32;

  // What a peer file says about the network (the CLI may imply --model from it).
  std::optional<std::string> model;  // qverify model name: mobilenet_v1, proxylessnas_mobile14, vgg16_bn, mobilenet_v2
  std::optional<double> width_mult;
  std::optional<bool> hadamard_classifier;
  // A path or URL named by the file. Never opened or fetched: the user passes --weights FILE.
  std::optional<std::string> pretrained;
  std::optional<std::string> float_pretrained;

  // Defaults per layer kind.
  WeightQuant conv_weight, depthwise_weight, linear_weight, first_layer_weight;
  ActQuant activation;               // after conv + BN (ReLU / ReLU6)
  ActQuant signed_activation{.is_signed = true};  // identity quantizers: residual adds, harmonization
  // The network input grid: signed, since normalized images are; calibration sets the range from data.
  ActQuant input{.is_signed = true, .clip_init = ClipInit::const_value, .init_value = 2.64, .learn_clip = false};
  std::vector<LayerRule> overrides;  // applied in order after the defaults; later rules win

  struct Harmonize {
    enum class AddEps { widest_input, force_output };
    AddEps add_eps = AddEps::widest_input;  // common grid of an add's operands (QuantLab force_out_eps)
    bool insert_identity = false;           // identity quantizer where a conv/linear feeds a conv/linear without one
  } harmonize;
  struct Requant {
    std::string form = "exact";      // exact | thresholds | mulshift | tflite-single | tflite-double
    int mulshift_bits = 24;          // D = 2^mulshift_bits for mulshift
  } requant;
  struct Preprocess {
    std::vector<double> mean, std;   // per input channel, x = (p / 255 - mean) / std; empty: none stated
  } preprocess;
  int avgpool_bits = 8;              // output bits of a quantized average pool (Brevitas TruncAvgPool)
  Rounding avgpool_rounding = Rounding::floor;

  std::vector<std::string> warnings;  // peer-file keys qverify does not interpret, defaults it assumed
};

// The effective settings of one layer: the kind's default, then every matching rule in order.
struct ResolvedLayer {
  bool quantize = true;
  std::optional<WeightQuant> weight;  // set for quantized weight kinds
  std::optional<ActQuant> act;        // set for quantized activation kinds
  std::vector<size_t> rules;          // indices into overrides of the rules that matched
};
ResolvedLayer resolve(const QuantConfig& config, const std::string& layer_name, LayerKind kind);

bool is_weight_kind(LayerKind k);

// The fields a patch sets, written over a quantizer.
void apply(WeightQuant& w, const WeightPatch& p);
void apply(ActQuant& a, const ActPatch& p);

std::string_view to_string(Scheme s);
std::string_view to_string(Granularity g);
std::string_view to_string(WeightInit i);
std::string_view to_string(ClipInit c);
std::string_view to_string(LayerKind k);
std::string_view to_string(Format f);
std::string_view to_string(QuantConfig::Harmonize::AddEps a);
std::optional<Scheme> parse_scheme(std::string_view s);
std::optional<LayerKind> parse_layer_kind(std::string_view s);

// The requantization forms requant.form accepts.
inline constexpr std::string_view kRequantForms[] = {"exact", "thresholds", "mulshift", "tflite-single", "tflite-double"};

}  // namespace qv::config
