// Validation of a network description, done once when it enters from a file: every field, every
// shape (by the ops' shape inference), every tensor value against its declared type, every scale and
// requantization constant, and the proof that each declared accumulator type holds the worst case.
#pragma once

#include <string>

#include "ir/network.h"

namespace qv {

// Throws InputError(file, "nodes[i] 'name': field", "expected ..., got ...") at the first problem.
void validate_network(const Network& network, const std::string& file);

}  // namespace qv
