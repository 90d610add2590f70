#include "integer/requant_table.h"

#include <algorithm>
#include <cstdlib>
#include <numeric>

namespace qv::integer {

namespace {

// Marks the channels whose entries are exactly at_zero + slope * x over the whole table, slope inside
// int32 and at_zero inside int64 (the kernels multiply 32-bit inputs by the slope in wrapping int32 or
// int64 arithmetic, exact because the sums they form are proven to fit).
template <class Entry>
void find_affine(RequantTableOf<Entry>& t) {
  const size_t channels = t.values > 0 ? t.y.size() / static_cast<size_t>(t.values) : 0;
  t.affine.assign(channels, 0), t.slope.assign(channels, 0), t.at_zero.assign(channels, 0);
  for (size_t c = 0; c < channels; ++c) {
    const Entry* row = t.channel(c);
    const __int128 slope = t.values > 1 ? static_cast<__int128>(row[1]) - row[0] : 0;
    const __int128 at_zero = static_cast<__int128>(row[0]) - slope * t.in_lo;
    if (slope < INT32_MIN || slope > INT32_MAX || at_zero < INT64_MIN || at_zero > INT64_MAX) continue;
    bool ok = true;
    for (int64_t v = 0; v < t.values && ok; ++v) ok = at_zero + slope * (t.in_lo + v) == row[v];
    if (!ok) continue;
    t.affine[c] = 1, t.slope[c] = static_cast<int64_t>(slope), t.at_zero[c] = static_cast<int64_t>(at_zero);
  }
}

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
  find_affine(*t);
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
