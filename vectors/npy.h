// NumPy .npy files (format versions 1.0, 2.0 and 3.0) of integer arrays, read and written by the
// format's own rules: magic "\x93NUMPY", version, little-endian header length, a Python-literal
// header dict {'descr', 'fortran_order', 'shape'} padded with spaces to a multiple of 64 bytes and
// ending in '\n', then the raw data in C order.
#pragma once

#include <string>

#include "ir/tensor.h"

namespace qv {

// Reads integer dtypes |i1 <i2 <i4 <i8 |u1 <u2 <u4 (and big-endian '>' variants), C order only.
// The tensor's type is the dtype's (int8, uint16...); layout is left empty for the caller.
// Throws InputError naming the file and what is wrong (magic, header key, dtype, size).
IntTensor read_npy(const std::string& path);

// Writes `t` with the narrowest standard dtype holding t.type, version 1.0, little-endian.
// Deterministic: the same tensor gives the same bytes.
std::string encode_npy(const IntTensor& t);
void write_npy(const std::string& path, const IntTensor& t);

}  // namespace qv
