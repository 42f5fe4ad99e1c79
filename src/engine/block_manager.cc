#include "suanli/block_manager.h"

#include <algorithm>
#include <string>

namespace suanli {
namespace {

// splitmix64's finalizer: a bijection with good avalanche, so distinct
// (state, token) steps stay distinct and nearby inputs spread over 64 bits.
uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

bool same_tokens(std::span<const int32_t> a, std::span<const int32_t> b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace

uint64_t default_block_key(uint64_t parent_key, std::span<const int32_t> tokens) {
  // Seeded so the root key 0 does not start from a fixed point of the mix.
  uint64_t h = mix64(parent_key ^ 0x6a09e667f3bcc908ull);
  for (int32_t t : tokens) h = mix64(h + 0x9e3779b97f4a7c15ull + static_cast<uint32_t>(t));
  return mix64(h ^ tokens.size());
}

BlockManager::BlockManager(const BlockManagerOptions& options)
    : block_size_(options.block_size), key_fn_(options.key_fn) {
  SUANLI_CHECK(options.n_blocks > 0);
  SUANLI_CHECK(options.block_size > 0);
  blocks_.resize(options.n_blocks);
  tokens_.resize(static_cast<size_t>(options.n_blocks) * options.block_size);
  free_.reserve(options.n_blocks);
  // Pushed in reverse so allocation hands out 0, 1, 2, ... (easier to read in logs).
  for (BlockId id = options.n_blocks - 1; id >= 0; --id) free_.push_back(id);
  by_key_.reserve(options.n_blocks);
  stats_.total = options.n_blocks;
  stats_.free = options.n_blocks;
}

void BlockManager::check_id(BlockId id) const { SUANLI_CHECK(id >= 0 && id < n_blocks()); }

std::span<int32_t> BlockManager::tokens_of(BlockId id) {
  return {tokens_.data() + static_cast<size_t>(id) * block_size_, static_cast<size_t>(block_size_)};
}

std::span<const int32_t> BlockManager::tokens_of(BlockId id) const {
  return {tokens_.data() + static_cast<size_t>(id) * block_size_, static_cast<size_t>(block_size_)};
}

uint64_t BlockManager::block_key(uint64_t parent_key, std::span<const int32_t> tokens) const {
  return key_fn_ ? key_fn_(parent_key, tokens) : default_block_key(parent_key, tokens);
}

// ---- lists -------------------------------------------------------------------

void BlockManager::lru_push_back(BlockId id) {
  Block& b = blocks_[id];
  b.lru_prev = lru_tail_;
  b.lru_next = kNoBlock;
  if (lru_tail_ != kNoBlock) {
    blocks_[lru_tail_].lru_next = id;
  } else {
    lru_head_ = id;
  }
  lru_tail_ = id;
  ++stats_.cached;
}

void BlockManager::lru_remove(BlockId id) {
  Block& b = blocks_[id];
  if (b.lru_prev != kNoBlock) {
    blocks_[b.lru_prev].lru_next = b.lru_next;
  } else {
    lru_head_ = b.lru_next;
  }
  if (b.lru_next != kNoBlock) {
    blocks_[b.lru_next].lru_prev = b.lru_prev;
  } else {
    lru_tail_ = b.lru_prev;
  }
  b.lru_prev = b.lru_next = kNoBlock;
  --stats_.cached;
}

void BlockManager::reset_identity(BlockId id) {
  Block& b = blocks_[id];
  b.key = 0;
  b.chain_uid = 0;
  b.chain_block = kNoBlock;
  b.parent_uid = 0;
  b.parent_block = kNoBlock;
}

void BlockManager::unregister(BlockId id) {
  Block& b = blocks_[id];
  SUANLI_CHECK(b.registered);
  auto it = by_key_.find(b.key);
  SUANLI_CHECK(it != by_key_.end() && it->second == id);
  by_key_.erase(it);
  b.registered = false;
  reset_identity(id);
  --stats_.registered;
}

bool BlockManager::parent_alive(const Block& b) const {
  if (b.parent_uid == 0) return true;
  const Block& p = blocks_[b.parent_block];
  return p.registered && p.chain_uid == b.parent_uid;
}

void BlockManager::drop_stale(BlockId id) {
  Block& b = blocks_[id];
  unregister(id);
  if (b.state == State::kCached) {
    lru_remove(id);
    b.state = State::kFree;
    free_.push_back(id);
    ++stats_.free;
  }
  ++stats_.evictions;
}

// ---- blocks ------------------------------------------------------------------

BlockId BlockManager::take_free_or_evict() {
  if (!free_.empty()) {
    BlockId id = free_.back();
    free_.pop_back();
    --stats_.free;
    return id;
  }
  if (lru_head_ == kNoBlock) return kNoBlock;
  BlockId victim = lru_head_;
  lru_remove(victim);
  unregister(victim);
  ++stats_.evictions;
  return victim;
}

Expected<BlockId> BlockManager::allocate() {
  BlockId id = take_free_or_evict();
  if (id == kNoBlock) {
    return ResourceExhausted("KV block manager: all " + std::to_string(n_blocks()) +
                             " blocks are in use (none free or cached)");
  }
  Block& b = blocks_[id];
  b.ref = 1;
  b.state = State::kInUse;
  ++stats_.in_use;
  return id;
}

void BlockManager::retain(BlockId id) {
  check_id(id);
  Block& b = blocks_[id];
  SUANLI_CHECK(b.state != State::kFree);
  if (b.state == State::kCached) {
    lru_remove(id);
    b.state = State::kInUse;
    ++stats_.in_use;
  }
  ++b.ref;
}

void BlockManager::release(BlockId id) {
  check_id(id);
  Block& b = blocks_[id];
  SUANLI_CHECK(b.state == State::kInUse && b.ref > 0);
  if (--b.ref > 0) return;
  --stats_.in_use;
  if (b.registered) {
    b.state = State::kCached;
    lru_push_back(id);
  } else {
    b.state = State::kFree;
    reset_identity(id);
    free_.push_back(id);
    ++stats_.free;
  }
}

// ---- copy-on-write -------------------------------------------------------------

std::vector<BlockId> BlockManager::fork(const std::vector<BlockId>& table) {
  for (BlockId id : table) retain(id);
  return table;
}

Expected<WritableBlock> BlockManager::make_writable(BlockId id) {
  check_id(id);
  Block& b = blocks_[id];
  SUANLI_CHECK(b.state == State::kInUse);
  if (b.ref == 1 && !b.registered) {
    // An alias's contents are about to change: it no longer equals its original.
    reset_identity(id);
    return WritableBlock{id, false, id};
  }
  // The old block holds a reference, so allocate() cannot evict it.
  SUANLI_ASSIGN_OR_RETURN(BlockId fresh, allocate());
  release(id);
  ++stats_.copies_on_write;
  return WritableBlock{fresh, true, id};
}

// ---- prefix cache --------------------------------------------------------------

RegisterResult BlockManager::register_full(BlockId id, BlockId parent, std::span<const int32_t> tokens) {
  check_id(id);
  SUANLI_CHECK(blocks_[id].state == State::kInUse);
  SUANLI_CHECK(static_cast<int64_t>(tokens.size()) == block_size_);
  {
    const Block& b = blocks_[id];
    if (b.chain_uid != 0) {
      // Offered again (e.g. by a forked table): idempotent for the same tokens.
      SUANLI_CHECK(same_tokens(tokens_of(id), tokens));
      return b.registered ? RegisterResult::kRegistered : RegisterResult::kDuplicate;
    }
  }

  uint64_t parent_key = kRootBlockKey;
  uint64_t parent_uid = 0;
  BlockId parent_block = kNoBlock;
  if (parent != kNoBlock) {
    check_id(parent);
    const Block& p = blocks_[parent];
    SUANLI_CHECK(p.state == State::kInUse);
    if (p.chain_uid == 0) return RegisterResult::kParentUncached;
    const Block& original = blocks_[p.chain_block];
    if (!original.registered || original.chain_uid != p.chain_uid) return RegisterResult::kParentUncached;
    parent_key = p.key;
    parent_uid = p.chain_uid;
    parent_block = p.chain_block;
  }

  const uint64_t key = block_key(parent_key, tokens);
  if (auto it = by_key_.find(key); it != by_key_.end()) {
    const BlockId existing = it->second;
    const Block& e = blocks_[existing];
    if (e.parent_uid == parent_uid && same_tokens(tokens_of(existing), tokens)) {
      Block& b = blocks_[id];
      b.key = key;
      b.chain_uid = e.chain_uid;
      b.chain_block = existing;
      std::copy(tokens.begin(), tokens.end(), tokens_of(id).begin());
      return RegisterResult::kDuplicate;
    }
    if (parent_alive(e)) {
      ++stats_.key_collisions;
      return RegisterResult::kCollision;
    }
    drop_stale(existing);
    // The dropped block may have been this block's parent chain.
    if (parent_block != kNoBlock &&
        (!blocks_[parent_block].registered || blocks_[parent_block].chain_uid != parent_uid)) {
      return RegisterResult::kParentUncached;
    }
  }

  Block& b = blocks_[id];
  b.registered = true;
  b.key = key;
  b.chain_uid = next_uid_++;
  b.chain_block = id;
  b.parent_uid = parent_uid;
  b.parent_block = parent_block;
  std::copy(tokens.begin(), tokens.end(), tokens_of(id).begin());
  by_key_.emplace(key, id);
  ++stats_.registered;
  return RegisterResult::kRegistered;
}

std::vector<BlockId> BlockManager::match_prefix(std::span<const int32_t> tokens, int64_t max_tokens) {
  const int64_t limit = std::clamp<int64_t>(max_tokens, 0, static_cast<int64_t>(tokens.size()));
  ++stats_.prefix_lookups;
  stats_.prefix_tokens_queried += static_cast<uint64_t>(limit);
  const int64_t n_full = limit / block_size_;

  std::vector<BlockId> matched;
  matched.reserve(n_full);
  uint64_t parent_key = kRootBlockKey;
  uint64_t parent_uid = 0;
  for (int64_t i = 0; i < n_full; ++i) {
    auto block_tokens = tokens.subspan(i * block_size_, block_size_);
    const uint64_t key = block_key(parent_key, block_tokens);
    auto it = by_key_.find(key);
    if (it == by_key_.end()) break;
    const Block& b = blocks_[it->second];
    // The key only nominates a candidate; its tokens and the exact parent it
    // was computed after decide.
    if (b.parent_uid != parent_uid || !same_tokens(tokens_of(it->second), block_tokens)) {
      if (parent_alive(b)) {
        ++stats_.key_collisions;
      } else {
        drop_stale(it->second);
      }
      break;
    }
    retain(it->second);
    matched.push_back(it->second);
    parent_key = key;
    parent_uid = b.chain_uid;
  }
  stats_.prefix_tokens_hit += static_cast<uint64_t>(matched.size()) * block_size_;
  return matched;
}

// ---- sequence helpers ------------------------------------------------------------

BlockTable BlockManager::start_sequence(std::span<const int32_t> prompt) {
  BlockTable table;
  table.blocks = match_prefix(prompt, static_cast<int64_t>(prompt.size()) - 1);
  table.n_tokens = static_cast<int64_t>(table.blocks.size()) * block_size_;
  table.n_committed = static_cast<int32_t>(table.blocks.size());
  return table;
}

Status BlockManager::ensure_capacity(BlockTable& table, int64_t n_tokens) {
  const int64_t needed = (n_tokens + block_size_ - 1) / block_size_ - static_cast<int64_t>(table.blocks.size());
  if (needed <= 0) return Status::Ok();
  // Checked up front so a failure evicts nothing: every cached block is evictable.
  const int64_t available = static_cast<int64_t>(free_.size()) + stats_.cached;
  if (needed > available) {
    return ResourceExhausted("KV block manager: " + std::to_string(n_tokens) + " tokens need " +
                             std::to_string(needed) + " more blocks, " + std::to_string(available) +
                             " free or evictable");
  }
  table.blocks.reserve(table.blocks.size() + needed);
  for (int64_t i = 0; i < needed; ++i) {
    Expected<BlockId> id = allocate();
    SUANLI_CHECK(id.has_value());
    table.blocks.push_back(*id);
  }
  return Status::Ok();
}

Expected<WritableBlock> BlockManager::prepare_write(BlockTable& table, int64_t position) {
  SUANLI_CHECK(position >= 0);
  const int64_t index = position / block_size_;
  SUANLI_CHECK(index < static_cast<int64_t>(table.blocks.size()));
  SUANLI_CHECK(index >= table.n_committed);
  SUANLI_ASSIGN_OR_RETURN(WritableBlock w, make_writable(table.blocks[index]));
  table.blocks[index] = w.id;
  return w;
}

void BlockManager::commit_full_blocks(BlockTable& table, std::span<const int32_t> tokens) {
  SUANLI_CHECK(static_cast<int64_t>(tokens.size()) == table.n_tokens);
  const int64_t n_full = table.n_tokens / block_size_;
  SUANLI_CHECK(n_full <= static_cast<int64_t>(table.blocks.size()));
  for (int64_t i = table.n_committed; i < n_full; ++i) {
    const BlockId parent = i == 0 ? kNoBlock : table.blocks[i - 1];
    (void)register_full(table.blocks[i], parent, tokens.subspan(i * block_size_, block_size_));
  }
  table.n_committed = static_cast<int32_t>(std::max<int64_t>(n_full, table.n_committed));
}

BlockTable BlockManager::fork(const BlockTable& table) {
  BlockTable copy;
  copy.blocks = fork(table.blocks);
  copy.n_tokens = table.n_tokens;
  copy.n_committed = table.n_committed;
  return copy;
}

void BlockManager::release_all(BlockTable& table) {
  for (auto it = table.blocks.rbegin(); it != table.blocks.rend(); ++it) release(*it);
  table.blocks.clear();
  table.n_tokens = 0;
  table.n_committed = 0;
}

void BlockManager::truncate(BlockTable& table, int64_t n_tokens) {
  const size_t keep = static_cast<size_t>((n_tokens + block_size_ - 1) / block_size_);
  SUANLI_CHECK(keep >= static_cast<size_t>(table.n_committed));
  while (table.blocks.size() > keep) {
    release(table.blocks.back());
    table.blocks.pop_back();
  }
  table.n_tokens = std::min(table.n_tokens, n_tokens);
}

// ---- inspection -------------------------------------------------------------------

int32_t BlockManager::ref_count(BlockId id) const {
  check_id(id);
  return blocks_[id].ref;
}

bool BlockManager::is_registered(BlockId id) const {
  check_id(id);
  return blocks_[id].registered;
}

bool BlockManager::is_cached(BlockId id) const {
  check_id(id);
  return blocks_[id].state == State::kCached;
}

std::span<const int32_t> BlockManager::stored_tokens(BlockId id) const {
  check_id(id);
  if (!blocks_[id].registered) return {};
  return tokens_of(id);
}

BlockManagerStats BlockManager::stats() const { return stats_; }

Status BlockManager::validate() const {
  auto fail = [](const std::string& m) { return Internal("block manager invariant: " + m); };
  const int32_t n = n_blocks();
  int32_t n_free = 0, n_cached = 0, n_in_use = 0, n_registered = 0;
  for (BlockId id = 0; id < n; ++id) {
    const Block& b = blocks_[id];
    const std::string at = "block " + std::to_string(id) + ": ";
    switch (b.state) {
      case State::kFree:
        ++n_free;
        if (b.ref != 0 || b.registered || b.chain_uid != 0) return fail(at + "free but referenced or registered");
        break;
      case State::kCached:
        ++n_cached;
        if (b.ref != 0 || !b.registered) return fail(at + "cached but referenced or unregistered");
        break;
      case State::kInUse:
        ++n_in_use;
        if (b.ref <= 0) return fail(at + "in use with ref count " + std::to_string(b.ref));
        break;
    }
    if (b.registered) {
      ++n_registered;
      if (b.chain_block != id || b.chain_uid == 0 || b.chain_uid >= next_uid_) {
        return fail(at + "registered without its own identity");
      }
      auto it = by_key_.find(b.key);
      if (it == by_key_.end() || it->second != id) return fail(at + "registered but its key maps elsewhere");
    } else if (b.chain_uid != 0 && b.chain_block == id) {
      return fail(at + "unregistered but claims its own identity");
    }
    if (b.state != State::kCached && (b.lru_prev != kNoBlock || b.lru_next != kNoBlock)) {
      return fail(at + "linked into the LRU list but not cached");
    }
  }
  if (n_free + n_cached + n_in_use != n) return fail("free + cached + in use != total");
  if (static_cast<int32_t>(by_key_.size()) != n_registered) return fail("key map size != registered blocks");

  std::vector<uint8_t> seen(n, 0);
  for (BlockId id : free_) {
    if (id < 0 || id >= n) return fail("free list holds out-of-range id " + std::to_string(id));
    if (seen[id]) return fail("free list holds block " + std::to_string(id) + " twice");
    seen[id] = 1;
    if (blocks_[id].state != State::kFree) return fail("free list holds non-free block " + std::to_string(id));
  }
  if (static_cast<int32_t>(free_.size()) != n_free) return fail("free list size != free blocks");

  int32_t walked = 0;
  BlockId prev = kNoBlock;
  for (BlockId id = lru_head_; id != kNoBlock; id = blocks_[id].lru_next) {
    if (id < 0 || id >= n || ++walked > n) return fail("LRU list is corrupt (bad id or cycle)");
    if (blocks_[id].state != State::kCached) return fail("LRU list holds uncached block " + std::to_string(id));
    if (blocks_[id].lru_prev != prev) return fail("LRU back link broken at block " + std::to_string(id));
    prev = id;
  }
  if (prev != lru_tail_) return fail("LRU tail does not end the list");
  if (walked != n_cached) return fail("LRU list length != cached blocks");

  if (stats_.total != n || stats_.free != n_free || stats_.cached != n_cached || stats_.in_use != n_in_use ||
      stats_.registered != n_registered) {
    return fail("state counters differ from a recount");
  }
  return Status::Ok();
}

}  // namespace suanli
