// The thread pool's contracts: run() calls fn(i) exactly once per thread;
// parallel_for covers [0, n) exactly once whatever n, grain and thread count,
// also with more threads than cores (late workers, claimed chunks), and with
// the two kinds of job interleaved (a late worker of a parallel_for must not
// run the next run()'s job twice, nor a stale chunk function).
#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
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

}  // namespace
}  // namespace suanli
