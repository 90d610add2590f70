#include "integer/tensor_alloc.h"

#include <sys/mman.h>

namespace qv::integer {

IntTensor new_tensor(const Shape& shape, IntType type, const char* layout, std::vector<int64_t>* recycled) {
  IntTensor t;
  t.shape = shape;
  t.type = type;
  t.layout = layout;
  const size_t n = static_cast<size_t>(element_count(shape));
  if (recycled != nullptr && recycled->size() == n) {
    t.data = std::move(*recycled);
    return t;
  }
  t.data.reserve(n);
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(t.data.data()), end = begin + n * sizeof(int64_t);
  const uintptr_t aligned = (begin + kHuge - 1) & ~(kHuge - 1);
  if (end > aligned + kHuge) madvise(reinterpret_cast<void*>(aligned), (end - aligned) & ~(kHuge - 1), MADV_HUGEPAGE);  // a hint; failure is harmless
  t.data.resize(n);
  return t;
}

}  // namespace qv::integer
