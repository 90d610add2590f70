// Reading a quantization configuration from a file: qverify's own JSON schema, a QuantLab
// config.*.json, or a Brevitas .ini (docs/configs.md). The format is detected from the content.
//
// qverify files are strict: an unknown key, a wrong type or an impossible value throws InputError
// naming the file, the key path and what was expected. Peer files are read as their projects write
// them: keys qverify does not interpret become QuantConfig::warnings (peers evolve), but wrong types
// and impossible values are errors too. A pretrained path or URL is stored, never opened or fetched.
#pragma once

#include <string>
#include <vector>

#include "fakequant/config/quant_config.h"

namespace qv::config {

// A path, or a name among the shipped configs ("tqt.json" or "tqt").
QuantConfig read_config(const std::string& path_or_name);

// The readers behind read_config, for a file already known to be of that format. `text` is the file's
// content and `path` names it in messages.
QuantConfig parse_qverify_config(const std::string& text, const std::string& path);
QuantConfig parse_quantlab_config(const std::string& text, const std::string& path);
QuantConfig parse_brevitas_ini(const std::string& text, const std::string& path);

// Appends to c.warnings one line per stated pretrained / float_pretrained path or URL, saying that
// qverify never fetches or opens it and that the weights come from `--weights FILE`. Every parse_*
// calls it last, so a config naming weights always says so.
void add_unfetched_weights_warnings(QuantConfig& c);
// The text of one such warning (field "pretrained" or "float_pretrained").
std::string unfetched_weights_warning(const std::string& path, const std::string& field, const std::string& where);

// The folder of shipped configs: QVERIFY_CONFIG_DIR if set, else the source tree's configs/ compiled in.
std::string shipped_config_dir();
// Its config files (.json and .ini), sorted by name.
std::vector<std::string> shipped_configs();

}  // namespace qv::config
