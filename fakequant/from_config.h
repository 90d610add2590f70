// Building a fake-quant network from a model name and a quantization config: the per-kind defaults
// become the model's ModelQuant, then every conv/linear/activation of the graph gets the settings
// the config resolves for its name (per-layer rules by regex, config/quant_config.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "fakequant/config/quant_config.h"
#include "fakequant/models.h"

namespace qv::fakequant {

// The model names `--model` accepts ("vgg" means vgg16).
const std::vector<std::string>& model_names();

QuantKind quant_kind(config::Scheme s);
WeightQuant weight_quant(const config::QuantConfig& c, const config::WeightQuant& w);
ActQuant act_quant(const config::QuantConfig& c, const config::ActQuant& a);
ModelQuant model_quant(const config::QuantConfig& c);

// Throws std::invalid_argument listing the known names.
std::shared_ptr<NetworkImpl> make_model(const std::string& name, const ModelQuant& q, const ModelOptions& o);

// Applies the config's per-layer rules to the built network (bit widths, granularity, signedness,
// rounding) and returns one line per layer a rule changed. A rule that turns quantization off for a
// layer is refused (std::invalid_argument): integerization needs every layer quantized.
std::vector<std::string> apply_layer_rules(NetworkImpl& net, const config::QuantConfig& c);

// model + config -> network (model_quant, make_model, apply_layer_rules).
std::shared_ptr<NetworkImpl> build_model(const std::string& name, const config::QuantConfig& c, const ModelOptions& o,
                                         std::vector<std::string>* rule_log = nullptr);

}  // namespace qv::fakequant
