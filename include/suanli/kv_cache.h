// Paged KV cache storage: fixed-size blocks of token slots in per-layer pools
// on a device. Each layer has a K pool and a V pool, each
// [n_blocks][block_size][n_kv_heads][head_dim] of F16 (default) or F32.
// A sequence owns a block table (logical → physical blocks), even when it is
// the only one.
//
// This class is storage plus a free list. Reference counts, copy-on-write
// and the prefix cache live in the block manager above it (engine layer).
// Thread safety: driven by one thread (the engine loop).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "suanli/device.h"
#include "suanli/model_info.h"
#include "suanli/status.h"

namespace suanli {

struct KvCacheOptions {
  int32_t block_size = 16;            // tokens per block
  GgmlType type = GgmlType::kF16;     // element type
  uint64_t memory_bytes = 256u << 20; // budget for all layers' K and V
  // Touch every page of the CPU pools at creation (servers): the kernel's
  // first-touch zeroing then happens at start, not inside serving steps,
  // and a budget over the host's available memory is a ResourceExhausted
  // error from create() rather than an out-of-memory kill mid-request.
  // Costs 0.1-2.5 s per GiB on this VM. Servers and `bench` commit; run
  // and chat do not, and their first token waits on the first touch of one
  // huge page per pool instead (see docs/cpu.md: 0.01-0.75 s for a 30-layer
  // model on the VM, where 4 KiB pages would cost ~7% of decode speed).
  bool commit = false;
};

class KvCache {
 public:
  // Pools on `device`, or layer l's on layer_devices[l] when that list is
  // given (one entry per layer: Model::layer_devices()).
  static Expected<std::unique_ptr<KvCache>> create(Device& device, const ModelInfo& info,
                                                   const KvCacheOptions& options,
                                                   const std::vector<Device*>& layer_devices = {});
  Device* layer_device(int64_t l) const { return layer_dev_[l]; }

  KvLayerView layer(int64_t l) const;
  int32_t block_size() const { return block_size_; }
  int32_t n_blocks() const { return n_blocks_; }
  int32_t n_free_blocks() const { return static_cast<int32_t>(free_.size()); }
  GgmlType type() const { return type_; }
  // Bytes one block takes over all layers (K and V).
  uint64_t bytes_per_block() const { return bytes_per_block_; }

  // Copies block `from`'s K and V into block `to` in every layer (copy-on-write).
  void copy_block(int32_t from, int32_t to);

  // A free block, or ResourceExhausted. (Single-sequence users; an Engine
  // allocates through its BlockManager instead and never calls these.)
  Expected<int32_t> allocate();
  void release(int32_t block);

  // Grows `table` so it covers n_tokens tokens. On failure nothing changes.
  Status reserve(std::vector<int32_t>& table, int64_t n_tokens);
  void release_all(std::vector<int32_t>& table);
  // The slot of the token at `position` of a sequence with this table.
  int32_t slot(const std::vector<int32_t>& table, int64_t position) const {
    return table[position / block_size_] * block_size_ + static_cast<int32_t>(position % block_size_);
  }

 private:
  KvCache() = default;

  std::vector<Device*> layer_dev_;
  int32_t block_size_ = 16;
  int32_t n_blocks_ = 0;
  GgmlType type_ = GgmlType::kF16;
  int64_t n_kv_heads_ = 0;
  int64_t head_dim_ = 0;
  uint64_t bytes_per_block_ = 0;
  std::vector<std::unique_ptr<Buffer>> k_, v_;  // per layer
  std::vector<int32_t> free_;
  std::vector<uint8_t> in_use_;
};

}  // namespace suanli
