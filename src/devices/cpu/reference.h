// The scalar reference of the op set: the definition each device's kernels
// are checked against (tests/conformance). Plain loops, float32 (float64
// where a reduction would otherwise lose the precision the check needs),
// single-threaded, no SIMD. Signatures mirror Device's ops.
#pragma once

#include "suanli/device.h"

namespace suanli::ref {

void embed(const WeightView& table, const int32_t* ids, int64_t n_tokens, float* out);
void rms_norm(const float* x, const float* w, int64_t rows, int64_t n, float eps, float* out);
// Dequantizes each weight row and accumulates in float64.
void matmul(const float* x, int64_t n_tokens, const WeightView& w, const float* bias, float* out);
void rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int32_t* positions,
          const RopeParams& p);
void kv_write(const KvLayerView& kv, const float* k, const float* v, int64_t n_tokens, const int32_t* slots);
void attention(const float* q, int64_t n_tokens, int64_t n_heads, const KvLayerView& kv, const SeqSlice* seqs,
               int32_t n_seqs, float scale, float* out);
void swiglu(const float* gate, const float* up, int64_t n, float* out);
void add(const float* a, const float* b, int64_t n, float* out);
void convert(const void* src, GgmlType src_type, void* dst, GgmlType dst_type, int64_t n);

// Reads element e of head h at slot s of a KV pool (k or v) as float.
float kv_at(const KvLayerView& kv, const void* pool, int64_t slot, int64_t head, int64_t e);

}  // namespace suanli::ref
