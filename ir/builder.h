// NetworkBuilder: assemble a Network node by node for tests and synthetic models.
//
// Each method appends one node and returns its name. Output shapes come from the op parameters
// (reference/shapes.h); the declared type of a conv2d/linear/hadamard accumulator is the narrowest
// signed-or-unsigned type covering the proven accumulator range (reference/accumulator_bound.h,
// IntType::covering). Misuse (unknown input, duplicate name, shape mismatch, accumulator wider than
// 64 bits) throws std::invalid_argument: the builder is for code, not for user files.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ir/network.h"

namespace qv {

class NetworkBuilder {
 public:
  explicit NetworkBuilder(std::string network_name = "network") : name_(std::move(network_name)) {}

  std::string input(const std::string& name, Shape shape, IntType type);
  // Symmetric padding `pad` on all four sides; weight [O, I/groups, KH, KW], bias [O].
  std::string conv2d(const std::string& name, const std::string& input, IntTensor weight,
                     std::optional<IntTensor> bias = std::nullopt, int stride = 1, int pad = 0, int64_t pad_value = 0,
                     int groups = 1, int dilation = 1);
  std::string linear(const std::string& name, const std::string& input, IntTensor weight,
                     std::optional<IntTensor> bias = std::nullopt);
  std::string max_pool2d(const std::string& name, const std::string& input, int kernel, int stride, int pad = 0);
  std::string avg_pool2d(const std::string& name, const std::string& input, int kernel, int stride, int shift,
                         Rounding rounding, IntType out_type);
  std::string add_saturating(const std::string& name, const std::string& a, const std::string& b, IntType out_type);
  std::string add_requant(const std::string& name, const std::vector<std::string>& inputs, std::vector<Requant> branches,
                          IntType out_type);
  std::string hadamard(const std::string& name, const std::string& input, int64_t out_features, bool negate = false);
  std::string flatten(const std::string& name, const std::string& input);
  std::string requant(const std::string& name, const std::string& input, Requant rq, IntType out_type);

  // The tensor a node produces (shape and type).
  const ValueInfo& info(const std::string& name) const;
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  // The network so far, with `output_name` as its output. Moves the nodes out: the builder is empty after.
  Network build(const std::string& output_name);

 private:
  std::string add(const std::string& name, std::vector<std::string> inputs, ValueInfo output, Op op);

  std::string name_;
  std::vector<Node> nodes_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace qv
