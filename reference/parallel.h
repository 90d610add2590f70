// parallel_for: run f(i) for i in [0, n) on up to `threads` std::threads (0 = all cores).
//
// Work is split into contiguous blocks, one per thread; every index is computed by exactly one call, so
// results never depend on the thread count. An exception thrown by f is rethrown in the caller (the
// first one, by thread index).
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

namespace qv::reference {

inline int resolve_threads(int threads) {
  if (threads > 0) return threads;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

template <class F>
void parallel_for(int64_t n, int threads, F&& f) {
  const int64_t workers = std::min<int64_t>(resolve_threads(threads), n);
  if (workers <= 1) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
  std::vector<std::exception_ptr> errors(static_cast<size_t>(workers));
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(workers));
  for (int64_t t = 0; t < workers; ++t) {
    pool.emplace_back([&, t] {
      const int64_t begin = n * t / workers, end = n * (t + 1) / workers;
      try {
        for (int64_t i = begin; i < end; ++i) f(i);
      } catch (...) {
        errors[static_cast<size_t>(t)] = std::current_exception();
      }
    });
  }
  for (std::thread& th : pool) th.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace qv::reference
