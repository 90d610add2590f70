#include "ir/network.h"

#include <array>

namespace qv {

namespace {
constexpr std::array<std::string_view, 10> kOpNames = {"input", "conv2d", "linear", "max_pool2d", "avg_pool2d",
                                                       "add_saturating", "add_requant", "hadamard", "flatten", "requant"};
}

std::string_view to_string(OpKind k) { return kOpNames[static_cast<size_t>(k)]; }

std::optional<OpKind> parse_op_kind(std::string_view s) {
  for (size_t i = 0; i < kOpNames.size(); ++i)
    if (kOpNames[i] == s) return static_cast<OpKind>(i);
  return std::nullopt;
}

const Node* Network::find(const std::string& node_name) const {
  for (const Node& n : nodes)
    if (n.name == node_name) return &n;
  return nullptr;
}

std::vector<const Node*> Network::inputs() const {
  std::vector<const Node*> out;
  for (const Node& n : nodes)
    if (n.kind() == OpKind::input) out.push_back(&n);
  return out;
}

std::string to_string(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace qv
