#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SUANLI_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define SUANLI_CPU_RELAX() asm volatile("yield")
#else
#define SUANLI_CPU_RELAX() ((void)0)
#endif

namespace suanli {
namespace {

// How long an idle worker polls before sleeping: long enough to cover the
// gap between two ops of one decode step, short enough not to burn a core
// between requests.
constexpr auto kSpinFor = std::chrono::microseconds(2000);
// Polls before a waiting thread starts yielding its core (~10-50 us of pause
// instructions, depending on the CPU's pause latency). Past that, a pure spin
// would burn the time slice that the thread it waits for needs when the
// machine has more runnable threads than cores (measured: decode 20x slower
// next to one compiler process on 2 cores).
constexpr int kPureSpins = 2000;

// The pool a worker thread belongs to and its index there (the caller of
// run / parallel_for is index 0 of any pool).
thread_local const ThreadPool* t_pool = nullptr;
thread_local int t_index = 0;

// Waits until pred() holds: polls, then yields.
template <typename Pred>
void wait_until(Pred pred) {
  for (int spins = 0; !pred(); ++spins) {
    if (spins < kPureSpins) {
      SUANLI_CPU_RELAX();
    } else {
      std::this_thread::yield();
    }
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(n_threads < 1 ? 1 : n_threads), runs_(std::make_unique<Run[]>(n_threads_)) {
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back(&ThreadPool::worker, this, i);
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  state_.fetch_add(2, std::memory_order_acq_rel);
  state_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void ThreadPool::worker(int index) {
  t_pool = this;
  t_index = index;
  uint64_t seen = 0;
  for (;;) {
    const auto spin_start = std::chrono::steady_clock::now();
    uint64_t st;
    int spins = 0;
    while ((st = state_.load(std::memory_order_acquire)) == seen) {
      if (++spins < kPureSpins) {
        SUANLI_CPU_RELAX();
        continue;
      }
      std::this_thread::yield();
      if (spins % 64 == 0 && std::chrono::steady_clock::now() - spin_start > kSpinFor) {
        state_.wait(seen, std::memory_order_acquire);
      }
    }
    seen = st;
    if (stop_.load(std::memory_order_acquire)) return;
    if (st & 1) {
      // A dynamic job (if this worker is late, maybe a later one: see
      // claim_chunks).
      claim_chunks(index);
    } else {
      // A strict job cannot finish without this worker: job_ is this one's.
      (*job_)(index);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
}

int64_t ThreadPool::claim(int self, int64_t* count) {
  auto first = [](uint64_t v) { return static_cast<int64_t>(v >> 32); };
  auto end = [](uint64_t v) { return static_cast<int64_t>(v & 0xffffffffu); };
  const bool halving = halving_.load(std::memory_order_relaxed);
  std::atomic<uint64_t>& own = runs_[self].v;
  uint64_t v = own.load(std::memory_order_acquire);
  while (first(v) < end(v)) {
    const int64_t take = halving ? std::max<int64_t>(1, (end(v) - first(v)) / 2) : 1;
    if (own.compare_exchange_weak(v, v + (static_cast<uint64_t>(take) << 32), std::memory_order_acq_rel,
                                  std::memory_order_acquire)) {
      *count = take;
      return first(v);
    }
  }
  for (int j = 1; j < n_threads_; ++j) {
    std::atomic<uint64_t>& other = runs_[(self + j) % n_threads_].v;
    uint64_t w = other.load(std::memory_order_acquire);
    while (first(w) < end(w)) {
      if (other.compare_exchange_weak(w, w - 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
        *count = 1;
        return end(w) - 1;
      }
    }
  }
  return -1;
}

void ThreadPool::claim_chunks(int self) {
  // The pieces this thread ran are reported once, when it finds no more:
  // the job cannot end (nor the next one begin) before that, so every piece
  // counted here belongs to the job whose chunk_fn_ ran it. (A late worker
  // may find the next job's runs: it then helps with that one, equally
  // fine, since chunk_fn_ is read after the claim that synchronizes with
  // the runs' publication.)
  int64_t ran = 0, count = 0;
  for (int64_t c; (c = claim(self, &count)) >= 0; ran += count) {
    (*chunk_fn_.load(std::memory_order_acquire))(c, count);
  }
  if (ran > 0) done_.fetch_add(ran, std::memory_order_acq_rel);
}

void ThreadPool::publish(bool dynamic) {
  const uint64_t st = state_.load(std::memory_order_relaxed);
  state_.store(((st >> 1) + 1) << 1 | (dynamic ? 1 : 0), std::memory_order_release);
  state_.notify_all();
}

void ThreadPool::run(const std::function<void(int)>& fn) {
  if (n_threads_ == 1) {
    fn(0);
    return;
  }
  job_ = &fn;
  pending_.store(n_threads_ - 1, std::memory_order_release);
  publish(false);
  fn(0);
  wait_until([&] { return pending_.load(std::memory_order_acquire) == 0; });
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn,
                              int chunks_per_thread) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const int64_t units = (n + grain - 1) / grain;
  const int threads = static_cast<int>(std::min<int64_t>(n_threads_, units));
  if (threads <= 1) {
    fn(0, n);
    return;
  }
  // Pieces: the units themselves, or (chunks_per_thread) about that many
  // per thread, claimed one at a time.
  const bool halving = chunks_per_thread <= 0;
  const int64_t pieces = std::min<int64_t>(
      units, halving ? int64_t{0xffffffff} : int64_t{n_threads_} * chunks_per_thread);
  const std::function<void(int64_t, int64_t)> chunk = [&](int64_t first, int64_t count) {
    const int64_t begin = units * first / pieces * grain;
    const int64_t end = std::min(n, units * (first + count) / pieces * grain);
    if (begin < end) fn(begin, end);
  };
  done_.store(0, std::memory_order_relaxed);
  job_n_ = n;
  job_grain_ = grain;
  job_units_ = units;
  job_pieces_ = pieces;
  chunk_fn_.store(&chunk, std::memory_order_relaxed);
  halving_.store(halving, std::memory_order_relaxed);
  for (int i = 0; i < n_threads_; ++i) {
    const uint64_t first = static_cast<uint64_t>(pieces * i / n_threads_);
    const uint64_t end = static_cast<uint64_t>(pieces * (i + 1) / n_threads_);
    runs_[i].v.store(first << 32 | end, std::memory_order_release);
  }
  publish(true);
  claim_chunks(0);
  wait_until([&] { return done_.load(std::memory_order_acquire) == pieces; });
}

int64_t ThreadPool::next_own_begin() const {
  const int self = t_pool == this ? t_index : 0;
  const uint64_t v = runs_[self].v.load(std::memory_order_relaxed);
  const int64_t first = static_cast<int64_t>(v >> 32), end = static_cast<int64_t>(v & 0xffffffffu);
  if (first >= end) return -1;
  return std::min(job_n_, job_units_ * first / job_pieces_ * job_grain_);
}

}  // namespace suanli
