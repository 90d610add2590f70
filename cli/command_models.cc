// qverify models: the networks, the quantization schemes and the shipped configs.
#include <cstdio>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "fakequant/config/read_config.h"

namespace qv::cli {

int command_models(const Args& args) {
  if (!args.empty()) throw UsageError("usage: qverify models");
  std::puts("networks (fake-quant in LibTorch, parameters at width 1.0 as published):");
  std::puts("  mobilenet_v1              Brevitas quant_mobilenet_v1 topology        4,231,976");
  std::puts("  proxylessnas_mobile14     Brevitas ProxylessNAS Mobile14 (linear)     6,857,568");
  std::puts("                            (or the Hadamard classifier)");
  std::puts("  vgg11|13|16|19[_bn]       Brevitas quant_vgg / torchvision; vgg = vgg16  138,357,544 (vgg16)");
  std::puts("  mobilenet_v2              QuantLab MobileNetV2 names                  3,504,872");
  std::puts("synthetic integer networks (qverify run --synthetic): vgg16, mobilenet_v2");
  std::puts("schemes: fp32, brevitas, pact, tqt");
  std::printf("shipped configs (%s):\n", config::shipped_config_dir().c_str());
  for (const std::string& name : config::shipped_configs()) {
    const config::QuantConfig c = config::read_config(name);
    if (c.scheme == config::Scheme::fp32) {
      std::printf("  %-18s scheme fp32     float32 weights and activations\n", name.c_str());
      continue;
    }
    std::printf("  %-18s scheme %-8s weights %d bit, activations %d bit, requant %s\n", name.c_str(),
                std::string(config::to_string(c.scheme)).c_str(), c.conv_weight.bits, c.activation.bits, c.requant.form.c_str());
  }
  return kAgree;
}

}  // namespace qv::cli
