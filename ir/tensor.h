// A tensor of integers with a declared type and layout.
//
// Storage is always int64_t, row-major in the order the layout names (NCHW: n, c, h, w). The declared
// IntType is a promise checked by validation: every element lies in [type.min(), type.max()].
// `scale` optionally states what one LSB means in the real domain (one value per tensor, or one per
// channel along axis 1): the harness uses it to map float tensors to integers.
#pragma once

#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "ir/int_type.h"

namespace qv {

using Shape = std::vector<int64_t>;

inline int64_t element_count(const Shape& s) {
  return std::accumulate(s.begin(), s.end(), int64_t{1}, [](int64_t a, int64_t b) { return a * b; });
}
std::string to_string(const Shape& s);  // "[1, 3, 224, 224]"

struct IntTensor {
  Shape shape;
  IntType type;
  std::string layout;          // "NCHW", "NC", "OIHW" (conv weights), "OI" (linear weights), "O" (bias)
  std::vector<double> scale;   // empty, 1 (per tensor) or shape[1] (per channel); positive, finite
  std::vector<int64_t> data;

  IntTensor() = default;
  IntTensor(Shape s, IntType t, std::string l)
      : shape(std::move(s)), type(t), layout(std::move(l)), data(static_cast<size_t>(element_count(shape)), 0) {}

  int64_t numel() const { return element_count(shape); }
  int64_t dim(size_t i) const { return shape.at(i); }
  size_t rank() const { return shape.size(); }

  // NCHW accessors (rank 4).
  int64_t& at(int64_t n, int64_t c, int64_t h, int64_t w) {
    return data[static_cast<size_t>(((n * shape[1] + c) * shape[2] + h) * shape[3] + w)];
  }
  int64_t at(int64_t n, int64_t c, int64_t h, int64_t w) const {
    return data[static_cast<size_t>(((n * shape[1] + c) * shape[2] + h) * shape[3] + w)];
  }
  // Rank-2 accessor.
  int64_t& at(int64_t i, int64_t j) { return data[static_cast<size_t>(i * shape[1] + j)]; }
  int64_t at(int64_t i, int64_t j) const { return data[static_cast<size_t>(i * shape[1] + j)]; }

  friend bool operator==(const IntTensor&, const IntTensor&) = default;
};

}  // namespace qv
