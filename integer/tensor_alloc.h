// Output tensors and scratch buffers without needless page faults.
//
// A trace holds every node's tensor as int64 (VGG16 at 224x224: about 220 MB per evaluation), all of it
// freshly allocated and zero-filled by std::vector. With 4 KiB pages that is ~55k page faults per
// evaluation, a third of VGG16's time in the kernel. new_tensor reserves the storage first and asks for
// transparent huge pages (madvise, a hint the kernel may ignore) before the zero fill touches it.
// A caller that evaluates repeatedly can hand the previous trace back (evaluate(plan, inputs, recycled)):
// its storage is reused as is. Scratch buffers (packed images, padded planes) are reused across the
// layers of one evaluation.
#pragma once

#include <cstdint>
#include <vector>

#include "ir/tensor.h"

namespace qv::integer {

// A tensor whose every element the caller will write. `recycled` (may be null): the storage of the same
// node in an earlier trace; taken over when its size matches (no allocation, no zero fill, no fault).
IntTensor new_tensor(const Shape& shape, IntType type, const char* layout, std::vector<int64_t>* recycled = nullptr);

// Grow-only scratch storage; contents are unspecified after grow (callers write every element).
template <class T>
T* scratch(std::vector<T>& buffer, int64_t n) {
  if (buffer.size() < static_cast<size_t>(n)) buffer.resize(static_cast<size_t>(n));
  return buffer.data();
}

}  // namespace qv::integer
