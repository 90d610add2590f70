#include "fakequant/data/idx.h"

#include <zlib.h>

#include "ir/error.h"

namespace qv::data {

IdxArray read_idx(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files too
  if (!f) throw InputError(path, "", "cannot open file");
  std::string bytes;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) bytes.append(buf, static_cast<size_t>(n));
  const bool failed = n < 0;
  gzclose(f);
  if (failed) throw InputError(path, "", "corrupt gzip stream");
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0)
    throw InputError(path, "header", "not an IDX file (expected two zero bytes, a type code and a rank)");
  if (static_cast<unsigned char>(bytes[2]) != 0x08)
    throw InputError(path, "header", "unsupported IDX element type 0x" + std::to_string(static_cast<unsigned char>(bytes[2])) +
                                         " (expected 0x08, unsigned byte)");
  const int rank = static_cast<unsigned char>(bytes[3]);
  if (bytes.size() < 4 + 4 * static_cast<size_t>(rank)) throw InputError(path, "header", "file ends inside the dimensions");
  IdxArray a;
  size_t count = 1;
  for (int d = 0; d < rank; ++d) {
    uint32_t v = 0;
    for (int b = 0; b < 4; ++b) v = (v << 8) | static_cast<unsigned char>(bytes[4 + 4 * static_cast<size_t>(d) + static_cast<size_t>(b)]);
    a.shape.push_back(v);
    count *= v;
  }
  const size_t at = 4 + 4 * static_cast<size_t>(rank);
  if (bytes.size() - at != count)
    throw InputError(path, "data", "expected " + std::to_string(count) + " bytes of data, found " + std::to_string(bytes.size() - at));
  a.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(at), bytes.end());
  return a;
}

}  // namespace qv::data
