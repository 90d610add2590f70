#include "harness/cross_check.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "ir/rational.h"
#include "reference/evaluator.h"

namespace qv::harness {

namespace {

using integerize::channel;
using integerize::Grid;
using integerize::Segment;

// Channel of flat element i: axis 1 of NCHW, the feature of NC.
int64_t channel_of(const Shape& s, int64_t i) {
  if (s.size() == 4) return (i / (s[2] * s[3])) % s[1];
  return i % s[1];
}

std::vector<int64_t> unflatten(const Shape& s, int64_t i) {
  std::vector<int64_t> idx(s.size());
  for (size_t k = s.size(); k-- > 0;) {
    idx[k] = i % s[k];
    i /= s[k];
  }
  return idx;
}

// The boundary between adjacent integers lo and lo + 1 under rounding r: values beyond it round up.
double boundary_between(int64_t lo, Rounding r) {
  switch (r) {
    case Rounding::floor: return static_cast<double>(lo + 1);
    case Rounding::ceil: return static_cast<double>(lo);
    case Rounding::trunc: return lo + 1 <= 0 ? static_cast<double>(lo) : static_cast<double>(lo + 1);
    default: return static_cast<double>(lo) + 0.5;
  }
}

int64_t clamp_big(const BigInt& v, int64_t lo, int64_t hi) {
  if (v < lo) return lo;
  if (v > hi) return hi;
  return static_cast<int64_t>(v);
}

constexpr Rounding kModes[] = {Rounding::half_even, Rounding::half_up, Rounding::half_down, Rounding::half_away,
                               Rounding::floor, Rounding::ceil, Rounding::trunc};

// What the segment's rounding step needs: the exact requant of its last node and the accumulator
// that feeds it (from the local evaluation), or the input quantizer.
struct RoundingStep {
  const ExactRequant* requant = nullptr;
  int64_t lo = 0, hi = 0;
  const IntTensor* acc = nullptr;
};

std::string conv_window(const Network& sub, const Trace& local, const std::string& conv_name, const std::vector<int64_t>& idx) {
  const Node* n = sub.find(conv_name);
  if (!n) return "";
  std::ostringstream os;
  if (const auto* c = std::get_if<Conv2dOp>(&n->op)) {
    const IntTensor& x = find_entry(local, n->inputs[0])->value;
    const int64_t o = idx[1], oh = idx[2], ow = idx[3];
    const int64_t I = c->weight.dim(1), KH = c->weight.dim(2), KW = c->weight.dim(3), O = c->weight.dim(0);
    const int64_t ci0 = o / (O / c->groups) * I;
    os << "input window (channel, row, col: value * weight):";
    int shown = 0;
    for (int64_t i = 0; i < I && shown < 48; ++i)
      for (int64_t kh = 0; kh < KH && shown < 48; ++kh)
        for (int64_t kw = 0; kw < KW && shown < 48; ++kw, ++shown) {
          const int64_t h = oh * c->stride_h - c->pad_top + kh, w = ow * c->stride_w - c->pad_left + kw;
          const bool pad = h < 0 || w < 0 || h >= x.dim(2) || w >= x.dim(3);
          const int64_t v = pad ? c->pad_value : x.at(idx[0], ci0 + i, h, w);
          os << " (" << ci0 + i << "," << h << "," << w << ": " << v << "*" << c->weight.data[static_cast<size_t>(((o * I + i) * KH + kh) * KW + kw)] << ")";
        }
    if (I * KH * KW > 48) os << " ... (" << I * KH * KW << " terms)";
  } else if (const auto* l = std::get_if<LinearOp>(&n->op)) {
    const IntTensor& x = find_entry(local, n->inputs[0])->value;
    const int64_t o = idx[1], I = l->weight.dim(1);
    os << "inputs * weights:";
    for (int64_t i = 0; i < std::min<int64_t>(I, 32); ++i) os << " " << x.at(idx[0], i) << "*" << l->weight.at(o, i);
    if (I > 32) os << " ... (" << I << " terms)";
  }
  return os.str();
}

// The logits: the float network's against alpha * acc + delta computed from the float network's own
// last quantized tensor, within a float error bound; and the argmax of the end-to-end integer network.
OutputReport check_output(const integerize::Lowered& exact, const Network& net, const Trace& reference, const FloatRun& run,
                          const std::map<std::string, IntTensor>& float_q) {
  OutputReport o;
  const auto fit = run.values.find(net.output);
  const IntTensor& acc = find_entry(reference, net.output)->value;
  if (fit == run.values.end() || acc.rank() != 2) {
    o.kind = "quantized";
    return o;
  }
  const FloatTensor& f = fit->second;
  const int64_t N = acc.dim(0), O = acc.dim(1);
  o.elements = acc.numel();
  const double u = run.dtype == "float64" ? std::ldexp(1.0, -53) : std::ldexp(1.0, -24);
  auto argmax = [&](auto value) {
    int64_t best = 0;
    for (int64_t j = 1; j < O; ++j)
      if (value(j) > value(best)) best = j;
    return best;
  };
  if (exact.output_kind == integerize::Lowered::OutputKind::hadamard) {
    o.kind = "hadamard";
    o.float_argmax = argmax([&](int64_t j) { return f.values[static_cast<size_t>(j)]; });
    o.integer_argmax = argmax([&](int64_t j) { return static_cast<double>(acc.at(0, j)); });
    o.argmax_agrees = o.float_argmax == o.integer_argmax;
    return o;
  }
  o.kind = "affine";
  const Node* lin = net.find(net.output);
  const auto* op = std::get_if<LinearOp>(&lin->op);
  const auto xin = float_q.find(lin->inputs.at(0));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < O; ++j) {
      const double alpha = to_double_nearest(channel(exact.output_alpha, j)), delta = to_double_nearest(channel(exact.output_delta, j));
      const double fl = f.values[static_cast<size_t>(n * O + j)];
      if (op && xin != float_q.end()) {
        // Local: the exact logit of the float network's own input, and the bound on float error:
        // ((I + 8) u + c) |alpha| sum_i (|w_i| + 2^b) |x_i| + (2u + c) |delta| (products of rounded
        // factors, recursive summation in any order, the float weights' distance from q * scale).
        const IntTensor& x = xin->second;
        const int64_t I = op->weight.dim(1);
        double a = 0, sabs = 0;
        const double wb = std::ldexp(1.0, op->weight.type.bits);
        for (int64_t i = 0; i < I; ++i) {
          const double w = static_cast<double>(op->weight.at(j, i)), xv = static_cast<double>(x.at(n, i));
          a += w * xv;
          sabs += (std::fabs(w) + wb) * std::fabs(xv);
        }
        // The constants are float32 values in both runs (weights fl(q * s), grids from float32 clips):
        // 2^-20 relative covers their representation error.
        const double consts = std::ldexp(1.0, -20);
        const double bound = (static_cast<double>(I + 8) * u + consts) * std::fabs(alpha) * sabs + (2 * u + consts) * std::fabs(delta);
        const double diff = std::fabs(fl - (alpha * a + delta));
        if (diff > o.max_abs_diff) o.max_abs_diff = diff;
        if (bound > o.bound) o.bound = bound;
        if (diff > bound) o.within_bound = false;
      }
    }
  o.float_argmax = argmax([&](int64_t j) { return f.values[static_cast<size_t>(j)]; });
  o.integer_argmax = argmax([&](int64_t j) {
    return to_double_nearest(channel(exact.output_alpha, j) * Rational(acc.at(0, j)) + channel(exact.output_delta, j));
  });
  o.argmax_agrees = o.float_argmax == o.integer_argmax;
  return o;
}

}  // namespace

CrossCheck cross_check(const integerize::Lowered& exact, const Network& net, const Trace& reference, const FloatRun& run,
                       const CrossCheckOptions& options) {
  CrossCheck out;
  out.dtype = run.dtype;
  std::map<std::string, IntTensor> float_q;
  std::optional<size_t> worst;  // the layer keeping its heatmap
  for (const Segment& seg : exact.segments) {
    LayerReport rep;
    rep.layer = seg.output;
    const Grid& grid = exact.grids.at(seg.output);
    const TraceEntry* ref_entry = find_entry(reference, seg.output);
    const auto fit = run.values.find(seg.output);
    if (!ref_entry) continue;
    if (fit == run.values.end()) {
      // No float tensor of this name (the pixel input: the float network only has the normalized
      // image). Later segments read the integer network's own values for it.
      if (seg.inputs.empty()) float_q[seg.output] = ref_entry->value;
      continue;
    }
    const IntTensor& ref = ref_entry->value;
    const FloatTensor& f = fit->second;
    // Map the float tensor onto the grid.
    IntTensor fq = ref;
    std::vector<bool> off(ref.data.size(), false);
    const int64_t C = ref.shape.at(1);
    std::vector<double> sc(static_cast<size_t>(C)), zc(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c)
      sc[static_cast<size_t>(c)] = to_double_nearest(channel(grid.scale, c)), zc[static_cast<size_t>(c)] = to_double_nearest(channel(grid.offset, c));
    for (int64_t i = 0; i < ref.numel(); ++i) {
      const int64_t c = channel_of(ref.shape, i);
      const double s = sc[static_cast<size_t>(c)], z = zc[static_cast<size_t>(c)];
      const double v = (f.values[static_cast<size_t>(i)] - z) / s;
      const double r = std::nearbyint(v);
      fq.data[static_cast<size_t>(i)] = static_cast<int64_t>(r);
      if (std::fabs(v - r) > 1e-2) off[static_cast<size_t>(i)] = true;
    }
    // The segment re-evaluated on the float network's own inputs.
    Network sub{seg.output, {}, seg.output, {}};
    std::vector<IntTensor> sub_inputs;
    for (const std::string& in : seg.inputs) {
      sub.nodes.push_back(Node{in, {}, net.find(in)->output, InputOp{}});
      sub_inputs.push_back(float_q.at(in));
    }
    for (const std::string& n : seg.nodes) sub.nodes.push_back(*net.find(n));
    Trace local;
    const IntTensor* local_q = &ref;
    if (!seg.inputs.empty()) {
      local = evaluate_reference(sub, sub_inputs);
      local_q = &find_entry(local, seg.output)->value;
    }
    // The rounding step, from the exact lowering.
    RoundingStep step;
    const Node* last_exact = exact.network.find(seg.output);
    std::string acc_node;
    if (const auto* rq = std::get_if<RequantOp>(&last_exact->op)) {
      step.requant = std::get_if<ExactRequant>(&rq->requant.form);
      step.lo = rq->requant.lo, step.hi = rq->requant.hi;
      acc_node = last_exact->inputs[0];
      if (!seg.inputs.empty()) step.acc = &find_entry(local, acc_node)->value;
    }
    const bool is_input = seg.inputs.empty() && seg.output == exact.input_quantizer;
    const FloatTensor* input_real = nullptr;
    if (is_input) {
      const auto it = run.values.find("input");
      if (it != run.values.end()) input_real = &it->second;
    }
    // The float network's pre-rounding value, in output LSBs.
    const FloatTensor* pre = nullptr;
    if (const auto a = run.act_input.find(seg.output); a != run.act_input.end())
      if (const auto p = run.values.find(a->second); p != run.values.end()) pre = &p->second;

    std::vector<Rational> unexplained_p;
    std::vector<int64_t> unexplained_local, unexplained_float;
    rep.elements = ref.numel();
    rep.lsb_histogram.assign(9, 0);
    const int64_t positions = ref.shape.size() == 4 ? ref.shape[2] * ref.shape[3] : 1;
    rep.heatmap_channels = C;
    rep.heatmap_columns = std::min<int64_t>(64, positions);
    if (ref.shape.size() == 4) rep.heatmap_height = ref.shape[2], rep.heatmap_width = ref.shape[3];
    rep.channel_position_counts.assign(static_cast<size_t>(rep.heatmap_channels * rep.heatmap_columns), 0);
    for (int64_t i = 0; i < ref.numel(); ++i) {
      const auto k = static_cast<size_t>(i);
      const int64_t qf = fq.data[k], qr = ref.data[k], ql = local_q->data[k];
      ++rep.lsb_histogram[static_cast<size_t>(std::min<int64_t>(qf > qr ? qf - qr : qr - qf, 8))];
      if (off[k] || qf != qr) {
        const int64_t col = (i % positions) * rep.heatmap_columns / positions;
        ++rep.channel_position_counts[static_cast<size_t>(channel_of(ref.shape, i) * rep.heatmap_columns + col)];
      }
      if (off[k]) {
        ++rep.off_grid, ++rep.differing, ++rep.unexplained;
        continue;
      }
      if (qf == qr) continue;
      ++rep.differing;
      rep.max_lsb = std::max(rep.max_lsb, qf > qr ? qf - qr : qr - qf);
      if (qf == ql) {
        ++rep.propagated;
        continue;
      }
      // A local difference: find the exact pre-rounding value.
      const int64_t c = channel_of(ref.shape, i);
      std::optional<Rational> p;
      Rounding mode = Rounding::half_even;
      int64_t lo = 0, hi = 0;
      if (step.requant && step.acc) {
        const auto ch = static_cast<size_t>(c);
        p = step.requant->alpha.at(ch) * Rational(step.acc->data[k]) + step.requant->delta.at(ch);
        mode = step.requant->rounding, lo = step.lo, hi = step.hi;
      } else if (is_input && input_real) {
        const integerize::QAct& a = exact.input_act;
        p = (*exact_rational(input_real->values[k]) - channel(a.offset, c)) / channel(a.scale, c);
        mode = a.rounding, lo = a.qmin, hi = a.qmax;
      }
      std::optional<double> fpre;
      if (pre) fpre = (pre->values[k] - zc[static_cast<size_t>(c)]) / sc[static_cast<size_t>(c)];
      ElementDetail d;
      d.layer = seg.output;
      d.index = unflatten(ref.shape, i);
      d.float_q = qf, d.reference_q = qr, d.local_q = ql;
      d.rounding = std::string(to_string(mode));
      d.float_pre = fpre;
      bool explained = false;
      if (p) {
        d.exact_pre = to_string(*p);
        d.exact_pre_value = to_double_nearest(*p);
        const int64_t exact_q = clamp_big(round_rational(*p, mode), lo, hi);
        const int64_t a = std::min(qf, exact_q), b = std::max(qf, exact_q);
        if (b - a == 1) {
          const double bd = boundary_between(a, mode);
          d.boundary = bd;
          const bool near = std::fabs(d.exact_pre_value - bd) <= options.boundary_tolerance;
          const bool float_near = !fpre || std::fabs(*fpre - bd) <= options.boundary_tolerance + 1e-9;
          const bool float_differs = !fpre || *fpre != d.exact_pre_value;
          explained = near && float_near && float_differs;
        }
        if (!explained && qf == exact_q && ql != exact_q) {
          // The float network equals the exact form; the chosen requant form departs from it.
          const auto fb = options.form_bounds.find(seg.output);
          const int64_t dist = ql > exact_q ? ql - exact_q : exact_q - ql;
          if (fb != options.form_bounds.end() && dist <= fb->second) {
            ++rep.form;
            continue;
          }
        }
        std::ostringstream comp;
        if (step.requant && step.acc) {
          const auto ch = static_cast<size_t>(c);
          comp << "accumulator " << step.acc->data[k] << " (" << acc_node << "), alpha " << to_string(step.requant->alpha[ch])
               << ", delta " << to_string(step.requant->delta[ch]) << ", p = alpha*acc + delta = " << d.exact_pre << " = "
               << d.exact_pre_value << ", " << d.rounding << " -> " << exact_q << ", clamp [" << lo << ", " << hi << "]";
          const std::string w = conv_window(sub, local, acc_node, d.index);
          if (!w.empty()) comp << "; " << w;
        } else if (is_input) {
          comp << "input " << input_real->values[k] << ", p = (x - offset)/scale = " << d.exact_pre << ", " << d.rounding << " -> "
               << exact_q;
        }
        d.computation = comp.str();
      }
      if (explained) {
        ++rep.boundary;
        if (!rep.first_boundary) rep.first_boundary = d;
      } else {
        ++rep.unexplained;
        if (!rep.first_unexplained) rep.first_unexplained = d;
        if (rep.unexplained_details.size() < LayerReport::kMaxUnexplainedDetails) rep.unexplained_details.push_back(d);
        if (p) unexplained_p.push_back(*p), unexplained_local.push_back(ql), unexplained_float.push_back(qf);
      }
    }
    if (!unexplained_p.empty()) {
      std::string ints, floats;
      for (Rounding m : kModes) {
        bool all_local = true, all_float = true;
        for (size_t j = 0; j < unexplained_p.size(); ++j) {
          const BigInt r = round_rational(unexplained_p[j], m);
          all_local = all_local && clamp_big(r, INT64_MIN, INT64_MAX) == unexplained_local[j];
          all_float = all_float && clamp_big(r, INT64_MIN, INT64_MAX) == unexplained_float[j];
        }
        if (all_local) ints += (ints.empty() ? "" : "/") + std::string(to_string(m));
        if (all_float) floats += (floats.empty() ? "" : "/") + std::string(to_string(m));
      }
      rep.convention = "integer network values follow " + (ints.empty() ? std::string("no single rounding of the exact value (e.g. rounding twice)") : ints) +
                       "; float network values follow " + (floats.empty() ? std::string("no single rounding of the exact value") : floats);
    }
    float_q[seg.output] = std::move(fq);
    out.total_elements += rep.elements;
    out.total_differing += rep.differing;
    out.total_unexplained += rep.unexplained;
    out.total_explained += rep.boundary + rep.form + rep.propagated;
    // The heatmap is kept for the worst layer only (the first of the most differing elements).
    if (rep.differing > 0 && (!worst || rep.differing > out.layers[*worst].differing)) {
      if (worst) out.layers[*worst].channel_position_counts = {};
      worst = out.layers.size();
    } else {
      rep.channel_position_counts = {};
    }
    out.layers.push_back(std::move(rep));
  }
  out.output = check_output(exact, net, reference, run, float_q);
  if (!out.output.within_bound) ++out.total_unexplained;
  return out;
}

}  // namespace qv::harness
