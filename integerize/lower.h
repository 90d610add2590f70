// Lowering: scale propagation from a quantized graph to the integer network (IR), exactly.
//
// Walks the graph keeping, for every value, what the integers computed so far mean in the real domain:
//   quantized  real = q * scale[c] + offset[c]        (an activation quantizer's output, a pool of it)
//   affine     real = alpha[c] * acc + delta[c]       (a conv/linear accumulator, after folded BN)
//   sum        real = sum_i (q_i * s_i + z_i)         (a residual add of quantized operands)
// Each activation quantizer then becomes one Requant (or add) node with exact rational constants:
// the quantizer's rounding applied once to the exact pre-activation value, as the fake-quant network
// defines it. Offsets fold into delta, per-channel input scales fold through depthwise convs, BN folds
// into alpha and delta, the float mean pool becomes an exact window sum, Brevitas' TruncAvgPool a sum
// and shift. Nothing is approximated: what cannot be represented exactly is refused (IntegerizeError).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "integerize/qgraph.h"
#include "ir/error.h"
#include "ir/network.h"

namespace qv::integerize {

// A network the passes cannot integerize exactly; where() names the layer.
class IntegerizeError : public InputError {
 public:
  IntegerizeError(const std::string& network, const std::string& layer, const std::string& what)
      : InputError(network, layer, what) {}
};

// How the integers of one IR tensor map to reals.
struct Grid {
  Channels scale, offset;
};

// The IR nodes that compute one quantized value from the quantized values before it: what the
// harness re-evaluates on the float network's own inputs to tell a local difference from one that
// propagated.
struct Segment {
  std::string output;               // the IR node (= graph node) whose tensor is quantized
  std::vector<std::string> inputs;  // IR nodes of the quantized values it reads
  std::vector<std::string> nodes;   // IR nodes in order, ending with `output`
};

struct Lowered {
  Network network;
  std::map<std::string, Grid> grids;  // per quantized IR node
  std::vector<Segment> segments;
  std::string input_quantizer;         // the graph act node that quantizes the real input
  QAct input_act;                      // its grid: the harness quantizes the real input with it
  // The output: logits = alpha[c] * acc + delta[c] of the IR output (a linear accumulator), or the
  // Hadamard projection, whose real logits are a positive multiple of the integers (argmax only).
  enum class OutputKind { affine, hadamard, quantized } output_kind = OutputKind::quantized;
  Channels output_alpha, output_delta;
};

Lowered lower(const QGraph& g);

}  // namespace qv::integerize
