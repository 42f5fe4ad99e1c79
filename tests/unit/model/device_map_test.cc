// A model split across devices (ModelOptions::layer_devices), checked with
// the CPU on both sides: two distinct CpuDevice objects with their own
// buffers, weight mappings and KV pools, different thread counts. The split
// must give the logits of the single-device model bit for bit (the CPU
// kernels are thread-count invariant), through prefill and decode, with the
// hidden state crossing devices once or several times. Skips when the
// default model is not cached (`make test` fetches it first).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "devices/cpu/cpu_device.h"
#include "suanli/kv_cache.h"
#include "suanli/model.h"
#include "unit/default_model.h"

namespace suanli {
namespace {

using testing::default_model_path;

// Prefill of `prompt`, then `steps` greedy decode steps: every logits row.
std::vector<float> run(Model& m, KvCache& kv, const std::vector<int32_t>& prompt, int steps) {
  std::vector<int32_t> table;
  EXPECT_TRUE(kv.reserve(table, static_cast<int64_t>(prompt.size()) + steps).ok());
  const int64_t V = m.n_vocab();
  std::vector<float> all, logits(static_cast<size_t>(V));
  Batch b;
  int32_t pos = 0;
  std::vector<int32_t> next = prompt;
  for (int s = 0; s <= steps; ++s) {
    b.clear();
    for (size_t i = 0; i < next.size(); ++i) {
      b.tokens.push_back(next[i]);
      b.positions.push_back(pos + static_cast<int32_t>(i));
      b.slots.push_back(kv.slot(table, pos + static_cast<int64_t>(i)));
    }
    b.seqs.push_back({0, static_cast<int32_t>(next.size()), pos, table});
    b.logits_for.push_back(static_cast<int32_t>(next.size()) - 1);
    Status st = m.forward(b, kv, logits.data());
    EXPECT_TRUE(st.ok()) << st.message();
    all.insert(all.end(), logits.begin(), logits.end());
    pos += static_cast<int32_t>(next.size());
    next = {static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin())};
  }
  return all;
}

TEST(DeviceMap, split_across_two_cpu_devices_matches_one_device) {
  const std::string path = default_model_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "default model not cached at " << path;
  CpuDevice a(2), b(1);
  KvCacheOptions ko;
  ko.memory_bytes = 16u << 20;
  ko.type = GgmlType::kF32;

  auto single = Model::load(path, a);
  ASSERT_TRUE(single.has_value()) << single.status().message();
  const int64_t L = (*single)->info().n_layer;
  auto kv1 = KvCache::create(a, (*single)->info(), ko);
  ASSERT_TRUE(kv1.has_value());
  const std::vector<int32_t> prompt = {1, 504, 3575, 282, 4649, 314, 2079, 28, 253, 655, 29, 1116, 5248};
  const std::vector<float> want = run(**single, **kv1, prompt, 6);

  // Halves, and alternating thirds (three crossings).
  std::vector<std::vector<Device*>> maps(2);
  for (int64_t l = 0; l < L; ++l) {
    maps[0].push_back(l < L / 2 ? &b : &a);
    maps[1].push_back((l * 3 / L) % 2 ? &b : &a);
  }
  for (const std::vector<Device*>& map : maps) {
    ModelOptions mo;
    mo.layer_devices = map;
    auto split = Model::load(path, a, mo);
    ASSERT_TRUE(split.has_value()) << split.status().message();
    EXPECT_EQ((*split)->layer_devices(), map);
    // A cache on the wrong devices is refused, not used.
    auto wrong = KvCache::create(a, (*split)->info(), ko);
    ASSERT_TRUE(wrong.has_value());
    Batch bad;
    bad.tokens = {1};
    bad.positions = {0};
    std::vector<int32_t> t;
    ASSERT_TRUE((*wrong)->reserve(t, 1).ok());
    bad.slots = {(*wrong)->slot(t, 0)};
    bad.seqs.push_back({0, 1, 0, t});
    bad.logits_for = {0};
    std::vector<float> scratch(static_cast<size_t>((*split)->n_vocab()));
    if (map != std::vector<Device*>(static_cast<size_t>(L), &a)) {
      EXPECT_FALSE((*split)->forward(bad, **wrong, scratch.data()).ok());
    }
    auto kv2 = KvCache::create(a, (*split)->info(), ko, (*split)->layer_devices());
    ASSERT_TRUE(kv2.has_value());
    for (int64_t l = 0; l < L; ++l) EXPECT_EQ((*kv2)->layer_device(l), map[l]);
    const std::vector<float> got = run(**split, **kv2, prompt, 6);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << "split logits differ";
  }

  // A map of the wrong length is an error at load.
  ModelOptions bad_map;
  bad_map.layer_devices = {&a, &b};
  EXPECT_FALSE(Model::load(path, a, bad_map).has_value());
}

}  // namespace
}  // namespace suanli
