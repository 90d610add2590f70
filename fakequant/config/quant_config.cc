#include "fakequant/config/quant_config.h"

#include <algorithm>
#include <regex>

namespace qv::config {

bool is_weight_kind(LayerKind k) {
  return k == LayerKind::first_conv || k == LayerKind::conv || k == LayerKind::depthwise_conv || k == LayerKind::linear;
}

void apply(WeightQuant& w, const WeightPatch& p) {
  if (p.bits) w.bits = *p.bits;
  if (p.narrow_range) w.narrow_range = *p.narrow_range;
  if (p.granularity) w.granularity = *p.granularity;
  if (p.init) w.init = *p.init;
  if (p.std_factor) w.std_factor = *p.std_factor;
  if (p.learn_clip) w.learn_clip = *p.learn_clip;
}

void apply(ActQuant& a, const ActPatch& p) {
  if (p.bits) a.bits = *p.bits;
  if (p.is_signed) a.is_signed = *p.is_signed;
  if (p.rounding) a.rounding = *p.rounding;
  if (p.clip_init) a.clip_init = *p.clip_init;
  if (p.init_value) a.init_value = *p.init_value;
  if (p.learn_clip) a.learn_clip = *p.learn_clip;
  if (p.power_of_two) a.power_of_two = *p.power_of_two;
  if (p.granularity) a.granularity = *p.granularity;
}

ResolvedLayer resolve(const QuantConfig& c, const std::string& layer_name, LayerKind kind) {
  ResolvedLayer r;
  WeightQuant w;
  ActQuant a;
  switch (kind) {
    case LayerKind::first_conv: w = c.first_layer_weight; break;
    case LayerKind::conv: w = c.conv_weight; break;
    case LayerKind::depthwise_conv: w = c.depthwise_weight; break;
    case LayerKind::linear: w = c.linear_weight; break;
    case LayerKind::activation: a = c.activation; break;
    case LayerKind::signed_activation: a = c.signed_activation; break;
    case LayerKind::input: a = c.input; break;
  }
  for (size_t i = 0; i < c.overrides.size(); ++i) {
    const LayerRule& rule = c.overrides[i];
    if (!rule.kinds.empty() && std::find(rule.kinds.begin(), rule.kinds.end(), kind) == rule.kinds.end()) continue;
    // The readers validated every pattern; a rule built in code with a bad pattern is a bug (regex_error).
    if (!std::regex_search(layer_name, std::regex(rule.pattern, std::regex::ECMAScript))) continue;
    r.rules.push_back(i);
    if (rule.quantize) r.quantize = *rule.quantize;
    if (is_weight_kind(kind)) apply(w, rule.weight);
    else apply(a, rule.act);
  }
  if (c.scheme == Scheme::fp32) r.quantize = false;
  if (r.quantize) {
    if (is_weight_kind(kind)) r.weight = w;
    else r.act = a;
  }
  return r;
}

std::string_view to_string(Scheme s) {
  switch (s) {
    case Scheme::fp32: return "fp32";
    case Scheme::brevitas: return "brevitas";
    case Scheme::pact: return "pact";
    case Scheme::tqt: return "tqt";
  }
  return "?";
}

std::string_view to_string(Granularity g) { return g == Granularity::per_tensor ? "per_tensor" : "per_channel"; }

std::string_view to_string(WeightInit i) {
  switch (i) {
    case WeightInit::max: return "max";
    case WeightInit::sawb_symm: return "sawb_symm";
    case WeightInit::sawb_asymm: return "sawb_asymm";
    case WeightInit::std: return "std";
  }
  return "?";
}

std::string_view to_string(ClipInit c) {
  switch (c) {
    case ClipInit::const_value: return "const";
    case ClipInit::max: return "max";
    case ClipInit::std: return "std";
    case ClipInit::percentile: return "percentile";
  }
  return "?";
}

std::string_view to_string(LayerKind k) {
  switch (k) {
    case LayerKind::first_conv: return "first_conv";
    case LayerKind::conv: return "conv";
    case LayerKind::depthwise_conv: return "depthwise_conv";
    case LayerKind::linear: return "linear";
    case LayerKind::activation: return "activation";
    case LayerKind::signed_activation: return "signed_activation";
    case LayerKind::input: return "input";
  }
  return "?";
}

std::string_view to_string(Format f) {
  switch (f) {
    case Format::qverify: return "qverify";
    case Format::quantlab: return "quantlab";
    case Format::brevitas_ini: return "brevitas_ini";
  }
  return "?";
}

std::string_view to_string(QuantConfig::Harmonize::AddEps a) {
  return a == QuantConfig::Harmonize::AddEps::widest_input ? "widest_input" : "force_output";
}

std::optional<Scheme> parse_scheme(std::string_view s) {
  for (Scheme v : {Scheme::fp32, Scheme::brevitas, Scheme::pact, Scheme::tqt})
    if (to_string(v) == s) return v;
  return std::nullopt;
}

std::optional<LayerKind> parse_layer_kind(std::string_view s) {
  for (LayerKind k : {LayerKind::first_conv, LayerKind::conv, LayerKind::depthwise_conv, LayerKind::linear,
                      LayerKind::activation, LayerKind::signed_activation, LayerKind::input})
    if (to_string(k) == s) return k;
  return std::nullopt;
}

}  // namespace qv::config
