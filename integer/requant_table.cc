#include "integer/requant_table.h"

#include <algorithm>
#include <cstdlib>
#include <numeric>

namespace qv::integer {

namespace {

// Every entry is FusedRequant::apply's exact int64 result; nullptr when one lies outside [min, max].
template <class Entry>
std::unique_ptr<RequantTableOf<Entry>> tabulate_within(const FusedRequant& rq, int64_t lo, int64_t hi, int64_t min, int64_t max) {
  using Table = RequantTableOf<Entry>;
  if (lo > hi || hi - lo + 1 > Table::kMaxValues || static_cast<int64_t>(rq.channels()) * (hi - lo + 1) > Table::kMaxEntries) return nullptr;
  auto t = std::make_unique<Table>();
  t->in_lo = lo, t->values = hi - lo + 1;
  t->y.resize(static_cast<size_t>(static_cast<int64_t>(rq.channels()) * t->values));
  std::vector<int64_t> x(static_cast<size_t>(t->values)), y(x.size());
  std::iota(x.begin(), x.end(), lo);
  for (size_t c = 0; c < rq.channels(); ++c) {
    rq.apply(c, x.data(), y.data(), t->values);
    Entry* row = t->y.data() + static_cast<int64_t>(c) * t->values;
    for (int64_t v = 0; v < t->values; ++v) {
      const int64_t e = y[static_cast<size_t>(v)];
      if (e < min || e > max) return nullptr;
      row[v] = static_cast<Entry>(e);
      t->max_abs = std::max(t->max_abs, std::abs(e));
    }
  }
  return t;
}

}  // namespace

std::unique_ptr<RequantTable> tabulate(const FusedRequant& rq, IntType in_type) {
  return tabulate_range(rq, in_type.min(), in_type.max());
}

std::unique_ptr<RequantTable> tabulate_range(const FusedRequant& rq, int64_t lo, int64_t hi) {
  return tabulate_within<int32_t>(rq, lo, hi, INT32_MIN, INT32_MAX);
}

std::unique_ptr<RequantTable64> tabulate64(const FusedRequant& rq, IntType in_type) {
  constexpr int64_t kLimit = int64_t{1} << 60;
  return tabulate_within<int64_t>(rq, in_type.min(), in_type.max(), -kLimit + 1, kLimit - 1);
}

std::unique_ptr<BytePlanes16> byte_planes16(const RequantTable& t, size_t channels, IntType in_type) {
  if (in_type.bits > 8 || t.max_abs > 32767 || t.in_lo > in_type.min() || t.in_lo + t.values - 1 < in_type.max()) return nullptr;
  auto p = std::make_unique<BytePlanes16>();
  p->bytes.assign(channels * BytePlanes16::kChannelBytes, 0);
  for (size_t c = 0; c < channels; ++c) {
    const int32_t* row = t.channel(c);
    uint8_t* out = p->bytes.data() + static_cast<int64_t>(c) * BytePlanes16::kChannelBytes;
    for (int64_t v = in_type.min(); v <= in_type.max(); ++v) {
      const uint8_t stored = static_cast<uint8_t>(v);  // the packed byte of value v
      const uint16_t entry = static_cast<uint16_t>(static_cast<int16_t>(row[v - t.in_lo]));
      out[stored] = static_cast<uint8_t>(entry & 0xFF);
      out[256 + stored] = static_cast<uint8_t>(entry >> 8);
    }
  }
  return p;
}

}  // namespace qv::integer
