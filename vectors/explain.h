// The computation of one element of a golden-vector directory (docs/compare.md), read back from the
// vectors alone: the input window and weights of a conv / linear, the accumulator, the requantization
// (alpha, delta, the exact pre-rounding value p, rounding, clamp) and the output. Used by
// `qverify explain` and by `qverify compare` for the first diverging element. Plain C++, no LibTorch.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ir/bigint.h"
#include "ir/rounding.h"
#include "ir/tensor.h"
#include "vectors/formats.h"

namespace qv::vectors {

// ---- Tensor files, read strictly (errors name the file and what was expected: InputError). ----

// The integers of a tensor file in `f`, checked against the manifest's tensor entry: the element
// count, and for .npy the shape (the stated one, or for rank 4 its NCHW <-> NHWC permutation, reported
// through `permuted_shape`). Hex words are read as $readmemh would, sign-extended from the entry's
// hex_word_bits when the type is signed; a word wider than hex_word_bits is an error.
std::vector<int64_t> read_tensor_file(Format f, const std::string& path, const nlohmann::json& tensor,
                                      bool* permuted_shape = nullptr);

// Row-major index <-> multi-index.
std::vector<int64_t> unflatten(const Shape& shape, int64_t flat);
int64_t flatten_index(const Shape& shape, const std::vector<int64_t>& index);
std::string index_string(const std::vector<int64_t>& index);  // "[0, 3, 4, 5]"

// Permutes rank-4 data between NCHW and NHWC (`shape` is the source shape in `from` layout).
std::vector<int64_t> permute_layout(const std::vector<int64_t>& data, const Shape& shape, const std::string& from);
Shape permute_shape(const Shape& shape, const std::string& from);  // [N,C,H,W] <-> [N,H,W,C]

// An exact rational parsed from "p/q" or "p".
Rational parse_rational(const std::string& s, const std::string& file, const std::string& where);
std::string rational_string(const Rational& r);   // "p/q" or "p"
std::string decimal_string(const Rational& r);    // 12 significant digits

// One run of a golden-vector directory. Tensors are read on demand and cached, in canonical layout
// (NCHW activations, OIHW conv weights) whatever the manifest's layout.
class GoldenRun {
 public:
  GoldenRun(std::string dir, nlohmann::json manifest, size_t run_position);

  const std::string& dir() const { return dir_; }
  const nlohmann::json& run() const { return run_; }
  const std::string& id() const { return id_; }
  const std::vector<std::string>& order() const { return order_; }  // node names, topological
  const nlohmann::json& node(const std::string& name) const;        // throws InputError for an unknown node
  bool has_node(const std::string& name) const { return node_pos_.count(name) != 0; }
  const nlohmann::json& tensor_entry(const std::string& key) const;
  const nlohmann::json& output_entry(const std::string& node) const;  // the node's `output` tensor entry

  // The tensor `key` in canonical layout (shape canonical, data row-major in it).
  const IntTensor& canonical(const std::string& key);
  const IntTensor& output(const std::string& node) { return canonical(node_tensor(node, "output")); }
  // The same tensor's data in the stated layout of the manifest (as the files hold it).
  std::vector<int64_t> stated_data(const std::string& key);
  std::string node_tensor(const std::string& node, const std::string& role) const;  // "" if absent
  const nlohmann::json& requant_file(const std::string& node);                       // parsed, cached

  // Stated (file) index <-> canonical index for a tensor entry.
  static std::vector<int64_t> to_canonical_index(const nlohmann::json& entry, const std::vector<int64_t>& stated);
  static std::vector<int64_t> to_stated_index(const nlohmann::json& entry, const std::vector<int64_t>& canonical);

 private:
  std::string dir_;
  nlohmann::json manifest_, run_;
  std::string id_;
  std::vector<std::string> order_;
  std::map<std::string, size_t> node_pos_;
  std::map<std::string, std::unique_ptr<IntTensor>> cache_;
  std::map<std::string, nlohmann::json> requant_cache_;
};

// One term of a window: input element (canonical index into `source`'s output) times a weight.
struct Term {
  std::string source;              // the node whose output holds the input element ("" for padding)
  std::vector<int64_t> index;      // canonical index into that output (or the padded position)
  bool padding = false;
  int64_t x = 0, w = 1;
  std::vector<int64_t> weight_index;  // canonical index into the weight tensor (conv/linear)
};

// The requantization of one element (one branch of add_requant, or the requant itself).
struct RequantStep {
  std::string input_node;          // the node whose output is the accumulator
  int64_t channel = 0;
  int64_t acc = 0;
  std::string alpha, delta;        // exact rationals as stored
  Rational p;                      // alpha * acc + delta
  Rounding rounding = Rounding::half_even;
  int64_t lo = 0, hi = 0;
  BigInt rounded;                  // R(p), before the clamp
  int64_t clamped = 0;
  bool tie = false;                // p = k + 1/2 exactly
};

// The computation of one element of a node (canonical index).
struct ElementComputation {
  std::string node, op;
  std::vector<int64_t> index;          // in the manifest's stated layout
  std::vector<int64_t> canonical_index;
  int64_t output = 0;                  // the golden value
  // The accumulation that feeds the element: the node itself (conv2d, linear, pools, hadamard, adds)
  // or, for a requant, the conv / linear producing its accumulator.
  std::string acc_node, acc_op;
  nlohmann::json acc_params;
  std::vector<int64_t> acc_index;      // stated layout
  std::vector<Term> terms;
  std::optional<int64_t> bias;
  std::optional<int64_t> acc_golden;   // the stored accumulator / window result
  std::optional<BigInt> acc_recomputed;
  std::string combine;                 // "sum", "max", "avg", "copy", "none"
  std::vector<RequantStep> requant;    // requant: one; add_requant: one per branch
  std::optional<Rational> pool_p;      // avg_pool2d: sum / 2^shift
  std::string pool_rounding;
  int64_t out_lo = 0, out_hi = 0;      // the output type's range (the final clamp of adds and pools)
  std::string note;

  // The input element (term) that contributes most (largest |x * w|, padding excluded) and its node;
  // empty source when there is none.
  std::optional<Term> largest() const;
  nlohmann::json to_json() const;
  // Human-readable; windows longer than `max_terms` show the `max_terms` largest contributions.
  std::string to_text(size_t max_terms, const std::string& indent = "") const;
};

// Computes the element at `canonical_index` of `node` from the golden vectors.
ElementComputation compute_element(GoldenRun& run, const std::string& node, const std::vector<int64_t>& canonical_index);

// The chain: the element, then `depth` levels up following the largest-contribution input element.
std::vector<ElementComputation> explain_chain(GoldenRun& run, const std::string& node,
                                              const std::vector<int64_t>& canonical_index, int depth);

}  // namespace qv::vectors
