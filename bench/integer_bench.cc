// Speed of the optimized integer backend (integer/): whole synthetic networks at 224x224, batch 1, on
// 1 and 2 threads per ISA tier, as GMAC/s; the machine's int8 MAC peak (a sustained vpdpbusd loop);
// and the speed-up over the reference evaluator (timed once per network, 2 threads, in the same run).
//   build-int/bench/bench_integer                                  # everything (about 3 minutes)
//   build-int/bench/bench_integer --benchmark_filter='/2/2/1'      # avx512vnni, 2 threads, recycled trace
// The plan (weight packing) is built once outside the timed loop, as an inference engine would; its
// cost is reported as a separate benchmark. Every evaluation returns the full trace (int64 tensors of
// every node), which is part of the measured time.
#include <benchmark/benchmark.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/network_macs.h"
#include "bench/libtorch_bench.h"
#include "bench/onednn_bench.h"
#include "bench/int8_peak.h"
#include "integer/evaluator.h"
#include "integer/isa.h"
#include "ir/synthetic.h"
#include "reference/evaluator.h"

namespace qv {
namespace {

struct Model {
  Network net;
  std::vector<IntTensor> inputs;
  double reference_seconds = 0;  // 0: not measured yet
};

Model& model(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Model>> models;
  auto& m = models[name];
  if (!m) {
    m = std::make_unique<Model>();
    m->net = name == "vgg16" ? synthetic_vgg16(224, 1) : synthetic_mobilenet_v2(224, 1);
    m->inputs = synthetic_inputs(m->net, 1);
  }
  return *m;
}

double reference_seconds(Model& m) {
  if (m.reference_seconds == 0) {
    const auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(evaluate_reference(m.net, m.inputs, reference::ReferenceOptions{.threads = 2}));
    m.reference_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return m.reference_seconds;
}

const char* kIsas[] = {"scalar", "avx2", "avx512vnni", "avx512amx"};

// Args: (isa index, threads, recycle). recycle = 1 hands each trace back to the next evaluation
// (evaluate(plan, inputs, std::move(previous))), so the ~100-220 MB of int64 trace tensors are not
// allocated, zero-filled and page-faulted again every time; 0 measures a fresh trace per call.
void run_network(benchmark::State& state, const std::string& name) {
  const char* isa = kIsas[state.range(0)];
  if (!integer::cpu_supports(*integer::parse_isa(isa))) {
    state.SkipWithError("ISA not supported by this CPU");
    return;
  }
  Model& m = model(name);
  const integer::Plan plan(m.net, integer::Options{.threads = static_cast<int>(state.range(1)), .isa = isa});
  const bool recycle = state.range(2) != 0;
  double seconds = 0;
  Trace previous;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    Trace trace = integer::evaluate(plan, m.inputs, recycle ? std::move(previous) : Trace{});
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(trace.data());
    if (recycle) previous = std::move(trace);
  }
  const double macs = static_cast<double>(bench::network_macs(m.net));
  state.counters["GMAC"] = macs / 1e9;
  state.counters["GMAC/s"] = benchmark::Counter(macs * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["x_reference"] = reference_seconds(m) / (seconds / static_cast<double>(state.iterations()));
  state.SetLabel(std::string(isa) + (recycle ? ", recycled trace" : ", fresh trace"));
}

void BM_MobileNetV2_224(benchmark::State& state) { run_network(state, "mobilenet_v2"); }
void BM_Vgg16_224(benchmark::State& state) { run_network(state, "vgg16"); }
BENCHMARK(BM_MobileNetV2_224)->ArgsProduct({{0, 1, 2, 3}, {1, 2}, {0, 1}})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_Vgg16_224)->ArgsProduct({{1, 2, 3}, {1, 2}, {0, 1}})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

// The output-only mode (evaluate_output): packed 8-bit activations from layer to layer, no int64 trace;
// only the network output is returned. Args: (isa index, threads). Buffers kept across iterations.
void run_output(benchmark::State& state, const std::string& name) {
  const char* isa = kIsas[state.range(0)];
  if (!integer::cpu_supports(*integer::parse_isa(isa))) {
    state.SkipWithError("ISA not supported by this CPU");
    return;
  }
  Model& m = model(name);
  const integer::Plan plan(m.net, integer::Options{.threads = static_cast<int>(state.range(1)), .isa = isa});
  integer::OutputBuffers buffers;
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    Trace out = integer::evaluate_output(plan, m.inputs, {}, &buffers);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(out.data());
  }
  const double macs = static_cast<double>(bench::network_macs(m.net));
  state.counters["GMAC"] = macs / 1e9;
  state.counters["GMAC/s"] = benchmark::Counter(macs * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["x_reference"] = reference_seconds(m) / (seconds / static_cast<double>(state.iterations()));
  state.SetLabel(std::string(isa) + ", output only");
}

void BM_MobileNetV2_224_Output(benchmark::State& state) { run_output(state, "mobilenet_v2"); }
void BM_Vgg16_224_Output(benchmark::State& state) { run_output(state, "vgg16"); }
BENCHMARK(BM_MobileNetV2_224_Output)->ArgsProduct({{1, 2, 3}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_Vgg16_224_Output)->ArgsProduct({{2, 3}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

// Against oneDNN in the same run: the benchmark loop times our evaluation (tier "auto"), then as many passes
// over oneDNN int8 convolutions / inner products of the same layers (onednn_bench.h) are timed, both on
// `threads` threads; primitives, plans and buffers created outside the timed code.
// Args: (network: 0 MobileNetV2, 1 VGG16; threads; mode: 0 full trace (recycled), 1 output only).
// Counters: ours_ms, onednn_ms and onednn_over_ours (> 1: ours is faster); torch_fp32_ms and
// torch_over_ours for a LibTorch fp32 forward of the same network (libtorch_bench.h).
void BM_VsOneDnn(benchmark::State& state) {
  if (!bench::onednn_available()) {
    state.SkipWithError("oneDNN not built in (libdnnl-dev not found at configure time)");
    return;
  }
  const std::string name = state.range(0) == 0 ? "mobilenet_v2" : "vgg16";
  const int threads = static_cast<int>(state.range(1));
  const bool output_only = state.range(2) != 0;
  Model& m = model(name);
  const integer::Plan plan(m.net, integer::Options{.threads = threads, .isa = "auto"});
  bench::OneDnnHandle dnn = bench::onednn_prepare(m.net, threads);
  double ours = 0;
  Trace previous;
  integer::OutputBuffers buffers;  // kept across iterations, as `previous` is for the full trace
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    if (output_only) {
      Trace out = integer::evaluate_output(plan, m.inputs, {}, &buffers);
      benchmark::DoNotOptimize(out.data());
    } else {
      Trace trace = integer::evaluate(plan, m.inputs, std::move(previous));
      benchmark::DoNotOptimize(trace.data());
      previous = std::move(trace);
    }
    ours += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  // oneDNN after ours, not interleaved: its OpenMP workers spin for a while after each parallel region
  // and would take the core our pool's worker needs (and the reverse). The mean of as many passes.
  bench::onednn_run(*dnn, threads);  // warm-up: JIT, first touch
  double theirs = 0;
  for (int64_t k = 0; k < state.iterations(); ++k) theirs += bench::onednn_run(*dnn, threads);
  // A LibTorch fp32 forward of the same network (libtorch_bench.h): one warm-up, then the mean of up to
  // 5 forwards (VGG16 takes ~0.4 s each).
  bench::TorchHandle torch = bench::torch_prepare(m.net);
  bench::torch_run(*torch, threads);
  const int64_t torch_runs = std::min<int64_t>(5, state.iterations());
  double torch_seconds = 0;
  for (int64_t k = 0; k < torch_runs; ++k) torch_seconds += bench::torch_run(*torch, threads);
  const double n = static_cast<double>(state.iterations());
  state.counters["torch_fp32_ms"] = 1e3 * torch_seconds / static_cast<double>(torch_runs);
  state.counters["torch_over_ours"] = (torch_seconds / static_cast<double>(torch_runs)) / (ours / n);
  state.counters["ours_ms"] = 1e3 * ours / n;
  state.counters["onednn_ms"] = 1e3 * theirs / n;
  state.counters["onednn_over_ours"] = theirs / ours;
  state.counters["layers"] = bench::onednn_layers(*dnn);
  state.SetLabel(name + (output_only ? ", output only" : ", full trace") + "; oneDNN: " + bench::onednn_implementations(*dnn));
}
BENCHMARK(BM_VsOneDnn)->ArgsProduct({{0, 1}, {1, 2}, {0, 1}})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

// Building the plan: every weight read, proven and packed.
void BM_PlanVgg16_224(benchmark::State& state) {
  Model& m = model("vgg16");
  for (auto _ : state) benchmark::DoNotOptimize(integer::Plan(m.net, integer::Options{.threads = 2, .isa = "auto"}));
}
BENCHMARK(BM_PlanVgg16_224)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

void BM_VnniPeak(benchmark::State& state) {
  if (!integer::cpu_supports(integer::Isa::avx512vnni)) {
    state.SkipWithError("no AVX-512 VNNI");
    return;
  }
  const int threads = static_cast<int>(state.range(0));
  constexpr int64_t kIterations = 20'000'000;
  for (auto _ : state) {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back([] { benchmark::DoNotOptimize(bench::vpdpbusd_loop(kIterations)); });
    for (auto& th : pool) th.join();
  }
  const double macs = 16.0 * 64.0 * static_cast<double>(kIterations) * threads;
  state.counters["GMAC/s"] = benchmark::Counter(macs * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_VnniPeak)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_AmxPeak(benchmark::State& state) {
  if (!integer::cpu_supports(integer::Isa::avx512amx)) {
    state.SkipWithError("no AMX (or no permission to use it)");
    return;
  }
  const int threads = static_cast<int>(state.range(0));
  double gmacs = 0;
  for (auto _ : state) gmacs = bench::amx_peak_gmacs(threads);
  state.counters["GMAC/s"] = gmacs;
}
BENCHMARK(BM_AmxPeak)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace
}  // namespace qv

BENCHMARK_MAIN();
