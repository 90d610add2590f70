#include "reference/flatten.h"

#include "reference/shapes.h"

namespace qv::reference {

IntTensor flatten(const IntTensor& input, IntType out_type, const ReferenceOptions&) {
  IntTensor out;
  out.shape = flatten_output_shape(input.shape);
  out.type = out_type;
  out.layout = "NC";
  out.data = input.data;
  return out;
}

}  // namespace qv::reference
