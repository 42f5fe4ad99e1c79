#include "core/thread_pool.h"

#include <chrono>

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

// How long an idle worker spins before sleeping: long enough to cover the
// gap between two ops of one decode step, short enough not to burn a core
// between requests.
constexpr auto kSpinFor = std::chrono::microseconds(2000);
// Polls before a waiting thread starts yielding its core (~10-50 us of pause
// instructions, depending on the CPU's pause latency).
constexpr int kPureSpins = 2000;

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back(&ThreadPool::worker, this, i);
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    auto spin_start = std::chrono::steady_clock::now();
    uint64_t gen;
    int spins = 0;
    while ((gen = generation_.load(std::memory_order_acquire)) == seen) {
      if (++spins < kPureSpins) {
        SUANLI_CPU_RELAX();
        continue;
      }
      // Past a few microseconds, yield between polls: when the machine has
      // more runnable threads than cores, a pure spin would burn the time
      // slice the thread we wait for needs (measured: 20x slower decode
      // next to one compiler process on 2 cores).
      std::this_thread::yield();
      if (spins % 64 == 0 && std::chrono::steady_clock::now() - spin_start > kSpinFor) {
        generation_.wait(seen, std::memory_order_acquire);
      }
    }
    seen = gen;
    if (stop_.load(std::memory_order_acquire)) return;
    (*job_)(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run(const std::function<void(int)>& fn) {
  if (n_threads_ == 1) {
    fn(0);
    return;
  }
  job_ = &fn;
  pending_.store(n_threads_ - 1, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  fn(0);
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < kPureSpins) {
      SUANLI_CPU_RELAX();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const int64_t units = (n + grain - 1) / grain;
  const int threads = static_cast<int>(std::min<int64_t>(n_threads_, units));
  if (threads <= 1) {
    fn(0, n);
    return;
  }
  run([&](int i) {
    if (i >= threads) return;
    const int64_t begin = units * i / threads * grain;
    const int64_t end = std::min(n, units * (i + 1) / threads * grain);
    if (begin < end) fn(begin, end);
  });
}

}  // namespace suanli
