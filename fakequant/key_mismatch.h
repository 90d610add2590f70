// The one error for a set of named tensors that does not fit a model: every missing, unexpected and
// mismatched key listed, so a user fixes a checkpoint in one round.
#pragma once

#include <string>
#include <vector>

#include "ir/error.h"

namespace qv::fakequant {

// Throws InputError(path, "", ...) listing the three groups; returns if all are empty.
inline void throw_if_keys_mismatch(const std::string& path, const std::string& what, const std::vector<std::string>& missing,
                                   const std::vector<std::string>& unexpected, const std::vector<std::string>& mismatched) {
  if (missing.empty() && unexpected.empty() && mismatched.empty()) return;
  std::string msg = what + " does not fit the model:";
  auto list = [&](const char* group, const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    msg += std::string("\n  ") + group + " (" + std::to_string(keys.size()) + "):";
    for (const auto& k : keys) msg += " " + k;
  };
  list("missing keys", missing);
  list("unexpected keys", unexpected);
  list("shape mismatches", mismatched);
  throw InputError(path, "", msg);
}

}  // namespace qv::fakequant
