// A LibTorch fp32 forward of the same network as a qverify integer network (same layers, shapes, strides,
// paddings, groups; random float weights), for the comparison columns of bench_integer. The only
// translation unit of the benchmarks that includes LibTorch (ATen) headers: libtorch_bench.cc.
#pragma once

#include <memory>

#include "ir/network.h"

namespace qv::bench {

struct TorchNetwork;
struct TorchDeleter {
  void operator()(TorchNetwork* p) const;
};
using TorchHandle = std::unique_ptr<TorchNetwork, TorchDeleter>;

// Float weights and input created here, outside any timed loop.
TorchHandle torch_prepare(const Network& network);
// One forward pass on `threads` intra-op threads (at::set_num_threads); returns the wall time in seconds.
double torch_run(TorchNetwork& net, int threads);

}  // namespace qv::bench
