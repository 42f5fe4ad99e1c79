#include "suanli/block_manager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace suanli {
namespace {

constexpr int32_t kBs = 4;

std::vector<int32_t> tokens_from(int32_t first, int32_t n) {
  std::vector<int32_t> t(n);
  for (int32_t i = 0; i < n; ++i) t[i] = first + i;
  return t;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A sequence computing its whole prompt (after reusing its cached prefix).
BlockTable compute(BlockManager& m, const std::vector<int32_t>& prompt) {
  BlockTable t = m.start_sequence(prompt);
  Status s = m.ensure_capacity(t, static_cast<int64_t>(prompt.size()));
  EXPECT_TRUE(s.ok()) << s.to_string();
  t.n_tokens = static_cast<int64_t>(prompt.size());
  m.commit_full_blocks(t, prompt);
  return t;
}

// Computes a prompt in its own blocks, without looking at the prefix cache.
BlockTable compute_without_reuse(BlockManager& m, const std::vector<int32_t>& prompt) {
  BlockTable t;
  Status s = m.ensure_capacity(t, static_cast<int64_t>(prompt.size()));
  EXPECT_TRUE(s.ok()) << s.to_string();
  t.n_tokens = static_cast<int64_t>(prompt.size());
  m.commit_full_blocks(t, prompt);
  return t;
}

void expect_valid(const BlockManager& m) {
  Status s = m.validate();
  EXPECT_TRUE(s.ok()) << s.to_string();
}

BlockId must_allocate(BlockManager& m) {
  Expected<BlockId> id = m.allocate();
  EXPECT_TRUE(id.has_value()) << id.status().to_string();
  return id.value_or(kNoBlock);
}

uint64_t constant_key(uint64_t, std::span<const int32_t>) { return 42; }

// Ignores the parent: equal tokens after different prefixes share a key.
uint64_t tokens_only_key(uint64_t, std::span<const int32_t> tokens) {
  return default_block_key(kRootBlockKey, tokens);
}

// Every first block collides with every other first block.
uint64_t first_blocks_collide_key(uint64_t parent_key, std::span<const int32_t> tokens) {
  if (parent_key == kRootBlockKey) return 7;
  return default_block_key(parent_key, tokens);
}

// ---- blocks and reference counts ---------------------------------------------------

TEST(BlockManager, allocates_distinct_blocks_then_reports_exhaustion) {
  BlockManager m(4, kBs);
  std::vector<BlockId> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(must_allocate(m));
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end());
  Expected<BlockId> none = m.allocate();
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(m.stats().in_use, 4);
  EXPECT_DOUBLE_EQ(m.stats().usage(), 1.0);
  expect_valid(m);
}

TEST(BlockManager, counts_references_and_frees_unregistered_block_at_zero) {
  BlockManager m(2, kBs);
  BlockId a = must_allocate(m);
  m.retain(a);
  m.retain(a);
  EXPECT_EQ(m.ref_count(a), 3);
  m.release(a);
  m.release(a);
  EXPECT_EQ(m.ref_count(a), 1);
  EXPECT_EQ(m.stats().in_use, 1);
  m.release(a);
  EXPECT_EQ(m.ref_count(a), 0);
  EXPECT_FALSE(m.is_cached(a));
  EXPECT_EQ(m.stats().free, 2);
  EXPECT_EQ(m.stats().in_use, 0);
  expect_valid(m);
}

TEST(BlockManagerDeathTest, releasing_a_free_block_aborts) {
  BlockManager m(2, kBs);
  BlockId a = must_allocate(m);
  m.release(a);
  EXPECT_DEATH(m.release(a), "");
}

TEST(BlockManagerDeathTest, retaining_a_free_block_aborts) {
  BlockManager m(2, kBs);
  EXPECT_DEATH(m.retain(0), "");
}

TEST(BlockManager, released_registered_block_stays_cached_with_its_tokens) {
  BlockManager m(8, kBs);
  std::vector<int32_t> prompt = tokens_from(100, 9);  // two full blocks and one token
  BlockTable t = compute(m, prompt);
  ASSERT_EQ(t.blocks.size(), 3u);
  EXPECT_TRUE(m.is_registered(t.blocks[0]));
  EXPECT_TRUE(m.is_registered(t.blocks[1]));
  EXPECT_FALSE(m.is_registered(t.blocks[2]));  // partial blocks are never registered
  std::vector<BlockId> held = t.blocks;
  m.release_all(t);
  EXPECT_TRUE(t.blocks.empty());
  EXPECT_TRUE(m.is_cached(held[0]));
  EXPECT_TRUE(m.is_cached(held[1]));
  EXPECT_FALSE(m.is_cached(held[2]));
  std::span<const int32_t> stored = m.stored_tokens(held[1]);
  EXPECT_EQ(std::vector<int32_t>(stored.begin(), stored.end()), tokens_from(104, 4));
  BlockManagerStats s = m.stats();
  EXPECT_EQ(s.cached, 2);
  EXPECT_EQ(s.free, 6);
  EXPECT_EQ(s.in_use, 0);
  expect_valid(m);
}

// ---- eviction ----------------------------------------------------------------------

TEST(BlockManager, allocate_prefers_free_blocks_over_evicting_cached_ones) {
  BlockManager m(4, kBs);
  BlockTable t = compute(m, tokens_from(0, 8));
  m.release_all(t);
  ASSERT_EQ(m.stats().cached, 2);
  must_allocate(m);
  must_allocate(m);
  EXPECT_EQ(m.stats().evictions, 0u);
  EXPECT_EQ(m.stats().cached, 2);
  expect_valid(m);
}

TEST(BlockManager, evicts_least_recently_used_cached_block_first) {
  BlockManager m(3, kBs);
  BlockId a = must_allocate(m), b = must_allocate(m), c = must_allocate(m);
  ASSERT_EQ(m.register_full(a, kNoBlock, tokens_from(0, kBs)), RegisterResult::kRegistered);
  ASSERT_EQ(m.register_full(b, kNoBlock, tokens_from(10, kBs)), RegisterResult::kRegistered);
  ASSERT_EQ(m.register_full(c, kNoBlock, tokens_from(20, kBs)), RegisterResult::kRegistered);
  m.release(b);
  m.release(a);
  m.release(c);  // LRU order: b, a, c
  EXPECT_EQ(must_allocate(m), b);
  EXPECT_FALSE(m.is_registered(b));
  EXPECT_EQ(must_allocate(m), a);
  EXPECT_EQ(m.stats().evictions, 2u);
  EXPECT_TRUE(m.is_cached(c));
  expect_valid(m);
}

TEST(BlockManager, match_moves_block_to_most_recently_used) {
  BlockManager m(2, kBs);
  BlockId a = must_allocate(m), b = must_allocate(m);
  ASSERT_EQ(m.register_full(a, kNoBlock, tokens_from(0, kBs)), RegisterResult::kRegistered);
  ASSERT_EQ(m.register_full(b, kNoBlock, tokens_from(10, kBs)), RegisterResult::kRegistered);
  m.release(a);
  m.release(b);  // LRU: a, b
  std::vector<BlockId> hit = m.match_prefix(tokens_from(0, kBs));
  ASSERT_EQ(hit, std::vector<BlockId>{a});
  m.release(a);  // LRU: b, a
  EXPECT_EQ(must_allocate(m), b);
  expect_valid(m);
}

TEST(BlockManager, release_all_releases_the_tail_first_so_it_is_evicted_first) {
  BlockManager m(3, kBs);
  BlockTable t = compute(m, tokens_from(0, 3 * kBs));
  std::vector<BlockId> held = t.blocks;
  m.release_all(t);
  EXPECT_EQ(must_allocate(m), held[2]);
  EXPECT_EQ(must_allocate(m), held[1]);
  // The head survives and is still matchable.
  std::vector<BlockId> hit = m.match_prefix(tokens_from(0, 3 * kBs));
  EXPECT_EQ(hit, std::vector<BlockId>{held[0]});
  expect_valid(m);
}

TEST(BlockManager, evicted_parent_makes_children_unmatchable_and_replaceable) {
  BlockManager m(3, kBs);
  std::vector<int32_t> prompt = tokens_from(0, 2 * kBs);
  std::span<const int32_t> first(prompt.data(), kBs), second(prompt.data() + kBs, kBs);
  BlockId a = must_allocate(m), b = must_allocate(m);
  ASSERT_EQ(m.register_full(a, kNoBlock, first), RegisterResult::kRegistered);
  ASSERT_EQ(m.register_full(b, a, second), RegisterResult::kRegistered);
  m.release(a);
  m.release(b);  // LRU: a, b — the parent is older
  BlockId c = must_allocate(m);  // the free one
  BlockId a2 = must_allocate(m);  // evicts a
  ASSERT_EQ(a2, a);
  EXPECT_TRUE(m.match_prefix(prompt).empty());
  // The parent is computed again: a new identity, so the old child (computed
  // after the old parent) is not trusted.
  ASSERT_EQ(m.register_full(a2, kNoBlock, first), RegisterResult::kRegistered);
  std::vector<BlockId> hit = m.match_prefix(prompt);
  EXPECT_EQ(hit, std::vector<BlockId>{a2});
  m.release(a2);
  // A new child after the new parent takes over the key from the stale one.
  ASSERT_EQ(m.register_full(c, a2, second), RegisterResult::kRegistered);
  EXPECT_FALSE(m.is_registered(b));
  hit = m.match_prefix(prompt);
  EXPECT_EQ(hit, (std::vector<BlockId>{a2, c}));
  expect_valid(m);
}

// ---- prefix matching ---------------------------------------------------------------

TEST(BlockManager, match_prefix_returns_longest_chain_of_whole_blocks) {
  BlockManager m(16, kBs);
  std::vector<int32_t> prompt = tokens_from(0, 2 * kBs + 2);
  BlockTable t = compute(m, prompt);
  std::vector<BlockId> full(t.blocks.begin(), t.blocks.begin() + 2);
  m.release_all(t);

  std::vector<BlockId> hit = m.match_prefix(concat(tokens_from(0, 2 * kBs), tokens_from(500, 6)));
  EXPECT_EQ(hit, full);
  for (BlockId id : hit) m.release(id);

  hit = m.match_prefix(concat(tokens_from(0, kBs), tokens_from(500, kBs)));
  EXPECT_EQ(hit, std::vector<BlockId>{full[0]});
  for (BlockId id : hit) m.release(id);

  EXPECT_TRUE(m.match_prefix(tokens_from(1, 3 * kBs)).empty());
  // Partial blocks never match.
  EXPECT_TRUE(m.match_prefix(tokens_from(0, kBs - 1)).empty());
  expect_valid(m);
}

TEST(BlockManager, match_prefix_never_exceeds_max_tokens) {
  BlockManager m(16, kBs);
  std::vector<int32_t> prompt = tokens_from(0, 2 * kBs);
  BlockTable t = compute(m, prompt);
  m.release_all(t);

  std::vector<BlockId> all = m.match_prefix(prompt, 2 * kBs);
  EXPECT_EQ(all.size(), 2u);
  for (BlockId id : all) m.release(id);
  EXPECT_TRUE(m.match_prefix(prompt, kBs - 1).empty());
  EXPECT_TRUE(m.match_prefix(prompt, -5).empty());

  // start_sequence leaves at least one token to compute.
  BlockTable again = m.start_sequence(prompt);
  EXPECT_EQ(again.blocks.size(), 1u);
  EXPECT_EQ(again.n_tokens, kBs);
  EXPECT_EQ(again.n_committed, 1);
  m.release_all(again);
  expect_valid(m);
}

TEST(BlockManager, matched_blocks_are_retained_and_not_evictable) {
  BlockManager m(2, kBs);
  BlockTable t = compute(m, tokens_from(0, 2 * kBs));
  m.release_all(t);
  ASSERT_EQ(m.stats().cached, 2);
  std::vector<BlockId> hit = m.match_prefix(tokens_from(0, 2 * kBs));
  ASSERT_EQ(hit.size(), 2u);
  for (BlockId id : hit) {
    EXPECT_EQ(m.ref_count(id), 1);
    EXPECT_FALSE(m.is_cached(id));
  }
  EXPECT_EQ(m.stats().cached, 0);
  Expected<BlockId> none = m.allocate();
  EXPECT_FALSE(none.has_value());
  expect_valid(m);
}

TEST(BlockManager, equal_block_tokens_after_a_different_prefix_do_not_match) {
  BlockManager m(16, kBs);
  std::vector<int32_t> shared = tokens_from(50, kBs);
  BlockTable t1 = compute(m, concat(tokens_from(0, kBs), concat(shared, {1})));
  EXPECT_TRUE(m.match_prefix(concat(tokens_from(10, kBs), shared)).empty());
  BlockTable t2 = compute(m, concat(tokens_from(10, kBs), concat(shared, {1})));
  EXPECT_NE(t1.blocks[1], t2.blocks[1]);
  EXPECT_TRUE(m.is_registered(t2.blocks[1]));
  std::vector<BlockId> hit = m.match_prefix(concat(tokens_from(0, kBs), shared));
  EXPECT_EQ(hit, (std::vector<BlockId>{t1.blocks[0], t1.blocks[1]}));
  for (BlockId id : hit) m.release(id);
  m.release_all(t1);
  m.release_all(t2);
  expect_valid(m);
}

TEST(BlockManager, collision_never_matches_wrong_tokens) {
  BlockManager m(BlockManagerOptions{8, kBs, constant_key});
  BlockId a = must_allocate(m), b = must_allocate(m);
  ASSERT_EQ(m.register_full(a, kNoBlock, tokens_from(0, kBs)), RegisterResult::kRegistered);
  // Same key, other tokens: the first registration keeps the key.
  EXPECT_EQ(m.register_full(b, kNoBlock, tokens_from(9, kBs)), RegisterResult::kCollision);
  EXPECT_FALSE(m.is_registered(b));
  EXPECT_TRUE(m.match_prefix(tokens_from(9, kBs)).empty());
  EXPECT_GE(m.stats().key_collisions, 2u);
  std::vector<BlockId> hit = m.match_prefix(tokens_from(0, kBs));
  EXPECT_EQ(hit, std::vector<BlockId>{a});
  expect_valid(m);
}

TEST(BlockManager, collision_never_matches_equal_tokens_after_another_parent) {
  BlockManager m(BlockManagerOptions{16, kBs, tokens_only_key});
  std::vector<int32_t> shared = tokens_from(50, kBs);
  BlockTable t1 = compute(m, concat(tokens_from(0, kBs), concat(shared, {1})));
  // Its second block has the same key as t1's (the key ignores the parent)
  // but follows another prefix, so its KV differs.
  BlockTable t2 = compute(m, concat(tokens_from(10, kBs), concat(shared, {1})));
  EXPECT_FALSE(m.is_registered(t2.blocks[1]));
  std::vector<BlockId> hit = m.match_prefix(concat(tokens_from(10, kBs), shared));
  EXPECT_EQ(hit, std::vector<BlockId>{t2.blocks[0]});
  EXPECT_GE(m.stats().key_collisions, 2u);
  for (BlockId id : hit) m.release(id);
  m.release_all(t1);
  m.release_all(t2);
  expect_valid(m);
}

TEST(BlockManager, children_of_a_collided_block_are_never_registered) {
  BlockManager m(BlockManagerOptions{16, kBs, first_blocks_collide_key});
  std::vector<int32_t> second = tokens_from(50, kBs);
  BlockTable t1 = compute(m, concat(tokens_from(0, kBs), {1}));
  BlockId b0 = must_allocate(m), b1 = must_allocate(m);
  EXPECT_EQ(m.register_full(b0, kNoBlock, tokens_from(10, kBs)), RegisterResult::kCollision);
  EXPECT_EQ(m.register_full(b1, b0, second), RegisterResult::kParentUncached);
  EXPECT_TRUE(m.match_prefix(concat(tokens_from(10, kBs), second)).empty());
  m.release_all(t1);
  expect_valid(m);
}

TEST(BlockManager, identical_block_keeps_the_registered_one_and_aliases_the_new_one) {
  BlockManager m(16, kBs);
  std::vector<int32_t> prompt = tokens_from(0, 2 * kBs);
  BlockTable t1 = compute_without_reuse(m, prompt);
  BlockTable t2 = compute_without_reuse(m, concat(prompt, tokens_from(70, kBs)));
  EXPECT_TRUE(m.is_registered(t1.blocks[0]));
  EXPECT_FALSE(m.is_registered(t2.blocks[0]));
  EXPECT_FALSE(m.is_registered(t2.blocks[1]));
  // A block after a duplicate still registers: it follows the same contents.
  EXPECT_TRUE(m.is_registered(t2.blocks[2]));
  std::vector<BlockId> expected{t1.blocks[0], t1.blocks[1], t2.blocks[2]};
  m.release_all(t1);
  m.release_all(t2);
  EXPECT_EQ(m.stats().cached, 3);
  std::vector<BlockId> hit = m.match_prefix(concat(prompt, tokens_from(70, kBs)));
  EXPECT_EQ(hit, expected);
  expect_valid(m);
}

TEST(BlockManager, registering_a_block_twice_is_idempotent) {
  BlockManager m(4, kBs);
  BlockTable t = compute(m, concat(tokens_from(0, kBs), {9}));
  BlockTable f = m.fork(t);
  f.n_committed = 0;  // a holder that did not see the commit offers it again
  m.commit_full_blocks(f, concat(tokens_from(0, kBs), {9}));
  EXPECT_TRUE(m.is_registered(t.blocks[0]));
  EXPECT_EQ(m.stats().registered, 1);
  m.release_all(t);
  m.release_all(f);
  expect_valid(m);
}

TEST(BlockManager, block_key_chains_the_parent_key) {
  std::vector<int32_t> t = tokens_from(3, kBs), r = {6, 5, 4, 3};
  EXPECT_EQ(default_block_key(kRootBlockKey, t), default_block_key(kRootBlockKey, t));
  EXPECT_NE(default_block_key(kRootBlockKey, t), default_block_key(1, t));
  EXPECT_NE(default_block_key(kRootBlockKey, t), default_block_key(kRootBlockKey, r));
  BlockManager m(1, kBs);
  EXPECT_EQ(m.block_key(5, t), default_block_key(5, t));
  BlockManager hooked(BlockManagerOptions{1, kBs, constant_key});
  EXPECT_EQ(hooked.block_key(5, t), 42u);
}

// ---- copy-on-write -------------------------------------------------------------------

TEST(BlockManager, fork_retains_every_block) {
  BlockManager m(8, kBs);
  BlockTable t = compute(m, tokens_from(0, 6));
  BlockTable f = m.fork(t);
  EXPECT_EQ(f.blocks, t.blocks);
  EXPECT_EQ(f.n_tokens, 6);
  for (BlockId id : t.blocks) EXPECT_EQ(m.ref_count(id), 2);
  m.release_all(f);
  for (BlockId id : t.blocks) EXPECT_EQ(m.ref_count(id), 1);
  m.release_all(t);
  EXPECT_EQ(m.stats().in_use, 0);
  expect_valid(m);
}

TEST(BlockManager, make_writable_keeps_an_exclusive_unregistered_block) {
  BlockManager m(2, kBs);
  BlockId a = must_allocate(m);
  Expected<WritableBlock> w = m.make_writable(a);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->id, a);
  EXPECT_FALSE(w->copy_from_old);
  EXPECT_EQ(m.stats().copies_on_write, 0u);
}

TEST(BlockManager, make_writable_copies_a_shared_block) {
  BlockManager m(2, kBs);
  BlockId a = must_allocate(m);
  m.retain(a);
  Expected<WritableBlock> w = m.make_writable(a);
  ASSERT_TRUE(w.has_value());
  EXPECT_NE(w->id, a);
  EXPECT_TRUE(w->copy_from_old);
  EXPECT_EQ(w->old, a);
  EXPECT_EQ(m.ref_count(a), 1);
  EXPECT_EQ(m.ref_count(w->id), 1);
  EXPECT_EQ(m.stats().copies_on_write, 1u);
  expect_valid(m);
}

TEST(BlockManager, make_writable_copies_a_registered_block_even_when_exclusive) {
  BlockManager m(2, kBs);
  BlockId a = must_allocate(m);
  ASSERT_EQ(m.register_full(a, kNoBlock, tokens_from(0, kBs)), RegisterResult::kRegistered);
  Expected<WritableBlock> w = m.make_writable(a);
  ASSERT_TRUE(w.has_value());
  EXPECT_TRUE(w->copy_from_old);
  EXPECT_TRUE(m.is_cached(a));  // the cached contents stay intact
  expect_valid(m);
}

TEST(BlockManager, make_writable_fails_without_changing_anything_when_exhausted) {
  BlockManager m(1, kBs);
  BlockId a = must_allocate(m);
  m.retain(a);
  Expected<WritableBlock> w = m.make_writable(a);
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(m.ref_count(a), 2);
  expect_valid(m);
}

TEST(BlockManager, forks_copy_the_shared_partial_block_on_first_write_only) {
  BlockManager m(8, kBs);
  BlockTable t = compute(m, tokens_from(0, kBs + 2));
  BlockTable f = m.fork(t);
  const BlockId partial = t.blocks[1];
  Expected<WritableBlock> w1 = m.prepare_write(t, kBs + 2);
  ASSERT_TRUE(w1.has_value());
  EXPECT_TRUE(w1->copy_from_old);
  EXPECT_EQ(w1->old, partial);
  EXPECT_EQ(t.blocks[1], w1->id);
  Expected<WritableBlock> w2 = m.prepare_write(f, kBs + 2);
  ASSERT_TRUE(w2.has_value());
  EXPECT_FALSE(w2->copy_from_old);
  EXPECT_EQ(f.blocks[1], partial);
  EXPECT_EQ(t.blocks[0], f.blocks[0]);  // the full block stays shared
  m.release_all(t);
  m.release_all(f);
  EXPECT_EQ(m.stats().in_use, 0);
  expect_valid(m);
}

// ---- capacity and statistics ----------------------------------------------------------

TEST(BlockManager, ensure_capacity_is_all_or_nothing) {
  BlockManager m(4, kBs);
  BlockTable t;
  ASSERT_TRUE(m.ensure_capacity(t, 1).ok());
  BlockTable other;
  ASSERT_TRUE(m.ensure_capacity(other, 2 * kBs).ok());
  const BlockManagerStats before = m.stats();
  Status s = m.ensure_capacity(t, 3 * kBs);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(t.blocks.size(), 1u);
  EXPECT_EQ(m.stats().free, before.free);
  EXPECT_EQ(m.stats().in_use, before.in_use);
  EXPECT_TRUE(m.ensure_capacity(t, 2 * kBs).ok());
  EXPECT_EQ(t.blocks.size(), 2u);
  EXPECT_TRUE(m.ensure_capacity(t, 2 * kBs).ok());  // already covered
  EXPECT_EQ(t.blocks.size(), 2u);
  expect_valid(m);
}

TEST(BlockManager, ensure_capacity_evicts_cached_blocks_under_pressure) {
  BlockManager m(4, kBs);
  BlockTable cached = compute(m, tokens_from(0, 3 * kBs));
  m.release_all(cached);
  BlockTable t;
  ASSERT_TRUE(m.ensure_capacity(t, 4 * kBs).ok());
  EXPECT_EQ(m.stats().evictions, 3u);
  EXPECT_EQ(m.stats().cached, 0);
  EXPECT_EQ(m.stats().registered, 0);
  expect_valid(m);
}

TEST(BlockManager, stats_report_hit_rate_and_usage) {
  BlockManager m(8, kBs);
  std::vector<int32_t> prompt = tokens_from(0, 2 * kBs + 1);
  BlockTable t1 = compute(m, prompt);  // queried 8, hit 0
  BlockTable t2 = compute(m, prompt);  // queried 8, hit 8
  BlockManagerStats s = m.stats();
  EXPECT_EQ(s.prefix_lookups, 2u);
  EXPECT_EQ(s.prefix_tokens_queried, 16u);
  EXPECT_EQ(s.prefix_tokens_hit, 8u);
  EXPECT_DOUBLE_EQ(s.hit_rate(), 0.5);
  EXPECT_EQ(s.in_use, 4);  // 2 shared full blocks + 2 partial blocks
  EXPECT_DOUBLE_EQ(s.usage(), 0.5);
  EXPECT_EQ(s.total, 8);
  m.release_all(t1);
  m.release_all(t2);
  EXPECT_DOUBLE_EQ(m.stats().usage(), 0.0);
  expect_valid(m);
}

// ---- property tests ----------------------------------------------------------------------

uint32_t property_seed() {
  if (const char* s = std::getenv("SUANLI_TEST_SEED")) return static_cast<uint32_t>(std::strtoul(s, nullptr, 10));
  return std::random_device{}();
}

// Only 16 distinct keys: collisions on almost every registration.
uint64_t weak_key(uint64_t parent_key, std::span<const int32_t> tokens) {
  uint64_t h = parent_key * 31;
  for (int32_t t : tokens) h = h * 7 + static_cast<uint64_t>(t);
  return h & 15;
}

struct PropertyConfig {
  int32_t n_blocks;
  int32_t block_size;
  BlockKeyFn key_fn;
  int n_ops;
};

// Simulated engine: sequences with block tables, plus a model of what each
// block's KV holds (the token prefix it was computed from) and of who holds it.
class BlockManagerProperty {
 public:
  BlockManagerProperty(const PropertyConfig& c, uint32_t seed)
      : c_(c), m_(BlockManagerOptions{c.n_blocks, c.block_size, c.key_fn}), rng_(seed), content_(c.n_blocks) {
    // A few shared system prompts so prefixes repeat.
    for (int i = 0; i < 4; ++i) bases_.push_back(random_tokens(uniform(0, 3 * c.block_size)));
  }

  void run() {
    for (int op = 0; op < c_.n_ops; ++op) {
      const int kind = uniform(0, 99);
      if (kind < 25) {
        new_sequence();
      } else if (kind < 60) {
        append();
      } else if (kind < 70) {
        fork();
      } else if (kind < 85) {
        free_sequence(uniform(0, static_cast<int>(seqs_.size())) - 1);
      } else {
        probe();
      }
      check(op);
      if (::testing::Test::HasFailure()) return;
    }
    while (!seqs_.empty()) free_sequence(0);
    check(c_.n_ops);
    EXPECT_EQ(m_.stats().in_use, 0) << "leaked blocks";
    EXPECT_EQ(m_.stats().free + m_.stats().cached, c_.n_blocks);
    EXPECT_GT(m_.stats().prefix_tokens_hit, 0u) << "the run never exercised a prefix hit";
  }

 private:
  struct Seq {
    BlockTable table;
    std::vector<int32_t> tokens;  // tokens with KV written (== table.n_tokens)
  };

  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  std::vector<int32_t> random_tokens(int n) {
    std::vector<int32_t> t(n);
    for (int32_t& x : t) x = uniform(0, 3);  // tiny vocabulary: many equal blocks
    return t;
  }

  std::vector<int32_t> random_prompt() {
    std::vector<int32_t> p = bases_[uniform(0, static_cast<int>(bases_.size()) - 1)];
    std::vector<int32_t> tail = random_tokens(uniform(1, 2 * c_.block_size));
    p.insert(p.end(), tail.begin(), tail.end());
    return p;
  }

  // Prefix hits must hand out blocks whose KV was computed from exactly the
  // queried tokens.
  void check_hit(const std::vector<BlockId>& hit, const std::vector<int32_t>& query) {
    const int32_t bs = c_.block_size;
    for (size_t i = 0; i < hit.size(); ++i) {
      std::vector<int32_t> want(query.begin(), query.begin() + (i + 1) * bs);
      ASSERT_EQ(content_[hit[i]], want) << "block " << hit[i] << " matched at index " << i << " holds other KV";
      std::span<const int32_t> stored = m_.stored_tokens(hit[i]);
      ASSERT_TRUE(std::equal(stored.begin(), stored.end(), want.end() - bs, want.end()));
    }
  }

  // Writes tokens [from, to) of `s` (already in s.tokens) into its blocks.
  void write(Seq& s, size_t from, size_t to) {
    const int32_t bs = c_.block_size;
    for (size_t p = from; p < to; ++p) {
      const BlockId b = s.table.blocks[p / bs];
      ASSERT_EQ(m_.ref_count(b), 1) << "writing into a shared block";
      ASSERT_FALSE(m_.is_registered(b)) << "writing into a registered block";
      if (p % bs != 0) {
        ASSERT_EQ(content_[b], std::vector<int32_t>(s.tokens.begin(), s.tokens.begin() + p))
            << "block " << b << " lost its earlier tokens (bad copy-on-write?)";
      }
      content_[b].assign(s.tokens.begin(), s.tokens.begin() + p + 1);
    }
  }

  void preempt(Seq& s) {
    m_.release_all(s.table);
    s.tokens.clear();
  }

  void new_sequence() {
    if (seqs_.size() >= 24) return;
    std::vector<int32_t> prompt = random_prompt();
    Seq s;
    s.table = m_.start_sequence(prompt);
    check_hit(s.table.blocks, prompt);
    ASSERT_LT(s.table.n_tokens, static_cast<int64_t>(prompt.size()));
    s.tokens.assign(prompt.begin(), prompt.begin() + s.table.n_tokens);
    if (!m_.ensure_capacity(s.table, static_cast<int64_t>(prompt.size())).ok()) {
      m_.release_all(s.table);
      return;
    }
    const size_t from = s.tokens.size();
    s.tokens = prompt;
    write(s, from, prompt.size());
    s.table.n_tokens = static_cast<int64_t>(prompt.size());
    m_.commit_full_blocks(s.table, s.tokens);
    seqs_.push_back(std::move(s));
  }

  void append() {
    if (seqs_.empty()) return;
    Seq& s = seqs_[uniform(0, static_cast<int>(seqs_.size()) - 1)];
    const int32_t bs = c_.block_size;
    const int k = uniform(0, 9) == 0 ? uniform(1, 4 * bs) : uniform(1, 2);
    const int64_t n = s.table.n_tokens;
    if (n % bs != 0) {
      Expected<WritableBlock> w = m_.prepare_write(s.table, n);
      if (!w.has_value()) return preempt_and_drop(s);
      if (w->copy_from_old) content_[w->id] = content_[w->old];
    }
    if (!m_.ensure_capacity(s.table, n + k).ok()) return preempt_and_drop(s);
    std::vector<int32_t> more = random_tokens(k);
    s.tokens.insert(s.tokens.end(), more.begin(), more.end());
    write(s, n, s.tokens.size());
    s.table.n_tokens = static_cast<int64_t>(s.tokens.size());
    m_.commit_full_blocks(s.table, s.tokens);
  }

  void preempt_and_drop(Seq& s) {
    preempt(s);
    for (size_t i = 0; i < seqs_.size(); ++i) {
      if (&seqs_[i] == &s) {
        seqs_.erase(seqs_.begin() + i);
        return;
      }
    }
  }

  void fork() {
    if (seqs_.empty() || seqs_.size() >= 24) return;
    const Seq& parent = seqs_[uniform(0, static_cast<int>(seqs_.size()) - 1)];
    Seq child;
    child.table = m_.fork(parent.table);
    child.tokens = parent.tokens;
    seqs_.push_back(std::move(child));
  }

  void free_sequence(int index) {
    if (index < 0 || index >= static_cast<int>(seqs_.size())) return;
    m_.release_all(seqs_[index].table);
    seqs_.erase(seqs_.begin() + index);
  }

  // A lookup whose blocks are released at once (a scheduler probing reuse).
  void probe() {
    std::vector<int32_t> query = random_prompt();
    std::vector<BlockId> hit = m_.match_prefix(query, uniform(0, static_cast<int>(query.size())));
    check_hit(hit, query);
    for (auto it = hit.rbegin(); it != hit.rend(); ++it) m_.release(*it);
  }

  void check(int op) {
    Status s = m_.validate();
    ASSERT_TRUE(s.ok()) << "after op " << op << ": " << s.to_string();
    std::vector<int32_t> holders(c_.n_blocks, 0);
    for (const Seq& q : seqs_) {
      ASSERT_EQ(q.table.n_tokens, static_cast<int64_t>(q.tokens.size()));
      for (BlockId id : q.table.blocks) ++holders[id];
    }
    int32_t in_use = 0;
    for (BlockId id = 0; id < c_.n_blocks; ++id) {
      ASSERT_EQ(m_.ref_count(id), holders[id]) << "block " << id << " after op " << op;
      in_use += holders[id] > 0;
    }
    const BlockManagerStats st = m_.stats();
    ASSERT_EQ(st.in_use, in_use);
    ASSERT_EQ(st.free + st.cached + st.in_use, st.total);
  }

  PropertyConfig c_;
  BlockManager m_;
  std::mt19937 rng_;
  std::vector<std::vector<int32_t>> content_;  // [block] token prefix its KV was computed from
  std::vector<std::vector<int32_t>> bases_;
  std::vector<Seq> seqs_;
};

void run_property(const PropertyConfig& c) {
  const uint32_t seed = property_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (rerun with SUANLI_TEST_SEED=" + std::to_string(seed) + ")");
  BlockManagerProperty p(c, seed);
  p.run();
}

TEST(BlockManagerProperty, random_operations_keep_every_invariant) {
  run_property({48, 4, nullptr, 5000});
}

TEST(BlockManagerProperty, random_operations_under_heavy_eviction_pressure_keep_every_invariant) {
  run_property({16, 4, nullptr, 5000});
}

TEST(BlockManagerProperty, frequent_key_collisions_never_return_wrong_kv) {
  run_property({32, 4, weak_key, 5000});
}

TEST(BlockManagerProperty, one_token_blocks_keep_every_invariant) {
  run_property({24, 1, weak_key, 3000});
}

}  // namespace
}  // namespace suanli
