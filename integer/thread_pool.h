// A small pool of persistent worker threads (per evaluation, or kept in OutputBuffers across calls).
//
// A network runs a hundred short layers; starting std::threads per layer would cost more than a
// MobileNetV2 depthwise layer takes. The pool starts `threads - 1` workers once; run(n, f) hands out
// task indices [0, n) through an atomic counter to the workers and the calling thread, and returns
// when all are done. Every index runs exactly once, so results never depend on the thread count or the
// schedule. The first exception thrown by a task is rethrown by run().
//
// Between runs a worker spins for a while (1500 `pause`s, ~0.1 ms) before it sleeps on the
// condition variable, and run() spins the same way for the workers to finish: waking a sleeping thread
// costs tens of microseconds on a virtual machine, and MobileNetV2 makes ~250 runs per evaluation.
// While every thread is spinning a run takes no lock at all (atomics only); the mutex and the condition
// variables are used only when a worker or the caller has gone to sleep.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
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
  void run(int64_t n, const std::function<void(int64_t)>& task);

 private:
  void worker_loop();
  void drain();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::atomic<uint64_t> generation_{0};  // written under mutex_, read by spinning workers too
  std::atomic<bool> stop_{false};
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t n_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<int> active_{0};  // workers still inside the current generation
  std::atomic<int> sleepers_{0};  // workers asleep on wake_ (or about to be)
  std::atomic<bool> caller_sleeping_{false};  // run() asleep on done_ (or about to be)
  std::exception_ptr error_;
};

}  // namespace qv::integer
