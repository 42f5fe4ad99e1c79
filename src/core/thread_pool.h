// A persistent fork-join pool for the CPU device's ops.
//
// run(fn) calls fn(i) once on each of the pool's threads (the caller is
// thread 0) and returns when all have finished: for work that must be spread
// over distinct threads (bandwidth measurement, per-thread scratch).
//
// parallel_for(n, grain, fn) cuts [0, n) into pieces of `grain` units and
// gives each thread a contiguous run of them. A thread takes half of what
// is left of its own run at a time, from the front, so a matmul's rows
// stream in order through each thread (the hardware prefetchers follow)
// with a handful of claims per op; a thread whose run is empty takes single
// pieces from the end of another's. So the threads finish within about one
// piece of each other, and a thread that is late (still waking, or
// descheduled because the machine is busy) leaves its share to the others
// instead of stalling the op: the caller waits only for pieces that have
// been claimed. Claims from a thread's own run touch only that run's cache
// line, and each thread reports its finished pieces once per op. Which
// thread runs a piece never changes what the piece computes.
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

  // Runs fn(begin, end) over ranges covering [0, n): multiples of `grain`
  // except the last (see above). With `chunks_per_thread`, about that many
  // pieces per thread instead, claimed one at a time: for work items of
  // unequal cost (attention over sequences of different lengths), where
  // taking half a run at once could leave the others waiting.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn,
                    int chunks_per_thread = 0);

  // Inside a parallel_for body: where the piece the calling thread would
  // claim next from its own run begins (an index of [0, n), as fn's
  // begin), or -1 when its run is empty (its next piece, if any, is another
  // run's last). A hint, for asking memory for what comes next: another
  // thread may still take that piece first.
  int64_t next_own_begin() const;

 private:
  void worker(int index);
  // Claims and runs chunks of the current dynamic job until none is left.
  void claim_chunks(int self);
  // The next pieces for thread `self`: the first *count of its own run,
  // else another run's last one; -1 when every run is empty.
  int64_t claim(int self, int64_t* count);
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
  std::atomic<const std::function<void(int64_t, int64_t)>*> chunk_fn_{nullptr};
  // The current dynamic job's geometry (set before it is published): piece
  // p covers [units * p / pieces * grain, ...) of [0, n).
  int64_t job_n_ = 0, job_grain_ = 1, job_units_ = 0, job_pieces_ = 1;
  std::atomic<bool> halving_{true};
  alignas(64) std::atomic<int64_t> done_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace suanli
