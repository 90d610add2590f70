#include "fakequant/import.h"

#include <map>
#include <regex>
#include <set>

#include "fakequant/checkpoint/torch_checkpoint.h"
#include "fakequant/key_mismatch.h"

namespace qv::fakequant {

std::string rename_key(const std::string& key_in, PeerNaming naming) {
  std::string key = key_in.rfind("module.", 0) == 0 ? key_in.substr(7) : key_in;
  if (naming == PeerNaming::as_stored) return key;
  std::smatch m;
  if (naming == PeerNaming::brevitas) {
    static const std::regex act_value(
        R"((.+)\.act_quant(_proxy)?\.fused_activation_quant_proxy\.tensor_quant\.scaling_impl\.(learned_)?value)");
    if (std::regex_match(key, m, act_value)) return m[1].str() + ".value";
    return key;
  }
  if (std::regex_match(key, m, std::regex(R"(features\.0\.(.*))"))) return "pilot." + m[1].str();
  if (!std::regex_match(key, m, std::regex(R"(features\.(\d+)\.(.*))"))) return key;
  const int n = std::stoi(m[1].str()) - 1;
  std::string rest = m[2].str();
  if (rest.rfind("conv.", 0) == 0) {
    rest = "residual_branch." + rest.substr(5);
    std::smatch r;
    if (n == 0) {
      if (std::regex_match(rest, r, std::regex(R"(residual_branch\.1\.(.*))"))) rest = "residual_branch.1.0." + r[1].str();
      else if (std::regex_match(rest, r, std::regex(R"(residual_branch\.2\.(.*))"))) rest = "residual_branch.1.1." + r[1].str();
    } else {
      if (std::regex_match(rest, r, std::regex(R"(residual_branch\.2\.(.*))"))) rest = "residual_branch.2.0." + r[1].str();
      else if (std::regex_match(rest, r, std::regex(R"(residual_branch\.3\.(.*))"))) rest = "residual_branch.2.1." + r[1].str();
    }
  }
  return "features." + std::to_string(n) + "." + rest;
}

bool ignored_key(const std::string& key, PeerNaming naming) {
  static const std::string sentinel = "zero_hw_sentinel";
  return naming == PeerNaming::brevitas && key.size() >= sentinel.size() &&
         key.compare(key.size() - sentinel.size(), sentinel.size(), sentinel) == 0 &&
         (key.size() == sentinel.size() || key[key.size() - sentinel.size() - 1] == '.');
}

std::vector<std::string> import_state_dict(torch::nn::Module& net, const std::string& path, PeerNaming naming) {
  const auto stored = checkpoint::read_state_dict(path);
  std::map<std::string, const checkpoint::CheckpointTensor*> by_name;
  std::vector<std::string> duplicates;
  for (const auto& [name, t] : stored) {
    if (ignored_key(name, naming)) continue;
    const std::string renamed = rename_key(name, naming);
    if (!by_name.emplace(renamed, &t).second) duplicates.push_back(name + " (a second " + renamed + ")");
  }

  std::vector<std::pair<std::string, torch::Tensor>> targets;
  for (const auto& p : net.named_parameters()) targets.emplace_back(p.key(), p.value());
  for (const auto& b : net.named_buffers()) targets.emplace_back(b.key(), b.value());

  const std::set<std::string> quantizer_leaves = {"clip_lo", "clip_hi", "log_t", "value"};
  std::vector<std::string> missing, mismatched, left_for_calibration;
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      const std::string leaf = name.substr(name.rfind('.') + 1);
      (quantizer_leaves.count(leaf) ? left_for_calibration : missing).push_back(name);
      continue;
    }
    const checkpoint::CheckpointTensor& src = *it->second;
    used.insert(name);
    const bool scalar_into_one = naming == PeerNaming::brevitas && src.shape.empty() && target.numel() == 1;
    if (std::vector<int64_t>(target.sizes().begin(), target.sizes().end()) != src.shape && !scalar_into_one) {
      std::string s = name + " (checkpoint [";
      for (size_t i = 0; i < src.shape.size(); ++i) s += (i ? ", " : "") + std::to_string(src.shape[i]);
      s += "], model " + std::to_string(target.dim()) + "-d)";
      mismatched.push_back(s);
      continue;
    }
    torch::Tensor value;
    if (!src.int_values.empty() || !src.is_floating()) {
      value = torch::tensor(src.int_values, torch::kInt64);
    } else {
      value = torch::tensor(src.values, torch::kFloat64);
    }
    target.copy_(value.reshape(target.sizes()).to(target.scalar_type()));
  }
  std::vector<std::string> unexpected;
  for (const auto& [name, t] : by_name)
    if (!used.count(name)) unexpected.push_back(name);
  unexpected.insert(unexpected.end(), duplicates.begin(), duplicates.end());
  throw_if_keys_mismatch(path, "the state_dict", missing, unexpected, mismatched);
  return left_for_calibration;
}

}  // namespace qv::fakequant
