#include "vectors/npy.h"

#include <cstring>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>

#include "ir/error.h"

namespace qv {

namespace {

struct Dtype {
  int bytes;
  bool is_signed;
};

Dtype storage_for(IntType t) {
  for (int bytes : {1, 2, 4, 8}) {
    const IntType s{bytes * 8, t.is_signed};
    if (bytes == 8 || (t.bits <= s.bits)) return {bytes, t.is_signed || bytes == 8};
  }
  return {8, true};
}

std::string descr_of(Dtype d) {
  const char kind = d.is_signed ? 'i' : 'u';
  return std::string(d.bytes == 1 ? "|" : "<") + kind + std::to_string(d.bytes);
}

}  // namespace

std::string encode_npy(const IntTensor& t) {
  const Dtype d = storage_for(t.type);
  std::string shape = "(";
  for (size_t i = 0; i < t.shape.size(); ++i) shape += std::to_string(t.shape[i]) + (t.shape.size() == 1 ? "," : (i + 1 < t.shape.size() ? ", " : ""));
  shape += ")";
  std::string header = "{'descr': '" + descr_of(d) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t preamble = 10;  // magic(6) + version(2) + header length(2)
  const size_t total = (preamble + header.size() + 1 + 63) / 64 * 64;
  header.append(total - preamble - header.size() - 1, ' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back('\x01');
  out.push_back('\x00');
  const auto hl = static_cast<uint16_t>(header.size());
  out.push_back(static_cast<char>(hl & 0xFF));
  out.push_back(static_cast<char>(hl >> 8));
  out += header;
  out.reserve(out.size() + t.data.size() * static_cast<size_t>(d.bytes));
  for (int64_t v : t.data) {
    const auto u = static_cast<uint64_t>(v);
    for (int b = 0; b < d.bytes; ++b) out.push_back(static_cast<char>((u >> (8 * b)) & 0xFF));
  }
  return out;
}

void write_npy(const std::string& path, const IntTensor& t) {
  std::ofstream f(path, std::ios::binary);
  const std::string bytes = encode_npy(t);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw InputError(path, "", "cannot write file");
}

IntTensor read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path, "", "cannot open file");
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0)
    throw InputError(path, "magic", "not a .npy file (expected the magic bytes \\x93NUMPY)");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len, header_at;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    header_at = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw InputError(path, "header", "file ends inside the header length");
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    header_at = 12;
  } else {
    throw InputError(path, "version", "unsupported .npy format version " + std::to_string(major) + " (expected 1, 2 or 3)");
  }
  if (bytes.size() < header_at + header_len) throw InputError(path, "header", "file ends inside the header");
  const std::string header = bytes.substr(header_at, header_len);

  std::smatch m;
  if (!std::regex_search(header, m, std::regex(R"('descr'\s*:\s*'([<>|=])([iub])(\d+)')")))
    throw InputError(path, "header 'descr'", "missing or not an integer dtype (expected e.g. '<i4', '|u1'), header: " + header);
  const char endian = m[1].str()[0];
  const char kind = m[2].str()[0];
  const int nbytes = std::stoi(m[3].str());
  if (kind == 'b' || (nbytes != 1 && nbytes != 2 && nbytes != 4 && nbytes != 8) || (kind == 'u' && nbytes == 8))
    throw InputError(path, "header 'descr'", "unsupported dtype " + m[1].str() + m[2].str() + m[3].str() +
                                                 " (expected int8/16/32/64 or uint8/16/32)");
  if (!std::regex_search(header, m, std::regex(R"('fortran_order'\s*:\s*(True|False))")))
    throw InputError(path, "header 'fortran_order'", "missing");
  if (m[1] == "True") throw InputError(path, "header 'fortran_order'", "Fortran order is not supported; save with C order");
  if (!std::regex_search(header, m, std::regex(R"('shape'\s*:\s*\(([^)]*)\))")))
    throw InputError(path, "header 'shape'", "missing or not a tuple");
  Shape shape;
  std::stringstream dims(m[1].str());
  std::string dim;
  while (std::getline(dims, dim, ',')) {
    dim.erase(0, dim.find_first_not_of(" \t"));
    dim.erase(dim.find_last_not_of(" \tL") + 1);
    if (dim.empty()) continue;
    if (dim.find_first_not_of("0123456789") != std::string::npos)
      throw InputError(path, "header 'shape'", "dimension '" + dim + "' is not a non-negative integer");
    shape.push_back(std::stoll(dim));
  }
  IntTensor t;
  t.shape = shape;
  t.type = IntType{nbytes * 8, kind == 'i'};
  const int64_t n = element_count(shape);
  const size_t data_at = header_at + header_len;
  const size_t want = static_cast<size_t>(n) * static_cast<size_t>(nbytes);
  if (bytes.size() - data_at != want)
    throw InputError(path, "data", "expected " + std::to_string(want) + " bytes for shape " + to_string(shape) + ", found " +
                                       std::to_string(bytes.size() - data_at));
  t.data.resize(static_cast<size_t>(n));
  const bool big = endian == '>';
  for (int64_t i = 0; i < n; ++i) {
    uint64_t u = 0;
    for (int b = 0; b < nbytes; ++b) {
      const int src = big ? nbytes - 1 - b : b;
      u |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[data_at + static_cast<size_t>(i * nbytes + src)])) << (8 * b);
    }
    int64_t v;
    if (kind == 'i' && nbytes < 8) {
      const uint64_t sign = uint64_t{1} << (8 * nbytes - 1);
      v = static_cast<int64_t>((u ^ sign)) - static_cast<int64_t>(sign);  // sign-extend
    } else {
      v = static_cast<int64_t>(u);
    }
    t.data[static_cast<size_t>(i)] = v;
  }
  return t;
}

}  // namespace qv
