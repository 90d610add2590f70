// oneDNN int8 convolutions of the same layers as a qverify network, for the comparison columns of
// bench_integer. Built only when oneDNN (Debian libdnnl-dev) is found; otherwise onednn_available() is
// false and the comparison benchmarks report themselves as skipped.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ir/network.h"

namespace qv::bench {

struct OneDnnNetwork;
struct OneDnnDeleter {
  void operator()(OneDnnNetwork* p) const;
};
using OneDnnHandle = std::unique_ptr<OneDnnNetwork, OneDnnDeleter>;

bool onednn_available();
// One primitive per conv2d (u8 src, s8 weights, s32 bias, output scale to u8/s8 as the following
// requant's declared type, NHWC activations, weights in oneDNN's preferred layout) and per linear
// (inner product, s32 output), with their memories: all created here, outside any timed loop, for
// `threads` OpenMP threads (a brgemm primitive fixes its thread count when it is created: one created
// under a two-thread default ran on two threads inside a one-thread benchmark).
OneDnnHandle onednn_prepare(const Network& network, int threads);
// Runs every primitive once on `threads` OpenMP threads; returns the wall time in seconds.
double onednn_run(OneDnnNetwork& net, int threads);
// Per-primitive clocks: the fastest of `runs` runs of each primitive, with the name of its node.
std::vector<std::pair<std::string, double>> onednn_profile(OneDnnNetwork& net, int threads, int runs);
// The number of layers (primitives) and how many were created with a reference ("ref") implementation.
int onednn_layers(const OneDnnNetwork& net);
std::string onednn_implementations(const OneDnnNetwork& net);

}  // namespace qv::bench
