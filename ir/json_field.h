// A JSON value together with its place in a user's file, so that every complaint names the file, the
// place ("nodes[3] 'conv1': stride", "activations.bits") and what was expected, as InputError.
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "ir/error.h"
#include "ir/int_type.h"
#include "ir/rational.h"
#include "ir/rounding.h"

namespace qv {

using json = nlohmann::ordered_json;

// A JSON value with its path in the file, for messages like "nodes[3] 'conv1': stride".
class Field {
 public:
  Field(const json& j, std::string where, const std::string& file) : j_(j), where_(std::move(where)), file_(file) {}

  [[noreturn]] void fail(const std::string& what) const { throw InputError(file_, where_, what); }
  const json& raw() const { return j_; }
  const std::string& where() const { return where_; }
  const std::string& path() const { return where_; }
  const std::string& file() const { return file_; }
  bool is_object() const { return j_.is_object(); }
  void object() const {
    if (!j_.is_object()) fail("expected an object, got " + describe());
  }
  // The members in file order.
  std::vector<std::pair<std::string, Field>> members() const {
    object();
    std::vector<std::pair<std::string, Field>> out;
    for (auto it = j_.begin(); it != j_.end(); ++it) out.emplace_back(it.key(), Field(it.value(), child(it.key()), file_));
    return out;
  }

  Field at(const std::string& key) const {
    object();
    auto it = j_.find(key);
    if (it == j_.end()) Field(j_, child(key), file_).fail("missing key '" + key + "'");
    return Field(*it, child(key), file_);
  }
  bool has(const std::string& key) const { return j_.is_object() && j_.contains(key); }
  Field at(size_t i) const { return Field(j_[i], where_ + "[" + std::to_string(i) + "]", file_); }
  void only_keys(std::initializer_list<const char*> allowed) const {
    if (!j_.is_object()) fail("expected an object");
    const std::set<std::string> ok(allowed.begin(), allowed.end());
    for (auto it = j_.begin(); it != j_.end(); ++it)
      if (!ok.count(it.key())) Field(it.value(), child(it.key()), file_).fail("unknown key '" + it.key() + "'");
  }

  int64_t integer() const {
    if (!j_.is_number_integer()) fail("expected an integer, got " + describe());
    return j_.is_number_unsigned() && j_.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX) ? (fail("integer above 2^63 - 1"), 0) : j_.get<int64_t>();
  }
  int small_int() const {
    const int64_t v = integer();
    if (v < INT32_MIN || v > INT32_MAX) fail("expected a 32-bit integer, got " + std::to_string(v));
    return static_cast<int>(v);
  }
  bool boolean() const {
    if (!j_.is_boolean()) fail("expected true or false, got " + describe());
    return j_.get<bool>();
  }
  double number() const {
    if (!j_.is_number()) fail("expected a number, got " + describe());
    const double v = j_.get<double>();
    if (!std::isfinite(v)) fail("expected a finite number");
    return v;
  }
  std::string string() const {
    if (!j_.is_string()) fail("expected a string, got " + describe());
    return j_.get<std::string>();
  }
  size_t array_size() const {
    if (!j_.is_array()) fail("expected an array, got " + describe());
    return j_.size();
  }
  std::vector<int64_t> integers() const {
    std::vector<int64_t> out(array_size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = at(i).integer();
    return out;
  }
  std::vector<std::string> strings() const {
    std::vector<std::string> out(array_size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = at(i).string();
    return out;
  }
  std::vector<double> numbers() const {
    std::vector<double> out(array_size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = at(i).number();
    return out;
  }
  Rational rational() const {
    const std::string s = j_.is_string() ? j_.get<std::string>() : j_.dump();
    auto q = parse_rational(s);
    if (!q) fail("expected a rational 'p/q' with q != 0 (or a finite number), got '" + s + "'");
    return *q;
  }
  IntType int_type() const {
    const std::string s = string();
    auto t = IntType::parse(s);
    if (!t || !t->valid())
      fail("invalid type '" + s + "': expected intN with N in 1..64 or uintN with N in 1..63");
    return *t;
  }
  Rounding rounding() const {
    const std::string s = string();
    auto r = parse_rounding(s);
    if (!r) fail("unknown rounding '" + s + "' (expected half_even, half_up, half_away, half_down, floor, ceil or trunc)");
    return *r;
  }
  std::pair<int, int> pair() const {
    if (array_size() != 2) fail("expected 2 values");
    return {at(0).small_int(), at(1).small_int()};
  }

 private:
  // Identifier-like keys join with '.' (or ": " after a quoted node name); others, such as QuantLab's
  // regex keys, are quoted in brackets.
  std::string child(const std::string& key) const {
    bool plain = !key.empty();
    for (char c : key)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) plain = false;
    if (!plain) return where_ + "['" + key + "']";
    if (where_.empty()) return key;
    return where_ + (where_.back() == '\'' ? ": " : ".") + key;
  }
  std::string describe() const { return std::string(j_.type_name()) + " " + j_.dump().substr(0, 40); }
  const json& j_;
  std::string where_;
  const std::string& file_;
};

}  // namespace qv
