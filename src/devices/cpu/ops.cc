// CPU kernels for the element-wise and attention ops. matmul lives in
// matmul*.cc. Loops are written so the compiler vectorizes them (the
// library is built with -O3 for src/devices/cpu) and parallelized over
// rows / heads; each output's reduction order is fixed, independent of the
// batch and of the thread count (batch invariance).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/quant/quant.h"
#include "devices/cpu/kernels.h"

namespace suanli::cpu {
namespace {

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

void load_kv_row(const KvLayerView& kv, const void* pool, int64_t slot, int64_t head, float* out) {
  const int64_t idx = (slot * kv.n_kv_heads + head) * kv.head_dim;
  if (kv.type == GgmlType::kF32) {
    std::memcpy(out, static_cast<const float*>(pool) + idx, kv.head_dim * sizeof(float));
  } else {
    const uint16_t* p = static_cast<const uint16_t*>(pool) + idx;
    for (int64_t e = 0; e < kv.head_dim; ++e) out[e] = quant::fp16_to_fp32(p[e]);
  }
}

}  // namespace

void embed(ThreadPool& pool, const WeightView& table, const int32_t* ids, int64_t n_tokens, float* out) {
  pool.parallel_for(n_tokens, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      SUANLI_CHECK(ids[t] >= 0 && ids[t] < table.n_rows);
      const uint8_t* row = static_cast<const uint8_t*>(table.data) + ids[t] * table.row_stride;
      SUANLI_CHECK(quant::dequantize(table.type, row, out + t * table.n_cols, table.n_cols).ok());
    }
  });
}

void rms_norm(ThreadPool& pool, const float* x, const float* w, int64_t rows, int64_t n, float eps, float* out) {
  auto body = [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * n;
      // Fixed 8-lane partial sums: vectorizable and order-stable.
      float part[8] = {};
      int64_t i = 0;
      for (; i + 8 <= n; i += 8) {
        for (int l = 0; l < 8; ++l) part[l] += xr[i + l] * xr[i + l];
      }
      float ss = 0;
      for (int l = 0; l < 8; ++l) ss += part[l];
      for (; i < n; ++i) ss += xr[i] * xr[i];
      const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
      float* o = out + r * n;
      for (int64_t j = 0; j < n; ++j) o[j] = xr[j] * scale * w[j];
    }
  };
  if (rows * n < 16384) {
    body(0, rows);
  } else {
    pool.parallel_for(rows, 1, body);
  }
}

void rope(ThreadPool& pool, float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int32_t* positions,
          const RopeParams& p) {
  SUANLI_CHECK(p.n_dims % 2 == 0 && p.n_dims <= head_dim);
  const int64_t half = p.n_dims / 2;
  pool.parallel_for(n_tokens, 1, [&](int64_t b, int64_t e) {
    float cs[512], sn[512];
    SUANLI_CHECK(half <= 512);
    for (int64_t t = b; t < e; ++t) {
      const double pos = static_cast<double>(positions[t]) * p.freq_scale;
      for (int64_t i = 0; i < half; ++i) {
        double theta = pos * std::pow(static_cast<double>(p.freq_base), -2.0 * i / p.n_dims);
        if (p.freq_factors) theta /= p.freq_factors[i];
        cs[i] = static_cast<float>(std::cos(theta));
        sn[i] = static_cast<float>(std::sin(theta));
      }
      for (int64_t h = 0; h < n_heads; ++h) {
        float* xh = x + (t * n_heads + h) * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const int64_t a = p.neox ? i : 2 * i;
          const int64_t c = p.neox ? i + half : 2 * i + 1;
          const float x0 = xh[a], x1 = xh[c];
          xh[a] = x0 * cs[i] - x1 * sn[i];
          xh[c] = x0 * sn[i] + x1 * cs[i];
        }
      }
    }
  });
}

void kv_write(ThreadPool& pool, const KvLayerView& kv, const float* k, const float* v, int64_t n_tokens,
              const int32_t* slots) {
  (void)pool;
  const int64_t row = kv.n_kv_heads * kv.head_dim;
  for (int64_t t = 0; t < n_tokens; ++t) {
    SUANLI_CHECK(slots[t] >= 0 && slots[t] < kv.n_blocks * kv.block_size);
    const int64_t base = static_cast<int64_t>(slots[t]) * row;
    if (kv.type == GgmlType::kF32) {
      std::memcpy(static_cast<float*>(kv.k) + base, k + t * row, row * sizeof(float));
      std::memcpy(static_cast<float*>(kv.v) + base, v + t * row, row * sizeof(float));
    } else {
      uint16_t* kd = static_cast<uint16_t*>(kv.k) + base;
      uint16_t* vd = static_cast<uint16_t*>(kv.v) + base;
      for (int64_t i = 0; i < row; ++i) {
        kd[i] = quant::fp32_to_fp16(k[t * row + i]);
        vd[i] = quant::fp32_to_fp16(v[t * row + i]);
      }
    }
  }
}

void attention(ThreadPool& pool, Workspace& ws, const float* q, int64_t n_tokens, int64_t n_heads,
               const KvLayerView& kv, const SeqSlice* seqs, int32_t n_seqs, float scale, float* out) {
  SUANLI_CHECK(n_heads % kv.n_kv_heads == 0);
  const int64_t group = n_heads / kv.n_kv_heads;
  const int64_t d = kv.head_dim;
  // Work items: (sequence, token within it, kv head) — the query heads of
  // one kv head share each key/value row read from the cache.
  int64_t max_keys = 0;
  for (int32_t s = 0; s < n_seqs; ++s) max_keys = std::max<int64_t>(max_keys, seqs[s].n_past + seqs[s].n_tokens);
  if (static_cast<int>(ws.per_thread.size()) < pool.size()) ws.per_thread.resize(pool.size());
  for (auto& buf : ws.per_thread) {
    const size_t need = static_cast<size_t>(max_keys * group + 2 * d + group * d);
    if (buf.size() < need) buf.resize(need);
  }
  std::vector<int64_t> item_seq;  // small: one entry per (seq, token)
  item_seq.reserve(n_tokens);
  for (int32_t s = 0; s < n_seqs; ++s) {
    for (int32_t j = 0; j < seqs[s].n_tokens; ++j) item_seq.push_back(s);
  }
  const int64_t n_items = static_cast<int64_t>(item_seq.size()) * kv.n_kv_heads;
  pool.run([&](int tid) {
    float* scores = ws.per_thread[tid].data();  // [group][max_keys]
    float* krow = scores + max_keys * group;
    float* vrow = krow + d;
    float* acc = vrow + d;  // [group][d]
    for (int64_t item = tid; item < n_items; item += pool.size()) {
      const int64_t tok_item = item / kv.n_kv_heads;
      const int64_t kvh = item % kv.n_kv_heads;
      const SeqSlice& sq = seqs[item_seq[tok_item]];
      int64_t j = tok_item;
      for (int32_t s = 0; s < item_seq[tok_item]; ++s) j -= seqs[s].n_tokens;
      const int64_t t = sq.first_token + j;
      const int64_t n_keys = sq.n_past + j + 1;
      float max_score[64];
      SUANLI_CHECK(group <= 64);
      for (int64_t g = 0; g < group; ++g) max_score[g] = -INFINITY;
      for (int64_t key = 0; key < n_keys; ++key) {
        const int64_t slot = static_cast<int64_t>(sq.block_table[key / kv.block_size]) * kv.block_size +
                             key % kv.block_size;
        load_kv_row(kv, kv.k, slot, kvh, krow);
        for (int64_t g = 0; g < group; ++g) {
          const float* qh = q + (t * n_heads + kvh * group + g) * d;
          float part[8] = {};
          for (int64_t e = 0; e < d; e += 8) {
            for (int l = 0; l < 8; ++l) part[l] += qh[e + l] * krow[e + l];
          }
          float dot = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
          const float sc = dot * scale;
          scores[g * max_keys + key] = sc;
          max_score[g] = std::max(max_score[g], sc);
        }
      }
      float denom[64];
      for (int64_t g = 0; g < group; ++g) {
        float sum = 0;
        for (int64_t key = 0; key < n_keys; ++key) {
          const float e = std::exp(scores[g * max_keys + key] - max_score[g]);
          scores[g * max_keys + key] = e;
          sum += e;
        }
        denom[g] = sum;
      }
      std::fill(acc, acc + group * d, 0.0f);
      for (int64_t key = 0; key < n_keys; ++key) {
        const int64_t slot = static_cast<int64_t>(sq.block_table[key / kv.block_size]) * kv.block_size +
                             key % kv.block_size;
        load_kv_row(kv, kv.v, slot, kvh, vrow);
        for (int64_t g = 0; g < group; ++g) {
          const float w = scores[g * max_keys + key];
          float* a = acc + g * d;
          for (int64_t e = 0; e < d; ++e) a[e] += w * vrow[e];
        }
      }
      for (int64_t g = 0; g < group; ++g) {
        float* oh = out + (t * n_heads + kvh * group + g) * d;
        const float inv = 1.0f / denom[g];
        for (int64_t e = 0; e < d; ++e) oh[e] = acc[g * d + e] * inv;
      }
    }
  });
}

void swiglu(ThreadPool& pool, const float* gate, const float* up, int64_t n, float* out) {
  auto body = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = silu(gate[i]) * up[i];
  };
  if (n < 32768) {
    body(0, n);
  } else {
    pool.parallel_for(n, 1024, body);
  }
}

void add(ThreadPool& pool, const float* a, const float* b, int64_t n, float* out) {
  auto body = [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) out[i] = a[i] + b[i];
  };
  if (n < 65536) {
    body(0, n);
  } else {
    pool.parallel_for(n, 1024, body);
  }
}

}  // namespace suanli::cpu
