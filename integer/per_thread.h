// One value per thread of a ThreadPool run, each on its own cache line, merged by the caller after the
// run: the drivers' range merges (MinMax per task) took a mutex per task, and on a VM whose two vCPUs
// pass a cache line in 160-600 ns (round trip), a lock the other core held last, and the totals beside
// it, cost more than a small task's work.
#pragma once

#include <cstddef>
#include <vector>

#include "integer/thread_pool.h"

namespace qv::integer {

template <class T>
class PerThread {
 public:
  explicit PerThread(const ThreadPool& pool) : slots_(static_cast<size_t>(pool.threads())) {}
  // The calling thread's value, inside a task of the pool's run().
  T& local() { return slots_[static_cast<size_t>(ThreadPool::current_thread())].value; }
  template <class F>
  void for_each(F f) const {
    for (const Slot& s : slots_) f(s.value);
  }

 private:
  struct alignas(64) Slot {
    T value;
  };
  std::vector<Slot> slots_;
};

// The threads' values merged (T::merge), after the run.
template <class T>
T merged(const PerThread<T>& values) {
  T total;
  values.for_each([&](const T& v) { total.merge(v); });
  return total;
}

}  // namespace qv::integer
