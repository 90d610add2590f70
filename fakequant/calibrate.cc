#include "fakequant/calibrate.h"

#include <cmath>

namespace qv::fakequant {

void calibrate(NetworkImpl& net, const std::vector<torch::Tensor>& batches, bool reset_batch_norm,
               const std::set<std::string>* only_modules) {
  std::vector<QActImpl*> acts;
  for (const auto& item : net.named_modules()) {
    const auto& m = item.value();
    if (auto* a = dynamic_cast<QActImpl*>(m.get()); a && (!only_modules || only_modules->count(item.key()))) {
      a->observed_max = 0;
      a->observing = true;
      acts.push_back(a);
    }
    if (auto* bn = dynamic_cast<torch::nn::BatchNorm2dImpl*>(m.get()); bn && reset_batch_norm) {
      bn->reset_running_stats();
      bn->options.momentum(c10::optional<double>());  // cumulative average over the calibration batches
    }
  }
  net.train(reset_batch_norm);  // eval mode keeps the BN statistics as they are
  {
    torch::NoGradGuard no_grad;
    for (const torch::Tensor& b : batches) net.forward(b);
  }
  for (const auto& m : net.modules())
    if (auto* bn = dynamic_cast<torch::nn::BatchNorm2dImpl*>(m.get())) bn->options.momentum(0.1);
  torch::NoGradGuard no_grad;
  for (QActImpl* a : acts) {
    a->observing = false;
    const double clip = std::max(a->observed_max, 1e-3);
    switch (a->aq.kind) {
      case QuantKind::none: break;
      case QuantKind::brevitas: a->value.fill_(std::log2(clip)); break;
      case QuantKind::pact:
        a->clip_hi.fill_(clip);
        if (a->aq.is_signed) a->clip_lo.fill_(-clip);
        break;
      case QuantKind::tqt: a->log2_t.fill_(std::log2(clip)); break;
    }
  }
  net.eval();
}

}  // namespace qv::fakequant
