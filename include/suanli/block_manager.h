// KV block manager: reference counts, copy-on-write and the prefix cache over
// the block ids 0..n_blocks-1 of a paged KV cache (include/suanli/kv_cache.h).
// Metadata only: it never touches tensor data. When make_writable() answers
// copy_from_old, copying the old block's K/V into the new one is the caller's
// job. When a BlockManager drives a KvCache, the KvCache's own allocate /
// release are not used; the manager's block ids index the KvCache pools.
//
// Every block is in exactly one state:
//   free    — ref count 0, not in the prefix cache, on the free list;
//   in use  — ref count > 0 (it may also be registered in the prefix cache);
//   cached  — ref count 0 and registered: contents kept, evictable, on the LRU
//             list ordered by last release (oldest evicted first).
// allocate() takes a free block, else evicts the least-recently-used cached
// block, else fails with ResourceExhausted.
//
// Prefix cache. A full block's key is block_key(parent key, its block_size
// tokens), chained from kRootBlockKey for a sequence's first block. Keys only
// find candidates: each registered block stores its tokens and the identity
// (a never-reused registration id) of the exact registered block it follows,
// and match_prefix() verifies both, so a 64-bit hash collision can never hand
// out KV computed from other tokens — not even with equal tokens after a
// different (colliding) prefix. This is why register_full() takes the parent
// *block* rather than only its key: a key alone cannot say which prefix the
// parent held. If an identical block (same tokens, same parent) is already
// registered, the new block stays unregistered but becomes an alias of the
// registered one, so its children still register and become matchable.
// If a different block holds the key (a true collision), the first one wins;
// the newcomer stays unregistered (counted in key_collisions).
//
// Thread safety: none. One thread (the engine loop) drives a BlockManager.
// Cost: every operation is O(1) except those that walk a table or the tokens
// (O(blocks) / O(tokens)) and validate() (O(n_blocks)). Storage is reserved
// at construction; steady-state operations do not allocate except for the
// vectors they return.
// Misuse (releasing a free block, retaining a free block, out-of-range ids)
// is a programmer error and aborts through SUANLI_CHECK.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <unordered_map>
#include <vector>

#include "suanli/status.h"

namespace suanli {

using BlockId = int32_t;
inline constexpr BlockId kNoBlock = -1;
// The parent key of a sequence's first block.
inline constexpr uint64_t kRootBlockKey = 0;

// The default key function: a 64-bit hash of the parent key and the tokens.
uint64_t default_block_key(uint64_t parent_key, std::span<const int32_t> tokens);

// Tests inject weak key functions to force collisions; production leaves it null.
using BlockKeyFn = uint64_t (*)(uint64_t parent_key, std::span<const int32_t> tokens);

struct BlockManagerOptions {
  int32_t n_blocks = 0;     // KvCache::n_blocks()
  int32_t block_size = 16;  // tokens per block, KvCache::block_size()
  BlockKeyFn key_fn = nullptr;  // null: default_block_key
};

struct BlockManagerStats {
  int32_t total = 0;
  int32_t free = 0;
  int32_t cached = 0;  // registered, ref count 0: evictable
  int32_t in_use = 0;  // ref count > 0
  int32_t registered = 0;  // in the prefix cache (cached + registered in use)
  uint64_t prefix_lookups = 0;
  uint64_t prefix_tokens_queried = 0;  // tokens match_prefix was allowed to match
  uint64_t prefix_tokens_hit = 0;      // tokens it matched
  uint64_t evictions = 0;              // cached blocks dropped to make room or replaced
  uint64_t key_collisions = 0;         // equal keys whose tokens or parent differed
  uint64_t copies_on_write = 0;

  double hit_rate() const {
    return prefix_tokens_queried == 0 ? 0.0 : static_cast<double>(prefix_tokens_hit) / prefix_tokens_queried;
  }
  double usage() const { return total == 0 ? 0.0 : static_cast<double>(in_use) / total; }
};

// The answer of make_writable(): write into `id`; when copy_from_old, first
// copy block `old`'s contents into `id` (old has lost one reference).
struct WritableBlock {
  BlockId id = kNoBlock;
  bool copy_from_old = false;
  BlockId old = kNoBlock;
};

enum class RegisterResult {
  kRegistered,      // now in the prefix cache
  kDuplicate,       // an identical block is registered; this one aliases it
  kCollision,       // another block holds the key; this one stays out
  kParentUncached,  // the parent is not (or no longer) in the prefix cache
};

// One sequence's blocks: logical block i of the sequence is blocks[i].
// n_tokens: tokens whose KV is written (the caller advances it).
// n_committed: leading full blocks already offered to the prefix cache.
struct BlockTable {
  std::vector<BlockId> blocks;
  int64_t n_tokens = 0;
  int32_t n_committed = 0;
};

class BlockManager {
 public:
  explicit BlockManager(const BlockManagerOptions& options);
  BlockManager(int32_t n_blocks, int32_t block_size)
      : BlockManager(BlockManagerOptions{n_blocks, block_size, nullptr}) {}

  int32_t n_blocks() const { return static_cast<int32_t>(blocks_.size()); }
  int32_t block_size() const { return block_size_; }

  // --- blocks ---------------------------------------------------------------
  // A block with ref count 1: free, else the LRU cached block evicted, else
  // ResourceExhausted.
  Expected<BlockId> allocate();
  // +1 reference. The block must be in use or cached (a cached block leaves the LRU).
  void retain(BlockId id);
  // -1 reference. At 0 a registered block becomes cached (most recent in
  // LRU order); an unregistered one goes back to the free list.
  void release(BlockId id);

  // --- copy-on-write ----------------------------------------------------------
  // Retains every block of `table`; returns a copy for the new holder.
  std::vector<BlockId> fork(const std::vector<BlockId>& table);
  // `id` (held by the caller) if exclusively owned and unregistered, else a
  // new block: one reference of `id` is released and the caller must copy.
  // On failure nothing changes.
  Expected<WritableBlock> make_writable(BlockId id);

  // --- prefix cache -----------------------------------------------------------
  // The key of a full block after a parent with `parent_key`.
  uint64_t block_key(uint64_t parent_key, std::span<const int32_t> tokens) const;
  // Offers a full block (held by the caller, block_size tokens) to the prefix
  // cache. `parent` is the previous block of the same sequence, held by the
  // caller, or kNoBlock for the first block. See the header comment for the
  // duplicate and collision rules.
  RegisterResult register_full(BlockId id, BlockId parent, std::span<const int32_t> tokens);
  // The longest chain of registered blocks matching whole blocks of the prefix
  // of `tokens`, at most max_tokens tokens (pass prompt_len - 1 so at least
  // one token is left to compute). Each returned block is retained.
  std::vector<BlockId> match_prefix(std::span<const int32_t> tokens,
                                    int64_t max_tokens = std::numeric_limits<int64_t>::max());

  // --- sequence helpers -------------------------------------------------------
  // A table that starts with the cached prefix of `prompt` (never all of it).
  BlockTable start_sequence(std::span<const int32_t> prompt);
  // Grows the table to cover n_tokens tokens. All or nothing: on
  // ResourceExhausted the table and the manager are as before.
  Status ensure_capacity(BlockTable& table, int64_t n_tokens);
  // Makes the block holding `position` writable, updating the table. The
  // block must exist and must not be a committed (registered) block.
  Expected<WritableBlock> prepare_write(BlockTable& table, int64_t position);
  // Offers the table's newly full blocks to the prefix cache. `tokens` are the
  // sequence's tokens with KV written: tokens.size() == table.n_tokens.
  void commit_full_blocks(BlockTable& table, std::span<const int32_t> tokens);
  // A second holder of the same blocks (for n > 1 samples).
  BlockTable fork(const BlockTable& table);
  // Releases every block (last block first, so a sequence's tail is evicted
  // before its head) and empties the table.
  void release_all(BlockTable& table);
  // Releases the blocks past those covering n_tokens tokens (last first);
  // n_tokens must be at least table.n_committed whole blocks. For blocks
  // reserved ahead of need (speculative drafts that were not kept).
  void truncate(BlockTable& table, int64_t n_tokens);

  // --- inspection -------------------------------------------------------------
  int32_t ref_count(BlockId id) const;
  bool is_registered(BlockId id) const;
  bool is_cached(BlockId id) const;  // registered with ref count 0
  // The tokens stored with a registered block (empty when unregistered).
  std::span<const int32_t> stored_tokens(BlockId id) const;
  BlockManagerStats stats() const;
  // Ok, or Internal naming the first broken invariant: every block in exactly
  // one state, free list without duplicates, LRU list consistent (links,
  // members cached), key map ↔ registered blocks, counters equal recounts.
  Status validate() const;

 private:
  enum class State : uint8_t { kFree, kInUse, kCached };

  struct Block {
    int32_t ref = 0;
    State state = State::kFree;
    bool registered = false;
    uint64_t key = 0;  // key when registered or aliased
    // Identity of the registered block whose contents this block holds:
    // itself when registered, the original when a duplicate; 0 = none.
    uint64_t chain_uid = 0;
    BlockId chain_block = kNoBlock;
    // For registered blocks: the identity of the parent they follow.
    uint64_t parent_uid = 0;  // 0: the root (first block of a sequence)
    BlockId parent_block = kNoBlock;
    BlockId lru_prev = kNoBlock;
    BlockId lru_next = kNoBlock;
  };

  void check_id(BlockId id) const;
  BlockId take_free_or_evict();
  void lru_push_back(BlockId id);
  void lru_remove(BlockId id);
  // Drops `id` from the prefix cache (map and flags); the caller moves it
  // between lists.
  void unregister(BlockId id);
  void reset_identity(BlockId id);
  // A registered block whose parent was evicted can never be matched again
  // (its parent's identity is gone): unregister it, and free it if cached.
  void drop_stale(BlockId id);
  // Whether a registered block's parent is still the registered block it followed.
  bool parent_alive(const Block& b) const;
  std::span<int32_t> tokens_of(BlockId id);
  std::span<const int32_t> tokens_of(BlockId id) const;

  int32_t block_size_;
  BlockKeyFn key_fn_;
  std::vector<Block> blocks_;
  std::vector<int32_t> tokens_;  // [n_blocks][block_size]: tokens of registered blocks
  std::vector<BlockId> free_;    // stack
  BlockId lru_head_ = kNoBlock;  // oldest cached
  BlockId lru_tail_ = kNoBlock;  // newest cached
  std::unordered_map<uint64_t, BlockId> by_key_;
  uint64_t next_uid_ = 1;
  BlockManagerStats stats_;  // counters; the state counts are kept live too
};

}  // namespace suanli
