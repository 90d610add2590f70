#include "fakequant/trace.h"

namespace qv::fakequant {

const torch::Tensor* FloatTrace::find(const std::string& name) const {
  for (const auto& [n, t] : entries)
    if (n == name) return &t;
  return nullptr;
}

void name_quantizers(torch::nn::Module& net) {
  for (const auto& item : net.named_modules()) {
    if (auto* act = dynamic_cast<QActImpl*>(item.value().get())) {
      // A shared quantizer sits under several paths: keep the first (where it is created).
      if (act->trace_name.empty()) act->trace_name = item.key();
    }
  }
}

FloatTrace capture_trace(NetworkImpl& net, const torch::Tensor& input, torch::ScalarType dtype) {
  name_quantizers(net);
  FloatTrace trace;
  const bool training = net.is_training();
  net.eval();
  net.to(dtype);
  {
    torch::NoGradGuard no_grad;
    QActImpl::Recorder recorder(&trace.entries);
    net.forward(input.to(dtype));
  }
  net.to(torch::kFloat32);
  net.train(training);
  return trace;
}

}  // namespace qv::fakequant
