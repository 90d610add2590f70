// Speed of the reference evaluator: the MAC rate of its conv kernel on a VGG-sized layer, and whole
// synthetic networks. The brief's goal: VGG16 at 224x224 (15.5 GMAC) in about a minute on 2 cores.
#include <benchmark/benchmark.h>

#include <random>

#include "bench/network_macs.h"
#include "ir/synthetic.h"
#include "reference/conv2d.h"
#include "reference/evaluator.h"

namespace qv {
namespace {

// conv3_2 of VGG16 at 224: 256 -> 256 channels, 3x3 pad 1, 56x56, uint8 activations, int8 weights.
void BM_Conv3x3_256x56(benchmark::State& state) {
  std::mt19937_64 rng(1);
  const int64_t C = 256, HW = 56;
  IntTensor in({1, C, HW, HW}, IntType{8, false}, "NCHW");
  for (int64_t& v : in.data) v = uniform(rng, 0, 255);
  Conv2dOp op;
  op.weight = IntTensor({C, C, 3, 3}, IntType{8, true}, "OIHW");
  for (int64_t& v : op.weight.data) v = uniform(rng, -127, 127);
  op.pad_top = op.pad_bottom = op.pad_left = op.pad_right = 1;
  const reference::ReferenceOptions options{.threads = static_cast<int>(state.range(0))};
  for (auto _ : state) benchmark::DoNotOptimize(reference::conv2d(op, in, IntType{32, true}, options));
  const double macs = static_cast<double>(C * C * 9 * HW * HW);
  state.counters["MAC/s"] = benchmark::Counter(macs * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Conv3x3_256x56)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void run_network(benchmark::State& state, const Network& net) {
  const std::vector<IntTensor> in = synthetic_inputs(net, 1);
  const reference::ReferenceOptions options{.threads = static_cast<int>(state.range(0))};
  for (auto _ : state) benchmark::DoNotOptimize(evaluate_reference(net, in, options));
  const double macs = static_cast<double>(bench::network_macs(net));
  state.counters["GMAC"] = macs / 1e9;
  state.counters["MAC/s"] = benchmark::Counter(macs * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_SyntheticVgg16_224(benchmark::State& state) {
  const Network net = synthetic_vgg16(224, 1);
  run_network(state, net);
}
BENCHMARK(BM_SyntheticVgg16_224)->Arg(2)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

void BM_SyntheticMobileNetV2_224(benchmark::State& state) {
  const Network net = synthetic_mobilenet_v2(224, 1);
  run_network(state, net);
}
BENCHMARK(BM_SyntheticMobileNetV2_224)->Arg(1)->Arg(2)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

}  // namespace
}  // namespace qv

BENCHMARK_MAIN();
