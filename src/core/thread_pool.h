// A persistent fork-join pool for the CPU device's ops.
//
// run(fn) calls fn(i) once on each of the pool's threads (the caller is
// thread 0) and returns when all have finished: for work that must be spread
// over distinct threads (bandwidth measurement, per-thread scratch).
//
// parallel_for(n, grain, fn) cuts [0, n) into a few chunks per thread. Each
// thread owns a contiguous run of chunks and takes them from the front, in
// order (a matmul's rows then stream as one sequence per thread, which the
// hardware prefetchers follow across chunk boundaries); a thread with none
// left takes the last chunk of another's run. A thread that is late (still
// waking, or descheduled because the machine is busy) so leaves its share to
// the others instead of stalling the whole op: the caller waits only for
// chunks that have been claimed. Claims from a thread's own run touch only
// that run's cache line, and each thread reports its finished chunks once
// per op: few cross-core cache-line transfers per op. Which thread runs a
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
#include <memory>
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
  void claim_chunks(int self);
  // The next chunk for thread `self`: its own run's first, else another
  // run's last; -1 when every run is empty.
  int64_t claim(int self);
  void publish(bool dynamic);

  int n_threads_;
  std::vector<std::thread> threads_;
  // state_ = generation << 1 | (job is dynamic). Bumped once per job.
  std::atomic<uint64_t> state_{0};
  // Strict jobs (run): every worker calls job_ once, then decrements pending_.
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<int> pending_{0};
  // Dynamic jobs (parallel_for): thread i's run of chunks is
  // runs_[i] = first << 32 | end (empty when first >= end; all runs are
  // empty between jobs, so a late worker finds nothing of an old job).
  struct alignas(64) Run {
    std::atomic<uint64_t> v{0};
  };
  std::unique_ptr<Run[]> runs_;
  std::atomic<const std::function<void(int64_t)>*> chunk_fn_{nullptr};
  alignas(64) std::atomic<int64_t> done_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace suanli
