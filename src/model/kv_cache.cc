#include "suanli/kv_cache.h"

#include <algorithm>

namespace suanli {

Expected<std::unique_ptr<KvCache>> KvCache::create(Device& device, const ModelInfo& info,
                                                   const KvCacheOptions& options,
                                                   const std::vector<Device*>& layer_devices) {
  if (!layer_devices.empty() && static_cast<int64_t>(layer_devices.size()) != info.n_layer) {
    return InvalidArgument("the KV cache's device map names " + std::to_string(layer_devices.size()) +
                           " layers; the model has " + std::to_string(info.n_layer));
  }
  std::vector<Device*> devs(static_cast<size_t>(std::max<int64_t>(info.n_layer, 0)), &device);
  for (size_t l = 0; l < layer_devices.size(); ++l) {
    if (layer_devices[l]) devs[l] = layer_devices[l];
  }
  if (options.block_size < 1 || options.block_size > 1024) {
    return InvalidArgument("KV block size must be 1 to 1024 tokens");
  }
  if (options.type != GgmlType::kF16 && options.type != GgmlType::kF32) {
    return InvalidArgument("KV cache type must be F16 or F32");
  }
  for (Device* d : devs) {
    if (!d->caps().supports_kv(options.type)) {
      return Unsupported(d->name() + " does not support a " + std::string(ggml_type_name(options.type)) +
                         " KV cache");
    }
  }
  std::unique_ptr<KvCache> kv(new KvCache());
  kv->layer_dev_ = devs;
  kv->block_size_ = options.block_size;
  kv->type_ = options.type;
  kv->n_kv_heads_ = info.n_head_kv;
  kv->head_dim_ = info.head_dim;
  const uint64_t elem = options.type == GgmlType::kF16 ? 2 : 4;
  const uint64_t per_layer_block = static_cast<uint64_t>(options.block_size) * info.n_head_kv * info.head_dim * elem;
  kv->bytes_per_block_ = per_layer_block * 2 * info.n_layer;
  const uint64_t n_blocks = options.memory_bytes / kv->bytes_per_block_;
  if (n_blocks < 1) {
    return InvalidArgument("KV memory budget of " + std::to_string(options.memory_bytes) +
                           " bytes holds no block (one block takes " + std::to_string(kv->bytes_per_block_) + ")");
  }
  if (n_blocks > (1u << 30) / static_cast<uint64_t>(options.block_size)) {
    return InvalidArgument("KV memory budget too large: slot indices would overflow");
  }
  kv->n_blocks_ = static_cast<int32_t>(n_blocks);
  if (options.commit) {
    // Committing more than the host can back would end in the kernel's
    // out-of-memory kill; say so instead. Per CPU device (the pools of its
    // layers).
    std::vector<std::pair<Device*, uint64_t>> per_dev;
    for (int64_t l = 0; l < info.n_layer; ++l) {
      if (devs[l]->kind() != DeviceKind::kCpu) continue;
      auto it = std::find_if(per_dev.begin(), per_dev.end(), [&](const auto& p) { return p.first == devs[l]; });
      if (it == per_dev.end()) it = per_dev.insert(per_dev.end(), {devs[l], 0});
      it->second += 2 * per_layer_block * n_blocks;
    }
    for (const auto& [dev, bytes] : per_dev) {
      const uint64_t avail = dev->memory().free_bytes;
      if (avail > 0 && bytes > avail) {
        return ResourceExhausted("KV cache of " + std::to_string(bytes >> 20) + " MiB does not fit in the " +
                                 std::to_string(avail >> 20) + " MiB of memory available on " + dev->name() +
                                 ": lower the KV memory budget (--kv-memory)");
      }
    }
  }
  for (int64_t l = 0; l < info.n_layer; ++l) {
    SUANLI_ASSIGN_OR_RETURN(std::unique_ptr<Buffer> k, devs[l]->alloc(per_layer_block * n_blocks));
    SUANLI_ASSIGN_OR_RETURN(std::unique_ptr<Buffer> v, devs[l]->alloc(per_layer_block * n_blocks));
    if (options.commit && devs[l]->kind() == DeviceKind::kCpu) {  // host memory: one write per 4 KiB page
      for (Buffer* b : {k.get(), v.get()}) {
        for (size_t off = 0; off < b->size(); off += 4096) static_cast<volatile char*>(b->data())[off] = 0;
      }
    }
    kv->k_.push_back(std::move(k));
    kv->v_.push_back(std::move(v));
  }
  kv->free_.reserve(n_blocks);
  for (int32_t b = kv->n_blocks_ - 1; b >= 0; --b) kv->free_.push_back(b);
  kv->in_use_.assign(n_blocks, 0);
  return kv;
}

KvLayerView KvCache::layer(int64_t l) const {
  KvLayerView v;
  v.k = k_[l]->data();
  v.v = v_[l]->data();
  v.type = type_;
  v.n_blocks = n_blocks_;
  v.block_size = block_size_;
  v.n_kv_heads = n_kv_heads_;
  v.head_dim = head_dim_;
  return v;
}

void KvCache::copy_block(int32_t from, int32_t to) {
  SUANLI_CHECK(from >= 0 && from < n_blocks_ && to >= 0 && to < n_blocks_);
  const int64_t elems = static_cast<int64_t>(block_size_) * n_kv_heads_ * head_dim_;
  const size_t elem_bytes = type_ == GgmlType::kF16 ? 2 : 4;
  for (size_t l = 0; l < k_.size(); ++l) {
    for (Buffer* b : {k_[l].get(), v_[l].get()}) {
      uint8_t* base = static_cast<uint8_t*>(b->data());
      layer_dev_[l]->convert(base + from * elems * elem_bytes, type_, base + to * elems * elem_bytes, type_, elems);
    }
  }
}

Expected<int32_t> KvCache::allocate() {
  if (free_.empty()) return ResourceExhausted("KV cache is full (" + std::to_string(n_blocks_) + " blocks)");
  int32_t b = free_.back();
  free_.pop_back();
  in_use_[b] = 1;
  return b;
}

void KvCache::release(int32_t block) {
  SUANLI_CHECK(block >= 0 && block < n_blocks_ && in_use_[block]);
  in_use_[block] = 0;
  free_.push_back(block);
}

Status KvCache::reserve(std::vector<int32_t>& table, int64_t n_tokens) {
  const size_t need = static_cast<size_t>((n_tokens + block_size_ - 1) / block_size_);
  if (need <= table.size()) return Status::Ok();
  if (need - table.size() > free_.size()) {
    return ResourceExhausted("KV cache full: need " + std::to_string(need - table.size()) + " more blocks, " +
                             std::to_string(free_.size()) + " free");
  }
  while (table.size() < need) table.push_back(*allocate());
  return Status::Ok();
}

void KvCache::release_all(std::vector<int32_t>& table) {
  // Last block first, so the next sequence gets them back in ascending
  // order (allocate() pops from the back): its cache then lies in memory in
  // token order, which the hardware prefetchers follow.
  for (auto it = table.rbegin(); it != table.rend(); ++it) release(*it);
  table.clear();
}

}  // namespace suanli
