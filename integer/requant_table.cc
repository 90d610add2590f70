#include "integer/requant_table.h"

#include <algorithm>
#include <cstdlib>
#include <numeric>

namespace qv::integer {

std::unique_ptr<RequantTable> tabulate(const FusedRequant& rq, IntType in_type) {
  const int64_t lo = in_type.min(), hi = in_type.max();
  if (hi - lo + 1 > RequantTable::kMaxValues || static_cast<int64_t>(rq.channels()) * (hi - lo + 1) > RequantTable::kMaxEntries)
    return nullptr;
  auto t = std::make_unique<RequantTable>();
  t->in_lo = lo, t->values = hi - lo + 1;
  t->y.resize(static_cast<size_t>(static_cast<int64_t>(rq.channels()) * t->values));
  std::vector<int64_t> x(static_cast<size_t>(t->values)), y(x.size());
  std::iota(x.begin(), x.end(), lo);
  for (size_t c = 0; c < rq.channels(); ++c) {
    rq.apply(c, x.data(), y.data(), t->values);
    for (int64_t v = 0; v < t->values; ++v) {
      // The outputs a clamp range wider than int32 allows need not all occur: what counts is the values.
      if (y[static_cast<size_t>(v)] < INT32_MIN || y[static_cast<size_t>(v)] > INT32_MAX) return nullptr;
      t->y[static_cast<size_t>(static_cast<int64_t>(c) * t->values + v)] = static_cast<int32_t>(y[static_cast<size_t>(v)]);
      t->max_abs = std::max(t->max_abs, std::abs(y[static_cast<size_t>(v)]));
    }
  }
  return t;
}

std::unique_ptr<RequantTable64> tabulate64(const FusedRequant& rq, IntType in_type) {
  const int64_t lo = in_type.min(), hi = in_type.max();
  if (hi - lo + 1 > RequantTable::kMaxValues || static_cast<int64_t>(rq.channels()) * (hi - lo + 1) > RequantTable::kMaxEntries) return nullptr;
  auto t = std::make_unique<RequantTable64>();
  t->in_lo = lo, t->values = hi - lo + 1;
  t->y.resize(static_cast<size_t>(static_cast<int64_t>(rq.channels()) * t->values));
  std::vector<int64_t> x(static_cast<size_t>(t->values));
  std::iota(x.begin(), x.end(), lo);
  constexpr int64_t kLimit = int64_t{1} << 60;
  for (size_t c = 0; c < rq.channels(); ++c) {
    int64_t* row = t->y.data() + static_cast<int64_t>(c) * t->values;
    rq.apply(c, x.data(), row, t->values);
    for (int64_t v = 0; v < t->values; ++v) {
      if (row[v] <= -kLimit || row[v] >= kLimit) return nullptr;
      t->max_abs = std::max(t->max_abs, std::abs(row[v]));
    }
  }
  return t;
}

}  // namespace qv::integer
