// Causal grouped-query attention over the paged KV cache, for decode and
// prefill alike: split-K ("flash-decoding") partials and a combine pass.
//
// Work items are (sequence, up to `tpi` consecutive tokens of it, `hpi`
// query heads of one kv head, one split of kAttnSplitKeys keys). A block
// runs one item with one 32-lane group ("warp") per (token, head): the
// item's K and V rows are staged in shared memory 32 keys at a time and
// shared by all its queries — the GQA group's heads in decode, and also
// the neighbouring tokens in prefill, as in flash attention. Per query, an
// online softmax runs over the 32-key tiles: lane j scores key j (a
// sequential fp32 dot product over head_dim), the tile's max and sum are
// butterflies, and lane l accumulates output dims l, l + 32, ... in key
// order. The combine pass merges a query's splits in split order.
//
// Everything a query computes depends only on its own position and keys:
// tile and split boundaries sit at fixed key indices, and tokens sharing a
// block only share loads. So a token's output is bit-identical in a prefill
// chunk and as a lone decode step (the op's batch invariance).
#include <cmath>

#include "devices/cuda/kernels.h"
#include "devices/cuda/numerics.cuh"

namespace suanli::gpu {
namespace {

constexpr int kMaxWarps = 16;
constexpr int kMaxHeadDim = 256;
constexpr int kMaxAcc = kMaxHeadDim / kLanes;

__device__ __forceinline__ float kv_load(const void* pool, bool f16, int64_t i) {
  return f16 ? fp16_to_f32(static_cast<const uint16_t*>(pool)[i]) : static_cast<const float*>(pool)[i];
}

struct AttnArgs {
  const float* q;
  const void* k;
  const void* v;
  bool f16;
  int32_t block_size, n_kv_heads, head_dim, n_heads, group;
  int32_t hpi;        // query heads per item
  int32_t key_tile;   // keys staged per step (32, or 16 for head_dim > 128)
  int32_t max_splits;
  float scale;
  const SeqSlice* seqs;
  const AttentionItem* items;
  float* partials;  // [T][n_heads][max_splits][head_dim + 2]: acc..., m, l
  float* out;
};

__global__ void attention_split_kernel(AttnArgs a) {
  extern __shared__ float smem[];
  const int n_warps = blockDim.x / kLanes;
  const int w = threadIdx.x / kLanes, lane = threadIdx.x % kLanes;
  const int d = a.head_dim, kt = a.key_tile;
  float* q_s = smem;                     // [n_warps][d]
  float* k_s = q_s + n_warps * d;        // [kt][d + 1] (padded: lane j reads row j)
  float* v_s = k_s + kt * (d + 1);       // [kt][d]
  float* p_s = v_s + kt * d;             // [n_warps][32]

  const AttentionItem it = a.items[blockIdx.x];
  const SeqSlice sq = a.seqs[it.seq];
  const int jj = w / a.hpi;
  const int h = it.kvh * a.group + it.h0 + w % a.hpi;
  const bool active = jj < it.nj;
  const int64_t t = sq.first_token + it.j0 + jj;
  const int64_t n_keys = static_cast<int64_t>(sq.n_past) + it.j0 + jj + 1;
  const int64_t kbeg = static_cast<int64_t>(it.split) * kAttnSplitKeys;
  int64_t kend = static_cast<int64_t>(sq.n_past) + it.j0 + it.nj;  // keys of the item's last token
  if (kend > kbeg + kAttnSplitKeys) kend = kbeg + kAttnSplitKeys;

  if (active) {
    for (int e = lane; e < d; e += kLanes) q_s[w * d + e] = a.q[(t * a.n_heads + h) * d + e];
  }
  float m = -INFINITY, l = 0.0f;
  float acc[kMaxAcc];
  for (int r = 0; r < kMaxAcc; ++r) acc[r] = 0.0f;

  const int64_t row_stride = static_cast<int64_t>(a.n_kv_heads) * d;
  for (int64_t k0 = kbeg; k0 < kend; k0 += kt) {
    const int nk = static_cast<int>(kend - k0 < kt ? kend - k0 : kt);
    __syncthreads();
    for (int i = threadIdx.x; i < nk * d; i += blockDim.x) {
      const int r = i / d, e = i % d;
      const int64_t key = k0 + r;
      const int64_t slot = static_cast<int64_t>(sq.block_table[key / a.block_size]) * a.block_size +
                           key % a.block_size;
      const int64_t idx = slot * row_stride + static_cast<int64_t>(it.kvh) * d + e;
      k_s[r * (d + 1) + e] = kv_load(a.k, a.f16, idx);
      v_s[r * d + e] = kv_load(a.v, a.f16, idx);
    }
    __syncthreads();
    if (!active || k0 >= n_keys) continue;
    const int lim = static_cast<int>(n_keys - k0 < nk ? n_keys - k0 : nk);
    float s = -INFINITY;
    if (lane < lim) {
      const float* qw = q_s + w * d;
      const float* kr = k_s + lane * (d + 1);
      float dot = 0.0f;
      for (int e = 0; e < d; ++e) dot = fmaf(qw[e], kr[e], dot);
      s = dot * a.scale;
    }
    const float m_new = fmaxf(m, lane_max(s));
    const float p = lane < lim ? expf(s - m_new) : 0.0f;
    const float alpha = expf(m - m_new);  // 0 for the first tile (m = -inf)
    l = l * alpha + lane_sum(p);
    p_s[w * kLanes + lane] = p;
    lane_group_sync();
    for (int r = 0; r < kMaxAcc; ++r) {
      const int e = lane + r * kLanes;
      if (e >= d) break;
      float x = acc[r] * alpha;
      for (int j = 0; j < lim; ++j) x = fmaf(p_s[w * kLanes + j], v_s[j * d + e], x);
      acc[r] = x;
    }
    lane_group_sync();
    m = m_new;
  }
  if (!active || kbeg >= n_keys) return;
  float* part = a.partials + ((t * a.n_heads + h) * a.max_splits + it.split) * (d + 2);
  for (int r = 0; r < kMaxAcc; ++r) {
    const int e = lane + r * kLanes;
    if (e < d) part[e] = acc[r];
  }
  if (lane == 0) {
    part[d] = m;
    part[d + 1] = l;
  }
}

// One block per item of split 0: each query's splits merged in order.
__global__ void attention_combine_kernel(AttnArgs a) {
  const AttentionItem it = a.items[blockIdx.x];
  if (it.split != 0) return;
  const SeqSlice sq = a.seqs[it.seq];
  const int w = threadIdx.x / kLanes, lane = threadIdx.x % kLanes;
  const int jj = w / a.hpi;
  if (jj >= it.nj) return;
  const int h = it.kvh * a.group + it.h0 + w % a.hpi;
  const int d = a.head_dim;
  const int64_t t = sq.first_token + it.j0 + jj;
  const int64_t n_keys = static_cast<int64_t>(sq.n_past) + it.j0 + jj + 1;
  const int n_splits = static_cast<int>((n_keys + kAttnSplitKeys - 1) / kAttnSplitKeys);
  const float* part = a.partials + (t * a.n_heads + h) * a.max_splits * (d + 2);
  float mx = -INFINITY;
  for (int i = 0; i < n_splits; ++i) mx = fmaxf(mx, part[i * (d + 2) + d]);
  float denom = 0.0f;
  for (int i = 0; i < n_splits; ++i) denom += part[i * (d + 2) + d + 1] * expf(part[i * (d + 2) + d] - mx);
  for (int e = lane; e < d; e += kLanes) {
    float x = 0.0f;
    for (int i = 0; i < n_splits; ++i) x += part[i * (d + 2) + e] * expf(part[i * (d + 2) + d] - mx);
    a.out[(t * a.n_heads + h) * d + e] = x / denom;
  }
}

// 16 warps per block, 8 for head dims above 128 (shared memory under 48 KiB).
int max_warps(int64_t head_dim) { return head_dim > 128 ? kMaxWarps / 2 : kMaxWarps; }

}  // namespace

int attention_heads_per_item(int64_t group, int64_t head_dim) {
  for (int h = max_warps(head_dim); h > 1; --h) {
    if (group % h == 0) return h;
  }
  return 1;
}

int attention_tokens_per_item(int64_t group, int64_t head_dim, int64_t max_seq_tokens) {
  if (max_seq_tokens <= 1) return 1;  // decode: no neighbours to share loads with
  const int t = max_warps(head_dim) / attention_heads_per_item(group, head_dim);
  return t < 1 ? 1 : t;
}

int64_t attention_splits(int64_t n_keys) { return (n_keys + kAttnSplitKeys - 1) / kAttnSplitKeys; }

size_t attention_partials_floats(int64_t n_tokens, int64_t n_heads, int64_t max_splits, int64_t head_dim) {
  return static_cast<size_t>(n_tokens * n_heads * max_splits * (head_dim + 2));
}

void launch_attention(const float* q, int64_t n_heads, const KvLayerView& kv, const SeqSlice* seqs,
                      const AttentionItem* items, int64_t n_items, int tokens_per_item, int64_t max_splits,
                      float scale, float* partials, float* out, Stream s) {
  if (n_items <= 0) return;
  SUANLI_CHECK(kv.head_dim <= kMaxHeadDim && n_items <= 0x7fffffff);
  AttnArgs a;
  a.q = q;
  a.k = kv.k;
  a.v = kv.v;
  a.f16 = kv.type == GgmlType::kF16;
  a.block_size = static_cast<int32_t>(kv.block_size);
  a.n_kv_heads = static_cast<int32_t>(kv.n_kv_heads);
  a.head_dim = static_cast<int32_t>(kv.head_dim);
  a.n_heads = static_cast<int32_t>(n_heads);
  a.group = static_cast<int32_t>(n_heads / kv.n_kv_heads);
  a.hpi = attention_heads_per_item(a.group, kv.head_dim);
  a.key_tile = kv.head_dim > 128 ? 16 : 32;
  a.max_splits = static_cast<int32_t>(max_splits);
  a.scale = scale;
  a.seqs = seqs;
  a.items = items;
  a.partials = partials;
  a.out = out;
  const int warps = a.hpi * tokens_per_item;
  SUANLI_CHECK(warps <= max_warps(kv.head_dim));
  const int d = a.head_dim, kt = a.key_tile;
  const size_t smem = sizeof(float) * static_cast<size_t>(warps * d + kt * (d + 1) + kt * d + warps * kLanes);
  const unsigned grid = static_cast<unsigned>(n_items);
  attention_split_kernel<<<grid, warps * kLanes, smem, s>>>(a);
  attention_combine_kernel<<<grid, warps * kLanes, 0, s>>>(a);
}

}  // namespace suanli::gpu
