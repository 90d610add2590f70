#include "integer/add_requant.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "integer/tensor_alloc.h"

namespace qv::integer {

IntTensor run_add_requant(const AddRequantLayer& L, const std::vector<const IntTensor*>& inputs, IntType out_type, ThreadPool& pool,
                          std::vector<int64_t>* recycled) {
  if (inputs.empty() || inputs.size() != L.branches.size())
    throw std::invalid_argument("add_requant has " + std::to_string(L.branches.size()) + " branches and " +
                                std::to_string(inputs.size()) + " inputs");
  const IntTensor& first = *inputs[0];
  if (first.rank() < 2) throw std::invalid_argument("add_requant inputs need a channel axis");
  for (const IntTensor* t : inputs)
    if (t->shape != first.shape) throw std::invalid_argument("add_requant shapes differ: " + qv::to_string(t->shape) + " vs " + qv::to_string(first.shape));
  const int64_t N = first.dim(0), C = first.dim(1), inner = first.numel() / std::max<int64_t>(N * C, 1);
  for (const auto& b : L.branches)
    if (b->channels() != static_cast<size_t>(C)) throw std::invalid_argument("add_requant branch channels differ from the input's");
  IntTensor out = new_tensor(first.shape, out_type, first.layout.c_str(), recycled);
  const int64_t lo = out_type.min(), hi = out_type.max();
  pool.run(N * C, [&](int64_t nc) {
    const size_t channel = static_cast<size_t>(nc % C);
    thread_local std::vector<int64_t> term;
    thread_local std::vector<__int128> sum;
    term.resize(static_cast<size_t>(inner));
    sum.assign(static_cast<size_t>(inner), 0);
    for (size_t b = 0; b < L.branches.size(); ++b) {
      L.branches[b]->apply(channel, inputs[b]->data.data() + nc * inner, term.data(), inner);
      for (int64_t i = 0; i < inner; ++i) sum[static_cast<size_t>(i)] += term[static_cast<size_t>(i)];
    }
    int64_t* y = out.data.data() + nc * inner;
    for (int64_t i = 0; i < inner; ++i) {
      const __int128 v = sum[static_cast<size_t>(i)];
      y[i] = v < lo ? lo : v > hi ? hi : static_cast<int64_t>(v);
    }
  });
  return out;
}

}  // namespace qv::integer
