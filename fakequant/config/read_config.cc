#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>

#include "fakequant/config/quant_config.h"
#include "ir/json_field.h"

#ifndef QV_CONFIG_DIR
#define QV_CONFIG_DIR "configs"
#endif

namespace qv::config {

namespace fs = std::filesystem;

std::string_view to_string(Scheme s) {
  switch (s) {
    case Scheme::fp32: return "fp32";
    case Scheme::brevitas: return "brevitas";
    case Scheme::pact: return "pact";
    case Scheme::tqt: return "tqt";
  }
  return "?";
}

std::string shipped_config_dir() {
  const char* env = std::getenv("QVERIFY_CONFIG_DIR");
  return env ? env : QV_CONFIG_DIR;
}

std::vector<std::string> shipped_configs() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(shipped_config_dir(), ec))
    if (e.path().extension() == ".json") out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

int bits(const Field& f) {
  const int64_t b = f.integer();
  if (b < 1 || b > 32) f.fail("a quantizer bit width must be between 1 and 32, got " + std::to_string(b));
  return static_cast<int>(b);
}

std::string one_of(const Field& f, std::initializer_list<const char*> allowed) {
  const std::string v = f.string();
  std::string list;
  for (const char* a : allowed) {
    if (v == a) return v;
    list += std::string(list.empty() ? "" : ", ") + a;
  }
  f.fail("unknown value '" + v + "' (expected one of " + list + ")");
}

}  // namespace

QuantConfig read_config(const std::string& path_or_name) {
  std::string path = path_or_name;
  if (!fs::exists(path) && path.find('/') == std::string::npos) {
    const fs::path shipped = fs::path(shipped_config_dir()) / path;
    if (!fs::exists(shipped)) {
      std::string names;
      for (const auto& n : shipped_configs()) names += " " + n;
      throw InputError(path, "", "no such file, and not a shipped config (shipped:" + names + ")");
    }
    path = shipped.string();
  }
  std::ifstream in(path);
  if (!in) throw InputError(path, "", "cannot open file");
  json j;
  try {
    j = json::parse(std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()));
  } catch (const json::parse_error& e) {
    throw InputError(path, "byte " + std::to_string(e.byte), "not valid JSON: " + std::string(e.what()));
  }
  const Field root(j, "", path);
  root.only_keys({"format", "version", "name", "scheme", "weights", "activations", "avg_pool", "overrides", "requant", "harmonize"});
  if (root.at("format").string() != "qverify-config") root.at("format").fail("expected \"qverify-config\"");
  if (root.at("version").integer() != 1) root.at("version").fail("unsupported version (expected 1)");
  QuantConfig c;
  c.file = path;
  c.name = root.at("name").string();
  const std::string scheme = one_of(root.at("scheme"), {"fp32", "brevitas", "pact", "tqt"});
  c.scheme = scheme == "fp32" ? Scheme::fp32 : scheme == "brevitas" ? Scheme::brevitas : scheme == "pact" ? Scheme::pact : Scheme::tqt;
  if (root.has("weights")) {
    const Field w = root.at("weights");
    w.only_keys({"bits", "first_layer_bits", "depthwise_bits", "linear_bits", "per_channel", "linear_per_channel"});
    c.weight_bits = bits(w.at("bits"));
    c.first_layer_weight_bits = w.has("first_layer_bits") ? bits(w.at("first_layer_bits")) : c.weight_bits;
    c.depthwise_weight_bits = w.has("depthwise_bits") ? bits(w.at("depthwise_bits")) : c.weight_bits;
    c.linear_weight_bits = w.has("linear_bits") ? bits(w.at("linear_bits")) : c.weight_bits;
    if (w.has("per_channel")) c.weight_per_channel = w.at("per_channel").boolean();
    if (w.has("linear_per_channel")) c.linear_per_channel = w.at("linear_per_channel").boolean();
    // Narrow signed weights need at least 2 bits to have a non-zero level.
    if (c.scheme == Scheme::brevitas && c.weight_bits < 2) w.at("bits").fail("narrow signed weights need at least 2 bits");
  }
  if (root.has("activations")) {
    const Field a = root.at("activations");
    a.only_keys({"bits", "rounding", "init_clip", "power_of_two"});
    c.act_bits = bits(a.at("bits"));
    if (a.has("rounding")) c.act_rounding = a.at("rounding").rounding();
    if (a.has("init_clip")) {
      c.act_init_clip = a.at("init_clip").number();
      if (!(c.act_init_clip > 0) || !std::isfinite(c.act_init_clip))
        a.at("init_clip").fail("a clipping threshold must be positive and finite, got " + a.at("init_clip").raw().dump());
    }
    if (a.has("power_of_two")) c.power_of_two = a.at("power_of_two").boolean();
  }
  if (root.has("avg_pool")) {
    const Field p = root.at("avg_pool");
    p.only_keys({"rounding"});
    c.avg_pool_rounding = p.at("rounding").rounding();
  }
  if (root.has("overrides")) {
    const Field list = root.at("overrides");
    for (size_t i = 0; i < list.array_size(); ++i) {
      const Field o = list.at(i);
      o.only_keys({"match", "weight_bits", "act_bits"});
      Override ov;
      ov.match = o.at("match").string();
      try {
        std::regex check(ov.match);
      } catch (const std::regex_error& e) {
        o.at("match").fail("invalid regular expression '" + ov.match + "': " + e.what());
      }
      if (o.has("weight_bits")) ov.weight_bits = bits(o.at("weight_bits"));
      if (o.has("act_bits")) ov.act_bits = bits(o.at("act_bits"));
      c.overrides.push_back(ov);
    }
  }
  if (root.has("requant")) {
    const Field r = root.at("requant");
    r.only_keys({"form", "mulshift_bits"});
    c.requant_form = one_of(r.at("form"), {"exact", "thresholds", "mulshift", "tflite-single", "tflite-double"});
    if (r.has("mulshift_bits")) {
      const int64_t d = r.at("mulshift_bits").integer();
      if (d < 0 || d > 62) r.at("mulshift_bits").fail("expected a shift between 0 and 62, got " + std::to_string(d));
      c.mulshift_bits = static_cast<int>(d);
    }
  }
  if (root.has("harmonize")) {
    const Field h = root.at("harmonize");
    h.only_keys({"add_eps"});
    c.add_eps = one_of(h.at("add_eps"), {"widest_input", "force_output"});
  }
  return c;
}

}  // namespace qv::config
