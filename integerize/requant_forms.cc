#include "integerize/requant_forms.h"

#include <stdexcept>

#include "integerize/lower.h"
#include "ir/value_range.h"

namespace qv::integerize {

RequantFormChoice parse_requant_form(const std::string& s) {
  RequantFormChoice c;
  c.name = s;
  if (s == "exact") return c;
  if (s == "thresholds") return c.form = RequantForm::thresholds, c;
  if (s == "tflite-single" || s == "tflite-double") {
    c.form = RequantForm::fixed_point;
    c.double_rounding = s == "tflite-double";
    return c;
  }
  if (s.rfind("mulshift", 0) == 0) {
    c.form = RequantForm::mul_add_shift;
    if (s.size() > 8) {
      if (s[8] != ':') throw std::invalid_argument("expected mulshift or mulshift:D");
      size_t used = 0;
      int d = -1;
      try {
        d = std::stoi(s.substr(9), &used);
      } catch (const std::exception&) {
      }
      if (used != s.size() - 9 || d < 0 || d > 62) throw std::invalid_argument("mulshift:D needs an integer D in [0, 62]");
      c.mulshift_bits = d;
    }
    return c;
  }
  throw std::invalid_argument("unknown requant form '" + s + "' (expected exact, thresholds, mulshift[:D], tflite-single or tflite-double)");
}

std::vector<FormBound> apply_requant_form(Network& net, const RequantFormChoice& choice) {
  std::vector<FormBound> bounds;
  if (choice.form == RequantForm::exact) return bounds;
  for (Node& n : net.nodes) {
    auto* op = std::get_if<RequantOp>(&n.op);
    if (!op || op->requant.kind() != RequantForm::exact) continue;
    const Node* in = net.find(n.inputs.at(0));
    const auto [lo_big, hi_big] = type_range(in->output.type);
    const auto lo = static_cast<int64_t>(lo_big), hi = static_cast<int64_t>(hi_big);
    try {
      Conversion conv;
      switch (choice.form) {
        case RequantForm::thresholds: conv = to_thresholds(op->requant, lo, hi); break;
        case RequantForm::mul_add_shift: conv = to_mul_add_shift(op->requant, choice.mulshift_bits, lo, hi); break;
        case RequantForm::fixed_point: conv = to_fixed_point(op->requant, choice.double_rounding, lo, hi); break;
        case RequantForm::exact: break;
      }
      op->requant = conv.requant;
      bounds.push_back(FormBound{n.name, conv.max_lsb_error});
    } catch (const std::invalid_argument& e) {
      throw IntegerizeError(net.name, n.name, "cannot be written in the " + choice.name + " form: " + e.what());
    }
  }
  return bounds;
}

}  // namespace qv::integerize
