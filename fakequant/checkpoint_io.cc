#include "fakequant/checkpoint_io.h"

#include <filesystem>
#include <set>

#include "fakequant/key_mismatch.h"
#include "ir/error.h"

namespace qv::fakequant {

namespace {

std::vector<std::pair<std::string, torch::Tensor>> entries(const torch::nn::Module& net) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : net.named_parameters()) out.emplace_back(p.key(), p.value());
  for (const auto& b : net.named_buffers()) out.emplace_back(b.key(), b.value());
  return out;
}

}  // namespace

void save_checkpoint(const torch::nn::Module& net, const std::string& path) {
  torch::serialize::OutputArchive archive;
  for (const auto& [name, t] : entries(net)) archive.write(name, t.detach());
  const std::string tmp = path + ".tmp";
  archive.save_to(tmp);
  std::filesystem::rename(tmp, path);
}

void load_checkpoint(torch::nn::Module& net, const std::string& path) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    throw InputError(path, "", "not a qverify checkpoint (LibTorch archive): " + e.msg());
  }
  const std::vector<std::string> stored = archive.keys();
  const std::set<std::string> stored_set(stored.begin(), stored.end());
  std::vector<std::string> missing, mismatched;
  std::set<std::string> expected;
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : entries(net)) {
    expected.insert(name);
    if (!stored_set.count(name)) {
      missing.push_back(name);
      continue;
    }
    torch::Tensor v;
    archive.read(name, v);
    if (v.sizes() != t.sizes()) {
      std::ostringstream s;
      s << name << " (checkpoint " << v.sizes() << ", model " << t.sizes() << ")";
      mismatched.push_back(s.str());
      continue;
    }
    t.copy_(v);
  }
  std::vector<std::string> unexpected;
  for (const std::string& k : stored)
    if (!expected.count(k)) unexpected.push_back(k);
  throw_if_keys_mismatch(path, "the checkpoint", missing, unexpected, mismatched);
}

}  // namespace qv::fakequant
