// A persistent fork-join pool for the CPU device's ops.
//
// run(fn) calls fn(i) once on each of the pool's threads (the caller is
// thread 0) and returns when all have finished. Decode issues hundreds of
// small ops per token, so dispatch must cost microseconds: idle workers spin
// on a generation counter for a short while before sleeping on it
// (std::atomic wait/notify, a futex on Linux).
//
// Thread safety: run() is called by one thread at a time (the device's
// owner); fn must not call run() on the same pool.
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

  // Splits [0, n) into size() contiguous chunks, multiples of `grain` except
  // the last, and runs fn(begin, end) for each non-empty chunk.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> threads_;
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace suanli
