#include "reference/add_requant.h"

#include <stdexcept>
#include <string>

#include "reference/numeric.h"
#include "reference/parallel.h"
#include "reference/requant.h"

namespace qv::reference {

IntTensor add_requant(const AddRequantOp& op, const std::vector<const IntTensor*>& inputs, IntType out_type,
                      const ReferenceOptions& options) {
  if (inputs.empty() || inputs.size() != op.branches.size())
    throw std::invalid_argument("add_requant has " + std::to_string(op.branches.size()) + " branches and " +
                                std::to_string(inputs.size()) + " inputs");
  const IntTensor& first = *inputs[0];
  if (first.rank() < 2) throw std::invalid_argument("add_requant inputs need a channel axis");
  for (const IntTensor* t : inputs)
    if (t->shape != first.shape) throw std::invalid_argument("add_requant shapes differ: " + to_string(t->shape) + " vs " + to_string(first.shape));
  const int64_t N = first.dim(0), C = first.dim(1), inner = first.numel() / std::max<int64_t>(N * C, 1);
  std::vector<PreparedRequant> branches;
  for (const Requant& rq : op.branches) {
    if (rq.channels() != static_cast<size_t>(C)) throw std::invalid_argument("add_requant branch channels differ from the input's");
    branches.emplace_back(rq);
  }
  IntTensor out(first.shape, out_type, first.layout);
  parallel_for(N * C, options.threads, [&](int64_t nc) {
    const size_t channel = static_cast<size_t>(nc % C);
    for (int64_t i = nc * inner; i < (nc + 1) * inner; ++i) {
      __int128 sum = 0;  // each term is an int64: no overflow for fewer than 2^64 branches
      for (size_t b = 0; b < branches.size(); ++b) sum += branches[b](channel, inputs[b]->data[static_cast<size_t>(i)]);
      out.data[static_cast<size_t>(i)] = clamp_to(sum, out_type);
    }
  });
  return out;
}

}  // namespace qv::reference
