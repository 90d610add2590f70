// Lowering's last pass: every exact Requant of the network rewritten in the form the hardware
// implements (--requant exact|thresholds|mulshift[:D]|tflite-single|tflite-double), each with the
// proven bound of its distance from the exact form (0 for thresholds).
#pragma once

#include <string>
#include <vector>

#include "ir/network.h"

namespace qv::integerize {

struct RequantFormChoice {
  RequantForm form = RequantForm::exact;
  int mulshift_bits = 24;
  bool double_rounding = false;  // fixed_point: gemmlowp's two roundings
  std::string name = "exact";    // as the user spelled it
};
// Parses "exact", "thresholds", "mulshift", "mulshift:D", "tflite-single", "tflite-double"; throws
// std::invalid_argument naming what is accepted.
RequantFormChoice parse_requant_form(const std::string& s);

struct FormBound {
  std::string node;
  int64_t max_lsb_error = 0;
};

// Converts every Requant node holding an exact requant (add branches with integer factors stay exact:
// they are multiplications by integers in every form). Throws IntegerizeError naming the node when the
// form cannot represent it (e.g. a fixed-point accumulator outside int32).
std::vector<FormBound> apply_requant_form(Network& net, const RequantFormChoice& choice);

}  // namespace qv::integerize
