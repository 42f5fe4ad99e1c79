// A persistent fork-join pool for the CPU device's ops.
//
// run(fn) calls fn(i) once on each of the pool's threads (the caller is
// thread 0) and returns when all have finished: for work that must be spread
// over distinct threads (bandwidth measurement, per-thread scratch).
//
// parallel_for(n, grain, fn) cuts [0, n) into a few chunks per thread that
// the threads claim from an atomic counter, the caller included. A thread
// that is late (still waking, or descheduled because the machine is busy)
// leaves its share to the others instead of stalling the whole op: the
// caller waits only for chunks that have been claimed. Which thread runs a
// chunk never changes what the chunk computes.
//
// Decode issues hundreds of small ops per token, so dispatch must cost
// microseconds: idle workers poll a state word, then yield, then sleep on
// it (std::atomic wait/notify, a futex on Linux).
//
// Thread safety: run() and parallel_for() are called by one thread at a time
// (the device's owner); fn must not call them on the same pool.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace suanli {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  void run(const std::function<void(int thread_index)>& fn);

  // Runs fn(begin, end) over chunks covering [0, n): multiples of `grain`
  // except the last, about kChunksPerThread per thread (the environment
  // variable SUANLI_POOL_CHUNKS overrides it, for experiments), or
  // `chunks_per_thread` when given: more, smaller chunks for work items of
  // unequal cost (attention over sequences of different lengths), where
  // one thread's last big chunk would leave the others waiting.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn,
                    int chunks_per_thread = 0);

  static constexpr int kChunksPerThread = 2;

 private:
  void worker(int index);
  // Claims and runs chunks of the current dynamic job until none is left.
  void claim_chunks();
  void publish(bool dynamic);

  int n_threads_;
  std::vector<std::thread> threads_;
  // state_ = generation << 1 | (job is dynamic). Bumped once per job.
  std::atomic<uint64_t> state_{0};
  // Strict jobs (run): every worker calls job_ once, then decrements pending_.
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<int> pending_{0};
  // Dynamic jobs (parallel_for): claim_ = n_chunks << 32 | next chunk.
  std::atomic<const std::function<void(int64_t)>*> chunk_fn_{nullptr};
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> done_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace suanli
