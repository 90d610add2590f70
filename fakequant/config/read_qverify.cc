// qverify's own config schema (docs/configs.md): strict. Every key is known, every value typed and
// possible, or InputError names the file, the key path and what was expected.
#include <initializer_list>
#include <regex>
#include <set>

#include "fakequant/config/checks.h"
#include "fakequant/config/json_node.h"
#include "fakequant/config/read_config.h"

namespace qv::config {

namespace {

using detail::json;
using detail::Node;

void only_keys(const Node& n, std::initializer_list<const char*> allowed) {
  const std::set<std::string> ok(allowed.begin(), allowed.end());
  for (const auto& [key, child] : n.members()) {
    if (ok.count(key)) continue;
    std::string list;
    for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
    child.fail("unknown key '" + key + "' (expected one of " + list + ")");
  }
}

void check(const Node& n, const std::string& problem) {
  if (!problem.empty()) n.fail(problem);
}

template <typename E>
E enum_value(const Node& n, std::initializer_list<E> values) {
  const std::string s = n.string();
  std::string list;
  for (E v : values) {
    if (to_string(v) == s) return v;
    list += std::string(list.empty() ? "" : ", ") + std::string(to_string(v));
  }
  n.fail("unknown value '" + s + "' (expected one of " + list + ")");
}

Rounding rounding(const Node& n) {
  const std::string s = n.string();
  auto r = parse_rounding(s);
  if (!r) n.fail("unknown rounding '" + s + "' (expected half_even, half_up, half_away, half_down, floor, ceil or trunc)");
  return *r;
}

int bits(const Node& n) {
  const int64_t b = n.integer();
  check(n, detail::check_bits(b));
  return static_cast<int>(b);
}

Granularity granularity(const Node& n) { return enum_value(n, {Granularity::per_tensor, Granularity::per_channel}); }

// A weight quantizer object, as a patch (only the keys present). `narrow_default` is the narrow_range
// the patch lands on when it does not say, for the 1-bit and levels checks.
WeightPatch weight_patch(const Node& n, bool narrow_default) {
  only_keys(n, {"bits", "levels", "narrow_range", "granularity", "init", "std_factor", "learn_clip"});
  WeightPatch p;
  if (n.has("narrow_range")) p.narrow_range = n.at("narrow_range").boolean();
  const bool narrow = p.narrow_range.value_or(narrow_default);
  if (n.has("bits")) p.bits = bits(n.at("bits"));
  if (n.has("levels")) {
    const Node l = n.at("levels");
    const int64_t levels = l.integer();
    if (p.bits) {
      check(l, detail::check_levels(levels, *p.bits, true, narrow));
    } else {
      int b = 0;
      bool nr = false;
      check(l, detail::bits_of_levels(levels, true, &b, &nr));
      if (p.narrow_range && *p.narrow_range != nr)
        l.fail(std::to_string(levels) + " levels contradict narrow_range " + (narrow ? "true" : "false"));
      p.bits = b;
      p.narrow_range = nr;
    }
  }
  if (p.bits) check(n.has("bits") ? n.at("bits") : n.at("levels"), detail::check_narrow(*p.bits, p.narrow_range.value_or(narrow)));
  if (n.has("granularity")) p.granularity = granularity(n.at("granularity"));
  if (n.has("init"))
    p.init = enum_value(n.at("init"), {WeightInit::max, WeightInit::sawb_symm, WeightInit::sawb_asymm, WeightInit::std});
  if (n.has("std_factor")) {
    p.std_factor = n.at("std_factor").number();
    check(n.at("std_factor"), detail::check_positive(*p.std_factor, "std_factor"));
  }
  if (n.has("learn_clip")) p.learn_clip = n.at("learn_clip").boolean();
  return p;
}

// An activation quantizer object, as a patch. `base` is what it lands on, for the value checks.
ActPatch act_patch(const Node& n, const ActQuant& base) {
  only_keys(n, {"bits", "levels", "signed", "rounding", "clip_init", "init_value", "learn_clip", "power_of_two", "granularity"});
  ActPatch p;
  if (n.has("signed")) p.is_signed = n.at("signed").boolean();
  if (n.has("bits")) p.bits = bits(n.at("bits"));
  if (n.has("levels")) {
    const Node l = n.at("levels");
    const int64_t levels = l.integer();
    if (p.bits) {
      check(l, detail::check_levels(levels, *p.bits, p.is_signed.value_or(base.is_signed), false));
    } else {
      int b = 0;
      bool narrow = false;
      check(l, detail::bits_of_levels(levels, false, &b, &narrow));
      p.bits = b;
    }
  }
  if (n.has("rounding")) p.rounding = rounding(n.at("rounding"));
  if (n.has("clip_init"))
    p.clip_init = enum_value(n.at("clip_init"), {ClipInit::const_value, ClipInit::max, ClipInit::std, ClipInit::percentile});
  if (n.has("init_value")) {
    const Node v = n.at("init_value");
    p.init_value = v.number();
    const ClipInit ci = p.clip_init.value_or(base.clip_init);
    check(v, ci == ClipInit::percentile ? detail::check_percentile(*p.init_value)
             : ci == ClipInit::std      ? detail::check_positive(*p.init_value, "a number of standard deviations")
                                        : detail::check_positive(*p.init_value, "a clipping threshold"));
  }
  if (n.has("learn_clip")) p.learn_clip = n.at("learn_clip").boolean();
  if (n.has("power_of_two")) p.power_of_two = n.at("power_of_two").boolean();
  if (n.has("granularity")) p.granularity = granularity(n.at("granularity"));
  return p;
}

WeightQuant patched(WeightQuant w, const WeightPatch& p) {
  apply(w, p);
  return w;
}

ActQuant patched(ActQuant a, const ActPatch& p) {
  apply(a, p);
  return a;
}

void read_defaults(const Node& d, QuantConfig& c) {
  only_keys(d, {"conv_weight", "depthwise_weight", "first_layer_weight", "linear_weight", "activation",
                "signed_activation", "input"});
  if (d.has("conv_weight")) c.conv_weight = patched(c.conv_weight, weight_patch(d.at("conv_weight"), c.conv_weight.narrow_range));
  c.depthwise_weight = c.first_layer_weight = c.linear_weight = c.conv_weight;
  for (auto [key, w] : {std::pair{"depthwise_weight", &c.depthwise_weight}, std::pair{"first_layer_weight", &c.first_layer_weight},
                        std::pair{"linear_weight", &c.linear_weight}})
    if (d.has(key)) *w = patched(*w, weight_patch(d.at(key), w->narrow_range));
  if (d.has("activation")) c.activation = patched(c.activation, act_patch(d.at("activation"), c.activation));
  c.signed_activation = c.activation;
  c.signed_activation.is_signed = true;
  if (d.has("signed_activation"))
    c.signed_activation = patched(c.signed_activation, act_patch(d.at("signed_activation"), c.signed_activation));
  if (d.has("input")) c.input = patched(c.input, act_patch(d.at("input"), c.input));
}

LayerRule read_rule(const Node& o, const QuantConfig& c) {
  only_keys(o, {"match", "kinds", "quantize", "weight", "activation"});
  LayerRule r;
  const Node m = o.at("match");
  r.pattern = m.string();
  try {
    std::regex check_pattern(r.pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    m.fail("invalid regular expression '" + r.pattern + "': " + e.what());
  }
  if (o.has("kinds")) {
    const Node k = o.at("kinds");
    for (size_t i = 0; i < k.array_size(); ++i) {
      const std::string s = k.at(i).string();
      auto kind = parse_layer_kind(s);
      if (!kind)
        k.at(i).fail("unknown layer kind '" + s +
                     "' (expected first_conv, conv, depthwise_conv, linear, activation, signed_activation or input)");
      r.kinds.push_back(*kind);
    }
  }
  if (o.has("quantize")) r.quantize = o.at("quantize").boolean();
  const bool any_narrow = c.conv_weight.narrow_range || c.depthwise_weight.narrow_range ||
                          c.first_layer_weight.narrow_range || c.linear_weight.narrow_range;
  if (o.has("weight")) r.weight = weight_patch(o.at("weight"), any_narrow);
  if (o.has("activation")) r.act = act_patch(o.at("activation"), c.activation);
  return r;
}

}  // namespace

QuantConfig parse_qverify_config(const std::string& text, const std::string& path) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw InputError(path, "", std::string("not valid JSON: ") + e.what());
  }
  const Node root(j, "", path);
  root.object();
  only_keys(root, {"format", "version", "name", "description", "scheme", "model", "width_mult", "hadamard_classifier",
                   "pretrained", "float_pretrained", "defaults", "overrides", "harmonize", "requant", "preprocess", "avg_pool"});
  if (root.at("format").string() != "qverify-config") root.at("format").fail("expected \"qverify-config\"");
  if (root.at("version").integer() != 1) root.at("version").fail("unsupported version (this qverify reads version 1)");
  QuantConfig c;
  c.source_file = path;
  c.format = Format::qverify;
  c.name = root.at("name").string();
  if (root.has("description")) root.at("description").string();
  c.scheme = enum_value(root.at("scheme"), {Scheme::fp32, Scheme::brevitas, Scheme::pact, Scheme::tqt});
  if (root.has("model")) c.model = root.at("model").string();
  if (root.has("width_mult")) {
    c.width_mult = root.at("width_mult").number();
    check(root.at("width_mult"), detail::check_positive(*c.width_mult, "width_mult"));
  }
  if (root.has("hadamard_classifier")) c.hadamard_classifier = root.at("hadamard_classifier").boolean();
  if (root.has("pretrained")) c.pretrained = root.at("pretrained").string();
  if (root.has("float_pretrained")) c.float_pretrained = root.at("float_pretrained").string();
  if (root.has("defaults")) read_defaults(root.at("defaults"), c);
  if (root.has("overrides")) {
    const Node list = root.at("overrides");
    for (size_t i = 0; i < list.array_size(); ++i) c.overrides.push_back(read_rule(list.at(i), c));
  }
  if (root.has("harmonize")) {
    const Node h = root.at("harmonize");
    only_keys(h, {"add_eps", "insert_identity"});
    using AddEps = QuantConfig::Harmonize::AddEps;
    if (h.has("add_eps")) c.harmonize.add_eps = enum_value(h.at("add_eps"), {AddEps::widest_input, AddEps::force_output});
    if (h.has("insert_identity")) c.harmonize.insert_identity = h.at("insert_identity").boolean();
  }
  if (root.has("requant")) {
    const Node r = root.at("requant");
    only_keys(r, {"form", "mulshift_bits"});
    if (r.has("form")) {
      const Node f = r.at("form");
      c.requant.form = f.string();
      bool known = false;
      for (auto k : kRequantForms) known = known || k == c.requant.form;
      if (!known) f.fail("unknown value '" + c.requant.form + "' (expected one of exact, thresholds, mulshift, tflite-single, tflite-double)");
    }
    if (r.has("mulshift_bits")) {
      const int64_t d = r.at("mulshift_bits").integer();
      if (d < 1 || d > 62) r.at("mulshift_bits").fail("expected a shift between 1 and 62, got " + std::to_string(d));
      c.requant.mulshift_bits = static_cast<int>(d);
    }
  }
  if (root.has("preprocess")) {
    const Node p = root.at("preprocess");
    only_keys(p, {"mean", "std"});
    c.preprocess.mean = p.at("mean").numbers();
    c.preprocess.std = p.at("std").numbers();
    if (c.preprocess.mean.size() != c.preprocess.std.size())
      p.at("std").fail("expected as many values as mean (" + std::to_string(c.preprocess.mean.size()) + "), got " +
                       std::to_string(c.preprocess.std.size()));
    for (size_t i = 0; i < c.preprocess.std.size(); ++i)
      check(p.at("std").at(i), detail::check_positive(c.preprocess.std[i], "a standard deviation"));
  }
  if (root.has("avg_pool")) {
    const Node p = root.at("avg_pool");
    only_keys(p, {"bits", "rounding"});
    if (p.has("bits")) c.avgpool_bits = bits(p.at("bits"));
    if (p.has("rounding")) c.avgpool_rounding = rounding(p.at("rounding"));
  }
  add_unfetched_weights_warnings(c);
  return c;
}

}  // namespace qv::config
