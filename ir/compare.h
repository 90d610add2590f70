// Deep, exact comparison of two networks, for round-trip tests and for tools that check that a
// conversion changed nothing it should not have.
//
// Every field counts: names, inputs, shapes, types, layouts, tensor data, every op parameter and every
// requantization constant. Rationals compare by value; scales (doubles) compare bit for bit, so -0.0
// and 0.0 differ and a NaN equals the same NaN, as the file form must reproduce them.
#pragma once

#include <string>

#include "ir/network.h"

namespace qv {

// True when a and b are identical. Otherwise, when first_difference is not null, it receives the
// first difference found, e.g. "nodes[3] 'conv1': weight.data[17]: 5 vs -5".
bool same_network(const Network& a, const Network& b, std::string* first_difference = nullptr);

}  // namespace qv
