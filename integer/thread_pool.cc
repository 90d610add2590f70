#include "integer/thread_pool.h"

#include <immintrin.h>

#include <algorithm>

namespace qv::integer {

namespace {

// Spin until done() or about kSpins pauses have passed; true when done() became true.
constexpr int kSpins = 1500;

template <class Done>
bool spin_until(Done done) {
  for (int i = 0; i < kSpins; ++i) {
    if (done()) return true;
    _mm_pause();
  }
  return done();
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  const int workers = std::max(threads, 1) - 1;
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::drain() {
  for (;;) {
    const int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= n_) return;
    try {
      (*task_)(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
      next_.store(n_, std::memory_order_relaxed);  // stop handing out work
    }
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    auto woken = [&] { return stop_.load() || generation_.load() != seen; };  // seq_cst: see run()
    if (!spin_until(woken)) {
      // sleepers_ is raised before the predicate is checked under the lock, so a run() whose generation
      // this check misses sees sleepers_ > 0 and notifies under the same lock (all seq_cst).
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1);
      wake_.wait(lock, woken);
      sleepers_.fetch_sub(1);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = generation_.load(std::memory_order_acquire);
    drain();
    if (active_.fetch_sub(1) == 1 && caller_sleeping_.load()) {
      std::lock_guard<std::mutex> lock(mutex_);  // run() is asleep on done_, or about to be
      done_.notify_one();
    }
  }
}

void ThreadPool::run(int64_t n, const std::function<void(int64_t)>& task) {
  if (n <= 0) return;
  if (workers_.empty() || n == 1) {
    for (int64_t i = 0; i < n; ++i) task(i);
    return;
  }
  // No lock on the way when every worker is still spinning: a run costs a few atomics, not two mutex
  // round trips (MobileNetV2 makes ~250 runs per evaluation).
  task_ = &task;
  n_ = n;
  error_ = nullptr;
  next_.store(0, std::memory_order_relaxed);
  active_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  generation_.fetch_add(1);  // publishes task_, n_, next_, active_ (seq_cst: ordered before the sleepers_ check)
  if (sleepers_.load() > 0) {
    { std::lock_guard<std::mutex> lock(mutex_); }  // a sleeper between its check and its wait holds the lock
    wake_.notify_all();
  }
  drain();
  auto finished = [&] { return active_.load() == 0; };  // seq_cst: ordered after caller_sleeping_'s store
  if (!spin_until(finished)) {
    std::unique_lock<std::mutex> lock(mutex_);
    caller_sleeping_.store(true);
    done_.wait(lock, finished);
    caller_sleeping_.store(false);
  }
  std::exception_ptr error;
  {
    std::lock_guard<std::mutex> lock(mutex_);  // error_ is written under the lock by a failing task
    error = error_;
  }
  task_ = nullptr;
  if (error) std::rethrow_exception(error);
}

}  // namespace qv::integer
