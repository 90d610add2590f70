// The file formats of golden vectors (docs/vectors.md states each byte layout):
//   npy  NumPy .npy 1.0 (vectors/npy.h), the narrowest standard dtype holding the declared type
//   hex  Verilog $readmemh: one word per line, ceil(bits/4) lowercase hex digits, two's complement
//        in that many bits, no packing, no comments, '\n' line ends
//   bin  raw little-endian, the same storage as the .npy (int8/16/32/64, uint8/16/32 for unsigned)
//   csv  decimal integers separated by ',', one line per index of the leading dimensions (a line holds
//        the last dimension), '\n' line ends, no header line
//   h    a C header: shape macros and `static const <storage>_t name[SIZE] = {...};`
// Element order is always row-major (C order) in the tensor's stated layout.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ir/tensor.h"

namespace qv::vectors {

enum class Format { npy, hex, bin, csv, h };

std::string_view to_string(Format f);  // also the file extension
// "npy,hex,bin,csv,h" (any order, no duplicates); the result is in canonical order npy hex bin csv h.
// Throws std::invalid_argument naming the bad element.
std::vector<Format> parse_formats(const std::string& s);

// The storage of a declared type in .npy/.bin/.h: bytes and signedness ("int8", "uint16", "int64").
struct Storage {
  int bytes = 1;
  bool is_signed = true;
  std::string name() const { return (is_signed ? "int" : "uint") + std::to_string(8 * bytes); }
};
Storage storage_of(IntType t);

// The $readmemh word width: bits rounded up to a multiple of 4.
inline int hex_word_bits(IntType t) { return (t.bits + 3) / 4 * 4; }

// Reorders a tensor into `layout`: "NHWC" from NCHW, "OHWI" from OIHW; other layouts and equal ones
// are returned unchanged. Throws std::invalid_argument for an impossible request.
IntTensor to_layout(const IntTensor& t, const std::string& layout);

std::string encode_hex(const IntTensor& t);
std::string encode_bin(const IntTensor& t);
std::string encode_csv(const IntTensor& t);
// `ident` must be a C identifier (c_identifier()); the macros are its upper-case form + _RANK, _DIMk, _SIZE.
std::string encode_c_header(const IntTensor& t, const std::string& ident, const std::string& comment);
std::string encode(Format f, const IntTensor& t, const std::string& ident, const std::string& comment);

// A C identifier from any name: every character outside [A-Za-z0-9_] becomes '_', a leading digit
// gets a 'v' prefix.
std::string c_identifier(std::string_view name);
// A file-name component from a node name: every character outside [A-Za-z0-9._-] becomes '_'.
std::string file_component(std::string_view name);

}  // namespace qv::vectors
