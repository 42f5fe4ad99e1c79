// The CPU device's kernels: the op set, parallel over the device's thread
// pool. Contracts are Device's (include/suanli/device.h); each kernel is
// checked against src/devices/cpu/reference.cc by tests/conformance.
#pragma once

#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "suanli/device.h"

namespace suanli::cpu {

// Scratch owned by the device and reused across calls (no allocation in the
// steady-state loop once it has grown to the largest batch).
struct Workspace {
  std::vector<uint8_t> act;                   // activations quantized for integer dot products
  // attention's per-segment partial results (max, sum, weighted values)
  // when a query's keys span several segments.
  std::vector<float> attn_partials;
  // rope's cos / sin per (token, pair) for the last positions and parameters
  // it saw: every layer of a forward pass rotates q and k at the same
  // positions, so all but the first call reuse them.
  struct RopeTable {
    std::vector<int32_t> positions;
    std::vector<float> factors;
    float freq_base = 0, freq_scale = 0;
    int32_t n_dims = 0;
    std::vector<float> cs, sn;  // [T][n_dims / 2]
  } rope;
};

// Weight formats matmul and embed accept.
const std::vector<GgmlType>& supported_weight_formats();

void embed(ThreadPool& pool, const WeightView& table, const int32_t* ids, int64_t n_tokens, float* out);
void rms_norm(ThreadPool& pool, const float* x, const float* w, int64_t rows, int64_t n, float eps, float* out);
// Bytes of `parts` stacked in the CPU's packed layout (matmul_packed.h); 0
// when they cannot be packed (format, shapes, or no packed kernels here).
size_t packed_bytes(const std::vector<WeightView>& parts);
// Packs them into dst (packed_bytes() bytes, 64-aligned): the view to pass
// to matmul.
WeightView pack_weights(ThreadPool& pool, const std::vector<WeightView>& parts, void* dst);
void matmul(ThreadPool& pool, Workspace& ws, const float* x, int64_t n_tokens, const WeightView& w, const float* bias,
            float* out);
void rope(ThreadPool& pool, Workspace& ws, float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int32_t* positions,
          const RopeParams& p);
void kv_write(ThreadPool& pool, const KvLayerView& kv, const float* k, const float* v, int64_t n_tokens,
              const int32_t* slots);
void attention(ThreadPool& pool, Workspace& ws, const float* q, int64_t n_tokens, int64_t n_heads,
               const KvLayerView& kv, const SeqSlice* seqs, int32_t n_seqs, float scale, float* out);
void swiglu(ThreadPool& pool, const float* gate, const float* up, int64_t n, float* out);
void add(ThreadPool& pool, const float* a, const float* b, int64_t n, float* out);

}  // namespace suanli::cpu
