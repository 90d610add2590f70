// IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed: a big-endian header
// (two zero bytes, a type code, the number of dimensions, then each dimension as uint32) followed by
// the data. Only unsigned byte data (type 0x08) is needed and supported.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qv::data {

struct IdxArray {
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

// Reads `path` (gzip when it ends in .gz). Throws InputError naming the file and what is wrong.
IdxArray read_idx(const std::string& path);

// Debian's dataset-fashion-mnist installs here.
inline const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

}  // namespace qv::data
