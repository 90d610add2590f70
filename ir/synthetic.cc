#include "ir/synthetic.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "ir/builder.h"

namespace qv {

int64_t uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  if (lo > hi) throw std::invalid_argument("uniform: empty range");
  const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);  // hi - lo, modulo 2^64
  if (span == UINT64_MAX) return static_cast<int64_t>(rng());
  const uint64_t n = span + 1;
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // draws in [limit, 2^64) would bias the result
  uint64_t draw = rng();
  while (draw >= limit) draw = rng();
  return static_cast<int64_t>(static_cast<uint64_t>(lo) + draw % n);
}

double uniform_unit(std::mt19937_64& rng) { return std::ldexp(static_cast<double>(rng() >> 11), -53); }

namespace {

// The running state of a generator: the builder, the RNG, and the estimated mean square of each value.
struct Gen {
  NetworkBuilder b;
  std::mt19937_64 rng;
  int weight_bits = 8;
  std::map<std::string, double> ms;  // estimated E[x^2] per node

  Gen(std::string name, uint64_t seed, int wbits) : b(std::move(name)), rng(seed), weight_bits(wbits) {}

  int64_t weight_max() const { return (int64_t{1} << (weight_bits - 1)) - 1; }

  IntTensor random_tensor(Shape shape, IntType type, const char* layout, int64_t lo, int64_t hi) {
    IntTensor t(std::move(shape), type, layout);
    for (int64_t& v : t.data) v = uniform(rng, lo, hi);
    return t;
  }

  IntTensor weights(Shape shape) {
    const int64_t m = weight_max();
    return random_tensor(std::move(shape), IntType{weight_bits, true}, "", -m, m);
  }
  double weight_ms() const {
    const double m = static_cast<double>(weight_max());
    return m * (m + 1) / 3;  // E[w^2] for w uniform in [-m, m]
  }
  // A bias of up to a quarter of the accumulator RMS without it.
  IntTensor bias(int64_t channels, double acc_rms) {
    const int64_t r = static_cast<int64_t>(std::floor(acc_rms / 4));
    return random_tensor({channels}, IntType::covering(-r, r), "O", -r, r);
  }

  // alpha ~ nominal * [0.75, 1.25) per channel, dyadic m * 2^-k with a 15-bit odd m; delta = d * 2^-k.
  Requant exact_requant(int64_t channels, double nominal, int64_t lo, int64_t hi) {
    ExactRequant f;
    f.rounding = Rounding::half_even;
    for (int64_t c = 0; c < channels; ++c) {
      const double a = nominal * (0.75 + 0.5 * uniform_unit(rng));
      int e = 0;
      const double frac = std::frexp(a, &e);  // a = frac * 2^e, frac in [0.5, 1)
      const int64_t mant = static_cast<int64_t>(std::ldexp(frac, 15)) | 1;
      const int k = 15 - e;
      if (k < 1 || k > 60) throw std::logic_error("synthetic requant scale out of range");
      const BigInt den = BigInt(1) << k;
      f.alpha.push_back(Rational(BigInt(mant), den));
      f.delta.push_back(Rational(BigInt(uniform(rng, -(int64_t{1} << (k - 1)), int64_t{1} << (k - 1))), den));
    }
    Requant rq;
    rq.form = std::move(f);
    rq.lo = lo, rq.hi = hi;
    return rq;
  }

  // conv2d (+ optional bias) followed by an exact requant to `out`; unsigned out types act as a ReLU.
  std::string conv_requant(const std::string& name, const std::string& in, int64_t out_ch, int kernel, int stride,
                           int groups, IntType out) {
    const Shape& s = b.info(in).shape;
    const int64_t in_per_group = s[1] / groups;
    const double fan_in = static_cast<double>(in_per_group * kernel * kernel);
    const double acc_rms = std::sqrt(fan_in * weight_ms() * ms.at(in));
    IntTensor w = weights({out_ch, in_per_group, kernel, kernel});
    IntTensor bs = bias(out_ch, acc_rms);
    const std::string acc = b.conv2d(name, in, std::move(w), std::move(bs), stride, kernel / 2, 0, groups);
    return requant_to(acc, acc_rms * std::sqrt(1.0625), out);  // bias adds up to 1/16 of the mean square
  }

  std::string linear_layer(const std::string& name, const std::string& in, int64_t out_features, double* acc_rms_out) {
    const int64_t in_features = b.info(in).shape[1];
    const double acc_rms = std::sqrt(static_cast<double>(in_features) * weight_ms() * ms.at(in));
    IntTensor w = weights({out_features, in_features});
    IntTensor bs = bias(out_features, acc_rms);
    *acc_rms_out = acc_rms * std::sqrt(1.0625);
    return b.linear(name, in, std::move(w), std::move(bs));
  }

  // Requant an accumulator of estimated RMS acc_rms so that its standard deviation becomes a third of
  // the output range's positive half.
  std::string requant_to(const std::string& acc, double acc_rms, IntType out) {
    const double target = static_cast<double>(out.max()) / 3;
    const std::string name = acc + "_rq";
    b.requant(name, acc, exact_requant(b.info(acc).shape[1], target / acc_rms, out.min(), out.max()), out);
    ms[name] = out.is_signed ? target * target : target * target / 2;  // ReLU keeps half the mass
    return name;
  }

  std::string input(const std::string& name, Shape shape, IntType type) {
    const double m = static_cast<double>(type.max()), l = static_cast<double>(type.min());
    ms[name] = (m * m + m * l + l * l) / 3;  // E[x^2] for x uniform in [l, m]
    return b.input(name, std::move(shape), type);
  }
};

void require_resolution(int resolution) {
  if (resolution < 32) throw std::invalid_argument("synthetic networks need a resolution >= 32");
}

}  // namespace

Network synthetic_vgg16(int resolution, uint64_t seed, int act_bits, int weight_bits) {
  require_resolution(resolution);
  if (act_bits < 2 || act_bits > 16 || weight_bits < 2 || weight_bits > 16)
    throw std::invalid_argument("synthetic_vgg16: bit widths must be in [2, 16]");
  Gen g("vgg16", seed, weight_bits);
  const IntType act{act_bits, false};
  std::string x = g.input("input", {1, 3, resolution, resolution}, act);
  const std::vector<std::vector<int64_t>> stages = {{64, 64}, {128, 128}, {256, 256, 256}, {512, 512, 512}, {512, 512, 512}};
  for (size_t s = 0; s < stages.size(); ++s) {
    for (size_t i = 0; i < stages[s].size(); ++i)
      x = g.conv_requant("conv" + std::to_string(s + 1) + "_" + std::to_string(i + 1), x, stages[s][i], 3, 1, 1, act);
    const std::string pool = "pool" + std::to_string(s + 1);
    g.ms[pool] = g.ms.at(x) * 2;  // the max of four ReLU outputs: a rough estimate
    x = g.b.max_pool2d(pool, x, 2, 2);
  }
  x = g.b.flatten("flatten", x);
  g.ms["flatten"] = g.ms.at("pool5");
  double rms = 0;
  for (const char* fc : {"fc6", "fc7"}) {
    const std::string acc = g.linear_layer(fc, x, 4096, &rms);
    x = g.requant_to(acc, rms, act);
  }
  x = g.linear_layer("fc8", x, 1000, &rms);
  g.b.set_metadata("model", "vgg16");
  g.b.set_metadata("generator", "qv::synthetic_vgg16");
  g.b.set_metadata("seed", std::to_string(seed));
  g.b.set_metadata("resolution", std::to_string(resolution));
  return g.b.build(x);
}

Network synthetic_mobilenet_v2(int resolution, uint64_t seed) {
  require_resolution(resolution);
  Gen g("mobilenet_v2", seed, 8);
  const IntType u8{8, false}, i8{8, true};
  std::string x = g.input("input", {1, 3, resolution, resolution}, u8);
  x = g.conv_requant("pilot", x, 32, 3, 2, 1, u8);
  struct Stage { int t, c, n, s; };
  const Stage stages[] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  int block = 0;
  for (const Stage& st : stages) {
    for (int i = 0; i < st.n; ++i, ++block) {
      const std::string p = "block" + std::to_string(block);
      const int stride = i == 0 ? st.s : 1;
      const int64_t in_ch = g.b.info(x).shape[1], hidden = in_ch * st.t;
      std::string h = x;
      if (st.t != 1) h = g.conv_requant(p + "_expand", h, hidden, 1, 1, 1, u8);
      h = g.conv_requant(p + "_dw", h, hidden, 3, stride, static_cast<int>(hidden), u8);
      h = g.conv_requant(p + "_project", h, st.c, 1, 1, 1, i8);
      if (stride == 1 && in_ch == st.c) {
        // Each branch moved to the output grid carrying half the output variance; a wide branch clamp.
        const double target = static_cast<double>(i8.max()) / 3;
        std::vector<Requant> branches;
        for (const std::string& in : {x, h}) {
          Requant rq = g.exact_requant(st.c, target / std::sqrt(2 * g.ms.at(in)), -(int64_t{1} << 31), (int64_t{1} << 31) - 1);
          std::get<ExactRequant>(rq.form).delta.assign(static_cast<size_t>(st.c), Rational(0));
          branches.push_back(std::move(rq));
        }
        h = g.b.add_requant(p + "_add", {x, h}, std::move(branches), i8);
        g.ms[h] = target * target;
      }
      x = h;
    }
  }
  x = g.conv_requant("head", x, 1280, 1, 1, 1, u8);
  const int64_t spatial = g.b.info(x).shape[2];
  int shift = 0;
  while ((int64_t{1} << shift) < spatial * spatial) ++shift;
  const double mean = static_cast<double>(u8.max()) / 3 * 0.4;  // E[relu(z)] ~ 0.4 sigma
  x = g.b.avg_pool2d("pool", x, static_cast<int>(spatial), 1, shift, Rounding::floor, u8);
  const double pooled = mean * static_cast<double>(spatial * spatial) / static_cast<double>(int64_t{1} << shift);
  g.ms["pool"] = pooled * pooled;
  x = g.b.flatten("flatten", x);
  g.ms["flatten"] = g.ms.at("pool");
  double rms = 0;
  x = g.linear_layer("classifier", x, 1000, &rms);
  g.b.set_metadata("model", "mobilenet_v2");
  g.b.set_metadata("generator", "qv::synthetic_mobilenet_v2");
  g.b.set_metadata("seed", std::to_string(seed));
  g.b.set_metadata("resolution", std::to_string(resolution));
  return g.b.build(x);
}

std::vector<IntTensor> synthetic_inputs(const Network& network, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<IntTensor> out;
  for (const Node* n : network.inputs()) {
    IntTensor t(n->output.shape, n->output.type, n->output.shape.size() == 4 ? "NCHW" : "NC");
    for (int64_t& v : t.data) v = uniform(rng, n->output.type.min(), n->output.type.max());
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace qv
