// Quantized layers of the fake-quant networks: a conv/linear whose weights pass through a weight
// quantizer, and an activation module that applies the non-linearity and the activation quantizer.
// The quantizer of each is described by plain data (WeightQuant, ActQuant) that the configuration
// resolves per layer name; `none` gives the fp32 network.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "fakequant/config/quant_config.h"
#include "ir/rounding.h"

namespace qv::fakequant {

enum class QuantKind { none, brevitas, pact, tqt };

struct WeightQuant {
  QuantKind kind = QuantKind::none;
  int bits = 8;
  bool per_channel = true;
  config::WeightInit init = config::WeightInit::max;  // PACT/TQT clip initialisation (fakequant/sawb.h)
  double std_factor = 3.0;
};

enum class ActFn { relu, relu6, identity };

struct ActQuant {
  QuantKind kind = QuantKind::none;
  int bits = 8;
  bool is_signed = false;
  Rounding rounding = Rounding::half_even;  // PACT: half_even (rounding=true) or floor
  double init_clip = 6.0;                   // initial clipping threshold (calibration replaces it)
  bool power_of_two = false;                // TQT
};

// The integer grid a weight quantizer rounds onto: W_q = q * scale (scale per output channel, shape
// [O], or per tensor, shape [1]), q int64 of `bits` signed bits. Computed with the quantizer's own
// float32 operations, so q is the integer its forward rounded to. PACT/TQT: the forward returns
// q' * eps + clip_lo, q' in [0, n - 1]; with clip_lo = k * eps / 2 for an integer k (up to float32
// residue) that is q = q' + k/2 at scale eps (k even: the almost symmetric grid, k = -n) or
// q = 2 q' + k at scale eps / 2 (k odd: SAWB's fully symmetric grid, k = -(n - 1)). The residue is
// dropped, as QuantLib's integerization drops it; a grid with no such k is refused.
struct WeightGrid {
  torch::Tensor q, scale;
  int bits = 8;  // signed width of q: the quantizer's, or one more for a grid centred between integers
};
WeightGrid weight_grid(const torch::Tensor& w, const WeightQuant& wq);

// The grid of an activation quantizer, as the float32 constants its forward uses:
//   brevitas  y = clamp(round_half_even(x / scale), qmin, qmax) * scale
//   pact/tqt  y = R((clamp(x, lo, hi_plus) - lo) / eps) * eps + lo, hi_plus = hi + 1e-7
struct ActGrid {
  bool brevitas = false;
  torch::Tensor scale;              // brevitas
  torch::Tensor lo, hi_plus, eps;   // pact/tqt
  int64_t levels = 0;               // 2^bits
};

// Conv2d (no dilation) with quantized weights; bias optional and unquantized in the float network
// (Int32 bias quantization happens at integerization).
class QConv2dImpl : public torch::nn::Module {
 public:
  QConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, int64_t groups, bool bias,
              WeightQuant wq);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor quantized_weight() const;

  torch::Tensor weight, bias;
  int64_t stride, padding, groups;
  WeightQuant wq;
};
TORCH_MODULE(QConv2d);

class QLinearImpl : public torch::nn::Module {
 public:
  QLinearImpl(int64_t in, int64_t out, bool bias, WeightQuant wq);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor quantized_weight() const;

  torch::Tensor weight, bias;
  WeightQuant wq;
};
TORCH_MODULE(QLinear);

// The activation: fn then quantizer. Learned parameters by kind: brevitas `value` (log2 threshold),
// pact `clip_lo`/`clip_hi`, tqt `log2_t`.
class QActImpl : public torch::nn::Module {
 public:
  QActImpl(ActFn fn, ActQuant aq);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor quantize(const torch::Tensor& x);  // forward without recording
  // The scale of one LSB of the output (brevitas: from the learned threshold; pact/tqt: eps).
  torch::Tensor scale() const;
  ActGrid grid() const;  // kind != none

  ActFn fn;
  ActQuant aq;
  torch::Tensor value, clip_lo, clip_hi, log2_t;
  std::string trace_name;  // set by name_quantizers (fakequant/trace.h)
  bool observing = false;  // calibration: pass fn(x) through unquantized and record its largest |value|
  double observed_max = 0;

  // While a Recorder lives, every QAct forward on this thread appends (trace_name, output).
  class Recorder {
   public:
    explicit Recorder(std::vector<std::pair<std::string, torch::Tensor>>* sink);
    ~Recorder();
    Recorder(const Recorder&) = delete;
    Recorder& operator=(const Recorder&) = delete;

   private:
    std::vector<std::pair<std::string, torch::Tensor>>* previous_;
  };
  // Appends (name, t) to the live Recorder's sink, if any (the graph runner names shared quantizers
  // by the node that applies them).
  static void record(const std::string& name, const torch::Tensor& t);
};
TORCH_MODULE(QAct);

// Brevitas HadamardClassifier: -scale * (x / (||x||_F + 1e-8)) @ H[:classes, :features]^T, Sylvester H
// (H[i][j] = (-1)^popcount(i & j)); the norm is over the whole batch tensor.
class HadamardClassifierImpl : public torch::nn::Module {
 public:
  HadamardClassifierImpl(int64_t in, int64_t out);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor proj, scale;
};
TORCH_MODULE(HadamardClassifier);

}  // namespace qv::fakequant
