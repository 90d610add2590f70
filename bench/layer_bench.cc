// One MobileNetV2-shaped layer alone (a conv or depthwise conv of random int8 weights on uint8 inputs,
// with a fused requant to uint8), timed by evaluate_output's own clock for that node: a layer's speed
// and its scaling to two threads without the rest of the network around it.
//   build/bench/bench_layers                                        # every shape, 1 and 2 threads
//   build/bench/bench_layers --benchmark_filter='BM_Layer/0/16/96/'   # the 16 -> 96 channel 112x112 conv
// Args: (depthwise, C, O, HW, K, stride, threads); O is ignored for depthwise (O = C). The tier is
// QVERIFY_ISA or the best the CPU has.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "integer/evaluator.h"
#include "integer/plan.h"
#include "ir/network.h"
#include "ir/requant.h"

namespace qv {
namespace {

IntTensor random_tensor(Shape shape, IntType type, const char* layout, std::mt19937_64& rng) {
  IntTensor t;
  t.shape = std::move(shape), t.type = type, t.layout = layout;
  int64_t n = 1;
  for (const int64_t d : t.shape) n *= d;
  std::uniform_int_distribution<int64_t> value(type.min(), type.max());
  t.data.resize(static_cast<size_t>(n));
  for (int64_t& v : t.data) v = value(rng);
  return t;
}

void BM_Layer(benchmark::State& state) {
  const bool depthwise = state.range(0) != 0;
  const int64_t C = state.range(1), O = depthwise ? C : state.range(2), HW = state.range(3), K = state.range(4);
  const int stride = static_cast<int>(state.range(5)), threads = static_cast<int>(state.range(6));
  std::mt19937_64 rng(1);
  Conv2dOp op;
  op.weight = random_tensor({O, depthwise ? 1 : C, K, K}, IntType{8, true}, "OIHW", rng);
  op.groups = depthwise ? static_cast<int>(C) : 1;
  op.stride_h = op.stride_w = stride;
  op.pad_top = op.pad_bottom = op.pad_left = op.pad_right = static_cast<int>(K / 2);
  const int64_t OH = (HW + 2 * (K / 2) - K) / stride + 1;
  Network net;
  net.nodes.push_back(Node{"x", {}, ValueInfo{{1, C, HW, HW}, IntType{8, false}, {}}, InputOp{}});
  net.nodes.push_back(Node{"conv", {"x"}, ValueInfo{{1, O, OH, OH}, IntType{32, true}, {}}, op});
  ExactRequant f;  // dyadic scales, as a calibrated layer's: the 16-lane route
  f.rounding = Rounding::half_up;
  for (int64_t o = 0; o < O; ++o) f.alpha.push_back(Rational(1 + o % 7, 1 << 14)), f.delta.push_back(Rational(o % 5, 8));
  net.nodes.push_back(Node{"rq", {"conv"}, ValueInfo{{1, O, OH, OH}, IntType{8, false}, {}}, RequantOp{Requant{f, 0, 255}}});
  net.output = "rq";
  const std::vector<IntTensor> inputs = {random_tensor({1, C, HW, HW}, IntType{8, false}, "NCHW", rng)};
  const integer::Plan plan(net, integer::Options{.threads = threads, .isa = "auto"});
  integer::OutputBuffers buffers;
  for (auto _ : state) {
    buffers.node_seconds.assign(net.nodes.size(), 0.0);
    benchmark::DoNotOptimize(integer::evaluate_output(plan, inputs, {}, &buffers));
    state.SetIterationTime(buffers.node_seconds[1]);  // the conv and its fused requant
  }
  state.counters["MAC/s"] = benchmark::Counter(static_cast<double>(O * OH * OH * (depthwise ? 1 : C) * K * K) *
                                                   static_cast<double>(state.iterations()),
                                               benchmark::Counter::kIsRate);
  state.SetLabel(plan.nodes()[1].description);
}

// MobileNetV2's expensive shapes: expansions and projections at 112 and 56 pixels, a late 7x7 layer,
// the first conv, two VGG16 3x3 convs (224x224 x 64, 56x56 x 256), and the depthwise layers from
// 112x112 to 7x7.
BENCHMARK(BM_Layer)
    ->ArgsProduct({{0}, {16}, {96}, {112}, {1}, {1}, {1, 2}})
    ->ArgsProduct({{0}, {32}, {16}, {112}, {1}, {1}, {1, 2}})
    ->ArgsProduct({{0}, {24}, {144}, {56}, {1}, {1}, {1, 2}})
    ->ArgsProduct({{0}, {144}, {24}, {56}, {1}, {1}, {1, 2}})
    ->ArgsProduct({{0}, {960}, {160}, {7}, {1}, {1}, {1, 2}})
    ->ArgsProduct({{0}, {160}, {960}, {7}, {1}, {1}, {1, 2}})
    ->ArgsProduct({{0}, {3}, {32}, {224}, {3}, {2}, {1, 2}})
    ->ArgsProduct({{0}, {64}, {64}, {224}, {3}, {1}, {1, 2}})
    ->ArgsProduct({{0}, {256}, {256}, {56}, {3}, {1}, {1, 2}})
    ->ArgsProduct({{1}, {96}, {0}, {112}, {3}, {2}, {1, 2}})
    ->ArgsProduct({{1}, {144}, {0}, {56}, {3}, {1}, {1, 2}})
    ->ArgsProduct({{1}, {32}, {0}, {112}, {3}, {1}, {1, 2}})
    ->ArgsProduct({{1}, {192}, {0}, {28}, {3}, {1}, {1, 2}})
    ->ArgsProduct({{1}, {576}, {0}, {14}, {3}, {1}, {1, 2}})
    ->ArgsProduct({{1}, {960}, {0}, {7}, {3}, {1}, {1, 2}})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(0.5);

}  // namespace
}  // namespace qv

BENCHMARK_MAIN();
