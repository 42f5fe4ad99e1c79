// Host-side launchers of the CUDA device's kernels (one .cu per op family).
// Each enqueues on `s` and returns at once; launch errors surface through
// gpu::get_last_error(), which CudaDevice checks after every op. Shapes are
// checked by CudaDevice before it calls these.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "devices/cuda/gpu_compat.h"
#include "suanli/device.h"

namespace suanli::gpu {

// elementwise.cu
void launch_add(const float* a, const float* b, int64_t n, float* out, Stream s);
void launch_swiglu(const float* gate, const float* up, int64_t n, float* out, Stream s);
void launch_rms_norm(const float* x, const float* w, int64_t rows, int64_t n, float eps, float* out, Stream s);
void launch_rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int32_t* positions,
                 const RopeParams& p, Stream s);
void launch_convert(const void* src, GgmlType src_type, void* dst, GgmlType dst_type, int64_t n, Stream s);
void launch_kv_write(const KvLayerView& kv, const float* k, const float* v, int64_t n_tokens, const int32_t* slots,
                     Stream s);

// quant.cu: every weight format of quant_formats().
const GgmlType* quant_formats(int* count);
void launch_embed(const WeightView& table, const int32_t* ids, int64_t n_tokens, float* out, Stream s);
// The exact matmul (fp32 products and sums in a fixed order per output).
void launch_matmul(const float* x, int64_t n_tokens, const WeightView& w, const float* bias, float* out, Stream s);
// Rows [row0, row0 + n_rows) of w dequantized to bf16, [n_rows][n_cols],
// and x [n][n_cols] rounded to bf16: the operands of the tensor-core path.
void launch_dequant_bf16(const WeightView& w, int64_t row0, int64_t n_rows, uint16_t* out, Stream s);
void launch_f32_to_bf16(const float* x, int64_t n, uint16_t* out, Stream s);
void launch_add_bias(float* out, const float* bias, int64_t n_tokens, int64_t n, Stream s);

// attention.cu. One work item per (sequence, first token, kv head, first
// query head, split): see attention.cu for the tiling. Items and seqs are
// device arrays; partials hold attention_partials_floats() floats.
struct AttentionItem {
  int32_t seq;    // index into seqs
  int32_t j0;     // first token of the item within the sequence
  int32_t nj;     // tokens of the item (<= tokens per item)
  int32_t kvh;    // kv head
  int32_t h0;     // first query head within the kv head's group
  int32_t split;  // keys [split * kAttnSplitKeys, (split + 1) * kAttnSplitKeys)
};
inline constexpr int kAttnSplitKeys = 64;  // a multiple of the key tile (32 or 16)
// Query heads and tokens per item: one 32-lane group per (token, head).
int attention_heads_per_item(int64_t group, int64_t head_dim);
int attention_tokens_per_item(int64_t group, int64_t head_dim, int64_t max_seq_tokens);
int64_t attention_splits(int64_t n_keys);
size_t attention_partials_floats(int64_t n_tokens, int64_t n_heads, int64_t max_splits, int64_t head_dim);
void launch_attention(const float* q, int64_t n_heads, const KvLayerView& kv, const SeqSlice* seqs,
                      const AttentionItem* items, int64_t n_items, int tokens_per_item, int64_t max_splits,
                      float scale, float* partials, float* out, Stream s);

// roofline.cu
double measure_copy_gbs(Stream s);
double measure_int8_gops(Stream s, int multiprocessors);
double measure_fp32_gflops(Stream s, int multiprocessors);

}  // namespace suanli::gpu

namespace suanli::gpu {

// The tensor-core matmul (gemm_cublaslt.cu): weights dequantized to bf16 in
// device scratch, tile by tile, and multiplied by cuBLASLt with fp32
// accumulation. Faster than launch_matmul for large T, but it rounds the
// activations to bf16 and its reduction order depends on T, so it is not
// batch invariant and misses the float formats' conformance tolerance: an
// opt-in (docs/cuda.md). Not available in HIP builds.
class TensorCoreGemm {
 public:
  // Null (with the reason in *why_not) where it cannot be used.
  static std::unique_ptr<TensorCoreGemm> create(std::string* why_not);
  ~TensorCoreGemm();
  // False (nothing enqueued, the reason in *error) when cuBLASLt refuses.
  bool run(const float* x, int64_t n_tokens, const WeightView& w, const float* bias, float* out, Stream s,
           std::string* error);

 private:
  struct Impl;
  explicit TensorCoreGemm(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace suanli::gpu
