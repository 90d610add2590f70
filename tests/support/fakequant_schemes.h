// The per-kind quantizer settings the fake-quant tests use: 8-bit first layer, 4-bit (brevitas) or
// 8-bit (pact, tqt) elsewhere, unsigned activations and signed identity quantizers.
#pragma once

#include "fakequant/models.h"

namespace qv::fakequant::testing {

inline ModelQuant scheme(QuantKind k) {
  ModelQuant q;
  const int bits = k == QuantKind::brevitas ? 4 : 8;
  q.first_conv = WeightQuant{k, 8, true};
  q.conv = q.depthwise = WeightQuant{k, bits, true};
  q.linear = WeightQuant{k, bits, false};
  q.act = ActQuant{k, bits, false, Rounding::half_even, 6.0, false};
  q.signed_act = ActQuant{k, bits, true, Rounding::half_even, 6.0, false};
  return q;
}

}  // namespace qv::fakequant::testing
