// Options of the reference evaluator and of its per-op kernels. None of them changes a result.
#pragma once

namespace qv::reference {

struct ReferenceOptions {
  int threads = 0;            // worker threads for the per-channel loops; 0 = std::thread::hardware_concurrency()
  bool force_bigint = false;  // accumulate in BigInt even where the bound proves int64 enough (tests)
};

}  // namespace qv::reference
