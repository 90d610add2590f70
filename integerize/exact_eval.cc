#include "integerize/exact_eval.h"

#include <stdexcept>

namespace qv::integerize {

const Rational& channel(const Channels& v, int64_t c) { return v.size() == 1 ? v[0] : v.at(static_cast<size_t>(c)); }

size_t QGraph::find(const std::string& n) const {
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].name == n) return i;
  return nodes.size();
}

namespace {

int64_t spatial(const Shape& s, size_t i) { return s.size() == 4 ? s[i] : 1; }

ExactValue conv(const QConv& c, const ExactValue& x) {
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t O = c.weight.dim(0), I = c.weight.dim(1), KH = c.weight.dim(2), KW = c.weight.dim(3);
  const int64_t OH = (H + 2 * c.pad - KH) / c.stride + 1, OW = (W + 2 * c.pad - KW) / c.stride + 1;
  const int64_t opg = O / c.groups;
  ExactValue y{{N, O, OH, OW}, {}, std::nullopt};
  y.real.assign(static_cast<size_t>(N * O * OH * OW), Rational(0));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          Rational sum = 0;
          for (int64_t i = 0; i < I; ++i) {
            const int64_t ci = o / opg * I + i;
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                const int64_t h = oh * c.stride - c.pad + kh, w = ow * c.stride - c.pad + kw;
                if (h < 0 || h >= H || w < 0 || w >= W) continue;  // zero padding of the real tensor
                const int64_t wq = c.weight.data[static_cast<size_t>(((o * I + i) * KH + kh) * KW + kw)];
                sum += Rational(wq) * x.real[static_cast<size_t>(((n * C + ci) * H + h) * W + w)];
              }
          }
          Rational r = sum * channel(c.weight_scale, o);
          if (!c.bias.empty()) r += c.bias[static_cast<size_t>(o)];
          y.real[static_cast<size_t>(((n * O + o) * OH + oh) * OW + ow)] = r;
        }
  return y;
}

ExactValue linear(const QLinear& l, const ExactValue& x) {
  const int64_t N = x.shape[0], I = x.shape[1], O = l.weight.dim(0);
  if (l.weight.dim(1) != I) throw std::invalid_argument("linear: input features do not match the weight");
  ExactValue y{{N, O}, {}, std::nullopt};
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o) {
      Rational sum = 0;
      for (int64_t i = 0; i < I; ++i) sum += Rational(l.weight.data[static_cast<size_t>(o * I + i)]) * x.real[static_cast<size_t>(n * I + i)];
      Rational r = sum * channel(l.weight_scale, o);
      if (!l.bias.empty()) r += l.bias[static_cast<size_t>(o)];
      y.real.push_back(r);
    }
  return y;
}

// Applies f(value, channel) over a tensor whose channel axis is 1.
template <class F> void per_channel(const Shape& s, F f) {
  const int64_t N = s[0], C = s[1], HW = spatial(s, 2) * spatial(s, 3);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t k = 0; k < HW; ++k) f(static_cast<size_t>((n * C + c) * HW + k), c);
}

ExactValue act(const QAct& a, const ExactValue& x) {
  ExactValue y{x.shape, std::vector<Rational>(x.real.size()), std::vector<int64_t>(x.real.size())};
  per_channel(x.shape, [&](size_t i, int64_t c) {
    const Rational& s = channel(a.scale, c);
    const Rational& z = channel(a.offset, c);
    const BigInt r = round_rational((x.real[i] - z) / s, a.rounding);
    int64_t q = r < a.qmin ? a.qmin : r > a.qmax ? a.qmax : static_cast<int64_t>(r);
    (*y.grid)[i] = q;
    y.real[i] = Rational(q) * s + z;
  });
  return y;
}

ExactValue pool(const ExactValue& x, int kernel, int stride, bool is_max) {
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t K = kernel == 0 ? H : kernel;
  const int64_t S = kernel == 0 ? 1 : stride;
  const int64_t OH = (H - K) / S + 1, OW = (W - K) / S + 1;
  ExactValue y{{N, C, OH, OW}, {}, std::nullopt};
  if (x.grid) y.grid.emplace();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          Rational acc = 0;
          int64_t qacc = 0;
          bool first = true;
          for (int64_t kh = 0; kh < K; ++kh)
            for (int64_t kw = 0; kw < K; ++kw) {
              const size_t i = static_cast<size_t>(((n * C + c) * H + oh * S + kh) * W + ow * S + kw);
              const int64_t q = x.grid ? (*x.grid)[i] : 0;
              if (is_max) {
                if (first || x.real[i] > acc) acc = x.real[i], qacc = q;
              } else {
                acc += x.real[i];
                qacc += q;
              }
              first = false;
            }
          y.real.push_back(acc);
          if (y.grid) y.grid->push_back(qacc);
        }
  return y;
}

}  // namespace

std::vector<ExactValue> evaluate_exact(const QGraph& g, const std::vector<Rational>& input) {
  std::vector<ExactValue> v;
  v.reserve(g.nodes.size());
  for (const QNode& node : g.nodes) {
    auto in = [&](size_t k) -> const ExactValue& { return v.at(node.inputs.at(k)); };
    ExactValue y;
    if (const auto* op = node.as<QInput>()) {
      if (static_cast<int64_t>(input.size()) != element_count(op->shape)) throw std::invalid_argument("input size");
      y = ExactValue{op->shape, input, std::nullopt};
    } else if (const auto* c = node.as<QConv>()) {
      y = conv(*c, in(0));
    } else if (const auto* l = node.as<QLinear>()) {
      y = linear(*l, in(0));
    } else if (const auto* bn = node.as<QBatchNorm>()) {
      y = ExactValue{in(0).shape, in(0).real, std::nullopt};
      per_channel(y.shape, [&](size_t i, int64_t ch) { y.real[i] = y.real[i] * channel(bn->mul, ch) + channel(bn->add, ch); });
    } else if (const auto* a = node.as<QAct>()) {
      y = act(*a, in(0));
    } else if (node.as<QAdd>()) {
      y = ExactValue{in(0).shape, in(0).real, std::nullopt};
      for (size_t i = 0; i < y.real.size(); ++i) y.real[i] += in(1).real.at(i);
    } else if (const auto* mp = node.as<QMaxPool>()) {
      y = pool(in(0), mp->kernel, mp->stride, true);
    } else if (const auto* ap = node.as<QAvgPool>()) {
      const ExactValue& x = in(0);
      const int64_t K = ap->kernel == 0 ? x.shape[2] : ap->kernel;
      y = pool(x, ap->kernel, ap->stride, false);  // sums
      if (ap->truncate) {
        if (!y.grid) throw std::invalid_argument(node.name + ": truncating pool needs a quantized input");
        const int64_t qmax = (int64_t{1} << ap->bits) - 1;
        for (size_t i = 0; i < y.real.size(); ++i) {
          const int64_t q = std::clamp<int64_t>(round_shift_right((*y.grid)[i], ap->shift, ap->rounding), 0, qmax);
          (*y.grid)[i] = q;
          y.real[i] = Rational(q) * ap->out_scale;
        }
      } else {
        for (Rational& r : y.real) r /= Rational(K * K);
      }
    } else if (node.as<QFlatten>()) {
      y = in(0);
      y.shape = {y.shape[0], element_count(y.shape) / y.shape[0]};
    } else if (const auto* h = node.as<QHadamard>()) {
      const ExactValue& x = in(0);
      const int64_t N = x.shape[0], I = x.shape[1];
      y.shape = {N, h->out_features};
      for (int64_t n = 0; n < N; ++n)
        for (int64_t o = 0; o < h->out_features; ++o) {
          Rational sum = 0;
          for (int64_t i = 0; i < I; ++i) {
            const Rational& xi = x.real[static_cast<size_t>(n * I + i)];
            if (__builtin_popcountll(static_cast<uint64_t>(o & i)) % 2) sum -= xi; else sum += xi;
          }
          y.real.push_back(h->negate ? Rational(-sum) : sum);
        }
    }
    v.push_back(std::move(y));
  }
  return v;
}

}  // namespace qv::integerize
