#include "reference/add_saturating.h"

#include <stdexcept>

#include "reference/numeric.h"

namespace qv::reference {

IntTensor add_saturating(const IntTensor& a, const IntTensor& b, IntType out_type, const ReferenceOptions&) {
  if (a.shape != b.shape) throw std::invalid_argument("add_saturating shapes differ: " + to_string(a.shape) + " vs " + to_string(b.shape));
  IntTensor out(a.shape, out_type, a.layout);
  for (size_t i = 0; i < a.data.size(); ++i) out.data[i] = clamp_to(static_cast<__int128>(a.data[i]) + b.data[i], out_type);
  return out;
}

}  // namespace qv::reference
