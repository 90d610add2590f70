// QuantLab's config.*.json, read as QuantLab writes it (docs/configs.md, "QuantLab"). The quantization
// lives in network.quantize.kwargs.config: one section per PACT class, each with class-wide "kwargs"
// and per-layer entries keyed by a regex on the layer name. QuantLab quantizes only the layers a key
// names, so the mapping starts with a rule that leaves every weight layer and activation in float, then
// one rule per key. Keys qverify does not interpret become warnings; wrong types and impossible values
// are errors.
#include <filesystem>
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

constexpr std::initializer_list<LayerKind> kConvKinds = {LayerKind::first_conv, LayerKind::conv, LayerKind::depthwise_conv};

struct Reader {
  QuantConfig& c;
  int tqt_true = 0, tqt_false = 0;

  void ignored(const Node& n, const std::string& key) {
    c.warnings.push_back(c.source_file + ": " + (n.path().empty() ? "" : n.path() + ": ") + "key '" + key +
                         "' is not interpreted by qverify; ignored");
  }
  void check(const Node& n, const std::string& problem) {
    if (!problem.empty()) n.fail(problem);
  }
  void tqt(const Node& n) { (n.boolean() ? tqt_true : tqt_false)++; }

  std::string one_of(const Node& n, std::initializer_list<const char*> values) {
    const std::string s = n.string();
    std::string list;
    for (const char* v : values) {
      if (s == v) return s;
      list += std::string(list.empty() ? "" : ", ") + v;
    }
    n.fail("unknown value '" + s + "' (expected one of " + list + ")");
  }

  // n_levels of a weight grid: 2^b, or 2^b - 1 (narrow).
  void weight_levels(const Node& n, WeightPatch& p) {
    int bits = 0;
    bool narrow = false;
    check(n, detail::bits_of_levels(n.integer(), true, &bits, &narrow));
    p.bits = bits;
    p.narrow_range = narrow;
  }

  // PACTConv2d / PACTLinear kwargs (class-wide or per layer).
  WeightPatch weight_kwargs(const Node& n) {
    n.object();
    WeightPatch p;
    for (const auto& [key, v] : n.members()) {
      if (key == "n_levels") weight_levels(v, p);
      else if (key == "quantize") p.granularity = one_of(v, {"per_layer", "per_channel"}) == "per_layer" ? Granularity::per_tensor : Granularity::per_channel;
      else if (key == "init_clip") {
        const std::string s = one_of(v, {"max", "sawb_symm", "sawb_asymm", "std"});
        p.init = s == "max" ? WeightInit::max : s == "sawb_symm" ? WeightInit::sawb_symm : s == "sawb_asymm" ? WeightInit::sawb_asymm : WeightInit::std;
      } else if (key == "learn_clip") p.learn_clip = v.boolean();
      else if (key == "symm_wts") {
        if (!v.boolean()) v.fail("asymmetric weights (symm_wts false) are not supported: qverify weight grids have no zero point");
      } else if (key == "tqt") tqt(v);
      else if (key == "nb_std") {
        p.std_factor = v.number();
        check(v, detail::check_positive(*p.std_factor, "nb_std"));
      } else if (key == "tqt_beta" || key == "tqt_clip_grad") v.number();  // training dynamics only
      else ignored(n, key);
    }
    return p;
  }

  // PACTUnsignedAct / PACTAsymmetricAct / harmonize kwargs.
  ActPatch act_kwargs(const Node& n, bool is_signed, bool harmonize) {
    n.object();
    ActPatch p;
    for (const auto& [key, v] : n.members()) {
      if (key == "n_levels") {
        int bits = 0;
        bool narrow = false;
        check(v, detail::bits_of_levels(v.integer(), false, &bits, &narrow));
        p.bits = bits;
      } else if (key == "init_clip") {
        const std::string s = one_of(v, {"const", "max", "std", "percentile"});
        p.clip_init = s == "const" ? ClipInit::const_value : s == "max" ? ClipInit::max : s == "std" ? ClipInit::std : ClipInit::percentile;
      } else if (key == "rounding") p.rounding = v.boolean() ? Rounding::half_even : Rounding::floor;
      else if (key == "learn_clip") p.learn_clip = v.boolean();
      else if (key == "tqt") tqt(v);
      else if (key == "noisy") {
        if (v.boolean()) c.warnings.push_back(c.source_file + ": " + v.path() + ": noise injection is a training aid qverify does not model; ignored");
      } else if (key == "nb_std") {
        p.init_value = v.number();
        check(v, detail::check_positive(*p.init_value, "nb_std"));
      } else if (key == "upper_percentile") {
        p.init_value = v.number();
        check(v, detail::check_percentile(*p.init_value));
      } else if (key == "lower_percentile") check(v, detail::check_percentile(v.number()));
      else if (key == "act_kind") one_of(v, {"relu", "relu6", "leaky_relu", "identity"});  // the model defines the function
      else if (key == "leaky" || key == "tqt_beta" || key == "tqt_clip_grad") v.number();
      else if (key == "symm" && !harmonize && is_signed) v.boolean();
      else if (key == "force_out_eps" && harmonize) {
        using AddEps = QuantConfig::Harmonize::AddEps;
        c.harmonize.add_eps = v.boolean() ? AddEps::force_output : AddEps::widest_input;
      } else ignored(n, key);
    }
    return p;
  }

  LayerRule rule(const std::string& pattern, const Node& key_node, std::vector<LayerKind> kinds) {
    try {
      std::regex check_pattern(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      key_node.fail("invalid regular expression '" + pattern + "': " + e.what());
    }
    return LayerRule{.pattern = pattern, .kinds = std::move(kinds), .quantize = true};
  }

  void quantize_config(const Node& cfg) {
    cfg.object();
    // QuantLab leaves every module its config does not name in float.
    c.overrides.push_back(LayerRule{.pattern = "",
                                    .kinds = {LayerKind::first_conv, LayerKind::conv, LayerKind::depthwise_conv,
                                              LayerKind::linear, LayerKind::activation},
                                    .quantize = false});
    for (const auto& [cls, section] : cfg.members()) {
      if (cls == "harmonize" || cls == "PACTIntegerAdd") {
        // The quantizers harmonization inserts on add operands: signed, on the add's common grid.
        apply(c.signed_activation, act_kwargs(section, true, true));
        continue;
      }
      enum { weight, act, signed_act, unknown } what =
          cls == "PACTConv2d" || cls == "PACTConv1d" || cls == "PACTLinear" ? weight
          : cls == "PACTUnsignedAct"                                         ? act
          : cls == "PACTAsymmetricAct"                                       ? signed_act
                                                                             : unknown;
      if (what == unknown) {
        ignored(cfg, cls);
        continue;
      }
      const bool linear = cls == "PACTLinear";
      std::vector<LayerKind> kinds = what == weight ? (linear ? std::vector<LayerKind>{LayerKind::linear} : std::vector<LayerKind>(kConvKinds))
                                     : what == act  ? std::vector<LayerKind>{LayerKind::activation}
                                                    : std::vector<LayerKind>{LayerKind::signed_activation};
      if (section.has("kwargs")) {
        const Node kw = section.at("kwargs");
        if (what == weight) {
          const WeightPatch p = weight_kwargs(kw);
          if (linear) {
            apply(c.linear_weight, p);
          } else {
            apply(c.conv_weight, p);
            apply(c.depthwise_weight, p);
            apply(c.first_layer_weight, p);
          }
        } else {
          apply(what == act ? c.activation : c.signed_activation, act_kwargs(kw, what == signed_act, false));
        }
      }
      for (const auto& [key, layer] : section.members()) {
        if (key == "kwargs") continue;
        LayerRule r = rule(key, layer, kinds);
        if (what == weight) r.weight = weight_kwargs(layer);
        else r.act = act_kwargs(layer, what == signed_act, false);
        c.overrides.push_back(std::move(r));
      }
    }
  }

  void network(const Node& net) {
    net.object();
    for (const auto& [key, v] : net.members()) {
      if (key == "class") {
        const std::string cls = v.string();
        if (cls == "MobileNetV2") c.model = "mobilenet_v2";
        else c.warnings.push_back(c.source_file + ": " + v.path() + ": network class '" + cls + "' has no qverify model");
      } else if (key == "kwargs") {
        for (const auto& [k, kv] : v.members()) {
          if (k == "config") {
            if (kv.string() != "standard") c.warnings.push_back(c.source_file + ": " + kv.path() + ": only the 'standard' MobileNetV2 configuration is modelled");
          } else if (k == "capacity") {
            c.width_mult = kv.number();
            check(kv, detail::check_positive(*c.width_mult, "capacity"));
          } else if (k == "pretrained") c.pretrained = kv.string();
          else ignored(v, k);
        }
      } else if (key == "quantize") {
        for (const auto& [k, kv] : v.members()) {
          if (k == "function") {
            const std::string f = kv.string();
            if (f != "pact_recipe") c.warnings.push_back(c.source_file + ": " + kv.path() + ": quantization function '" + f + "' read as pact_recipe");
          } else if (k == "kwargs") {
            for (const auto& [kk, kkv] : kv.members()) {
              if (kk == "config") quantize_config(kkv);
              else ignored(kv, kk);
            }
          } else ignored(v, k);
        }
      } else ignored(net, key);
    }
  }

  // training: only the controllers' initial clipping thresholds matter here.
  void training(const Node& t) {
    t.object();
    for (const auto& [key, v] : t.members()) {
      if (key == "loss_fn" || key == "gd" || key == "n_epochs") continue;  // optimisation, not quantization
      if (key != "quantize") {
        ignored(t, key);
        continue;
      }
      for (const auto& [k, kv] : v.members()) {
        if (k == "function") kv.string();
        else if (k == "kwargs") {
          for (const auto& [kk, kkv] : kv.members()) {
            if (kk == "schedules" || kk == "kwargs_linear") kkv.object();
            else if (kk == "kwargs_activation") {
              for (const auto& [a, av] : kkv.members()) {
                if (a == "init_clip_hi") {
                  const double hi = av.number();
                  check(av, detail::check_positive(hi, "a clipping threshold"));
                  if (c.activation.clip_init == ClipInit::const_value) c.activation.init_value = hi;
                } else if (a == "init_clip_lo") av.number();
                else ignored(kkv, a);
              }
            } else ignored(kv, kk);
          }
        } else ignored(v, k);
      }
    }
  }
};

}  // namespace

QuantConfig parse_quantlab_config(const std::string& text, const std::string& path) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw InputError(path, "", std::string("not valid JSON: ") + e.what());
  }
  const Node root(j, "", path);
  root.object();
  QuantConfig c;
  c.source_file = path;
  c.format = Format::quantlab;
  c.name = std::filesystem::path(path).stem().string();
  // QuantLab's MobileNetV2 integerization examples feed a signed 8-bit input of eps 2 * 2.64 / 256.
  c.input = ActQuant{.bits = 8, .is_signed = true, .clip_init = ClipInit::const_value, .init_value = 2.64, .learn_clip = false};
  Reader r{c};
  // The network first: the controllers' init_clip_hi applies to what the quantize section chose.
  if (root.has("network")) r.network(root.at("network"));
  for (const auto& [key, v] : root.members()) {
    if (key == "network") continue;
    if (key == "training") r.training(v);
    else if (key == "description" || key == "data" || key == "meters" || key == "experiment") continue;  // not quantization
    else r.ignored(root, key);
  }
  const bool quantized = root.has("network") && root.at("network").has("quantize");
  if (!quantized) {
    c.scheme = Scheme::fp32;
  } else {
    c.scheme = r.tqt_true > 0 ? Scheme::tqt : Scheme::pact;
    if (r.tqt_true > 0 && r.tqt_false > 0)
      c.warnings.push_back(path + ": some quantizers say tqt true and others false; read as tqt");
    c.harmonize.insert_identity = true;
  }
  add_unfetched_weights_warnings(c);
  return c;
}

}  // namespace qv::config
