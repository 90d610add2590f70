#include "integer/thread_pool.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>

namespace qv::integer {

namespace {

thread_local int t_current_thread = 0;

// Spin until done() or kSpinTime has passed; true when done() became true. Timed, not counted: the
// length of a `pause` differs by CPU. 1500 of them, meant as ~0.1 ms, lasted ~35 us on AMD Zen 4 (about
// 23 ns each), where a gap of 40 us between two runs put the worker to sleep and the next run paid
// ~20-25 us to wake it.
constexpr auto kSpinTime = std::chrono::microseconds(100);

template <class Done>
bool spin_until(Done done) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      _mm_pause();
    }
    if (std::chrono::steady_clock::now() - start > kSpinTime) return done();
  }
}

}  // namespace

ThreadPool::ThreadPool(int threads)
    : shares_(std::make_unique<Share[]>(static_cast<size_t>(std::max(threads, 1)))),
      finished_(std::make_unique<Finished[]>(static_cast<size_t>(std::max(threads, 1)))) {
  const int workers = std::max(threads, 1) - 1;
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this, i] { worker_loop(i + 1); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

int ThreadPool::current_thread() { return t_current_thread; }

void ThreadPool::drain(int self) {
  t_current_thread = self;  // (the caller's is set, and restored, by run())
  const int count = threads();
  for (int j = 0; j < count; ++j) {
    Share& s = shares_[static_cast<size_t>((self + j) % count)];
    // Another thread's share: look before taking. A fetch_add claims the line from the core that is
    // working through that share even when nothing is left in it.
    if (j > 0 && s.next.load(std::memory_order_relaxed) >= s.end) continue;
    for (;;) {
      const int64_t i = s.next.fetch_add(1, std::memory_order_relaxed);
      if (i >= s.end) break;
      try {
        (*task_)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
        failed_.store(true);
        for (int k = 0; k < count; ++k) shares_[static_cast<size_t>(k)].next.store(shares_[static_cast<size_t>(k)].end, std::memory_order_relaxed);  // stop handing out work
      }
    }
  }
}

void ThreadPool::worker_loop(int self) {
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
    drain(self);
    finished_[static_cast<size_t>(self)].generation.store(seen);  // seq_cst: ordered before the caller_sleeping_ load
    if (caller_sleeping_.load()) {
      std::lock_guard<std::mutex> lock(mutex_);  // run() is asleep on done_, or about to be
      done_.notify_one();
    }
  }
}

void ThreadPool::run(int64_t n, const std::function<void(int64_t)>& task) {
  if (n <= 0) return;
  // The caller is thread 0 of this run, also when it is a worker of another pool running this one
  // inside a task; its own index comes back afterwards.
  struct CallerIndex {
    int saved = t_current_thread;
    CallerIndex() { t_current_thread = 0; }
    ~CallerIndex() { t_current_thread = saved; }
  } caller_index;
  if (workers_.empty() || n == 1) {
    for (int64_t i = 0; i < n; ++i) task(i);
    return;
  }
  // No lock on the way when every worker is still spinning: a run costs a few atomics, not two mutex
  // round trips (MobileNetV2 makes 66 runs per evaluation).
  task_ = &task;
  // Contiguous shares: the same indices land on the same thread run after run, so a layer's tasks find
  // in their own core's cache what the same tasks of the previous evaluation wrote.
  const int count = threads();
  for (int k = 0; k < count; ++k) {
    Share& s = shares_[static_cast<size_t>(k)];
    s.next.store(n * k / count, std::memory_order_relaxed);
    s.end = n * (k + 1) / count;
  }
  const uint64_t generation = generation_.fetch_add(1) + 1;  // publishes task_ and the shares (seq_cst: ordered before the sleepers_ check)
  if (sleepers_.load() > 0) {
    { std::lock_guard<std::mutex> lock(mutex_); }  // a sleeper between its check and its wait holds the lock
    wake_.notify_all();
  }
  drain(0);
  auto finished = [&] {  // seq_cst: ordered after caller_sleeping_'s store
    for (int k = 1; k < count; ++k)
      if (finished_[static_cast<size_t>(k)].generation.load() != generation) return false;
    return true;
  };
  if (!spin_until(finished)) {
    std::unique_lock<std::mutex> lock(mutex_);
    caller_sleeping_.store(true);
    done_.wait(lock, finished);
    caller_sleeping_.store(false);
  }
  task_ = nullptr;
  // Every worker's finished generation was read above (seq_cst), after its tasks and so after any
  // failed_ they set.
  if (!failed_.load()) return;
  std::exception_ptr error;
  {
    std::lock_guard<std::mutex> lock(mutex_);  // error_ is written under the lock by a failing task
    error = error_;
    error_ = nullptr;
    failed_.store(false);
  }
  std::rethrow_exception(error);
}

}  // namespace qv::integer
