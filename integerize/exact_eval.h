// The exact semantics of a quantized graph: the fake-quant network evaluated in exact rational
// arithmetic with its float constants. This is what the integer network must reproduce bit for bit;
// it is written the obvious way (one loop nest per op, no integer tricks) so that it can serve as the
// oracle of the lowering's property tests. Slow: for small graphs and single layers.
#pragma once

#include <optional>
#include <vector>

#include "integerize/qgraph.h"

namespace qv::integerize {

struct ExactValue {
  Shape shape;
  std::vector<Rational> real;                 // the real tensor
  std::optional<std::vector<int64_t>> grid;   // the integers, for values on a quantizer's grid
};

// `input` holds the real input values (row-major NCHW). Returns one value per node.
std::vector<ExactValue> evaluate_exact(const QGraph& g, const std::vector<Rational>& input);

}  // namespace qv::integerize
