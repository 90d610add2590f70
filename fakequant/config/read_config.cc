// Finding a config (a path, or a shipped name) and telling its format from its content.
#include "fakequant/config/read_config.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "ir/error.h"

#ifndef QV_CONFIG_DIR
#error "QV_CONFIG_DIR must name the shipped configs' folder (fakequant/config/meson.build sets it)"
#endif

namespace qv::config {

namespace fs = std::filesystem;

std::string shipped_config_dir() {
  const char* env = std::getenv("QVERIFY_CONFIG_DIR");
  return env && *env ? env : QV_CONFIG_DIR;
}

std::vector<std::string> shipped_configs() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(shipped_config_dir(), ec)) {
    const auto ext = e.path().extension();
    if (e.is_regular_file(ec) && (ext == ".json" || ext == ".ini")) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string unfetched_weights_warning(const std::string& path, const std::string& field, const std::string& where) {
  return path + ": " + field + " '" + where + "' is never fetched or opened by qverify; download it yourself and pass " +
         "--weights FILE";
}

void add_unfetched_weights_warnings(QuantConfig& c) {
  if (c.pretrained) c.warnings.push_back(unfetched_weights_warning(c.source_file, "pretrained", *c.pretrained));
  if (c.float_pretrained)
    c.warnings.push_back(unfetched_weights_warning(c.source_file, "float_pretrained", *c.float_pretrained));
}

namespace {

std::string locate(const std::string& path_or_name) {
  std::error_code ec;
  if (fs::is_regular_file(path_or_name, ec)) return path_or_name;
  if (fs::exists(path_or_name, ec)) throw InputError(path_or_name, "", "not a regular file");
  const bool bare = path_or_name.find('/') == std::string::npos && !path_or_name.empty();
  if (bare) {
    const fs::path dir = shipped_config_dir();
    for (const std::string& candidate : {path_or_name, path_or_name + ".json"})
      if (fs::is_regular_file(dir / candidate, ec)) return (dir / candidate).string();
  }
  std::string names;
  for (const auto& n : shipped_configs()) names += (names.empty() ? "" : ", ") + n;
  throw InputError(path_or_name, "", bare ? "no such file, and not a shipped config (shipped in " + shipped_config_dir() + ": " + names + ")"
                                          : "no such file");
}

bool has_ini_section(const std::string& text) {
  for (const char* s : {"[MODEL]", "[QUANT]"}) {
    const size_t at = text.find(s);
    if (at != std::string::npos && (at == 0 || text[at - 1] == '\n')) return true;
  }
  return false;
}

}  // namespace

QuantConfig read_config(const std::string& path_or_name) {
  const std::string path = locate(path_or_name);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "", "cannot open file");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw InputError(path, "", "read error");

  if (fs::path(path).extension() == ".ini") return parse_brevitas_ini(text, path);
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      throw InputError(path, "", std::string("not valid JSON: ") + e.what());
    }
    if (j.contains("format")) return parse_qverify_config(text, path);
    if (j.contains("network") && (j.contains("training") || (j["network"].is_object() && j["network"].contains("quantize"))))
      return parse_quantlab_config(text, path);
    throw InputError(path, "", "not a known config: expected a qverify config (\"format\": \"qverify-config\") or a "
                               "QuantLab config (\"network\" with \"training\" or \"network\".\"quantize\")");
  }
  if (has_ini_section(text)) return parse_brevitas_ini(text, path);
  throw InputError(path, "", "not a known config: expected a JSON object (qverify or QuantLab) or a Brevitas .ini "
                             "with a [MODEL] or [QUANT] section");
}

}  // namespace qv::config
