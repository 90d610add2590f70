#include "ir/compare.h"

#include <bit>
#include <cstdint>
#include <sstream>

#include "ir/rational.h"

namespace qv {

namespace {

std::string show(int64_t v) { return std::to_string(v); }
std::string show(bool v) { return v ? "true" : "false"; }
std::string show(const std::string& v) { return "'" + v + "'"; }
std::string show(const Rational& v) { return to_string(v); }
std::string show(const IntType& v) { return v.name(); }
std::string show(Rounding v) { return std::string(to_string(v)); }
std::string show(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v << " (bits 0x" << std::hex << std::bit_cast<uint64_t>(v) << ")";
  return s.str();
}

bool equal(double a, double b) { return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b); }
template <class T>
bool equal(const T& a, const T& b) {
  return a == b;
}

// Walks two networks side by side and keeps the first difference. Each check returns false once a
// difference is known, so callers stop at the first one.
class Differ {
 public:
  bool found() const { return !difference_.empty(); }
  const std::string& difference() const { return difference_; }

  template <class T>
  bool value(const std::string& where, const T& a, const T& b) {
    if (found()) return false;
    if (equal(a, b)) return true;
    difference_ = where + ": " + show(a) + " vs " + show(b);
    return false;
  }
  bool note(const std::string& where, const std::string& what) {
    if (!found()) difference_ = where + ": " + what;
    return false;
  }

  template <class T>
  bool list(const std::string& where, const std::vector<T>& a, const std::vector<T>& b) {
    if (found()) return false;
    if (a.size() != b.size())
      return note(where, std::to_string(a.size()) + " vs " + std::to_string(b.size()) + " entries");
    for (size_t i = 0; i < a.size(); ++i)
      if (!value(where + "[" + std::to_string(i) + "]", a[i], b[i])) return false;
    return true;
  }

  bool shape(const std::string& where, const Shape& a, const Shape& b) {
    if (a == b || found()) return !found();
    return note(where, to_string(a) + " vs " + to_string(b));
  }

  bool tensor(const std::string& where, const IntTensor& a, const IntTensor& b) {
    return shape(where + ".shape", a.shape, b.shape) && value(where + ".type", a.type, b.type) &&
           value(where + ".layout", a.layout, b.layout) && list(where + ".scale", a.scale, b.scale) &&
           list(where + ".data", a.data, b.data);
  }

  bool optional_tensor(const std::string& where, const std::optional<IntTensor>& a, const std::optional<IntTensor>& b) {
    if (a.has_value() != b.has_value()) return note(where, std::string(a ? "present" : "absent") + " vs " + (b ? "present" : "absent"));
    return !a || tensor(where, *a, *b);
  }

  bool requant(const std::string& where, const Requant& a, const Requant& b) {
    if (!value(where + ".lo", a.lo, b.lo) || !value(where + ".hi", a.hi, b.hi)) return false;
    if (a.kind() != b.kind())
      return note(where + ".form", std::string(to_string(a.kind())) + " vs " + std::string(to_string(b.kind())));
    return std::visit(
        [&](const auto& fa) {
          using F = std::decay_t<decltype(fa)>;
          const F& fb = std::get<F>(b.form);
          if constexpr (std::is_same_v<F, ExactRequant>) {
            return value(where + ".rounding", fa.rounding, fb.rounding) && list(where + ".alpha", fa.alpha, fb.alpha) &&
                   list(where + ".delta", fa.delta, fb.delta);
          } else if constexpr (std::is_same_v<F, MulAddShiftRequant>) {
            return list(where + ".mul", fa.mul, fb.mul) && list(where + ".add", fa.add, fb.add) &&
                   value<int64_t>(where + ".shift", fa.shift, fb.shift);
          } else if constexpr (std::is_same_v<F, ThresholdRequant>) {
            const std::vector<int64_t> sa(fa.sign.begin(), fa.sign.end()), sb(fb.sign.begin(), fb.sign.end());
            if (!list(where + ".sign", sa, sb)) return false;
            if (fa.thresholds.size() != fb.thresholds.size())
              return note(where + ".thresholds", std::to_string(fa.thresholds.size()) + " vs " +
                                                     std::to_string(fb.thresholds.size()) + " channels");
            for (size_t o = 0; o < fa.thresholds.size(); ++o)
              if (!list(where + ".thresholds[" + std::to_string(o) + "]", fa.thresholds[o], fb.thresholds[o])) return false;
            return true;
          } else {
            const std::vector<int64_t> ma(fa.multiplier.begin(), fa.multiplier.end()), mb(fb.multiplier.begin(), fb.multiplier.end());
            const std::vector<int64_t> sa(fa.shift.begin(), fa.shift.end()), sb(fb.shift.begin(), fb.shift.end());
            return list(where + ".bias", fa.bias, fb.bias) && list(where + ".multiplier", ma, mb) &&
                   list(where + ".shift", sa, sb) && value(where + ".zero_point", fa.zero_point, fb.zero_point) &&
                   value(where + ".double_rounding", fa.double_rounding, fb.double_rounding);
          }
        },
        a.form);
  }

  bool window(const std::string& where, const std::vector<int64_t>& a, const std::vector<int64_t>& b) { return list(where, a, b); }

  bool op(const std::string& at, const Op& a, const Op& b) {
    return std::visit(
        [&](const auto& oa) {
          using T = std::decay_t<decltype(oa)>;
          const T& ob = std::get<T>(b);
          if constexpr (std::is_same_v<T, Conv2dOp>) {
            return tensor(at + "weight", oa.weight, ob.weight) && optional_tensor(at + "bias", oa.bias, ob.bias) &&
                   window(at + "stride", {oa.stride_h, oa.stride_w}, {ob.stride_h, ob.stride_w}) &&
                   window(at + "padding", {oa.pad_top, oa.pad_bottom, oa.pad_left, oa.pad_right},
                          {ob.pad_top, ob.pad_bottom, ob.pad_left, ob.pad_right}) &&
                   value(at + "pad_value", oa.pad_value, ob.pad_value) &&
                   window(at + "dilation", {oa.dilation_h, oa.dilation_w}, {ob.dilation_h, ob.dilation_w}) &&
                   value<int64_t>(at + "groups", oa.groups, ob.groups);
          } else if constexpr (std::is_same_v<T, LinearOp>) {
            return tensor(at + "weight", oa.weight, ob.weight) && optional_tensor(at + "bias", oa.bias, ob.bias);
          } else if constexpr (std::is_same_v<T, MaxPool2dOp>) {
            return window(at + "kernel", {oa.kernel_h, oa.kernel_w}, {ob.kernel_h, ob.kernel_w}) &&
                   window(at + "stride", {oa.stride_h, oa.stride_w}, {ob.stride_h, ob.stride_w}) &&
                   window(at + "padding", {oa.pad_top, oa.pad_bottom, oa.pad_left, oa.pad_right},
                          {ob.pad_top, ob.pad_bottom, ob.pad_left, ob.pad_right});
          } else if constexpr (std::is_same_v<T, AvgPool2dOp>) {
            return window(at + "kernel", {oa.kernel_h, oa.kernel_w}, {ob.kernel_h, ob.kernel_w}) &&
                   window(at + "stride", {oa.stride_h, oa.stride_w}, {ob.stride_h, ob.stride_w}) &&
                   value<int64_t>(at + "shift", oa.shift, ob.shift) && value(at + "rounding", oa.rounding, ob.rounding);
          } else if constexpr (std::is_same_v<T, AddRequantOp>) {
            if (oa.branches.size() != ob.branches.size())
              return note(at + "branches", std::to_string(oa.branches.size()) + " vs " + std::to_string(ob.branches.size()) + " branches");
            for (size_t k = 0; k < oa.branches.size(); ++k)
              if (!requant(at + "branches[" + std::to_string(k) + "]", oa.branches[k], ob.branches[k])) return false;
            return true;
          } else if constexpr (std::is_same_v<T, HadamardOp>) {
            return value(at + "out_features", oa.out_features, ob.out_features) && value(at + "negate", oa.negate, ob.negate);
          } else if constexpr (std::is_same_v<T, RequantOp>) {
            return requant(at + "requant", oa.requant, ob.requant);
          } else {
            return true;  // input, add_saturating, flatten: no parameters
          }
        },
        a);
  }

  bool node(const std::string& where, const Node& a, const Node& b) {
    const std::string at = where + ": ";
    if (!value(at + "name", a.name, b.name) || !list(at + "inputs", a.inputs, b.inputs)) return false;
    if (a.kind() != b.kind()) return note(at + "op", std::string(to_string(a.kind())) + " vs " + std::string(to_string(b.kind())));
    return shape(at + "output.shape", a.output.shape, b.output.shape) && value(at + "output.type", a.output.type, b.output.type) &&
           list(at + "output.scale", a.output.scale, b.output.scale) && op(at, a.op, b.op);
  }

 private:
  std::string difference_;
};

}  // namespace

bool same_network(const Network& a, const Network& b, std::string* first_difference) {
  Differ d;
  if (d.value("name", a.name, b.name) && d.value("output", a.output, b.output)) {
    if (a.metadata != b.metadata) {
      std::string key;
      for (const auto& [k, v] : a.metadata) {
        auto it = b.metadata.find(k);
        if (it == b.metadata.end() || it->second != v) { key = k; break; }
      }
      if (key.empty())
        for (const auto& [k, v] : b.metadata)
          if (!a.metadata.count(k)) { key = k; break; }
      const auto in = [&](const Network& n) { auto it = n.metadata.find(key); return it == n.metadata.end() ? std::string("absent") : show(it->second); };
      d.note("metadata['" + key + "']", in(a) + " vs " + in(b));
    } else if (a.nodes.size() != b.nodes.size()) {
      d.note("nodes", std::to_string(a.nodes.size()) + " vs " + std::to_string(b.nodes.size()) + " nodes");
    } else {
      for (size_t i = 0; i < a.nodes.size(); ++i)
        if (!d.node("nodes[" + std::to_string(i) + "] '" + a.nodes[i].name + "'", a.nodes[i], b.nodes[i])) break;
    }
  }
  if (first_difference) *first_difference = d.difference();
  return !d.found();
}

}  // namespace qv
