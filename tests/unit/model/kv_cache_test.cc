// KvCache::create with KvCacheOptions::commit (what `serve` and `bench
// serve` use): a budget the host cannot back is a clear error at start, not
// an out-of-memory kill while the pages are touched. (Should the check go,
// this test touches more memory than is available: the kernel then kills
// it, a failure ctest reports.)
#include <gtest/gtest.h>

#include "devices/cpu/cpu_device.h"
#include "suanli/kv_cache.h"

namespace suanli {
namespace {

ModelInfo small_info() {
  ModelInfo info;
  // 256 KiB per 16-token block: the slot limit (2^30 tokens) is 16 TiB of
  // cache, far above any host's memory, so the memory check is what answers.
  info.n_layer = 4;
  info.n_head = 8;
  info.n_head_kv = 8;
  info.head_dim = 128;
  return info;
}

TEST(KvCache, commit_refuses_more_than_the_available_memory) {
  CpuDevice dev(1);
  const MemoryInfo mem = dev.memory();
  ASSERT_GT(mem.free_bytes, 0u);
  KvCacheOptions ko;
  ko.commit = true;
  ko.memory_bytes = mem.free_bytes + mem.free_bytes / 2;  // over what is available, under the slot limit
  auto kv = KvCache::create(dev, small_info(), ko);
  ASSERT_FALSE(kv.has_value());
  EXPECT_EQ(kv.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(kv.status().message().find("--kv-memory"), std::string::npos) << kv.status().message();
}

}  // namespace
}  // namespace suanli
