#include "fakequant/import.h"

#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>

#include "fakequant/checkpoint/torch_checkpoint.h"
#include "fakequant/key_mismatch.h"
#include "fakequant/quantizers.h"
#include "fakequant/sawb.h"

namespace qv::fakequant {

std::string rename_key(const std::string& key_in, PeerNaming naming) {
  std::string key = key_in.rfind("module.", 0) == 0 ? key_in.substr(7) : key_in;
  if (naming == PeerNaming::as_stored || naming == PeerNaming::quantlab) return key;
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

namespace {

bool has_leaf(const std::string& key, const std::string& leaf) {
  return key.size() >= leaf.size() && key.compare(key.size() - leaf.size(), leaf.size(), leaf) == 0 &&
         (key.size() == leaf.size() || key[key.size() - leaf.size() - 1] == '.');
}

std::string module_of(const std::string& key) {
  const auto dot = key.rfind('.');
  return dot == std::string::npos ? std::string() : key.substr(0, dot);
}

std::string leaf_of(const std::string& key) { return key.substr(key.rfind('.') + 1); }

// The clips qverify's PACT weight quantizer uses for `w` (layers.cc clips_of).
std::pair<torch::Tensor, torch::Tensor> derived_weight_clips(const torch::Tensor& w_in, const WeightQuant& wq) {
  const torch::Tensor w = w_in.detach().to(torch::kFloat32);
  const int64_t n = int64_t{1} << wq.bits;
  if (wq.init != config::WeightInit::max) {
    const PactClips c = pact_weight_clips(w, wq.init, n, wq.per_channel, wq.std_factor);
    return {c.lo, c.hi};
  }
  torch::Tensor m = wq.per_channel ? std::get<0>(torch::abs(w).reshape({w.size(0), -1}).max(1))
                                   : torch::abs(w).max().reshape({1});
  return pact_symmetric_clips(torch::clamp_min(m, 1e-8), n);
}

}  // namespace

bool ignored_key(const std::string& key, PeerNaming naming) {
  if (naming == PeerNaming::brevitas) return has_leaf(key, "zero_hw_sentinel");
  if (naming == PeerNaming::quantlab) return has_leaf(key, "frozen") || has_leaf(key, "clip_gradient");
  return false;
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

  // QuantLab: the QuantLib PACT modules are those with a `started` buffer. Their flags are checked and
  // consumed here, an activation's statistics skipped, a weight quantizer's clips checked below.
  std::vector<std::string> mismatched;
  std::set<std::string> used;
  std::map<std::string, std::pair<const checkpoint::CheckpointTensor*, const checkpoint::CheckpointTensor*>> weight_clips;
  if (naming == PeerNaming::quantlab) {
    std::set<std::string> pact_modules;
    for (const auto& [name, t] : by_name)
      if (leaf_of(name) == "started") pact_modules.insert(module_of(name));
    std::set<std::string> weighted;  // modules of the model with a weight: conv, linear, BN
    for (const auto& p : net.named_parameters())
      if (leaf_of(p.key()) == "weight") weighted.insert(module_of(p.key()));
    static const std::set<std::string> statistics = {"max", "min", "running_mean", "running_var"};
    for (const auto& [name, t] : by_name) {
      const std::string module = module_of(name), leaf = leaf_of(name);
      if (!pact_modules.count(module)) continue;
      const bool value = t->numel() > 0 && t->values[0] != 0;
      if (leaf == "started" || leaf == "noisy") {
        used.insert(name);
        if (t->numel() != 1 || value != (leaf == "started"))
          mismatched.push_back(name + (leaf == "started" ? " (not started: QuantLab runs " + module + " unquantized)"
                                                         : " (noisy: QuantLab adds noise in " + module + ")"));
      } else if (statistics.count(leaf) && !weighted.count(module)) {
        used.insert(name);
      } else if ((leaf == "clip_lo" || leaf == "clip_hi") && weighted.count(module)) {
        (leaf == "clip_lo" ? weight_clips[module].first : weight_clips[module].second) = t;
        used.insert(name);
      }
    }
  }

  std::vector<std::pair<std::string, torch::Tensor>> targets;
  for (const auto& p : net.named_parameters()) targets.emplace_back(p.key(), p.value());
  for (const auto& b : net.named_buffers()) targets.emplace_back(b.key(), b.value());

  const std::set<std::string> quantizer_leaves = {"clip_lo", "clip_hi", "log_t", "value"};
  std::vector<std::string> missing, left_for_calibration;
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
  // QuantLab weight clips: accepted only where they are the clips qverify's quantizer derives from the
  // imported weight; float32 rounding apart (QuantLib computes clip_hi as -clip_lo * ((n - 2) / n), qverify
  // as M * (n - 2) / n), a difference changes eps and so the integer weights.
  for (const auto& item : net.named_modules()) {
    const std::string& module = item.key();
    auto it = weight_clips.find(module);
    if (it == weight_clips.end()) continue;
    const WeightQuant* wq = nullptr;
    torch::Tensor w;
    if (auto c = std::dynamic_pointer_cast<QConv2dImpl>(item.value())) wq = &c->wq, w = c->weight;
    else if (auto l = std::dynamic_pointer_cast<QLinearImpl>(item.value())) wq = &l->wq, w = l->weight;
    if (!wq || wq->kind != QuantKind::pact) continue;  // left unused: unexpected
    const auto [lo, hi] = derived_weight_clips(w, *wq);
    const std::tuple<const char*, const checkpoint::CheckpointTensor*, torch::Tensor> clips[] = {
        {".clip_lo", it->second.first, lo}, {".clip_hi", it->second.second, hi}};
    for (const auto& [leaf, src, want] : clips) {
      const std::string name = module + leaf;
      if (!src) {
        missing.push_back(name + " (the other weight clip is stored)");
        continue;
      }
      if (src->numel() != want.numel()) {
        mismatched.push_back(name + " (checkpoint " + std::to_string(src->numel()) + " values, the weight quantizer " +
                             std::to_string(want.numel()) + ")");
        continue;
      }
      const torch::Tensor got = torch::tensor(src->values, torch::kFloat64);
      const torch::Tensor ref = want.detach().to(torch::kFloat64).flatten();
      const double diff = torch::abs(got - ref).max().item<double>();
      const double scale = torch::abs(ref).max().item<double>();
      if (!(diff <= 1e-6 * scale)) {
        std::ostringstream m;
        m << name << " (differs by up to " << diff << " from the clips qverify derives from " << module
          << ".weight; qverify stores no PACT weight clips)";
        mismatched.push_back(m.str());
      }
    }
    weight_clips.erase(it);
  }
  for (const auto& [module, clips] : weight_clips) {  // no PACT conv / linear of that name: unexpected
    if (clips.first) used.erase(module + ".clip_lo");
    if (clips.second) used.erase(module + ".clip_hi");
  }

  std::vector<std::string> unexpected;
  for (const auto& [name, t] : by_name)
    if (!used.count(name)) unexpected.push_back(name);
  unexpected.insert(unexpected.end(), duplicates.begin(), duplicates.end());
  throw_if_keys_mismatch(path, "the state_dict", missing, unexpected, mismatched);
  return left_for_calibration;
}

}  // namespace qv::fakequant
