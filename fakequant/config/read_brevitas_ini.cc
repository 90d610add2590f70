// Brevitas's ImageNet example configs (.ini, read by Python's configparser), as Brevitas writes them
// (docs/configs.md, "Brevitas"). The file names the architecture and a few bit widths; everything else
// is fixed in Brevitas's model code, and is filled in here from those facts (SEMANTICS.md section 5):
// narrow signed per-channel weights recomputed from max |w|, unsigned activations with a learned
// threshold, per-tensor classifier weights, per-channel activations where the peer has them.
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>

#include "fakequant/config/checks.h"
#include "fakequant/config/read_config.h"
#include "ir/error.h"

namespace qv::config {

namespace {

struct Entry {
  std::string key;    // as written
  std::string value;
  int line = 0;
};

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

class Ini {
 public:
  Ini(const std::string& text, const std::string& path) : path_(path) {
    std::istringstream in(text);
    std::string raw, section;
    int line = 0;
    while (std::getline(in, raw)) {
      ++line;
      if (!raw.empty() && raw.back() == '\r') raw.pop_back();
      const std::string t = trim(raw);
      if (t.empty() || t[0] == '#' || t[0] == ';') continue;
      if (std::isspace(static_cast<unsigned char>(raw[0])))
        fail(line, "indented line: continuation values are not supported, got '" + t + "'");
      if (t[0] == '[') {
        if (t.back() != ']') fail(line, "expected a section header [NAME], got '" + t + "'");
        section = trim(t.substr(1, t.size() - 2));
        if (sections_.count(section)) fail(line, "section [" + section + "] appears twice");
        sections_[section];
        section_lines_[section] = line;
        continue;
      }
      const size_t sep = t.find_first_of(":=");
      if (sep == std::string::npos) fail(line, "expected KEY: VALUE or KEY = VALUE, got '" + t + "'");
      if (section.empty()) fail(line, "a key before any [SECTION] header");
      Entry e{trim(t.substr(0, sep)), trim(t.substr(sep + 1)), line};
      if (e.key.empty()) fail(line, "expected a key before '" + std::string(1, t[sep]) + "'");
      auto& keys = sections_[section];
      const std::string k = lower(e.key);
      if (keys.count(k)) fail(line, "key " + e.key + " appears twice in [" + section + "] (first on line " + std::to_string(keys[k].line) + ")");
      keys[k] = e;
    }
  }

  [[noreturn]] void fail(int line, const std::string& what) const {
    throw InputError(path_ + ":" + std::to_string(line), "", what);
  }
  [[noreturn]] void fail_missing(const std::string& section, const std::string& key) const {
    throw InputError(path_, "[" + section + "] " + key, "missing (Brevitas requires it)");
  }

  bool has_section(const std::string& s) const { return sections_.count(s) > 0; }
  const std::map<std::string, std::map<std::string, Entry>>& sections() const { return sections_; }
  int section_line(const std::string& s) const { return section_lines_.at(s); }

  // Keys are case-insensitive (configparser lower-cases them); section names are not.
  const Entry* find(const std::string& section, const std::string& key) const {
    auto s = sections_.find(section);
    if (s == sections_.end()) return nullptr;
    auto e = s->second.find(lower(key));
    return e == s->second.end() ? nullptr : &e->second;
  }

  // configparser.getint: Python int() of the stripped value.
  int64_t integer(const Entry& e) const {
    const std::string& v = e.value;
    size_t i = (!v.empty() && (v[0] == '+' || v[0] == '-')) ? 1 : 0;
    bool ok = i < v.size() && v.size() - i <= 12;
    for (size_t j = i; j < v.size(); ++j) ok = ok && std::isdigit(static_cast<unsigned char>(v[j]));
    if (!ok) fail(e.line, "expected an integer for " + e.key + ", got '" + v + "'");
    return std::stoll(v);
  }
  int bits(const Entry& e) const {
    const int64_t b = integer(e);
    const std::string problem = detail::check_bits(b);
    if (!problem.empty()) fail(e.line, e.key + ": " + problem);
    return static_cast<int>(b);
  }
  double number(const Entry& e) const {
    const char* s = e.value.c_str();
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(s, &end);
    if (e.value.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v))
      fail(e.line, "expected a finite number for " + e.key + ", got '" + e.value + "'");
    return v;
  }
  // configparser.getboolean.
  bool boolean(const Entry& e) const {
    const std::string v = lower(e.value);
    if (v == "1" || v == "yes" || v == "true" || v == "on") return true;
    if (v == "0" || v == "no" || v == "false" || v == "off") return false;
    fail(e.line, "expected a boolean (true/false, yes/no, on/off, 1/0) for " + e.key + ", got '" + e.value + "'");
  }

 private:
  std::string path_;
  std::map<std::string, std::map<std::string, Entry>> sections_;
  std::map<std::string, int> section_lines_;
};

}  // namespace

QuantConfig parse_brevitas_ini(const std::string& text, const std::string& path) {
  const Ini ini(text, path);
  QuantConfig c;
  c.source_file = path;
  c.format = Format::brevitas_ini;
  c.name = std::filesystem::path(path).stem().string();
  c.scheme = Scheme::brevitas;
  auto warn = [&](const Entry& e, const std::string& what) {
    c.warnings.push_back(path + ":" + std::to_string(e.line) + ": " + e.key + ": " + what);
  };
  auto assumed = [&](const std::string& what) { c.warnings.push_back(path + ": " + what); };

  for (const auto& [name, keys] : ini.sections())
    if (name != "MODEL" && name != "QUANT" && name != "PREPROCESS")
      c.warnings.push_back(path + ":" + std::to_string(ini.section_line(name)) + ": section [" + name +
                           "] is not interpreted by qverify; ignored (section names are case-sensitive, as in configparser)");

  // [MODEL]
  if (!ini.has_section("MODEL")) throw InputError(path, "[MODEL]", "missing section (Brevitas requires [MODEL] ARCH)");
  const Entry* arch = ini.find("MODEL", "ARCH");
  if (!arch) ini.fail_missing("MODEL", "ARCH");
  const bool mnv1 = arch->value == "quant_mobilenet_v1";
  const bool proxyless = arch->value == "quant_proxylessnas_mobile14";
  if (!mnv1 && !proxyless)
    ini.fail(arch->line, "unknown ARCH '" + arch->value + "' (expected quant_mobilenet_v1 or quant_proxylessnas_mobile14)");
  c.model = mnv1 ? "mobilenet_v1" : "proxylessnas_mobile14";
  for (const auto& [k, e] : ini.sections().at("MODEL")) {
    if (k == "arch") continue;
    if (k == "width_scale") {
      if (proxyless) {
        warn(e, "quant_proxylessnas_mobile14 does not read WIDTH_SCALE; ignored");
        continue;
      }
      c.width_mult = ini.number(e);
      if (!(*c.width_mult > 0)) ini.fail(e.line, "WIDTH_SCALE must be positive, got '" + e.value + "'");
    } else if (k == "pretrained_url") c.pretrained = e.value;
    else if (k == "float_pretrained_url") c.float_pretrained = e.value;
    else if (k == "hadamard_classifier") {
      const bool h = ini.boolean(e);
      if (proxyless) c.hadamard_classifier = h;
      else warn(e, "quant_mobilenet_v1 has no Hadamard classifier; ignored");
    } else warn(e, "not interpreted by qverify; ignored");
  }
  if (mnv1 && !c.width_mult) {
    assumed("[MODEL] WIDTH_SCALE missing (Brevitas would stop with NoOptionError); using 1.0");
    c.width_mult = 1.0;
  }
  if (proxyless && !c.hadamard_classifier) {
    assumed("[MODEL] HADAMARD_CLASSIFIER missing (Brevitas would stop with NoOptionError); using FALSE");
    c.hadamard_classifier = false;
  }

  // [QUANT]
  std::optional<int> bit_width, first_bits, dw_bits;
  bool round_avg_pool = false;
  if (ini.has_section("QUANT")) {
    for (const auto& [k, e] : ini.sections().at("QUANT")) {
      if (k == "bit_width") bit_width = ini.bits(e);
      else if (k == "first_layer_weight_bit_width" || k == "depthwise_bit_width") {
        const int b = ini.bits(e);
        if (mnv1) warn(e, "quant_mobilenet_v1 does not read it (its first layer is 8-bit, depthwise at BIT_WIDTH); ignored");
        else (k == "depthwise_bit_width" ? dw_bits : first_bits) = b;
      } else if (k == "round_avg_pool") round_avg_pool = ini.boolean(e);
      else warn(e, "not interpreted by qverify; ignored");
    }
  }
  if (!bit_width) {
    assumed("[QUANT] BIT_WIDTH missing (Brevitas would stop with NoOptionError); using 8");
    bit_width = 8;
  }
  if (proxyless && !first_bits) {
    assumed("[QUANT] FIRST_LAYER_WEIGHT_BIT_WIDTH missing (Brevitas would stop with NoOptionError); using 8");
    first_bits = 8;
  }
  if (proxyless && !dw_bits) {
    assumed("[QUANT] DEPTHWISE_BIT_WIDTH missing (Brevitas would stop with NoOptionError); using BIT_WIDTH");
    dw_bits = bit_width;
  }
  if (mnv1) first_bits = 8, dw_bits = bit_width;
  const std::pair<const std::optional<int>*, const char*> widths[] = {
      {&bit_width, "BIT_WIDTH"}, {&dw_bits, "DEPTHWISE_BIT_WIDTH"}, {&first_bits, "FIRST_LAYER_WEIGHT_BIT_WIDTH"}};
  for (const auto& [b, key] : widths) {
    const std::string problem = detail::check_narrow(**b, true);
    if (problem.empty()) continue;
    const Entry* e = ini.find("QUANT", key);
    if (e) ini.fail(e->line, std::string(key) + ": " + problem);
    throw InputError(path, std::string("[QUANT] ") + key, problem);
  }

  // Facts of Brevitas's model code.
  const WeightQuant w{.bits = *bit_width, .narrow_range = true, .granularity = Granularity::per_channel,
                      .init = WeightInit::max, .learn_clip = false};
  c.conv_weight = c.depthwise_weight = c.first_layer_weight = c.linear_weight = w;
  c.first_layer_weight.bits = *first_bits;
  c.depthwise_weight.bits = *dw_bits;
  c.linear_weight.granularity = Granularity::per_tensor;
  c.activation = ActQuant{.bits = *bit_width, .is_signed = false, .rounding = Rounding::half_even,
                          .clip_init = ClipInit::percentile, .init_value = 99.999, .learn_clip = true,
                          .power_of_two = false, .granularity = Granularity::per_tensor};
  c.signed_activation = c.activation;
  c.signed_activation.is_signed = true;
  // The normalised input ([PREPROCESS] mean/std) on a signed 8-bit grid whose range calibration sets.
  // (Brevitas deploys p / 255 and folds the normalisation into the unpadded first conv; qverify does
  // not implement that fold yet, docs/integerization.md.)
  c.input = ActQuant{.bits = 8, .is_signed = true, .rounding = Rounding::half_even, .clip_init = ClipInit::const_value,
                     .init_value = 2.64, .learn_clip = false};
  c.avgpool_bits = *bit_width;
  c.avgpool_rounding = round_avg_pool ? Rounding::half_even : Rounding::floor;
  const std::vector<LayerKind> act = {LayerKind::activation};
  if (mnv1) {
    c.overrides.push_back({.pattern = R"(^features\.init_block\.activ$)", .kinds = act, .act = {.granularity = Granularity::per_channel}});
    c.overrides.push_back({.pattern = R"(^features\.stage[1-4]\.unit[0-9]+\.pw_conv\.activ$)", .kinds = act,
                           .act = {.granularity = Granularity::per_channel}});
  } else {
    // The expansion output feeds the depthwise conv: DEPTHWISE_BIT_WIDTH, per channel.
    c.overrides.push_back({.pattern = R"(\.bc_conv\.activ$)", .kinds = act,
                           .act = {.bits = *dw_bits, .granularity = Granularity::per_channel}});
  }

  // [PREPROCESS] MEAN_i, STD_i for i = 0, 1, ...
  if (ini.has_section("PREPROCESS")) {
    std::map<int, const Entry*> mean, std;
    for (const auto& [k, e] : ini.sections().at("PREPROCESS")) {
      const bool is_mean = k.rfind("mean_", 0) == 0, is_std = k.rfind("std_", 0) == 0;
      const std::string idx = k.substr(is_mean ? 5 : 4);
      if ((!is_mean && !is_std) || idx.empty() || idx.size() > 3 ||
          idx.find_first_not_of("0123456789") != std::string::npos) {
        warn(e, "not interpreted by qverify; ignored");
        continue;
      }
      (is_mean ? mean : std)[std::stoi(idx)] = &e;
    }
    for (const auto* m : {&mean, &std}) {
      int expect = 0;
      for (const auto& [i, e] : *m) {
        if (i != expect) ini.fail(e->line, e->key + ": expected index " + std::to_string(expect) + " next (indices count from 0 without gaps)");
        ++expect;
      }
    }
    if (mean.size() != std.size())
      throw InputError(path, "[PREPROCESS]", std::to_string(mean.size()) + " MEAN_i values but " + std::to_string(std.size()) + " STD_i values");
    for (const auto& [i, e] : mean) c.preprocess.mean.push_back(ini.number(*e));
    for (const auto& [i, e] : std) {
      c.preprocess.std.push_back(ini.number(*e));
      if (!(c.preprocess.std.back() > 0)) ini.fail(e->line, e->key + ": a standard deviation must be positive, got '" + e->value + "'");
    }
  }
  add_unfetched_weights_warnings(c);
  return c;
}

}  // namespace qv::config
