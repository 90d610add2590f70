// The optimized backend on the four product networks, as `qverify --model M --config C` integerizes them
// (seeded weights, calibrated, 224x224, batch 1), on 1 and 2 threads:
//   MobileNetV2-8b (pact.json), MobileNet V1-4b and ProxylessNAS Mobile14-4b (brevitas_4b.json),
//   VGG16-8b (brevitas_8b.json).
// Each benchmark times evaluate_output (packed activations, the network output only), then, in the same
// process and on the same number of threads: oneDNN int8 convolutions / inner products of the same layers,
// a LibTorch fp32 forward of the same network, the reference evaluator, and the int8 peak.
//   build/bench/bench_networks                        # all (about 4 minutes, most of it the reference)
//   build/bench/bench_networks --benchmark_filter=threads:2   # 2 threads only
//   QVERIFY_BENCH_DESCRIBE=1 build/bench/bench_networks ...     # also print what the planner chose per node,
//                                                               # a per-node profile, and each conv/linear
//                                                               # beside oneDNN's primitive for that layer
// Counters: ms (ours), GMAC/s, peak_fraction (GMAC/s over the int8 peak on as many threads: the larger of
// the vpdpbusd and AMX tdpbusd loops, both reported),
// onednn_ms and paired_ms (oneDNN's and our means over 10 paired blocks, ours and oneDNN alternately),
// onednn_over_ours (the median of the 10 blocks' ratios; > 1: ours faster) with its _min and _max,
// torch_fp32_ms, torch_over_ours, reference_ms, x_reference, identical (1 when our output equals the
// reference's, element for element).
// Nothing is timed while another engine's threads run: each block starts 20 ms after the other engine's
// last run, and LibTorch and the reference run after both.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
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
#include "harness/pipeline.h"
#include "integer/evaluator.h"
#include "reference/evaluator.h"

namespace qv {
namespace {

struct Spec {
  const char* label;
  const char* model;
  const char* config;
};
const Spec kNetworks[] = {
    {"MobileNetV2-8b", "mobilenet_v2", "pact.json"},
    {"MobileNetV1-4b", "mobilenet_v1", "brevitas_4b.json"},
    {"ProxylessNAS-4b", "proxylessnas_mobile14", "brevitas_4b.json"},
    {"VGG16-8b", "vgg16", "brevitas_8b.json"},
};

harness::IntegerModel& integer_model(int index) {
  static std::map<int, std::unique_ptr<harness::IntegerModel>> cache;
  auto& m = cache[index];
  if (!m) {
    harness::PipelineOptions o;
    o.model = kNetworks[index].model;
    o.config = kNetworks[index].config;
    o.resolution = 224;
    m = std::make_unique<harness::IntegerModel>(harness::integer_model(o));
  }
  return *m;
}

// Runs per node (and per oneDNN primitive) of the QVERIFY_BENCH_DESCRIBE profiles; each keeps its fastest.
constexpr int kProfileRuns = 30;
// Paired blocks of ours and oneDNN for the speed ratio (see BM_Network).
constexpr int kPairs = 10;

double mean_seconds(const std::vector<double>& runs) {
  double s = 0;
  for (double r : runs) s += r;
  return s / static_cast<double>(runs.size());
}

void BM_Network(benchmark::State& state) {
  const Spec& spec = kNetworks[state.range(0)];
  const int threads = static_cast<int>(state.range(1));
  harness::IntegerModel& m = integer_model(static_cast<int>(state.range(0)));
  const std::vector<IntTensor> inputs = {m.input};
  const integer::Plan plan(m.network, integer::Options{.threads = threads, .isa = "auto"});
  if (std::getenv("QVERIFY_BENCH_DESCRIBE") != nullptr) std::fprintf(stderr, "%s\n", integer::describe(plan).c_str());
  integer::OutputBuffers buffers;
  double ours = 0;
  Trace out;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    out = integer::evaluate_output(plan, inputs, {}, &buffers);
    ours += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(out.data());
  }
  const bool describe = std::getenv("QVERIFY_BENCH_DESCRIBE") != nullptr;
  std::vector<double> best;  // per node, filled when describing
  if (describe) {
    // Per-node profile: a few more runs with per-node clocks (kept out of the timed loop above); the
    // fastest run of each node, which is robust against the other tenants of a shared machine.
    const size_t count = m.network.nodes.size();
    best.assign(count, 1e30);
    const int runs = kProfileRuns;
    double best_run = 1e30, best_run_nodes = 0;  // the fastest whole run, and its nodes' sum
    for (int k = 0; k < runs; ++k) {
      buffers.node_seconds.assign(count, 0.0);
      const auto r0 = std::chrono::steady_clock::now();
      integer::evaluate_output(plan, inputs, {}, &buffers);
      const double run = std::chrono::duration<double>(std::chrono::steady_clock::now() - r0).count();
      double nodes = 0;
      for (size_t j = 0; j < count; ++j) best[j] = std::min(best[j], buffers.node_seconds[j]), nodes += buffers.node_seconds[j];
      if (run < best_run) best_run = run, best_run_nodes = nodes;
    }
    std::fprintf(stderr, "fastest whole run %.3f ms, its nodes %.3f ms\n", 1e3 * best_run, 1e3 * best_run_nodes);
    std::vector<size_t> order(count);
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return best[a] > best[b]; });
    double total = 0;
    for (double t : best) total += t;
    std::fprintf(stderr, "per-node profile (fastest of %d runs per node, sum %.3f ms):\n", runs, 1e3 * total);
    for (size_t k = 0; k < order.size() && k < 200; ++k)
      std::fprintf(stderr, "  %8.3f ms  %5.1f%%  %s  %s\n", 1e3 * best[order[k]], 100 * best[order[k]] / total,
                   m.network.nodes[order[k]].name.c_str(), plan.nodes()[order[k]].description.c_str());
    buffers.node_seconds.clear();
  }
  const double n = static_cast<double>(state.iterations());
  const double ours_s = ours / n;
  const double macs = static_cast<double>(bench::network_macs(m.network));
  state.counters["ms"] = 1e3 * ours_s;
  state.counters["GMAC"] = macs / 1e9;
  state.counters["GMAC/s"] = macs / ours_s / 1e9;
  // The machine's int8 peak on as many threads: AMX tdpbusd where the CPU has it, else vpdpbusd.
  const double vnni = bench::vnni_peak_gmacs(threads), amx = bench::amx_peak_gmacs(threads), peak = std::max(vnni, amx);
  state.counters["vnni_peak_GMAC/s"] = vnni;
  state.counters["amx_peak_GMAC/s"] = amx;
  state.counters["peak_fraction"] = peak > 0 ? macs / ours_s / 1e9 / peak : 0;

  std::string label = std::string(spec.label) + " (" + spec.model + ", " + spec.config + ")";
  if (bench::onednn_available()) {
    bench::OneDnnHandle dnn = bench::onednn_prepare(m.network, threads);
    bench::onednn_run(*dnn, threads);  // warm-up: JIT, first touch
    // Paired blocks: ours, then oneDNN, kPairs times over, each block ~0.25 s of runs after one untimed
    // run (which wakes that engine's threads), with a 20 ms pause between blocks in which the other
    // engine's threads stop spinning and go to sleep (ours spin 0.1 ms, libgomp's a few ms). This
    // machine's speed drifts by up to 1.4x over tens of seconds (a shared host), so a ratio of two
    // means measured one after the other moved by as much; the median of the blocks' ratios does not.
    const int64_t per_block = std::max<int64_t>(3, static_cast<int64_t>(0.25 / ours_s));
    std::vector<double> ours_blocks, dnn_blocks, ratios;
    for (int pair = 0; pair < kPairs; ++pair) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      integer::evaluate_output(plan, inputs, {}, &buffers);
      const auto t0 = std::chrono::steady_clock::now();
      for (int64_t k = 0; k < per_block; ++k) benchmark::DoNotOptimize(integer::evaluate_output(plan, inputs, {}, &buffers));
      const double o = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / static_cast<double>(per_block);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      bench::onednn_run(*dnn, threads);
      double d = 0;
      for (int64_t k = 0; k < per_block; ++k) d += bench::onednn_run(*dnn, threads);
      d /= static_cast<double>(per_block);
      ours_blocks.push_back(o), dnn_blocks.push_back(d), ratios.push_back(d / o);
    }
    std::sort(ratios.begin(), ratios.end());
    state.counters["onednn_ms"] = 1e3 * mean_seconds(dnn_blocks);
    state.counters["paired_ms"] = 1e3 * mean_seconds(ours_blocks);
    state.counters["onednn_over_ours"] = (ratios[(ratios.size() - 1) / 2] + ratios[ratios.size() / 2]) / 2;
    state.counters["onednn_over_ours_min"] = ratios.front();
    state.counters["onednn_over_ours_max"] = ratios.back();
    label += "; oneDNN " + bench::onednn_implementations(*dnn);
    if (describe) {
      // The same layers side by side, each its fastest run: where the two backends differ.
      std::map<std::string, size_t> index;
      for (size_t j = 0; j < m.network.nodes.size(); ++j) index[m.network.nodes[j].name] = j;
      const auto theirs = bench::onednn_profile(*dnn, threads, kProfileRuns);
      double sum_ours = 0, sum_theirs = 0;
      std::fprintf(stderr, "conv/linear layers against oneDNN (fastest of %d runs each; ours includes the fused requant):\n", kProfileRuns);
      for (const auto& [name, t] : theirs) {
        const double o = best.at(index.at(name));
        sum_ours += o, sum_theirs += t;
        std::fprintf(stderr, "  %8.3f ms ours %8.3f ms oneDNN  %5.2f  %s\n", 1e3 * o, 1e3 * t, t / o, name.c_str());
      }
      std::fprintf(stderr, "  %8.3f ms ours %8.3f ms oneDNN  %5.2f  sum over these layers\n", 1e3 * sum_ours, 1e3 * sum_theirs,
                   sum_theirs / sum_ours);
    }
  } else {
    label += "; oneDNN not built in";
  }
  {
    bench::TorchHandle torch = bench::torch_prepare(m.network);
    bench::torch_run(*torch, threads);
    std::vector<double> runs;
    for (int k = 0; k < 3; ++k) runs.push_back(bench::torch_run(*torch, threads));
    state.counters["torch_fp32_ms"] = 1e3 * mean_seconds(runs);
    state.counters["torch_over_ours"] = mean_seconds(runs) / ours_s;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const Trace reference = evaluate_reference(m.network, inputs, reference::ReferenceOptions{.threads = threads});
  const double reference_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  state.counters["reference_ms"] = 1e3 * reference_s;
  state.counters["x_reference"] = reference_s / ours_s;
  const TraceEntry* want = find_entry(reference, m.network.output);
  const TraceEntry* got = find_entry(out, m.network.output);
  state.counters["identical"] = want && got && want->value.data == got->value.data && want->value.shape == got->value.shape;
  state.SetLabel(label);
}
BENCHMARK(BM_Network)
    ->ArgNames({"net", "threads"})
    ->ArgsProduct({{0, 1, 2, 3}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

}  // namespace
}  // namespace qv

BENCHMARK_MAIN();
