// add_requant: y = clamp(sum_i requant_i(x_i)) to the output type (QuantLab PACTIntegerAdd), each branch
// through its own FusedRequant (planned from the declared type of the branch's input), the sum in
// __int128 as in the reference (each term is an int64), one (n, c) run at a time on the pool.
#pragma once

#include <memory>
#include <vector>

#include "integer/requant_stage.h"
#include "integer/requant_table.h"
#include "integer/thread_pool.h"
#include "ir/tensor.h"

namespace qv::integer {

struct AddRequantLayer {
  std::vector<std::unique_ptr<FusedRequant>> branches;
  std::vector<std::unique_ptr<RequantTable>> tables;  // per branch, where its input type is small (output mode)
  std::vector<std::unique_ptr<RequantTable64>> tables64;  // per branch without an int32 table: int64 entries, or nullptr
  std::vector<std::unique_ptr<BytePlanes16>> planes16;    // per branch: its int32 table as byte planes where it fits int16, or nullptr
  // Where every branch has a table (int32 or int64 entries): the sums' proven range, the sum of the
  // branches' smallest and of their largest entries, clipped to the output type (the add's clamp).
  bool sums_bounded = false;
  int64_t sum_lo = 0, sum_hi = 0;
};

IntTensor run_add_requant(const AddRequantLayer& layer, const std::vector<const IntTensor*>& inputs, IntType out_type,
                          ThreadPool& pool, std::vector<int64_t>* recycled = nullptr);

}  // namespace qv::integer
