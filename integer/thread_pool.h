// A small pool of persistent worker threads (per evaluation, or kept in OutputBuffers across calls).
//
// A network runs a hundred short layers; starting std::threads per layer would cost more than a
// MobileNetV2 depthwise layer takes. The pool starts `threads - 1` workers once; run(n, f) splits the
// task indices [0, n) into one contiguous share per thread (the caller is thread 0), each handed out
// through its own atomic counter; a thread done with its share takes indices from the others', and
// run() returns when all are done. Every index runs exactly once, so results never depend on the
// thread count or the schedule. The first exception thrown by a task is rethrown by run().
//
// Why contiguous shares rather than one shared counter: the drivers number their tasks channel-block
// major, so the same thread computes the same channels and pixels layer after layer and evaluation
// after evaluation, and finds them in its own core's cache. With one shared counter the schedule
// scattered them, and MobileNetV2's pointwise convs barely sped up on a second core (on the AMX Xeon:
// the 16 -> 96 channel 112x112 conv 0.40 ms on 1 thread and 0.40 ms on 2 with the counter, 0.29-0.34 ms on 2 with shares).
//
// Between runs a worker spins for 0.1 ms (timed by the clock) before it sleeps on the
// condition variable, and run() spins the same way for the workers to finish: waking a sleeping thread
// costs tens of microseconds on a virtual machine, and MobileNetV2 makes 66 runs per evaluation.
// While every thread is spinning a run takes no lock at all (atomics only); the mutex and the condition
// variables are used only when a worker or the caller has gone to sleep.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace qv::integer {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  // Items per task for `items` items of `item_size` elements each: enough for about 4096 elements (so
  // handing a task out costs less than doing it), but no fewer than four tasks per thread while there
  // are that many items.
  int64_t items_per_task(int64_t items, int64_t item_size) const {
    return std::clamp<int64_t>(4096 / std::max<int64_t>(1, item_size), 1, std::max<int64_t>(1, items / (4 * threads())));
  }
  void run(int64_t n, const std::function<void(int64_t)>& task);
  // The index of the calling thread inside a task of run(): 0 for the caller, 1.. for the workers (0
  // outside a run).
  static int current_thread();

 private:
  void worker_loop(int self);
  void drain(int self);

  // Thread k's share of a run: indices [next, end) handed out from next; a thread that has finished its
  // own share takes indices from the others' (so the split is static unless the work is uneven).
  struct alignas(64) Share {
    std::atomic<int64_t> next{0};
    int64_t end = 0;
  };
  std::unique_ptr<Share[]> shares_;
  // The generation each worker has finished, in a line of its own that only that worker writes: run()
  // waits for all of them to reach its generation. (One counter that run() set and every worker
  // decremented moved its line between the cores three times per run.)
  struct alignas(64) Finished {
    std::atomic<uint64_t> generation{0};
  };
  std::unique_ptr<Finished[]> finished_;

  // Written by run() once per run and read by the spinning workers: one line, so a worker that sees the
  // new generation finds the task in the same transfer.
  alignas(64) std::atomic<uint64_t> generation_{0};
  const std::function<void(int64_t)>* task_ = nullptr;
  std::atomic<bool> stop_{false};
  // Written only when a thread goes to sleep (or a task throws), read on every run: a line of their own
  // stays cached on both cores.
  alignas(64) std::atomic<int> sleepers_{0};  // workers asleep on wake_ (or about to be)
  std::atomic<bool> caller_sleeping_{false};  // run() asleep on done_ (or about to be)
  std::atomic<bool> failed_{false};           // some task threw: error_ is set (under mutex_)

  alignas(64) std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::exception_ptr error_;
  std::vector<std::thread> workers_;
};

}  // namespace qv::integer
