#include "vectors/formats.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "vectors/npy.h"

namespace qv::vectors {

std::string_view to_string(Format f) {
  switch (f) {
    case Format::npy: return "npy";
    case Format::hex: return "hex";
    case Format::bin: return "bin";
    case Format::csv: return "csv";
    case Format::h: return "h";
  }
  return "?";
}

std::vector<Format> parse_formats(const std::string& s) {
  std::vector<Format> out;
  std::stringstream ss(s);
  std::string item;
  if (s.empty()) throw std::invalid_argument("empty list (expected some of npy,hex,bin,csv,h)");
  while (std::getline(ss, item, ',')) {
    bool found = false;
    for (Format f : {Format::npy, Format::hex, Format::bin, Format::csv, Format::h}) {
      if (item == to_string(f)) {
        if (std::find(out.begin(), out.end(), f) != out.end()) throw std::invalid_argument("'" + item + "' given twice");
        out.push_back(f);
        found = true;
      }
    }
    if (!found) throw std::invalid_argument("unknown format '" + item + "' (expected some of npy,hex,bin,csv,h)");
  }
  if (!s.empty() && s.back() == ',') throw std::invalid_argument("empty element at the end of '" + s + "'");
  std::sort(out.begin(), out.end());
  return out;
}

Storage storage_of(IntType t) {
  for (int bytes : {1, 2, 4}) 
    if (t.bits <= 8 * bytes) return {bytes, t.is_signed};
  return {8, true};  // uint33..uint63 fit int64
}

IntTensor to_layout(const IntTensor& t, const std::string& layout) {
  if (layout == t.layout || layout.empty()) return t;
  const bool act = t.layout == "NCHW" && layout == "NHWC";
  const bool wgt = t.layout == "OIHW" && layout == "OHWI";
  if (!act && !wgt) throw std::invalid_argument("cannot reorder a " + t.layout + " tensor to " + layout);
  const int64_t n = t.dim(0), c = t.dim(1), h = t.dim(2), w = t.dim(3);
  IntTensor r({n, h, w, c}, t.type, layout);
  r.scale = t.scale;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) r.data[static_cast<size_t>(((i * h + y) * w + x) * c + k)] = t.at(i, k, y, x);
  return r;
}

std::string encode_hex(const IntTensor& t) {
  const int width = hex_word_bits(t.type);
  const int digits = width / 4;
  const uint64_t mask = width >= 64 ? ~uint64_t{0} : (uint64_t{1} << width) - 1;
  static const char* const kHex = "0123456789abcdef";
  std::string out;
  out.reserve(t.data.size() * static_cast<size_t>(digits + 1));
  for (int64_t v : t.data) {
    const uint64_t u = static_cast<uint64_t>(v) & mask;
    for (int d = digits - 1; d >= 0; --d) out.push_back(kHex[(u >> (4 * d)) & 15]);
    out.push_back('\n');
  }
  return out;
}

std::string encode_bin(const IntTensor& t) {
  const Storage s = storage_of(t.type);
  std::string out;
  out.reserve(t.data.size() * static_cast<size_t>(s.bytes));
  for (int64_t v : t.data) {
    const auto u = static_cast<uint64_t>(v);
    for (int b = 0; b < s.bytes; ++b) out.push_back(static_cast<char>((u >> (8 * b)) & 0xFF));
  }
  return out;
}

std::string encode_csv(const IntTensor& t) {
  const int64_t row = t.rank() == 0 ? 1 : t.shape.back();
  std::string out;
  out.reserve(t.data.size() * 5);
  for (size_t i = 0; i < t.data.size(); ++i) {
    out += std::to_string(t.data[i]);
    out.push_back(row > 0 && (static_cast<int64_t>(i) + 1) % row == 0 ? '\n' : ',');
  }
  return out;
}

namespace {

std::string c_literal(int64_t v, const Storage& s) {
  if (s.bytes == 8) {
    if (v == INT64_MIN) return "(-INT64_C(9223372036854775807) - 1)";
    return "INT64_C(" + std::to_string(v) + ")";
  }
  if (s.bytes == 4 && !s.is_signed) return std::to_string(v) + "u";
  if (s.bytes == 4 && v == INT32_MIN) return "(-2147483647 - 1)";
  return std::to_string(v);
}

}  // namespace

std::string encode_c_header(const IntTensor& t, const std::string& ident, const std::string& comment) {
  std::string upper = ident;
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  const Storage s = storage_of(t.type);
  std::ostringstream o;
  o << "/* " << comment << " */\n";
  o << "#ifndef QV_VECTORS_" << upper << "_H\n#define QV_VECTORS_" << upper << "_H\n\n#include <stdint.h>\n\n";
  o << "#define " << upper << "_RANK " << t.rank() << "\n";
  for (size_t i = 0; i < t.rank(); ++i) o << "#define " << upper << "_DIM" << i << " " << t.shape[i] << "\n";
  o << "#define " << upper << "_SIZE " << t.numel() << "\n\n";
  o << "static const " << s.name() << "_t " << ident << "[" << std::max<int64_t>(t.numel(), 1) << "] = {";
  for (size_t i = 0; i < t.data.size(); ++i) {
    o << (i % 16 == 0 ? "\n  " : " ") << c_literal(t.data[i], s) << ",";
  }
  if (t.data.empty()) o << "\n  0,";
  o << "\n};\n\n#endif\n";
  return o.str();
}

std::string encode(Format f, const IntTensor& t, const std::string& ident, const std::string& comment) {
  switch (f) {
    case Format::npy: return encode_npy(t);
    case Format::hex: return encode_hex(t);
    case Format::bin: return encode_bin(t);
    case Format::csv: return encode_csv(t);
    case Format::h: return encode_c_header(t, ident, comment);
  }
  return {};
}

std::string c_identifier(std::string_view name) {
  std::string s;
  for (char ch : name) s.push_back(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' ? ch : '_');
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) s = "v" + s;
  return s;
}

std::string file_component(std::string_view name) {
  std::string s;
  for (char ch : name)
    s.push_back(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '-' ? ch : '_');
  if (s.empty() || s[0] == '.') s = "_" + s;
  return s;
}

}  // namespace qv::vectors
