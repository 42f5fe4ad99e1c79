// The thread pool's contracts: run() calls fn(i) exactly once per thread;
// parallel_for covers [0, n) exactly once whatever n, grain and thread count,
// also with more threads than cores (late workers, claimed chunks), and with
// the two kinds of job interleaved (a late worker of a parallel_for must not
// run the next run()'s job twice, nor a stale chunk function).
#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <random>
#include <utility>
#include <vector>

namespace suanli {
namespace {

TEST(ThreadPool, every_index_exactly_once_with_interleaved_jobs) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    std::mt19937 rng(static_cast<uint32_t>(threads));
    std::vector<int> hits(3000);
    for (int iter = 0; iter < 3000; ++iter) {
      if (iter % 5 == 2) {
        std::vector<std::atomic<int>> seen(static_cast<size_t>(threads));
        pool.run([&](int i) { seen[static_cast<size_t>(i)]++; });
        for (int i = 0; i < threads; ++i) ASSERT_EQ(seen[static_cast<size_t>(i)].load(), 1) << "thread " << i;
        continue;
      }
      const int n = std::uniform_int_distribution<int>(0, 2999)(rng);
      const int grain = std::uniform_int_distribution<int>(1, 64)(rng);
      // 0: the default chunking; otherwise finer chunks per thread.
      const int per_thread = iter % 3 == 0 ? 0 : std::uniform_int_distribution<int>(1, 64)(rng);
      std::fill(hits.begin(), hits.begin() + n, 0);
      pool.parallel_for(
          n, grain,
          [&](int64_t b, int64_t e) {
            EXPECT_TRUE(b % grain == 0) << "chunks start on a grain boundary";
            for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
          },
          per_thread);
      for (int i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)], 1) << "index " << i << " n=" << n;
    }
  }
}

// next_own_begin() names the start of a piece of the same job that has not
// run yet (so it is a piece boundary, and some body later begins there), or
// -1; never the piece being run, and -1 outside a job and where the pool
// has one thread.
TEST(ThreadPool, next_own_begin_names_a_piece_still_to_run) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.next_own_begin(), -1);
    std::mt19937 rng(static_cast<uint32_t>(11 + threads));
    for (int iter = 0; iter < 300; ++iter) {
      const int n = std::uniform_int_distribution<int>(1, 2000)(rng);
      const int grain = std::uniform_int_distribution<int>(1, 9)(rng);
      const int per_thread = iter % 2 == 0 ? 0 : std::uniform_int_distribution<int>(1, 40)(rng);
      std::mutex mu;
      std::vector<int64_t> begins;
      std::vector<std::pair<int64_t, int64_t>> named;  // (begin run, begin named)
      pool.parallel_for(
          n, grain,
          [&](int64_t b, int64_t) {
            const int64_t next = pool.next_own_begin();
            std::lock_guard<std::mutex> lock(mu);
            begins.push_back(b);
            named.emplace_back(b, next);
          },
          per_thread);
      std::sort(begins.begin(), begins.end());
      for (const auto& [b, next] : named) {
        if (threads == 1) {
          EXPECT_EQ(next, -1);
          continue;
        }
        if (next < 0) continue;
        EXPECT_NE(next, b) << "n " << n << " grain " << grain;
        EXPECT_TRUE(std::binary_search(begins.begin(), begins.end(), next))
            << "n " << n << " grain " << grain << " per thread " << per_thread << ": " << next
            << " is not where a piece begins";
      }
    }
    EXPECT_EQ(pool.next_own_begin(), -1) << "between jobs every run is empty";
  }
  // Two threads, two pieces: each run holds one piece, so after its claim a
  // thread's own run is empty.
  ThreadPool pool(2);
  for (int iter = 0; iter < 200; ++iter) {
    std::atomic<int> named{0};
    pool.parallel_for(
        2, 1, [&](int64_t, int64_t) { named += pool.next_own_begin() == -1 ? 0 : 1; }, 8);
    EXPECT_EQ(named.load(), 0);
  }
}

}  // namespace
}  // namespace suanli
