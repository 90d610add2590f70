// A JSON value with its key path in a config file, so that every complaint reads
// "FILE: defaults.activation.bits: expected an integer, got string \"eight\"". Internal to the readers.
#pragma once

#include <cctype>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ir/error.h"

namespace qv::config::detail {

using json = nlohmann::ordered_json;  // keeps the file's key order: rules apply in the order written

class Node {
 public:
  Node(const json& j, std::string path, const std::string& file) : j_(j), path_(std::move(path)), file_(file) {}

  [[noreturn]] void fail(const std::string& expected) const { throw InputError(file_, path_, expected); }
  const json& raw() const { return j_; }
  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }

  bool is_object() const { return j_.is_object(); }
  bool has(const std::string& key) const { return j_.is_object() && j_.contains(key); }
  Node at(const std::string& key) const {
    object();
    auto it = j_.find(key);
    if (it == j_.end()) fail("missing key '" + key + "'");
    return Node(*it, child(key), file_);
  }
  Node at(size_t i) const { return Node(j_.at(i), path_ + "[" + std::to_string(i) + "]", file_); }
  // The members in file order.
  std::vector<std::pair<std::string, Node>> members() const {
    object();
    std::vector<std::pair<std::string, Node>> out;
    for (auto it = j_.begin(); it != j_.end(); ++it) out.emplace_back(it.key(), Node(it.value(), child(it.key()), file_));
    return out;
  }
  void object() const {
    if (!j_.is_object()) fail("expected an object, got " + describe());
  }

  int64_t integer() const {
    if (!j_.is_number_integer()) fail("expected an integer, got " + describe());
    if (j_.is_number_unsigned() && j_.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) fail("integer above 2^63 - 1");
    return j_.get<int64_t>();
  }
  double number() const {
    if (!j_.is_number()) fail("expected a number, got " + describe());
    const double v = j_.get<double>();
    if (!std::isfinite(v)) fail("expected a finite number");
    return v;
  }
  bool boolean() const {
    if (!j_.is_boolean()) fail("expected true or false, got " + describe());
    return j_.get<bool>();
  }
  std::string string() const {
    if (!j_.is_string()) fail("expected a string, got " + describe());
    return j_.get<std::string>();
  }
  size_t array_size() const {
    if (!j_.is_array()) fail("expected an array, got " + describe());
    return j_.size();
  }
  std::vector<double> numbers() const {
    std::vector<double> out(array_size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = at(i).number();
    return out;
  }

  std::string describe() const {
    std::string d = j_.dump();
    if (d.size() > 40) d = d.substr(0, 37) + "...";
    return std::string(j_.type_name()) + " " + d;
  }

 private:
  // Identifier-like keys join with '.', others (QuantLab's regex keys) are quoted.
  std::string child(const std::string& key) const {
    bool plain = !key.empty();
    for (char c : key)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) plain = false;
    if (!plain) return path_ + "['" + key + "']";
    return path_.empty() ? key : path_ + "." + key;
  }
  const json& j_;
  std::string path_;
  const std::string& file_;
};

}  // namespace qv::config::detail
