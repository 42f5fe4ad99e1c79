#include "devices/cpu/reference.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "core/quant/quant.h"

namespace suanli::ref {
namespace {

void dequant_row(const WeightView& w, int64_t row, float* out) {
  const uint8_t* p = static_cast<const uint8_t*>(w.data) + row * w.row_stride;
  SUANLI_CHECK(quant::dequantize(w.type, p, out, w.n_cols).ok());
}

float load_elem(const void* base, GgmlType type, int64_t i) {
  switch (type) {
    case GgmlType::kF32: return static_cast<const float*>(base)[i];
    case GgmlType::kF16: return quant::fp16_to_fp32(static_cast<const uint16_t*>(base)[i]);
    case GgmlType::kBF16: return quant::bf16_to_fp32(static_cast<const uint16_t*>(base)[i]);
    default: SUANLI_CHECK(false && "unsupported element type");
  }
  return 0;
}

void store_elem(void* base, GgmlType type, int64_t i, float v) {
  switch (type) {
    case GgmlType::kF32: static_cast<float*>(base)[i] = v; return;
    case GgmlType::kF16: static_cast<uint16_t*>(base)[i] = quant::fp32_to_fp16(v); return;
    case GgmlType::kBF16: static_cast<uint16_t*>(base)[i] = quant::fp32_to_bf16(v); return;
    default: SUANLI_CHECK(false && "unsupported element type");
  }
}

int64_t kv_index(const KvLayerView& kv, int64_t slot, int64_t head, int64_t e) {
  return (slot * kv.n_kv_heads + head) * kv.head_dim + e;
}

}  // namespace

void embed(const WeightView& table, const int32_t* ids, int64_t n_tokens, float* out) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    SUANLI_CHECK(ids[t] >= 0 && ids[t] < table.n_rows);
    dequant_row(table, ids[t], out + t * table.n_cols);
  }
}

void rms_norm(const float* x, const float* w, int64_t rows, int64_t n, float eps, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float scale = static_cast<float>(1.0 / std::sqrt(ss / n + eps));
    for (int64_t i = 0; i < n; ++i) out[r * n + i] = xr[i] * scale * w[i];
  }
}

void matmul(const float* x, int64_t n_tokens, const WeightView& w, const float* bias, float* out) {
  std::vector<float> row(w.n_cols);
  for (int64_t n = 0; n < w.n_rows; ++n) {
    dequant_row(w, n, row.data());
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float* xt = x + t * w.n_cols;
      double acc = 0;
      for (int64_t k = 0; k < w.n_cols; ++k) acc += static_cast<double>(xt[k]) * row[k];
      if (bias) acc += bias[n];
      out[t * w.n_rows + n] = static_cast<float>(acc);
    }
  }
}

void rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int32_t* positions,
          const RopeParams& p) {
  SUANLI_CHECK(p.n_dims % 2 == 0 && p.n_dims <= head_dim);
  const int64_t half = p.n_dims / 2;
  for (int64_t t = 0; t < n_tokens; ++t) {
    const double pos = static_cast<double>(positions[t]) * p.freq_scale;
    for (int64_t i = 0; i < half; ++i) {
      double theta = pos * std::pow(static_cast<double>(p.freq_base), -2.0 * i / p.n_dims);
      if (p.freq_factors) theta /= p.freq_factors[i];
      const double c = std::cos(theta), s = std::sin(theta);
      for (int64_t h = 0; h < n_heads; ++h) {
        float* xh = x + (t * n_heads + h) * head_dim;
        const int64_t a = p.neox ? i : 2 * i;
        const int64_t b = p.neox ? i + half : 2 * i + 1;
        const double x0 = xh[a], x1 = xh[b];
        xh[a] = static_cast<float>(x0 * c - x1 * s);
        xh[b] = static_cast<float>(x0 * s + x1 * c);
      }
    }
  }
}

void kv_write(const KvLayerView& kv, const float* k, const float* v, int64_t n_tokens, const int32_t* slots) {
  const int64_t row = kv.n_kv_heads * kv.head_dim;
  for (int64_t t = 0; t < n_tokens; ++t) {
    SUANLI_CHECK(slots[t] >= 0 && slots[t] < kv.n_blocks * kv.block_size);
    for (int64_t i = 0; i < row; ++i) {
      store_elem(kv.k, kv.type, slots[t] * row + i, k[t * row + i]);
      store_elem(kv.v, kv.type, slots[t] * row + i, v[t * row + i]);
    }
  }
}

float kv_at(const KvLayerView& kv, const void* pool, int64_t slot, int64_t head, int64_t e) {
  return load_elem(pool, kv.type, kv_index(kv, slot, head, e));
}

void attention(const float* q, int64_t n_tokens, int64_t n_heads, const KvLayerView& kv, const SeqSlice* seqs,
               int32_t n_seqs, float scale, float* out) {
  SUANLI_CHECK(n_heads % kv.n_kv_heads == 0);
  const int64_t group = n_heads / kv.n_kv_heads;
  const int64_t d = kv.head_dim;
  std::vector<double> scores;
  for (int32_t s = 0; s < n_seqs; ++s) {
    const SeqSlice& sq = seqs[s];
    SUANLI_CHECK(sq.first_token >= 0 && sq.first_token + sq.n_tokens <= n_tokens);
    for (int32_t j = 0; j < sq.n_tokens; ++j) {
      const int64_t t = sq.first_token + j;
      const int64_t n_keys = sq.n_past + j + 1;
      SUANLI_CHECK((n_keys + kv.block_size - 1) / kv.block_size <= sq.n_blocks);
      for (int64_t h = 0; h < n_heads; ++h) {
        const int64_t kvh = h / group;
        const float* qh = q + (t * n_heads + h) * d;
        scores.assign(n_keys, 0);
        double max_score = -INFINITY;
        for (int64_t key = 0; key < n_keys; ++key) {
          const int64_t slot = static_cast<int64_t>(sq.block_table[key / kv.block_size]) * kv.block_size +
                               key % kv.block_size;
          double dot = 0;
          for (int64_t e = 0; e < d; ++e) dot += static_cast<double>(qh[e]) * kv_at(kv, kv.k, slot, kvh, e);
          scores[key] = dot * scale;
          max_score = std::max(max_score, scores[key]);
        }
        double denom = 0;
        for (double& sc : scores) {
          sc = std::exp(sc - max_score);
          denom += sc;
        }
        float* oh = out + (t * n_heads + h) * d;
        for (int64_t e = 0; e < d; ++e) {
          double acc = 0;
          for (int64_t key = 0; key < n_keys; ++key) {
            const int64_t slot = static_cast<int64_t>(sq.block_table[key / kv.block_size]) * kv.block_size +
                                 key % kv.block_size;
            acc += scores[key] * kv_at(kv, kv.v, slot, kvh, e);
          }
          oh[e] = static_cast<float>(acc / denom);
        }
      }
    }
  }
}

void swiglu(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    out[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

void add(const float* a, const float* b, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void convert(const void* src, GgmlType src_type, void* dst, GgmlType dst_type, int64_t n) {
  for (int64_t i = 0; i < n; ++i) store_elem(dst, dst_type, i, load_elem(src, src_type, i));
}

}  // namespace suanli::ref
