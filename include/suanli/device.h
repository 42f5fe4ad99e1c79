// The porting surface: a Device and its op set.
//
// Bringing up a new chip means implementing this interface and nothing else.
// The ops are few and exact; each is defined by the scalar reference in
// src/devices/cpu/reference.cc and checked against it by the conformance
// suite (tests/conformance/) on every available device.
//
// Conventions:
//  - Activations are float32, row-major: x[T][n] for T tokens.
//  - Weights are WeightViews: n_rows rows of n_cols elements in any weight
//    format the device lists in caps().weight_formats.
//  - Pointers passed to ops are device addresses from this device's buffers
//    (host pointers on host devices).
//  - Ops are enqueued in order on the device's single stream; they may run
//    asynchronously. synchronize() waits for all of them and reports a device
//    error if one occurred. Shapes that break an op's contract are programmer
//    errors (SUANLI_CHECK), never user input: validation happens at load.
//
// Thread safety: one thread drives a Device at a time (the engine's loop
// thread). Devices may use their own worker threads inside ops.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "suanli/dtype.h"
#include "suanli/status.h"

namespace suanli {

enum class DeviceKind { kCpu, kCuda, kVulkan };

enum class Op { kEmbed, kRmsNorm, kMatmul, kRope, kKvWrite, kAttention, kSwiglu, kAdd, kConvert };

std::string_view op_name(Op op);

struct DeviceCaps {
  std::vector<GgmlType> weight_formats;  // accepted by matmul and embed
  std::vector<GgmlType> kv_formats;      // element types of the paged KV cache
  std::vector<Op> ops;

  bool supports(GgmlType weight_format) const;
  bool supports_kv(GgmlType kv_format) const;
  bool supports(Op op) const;
};

// What a device can do at best, measured on it (not from a datasheet): the
// denominators of every roofline fraction suanli reports.
struct Roofline {
  double memory_gbs = 0;   // sustained read bandwidth of device memory, GB/s
  double int8_gops = 0;    // peak int8 multiply-accumulate rate, 1e9 ops/s (a MAC is 2 ops)
  double fp32_gflops = 0;  // peak fp32 fused multiply-add rate, 1e9 flops/s
};

struct MemoryInfo {
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
};

// Device memory. For host devices data() is an ordinary pointer.
class Buffer {
 public:
  virtual ~Buffer() = default;
  virtual void* data() = 0;
  virtual size_t size() const = 0;
};

// A weight matrix: n_rows rows of n_cols elements, each row row_bytes apart.
//
// Views made by Device::prepare_weights may carry a device-private `layout`
// (0 is GGUF's: rows of `type` blocks, row_stride apart) and may stack up to
// kMaxWeightParts matrices with the same type and n_cols: n_rows is their
// total and part_rows[p] the rows of part p. matmul with a stacked view
// writes part p's result as its own [T][part_rows[p]] matrix, the parts one
// after another in `out` (for T = 1 that is simply one [1][n_rows] row).
constexpr int kMaxWeightParts = 4;
struct WeightView {
  const void* data = nullptr;
  GgmlType type = GgmlType::kF32;
  int64_t n_rows = 0;
  int64_t n_cols = 0;
  size_t row_stride = 0;  // bytes between rows (row_bytes(type, n_cols) when dense)
  int32_t layout = 0;     // 0: GGUF rows; otherwise private to the device that prepared it
  int32_t n_parts = 1;
  int64_t part_rows[kMaxWeightParts] = {};  // when n_parts > 1
};

// A weight in a device's preferred layout, with the storage that holds it
// (null when the view still points into the original bytes).
struct PreparedWeight {
  WeightView view;
  std::unique_ptr<Buffer> storage;
};

// One layer's paged KV cache: k and v are [n_blocks][block_size][n_kv_heads][head_dim]
// of `type` (F16 or F32). Token slot s lives in block s / block_size at
// row s % block_size.
struct KvLayerView {
  void* k = nullptr;
  void* v = nullptr;
  GgmlType type = GgmlType::kF16;
  int64_t n_blocks = 0;
  int64_t block_size = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
};

// The tokens of one sequence within a batch, for attention: tokens
// [first_token, first_token + n_tokens) of the batch sit at positions
// n_past .. n_past + n_tokens - 1; keys 0 .. n_past + n_tokens - 1 are in the
// blocks listed by block_table (logical block i → physical block_table[i]).
// Causal: the token at position p attends to keys 0..p.
struct SeqSlice {
  int32_t first_token = 0;
  int32_t n_tokens = 0;
  int32_t n_past = 0;
  const int32_t* block_table = nullptr;
  int32_t n_blocks = 0;
};

struct RopeParams {
  int32_t n_dims = 0;        // rotated dimensions per head (even, <= head_dim)
  bool neox = false;         // pairs (i, i + n_dims/2) instead of (2i, 2i+1)
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;   // linear position scaling
  const float* freq_factors = nullptr;  // [n_dims/2] divisors (llama3 rope_freqs), or null
};

class Device {
 public:
  virtual ~Device() = default;

  virtual std::string name() const = 0;
  virtual DeviceKind kind() const = 0;
  virtual const DeviceCaps& caps() const = 0;
  virtual MemoryInfo memory() const = 0;
  // Runs short micro-benchmarks (about a second in all).
  virtual Roofline measure_roofline() = 0;

  virtual Expected<std::unique_ptr<Buffer>> alloc(size_t bytes) = 0;
  // A buffer holding `bytes` bytes of host memory that outlives the buffer
  // (e.g. weights in a mapped GGUF): zero-copy on host devices, one upload
  // elsewhere.
  virtual Expected<std::unique_ptr<Buffer>> map_host(const void* host, size_t bytes) = 0;
  virtual Status upload(void* device_dst, const void* host_src, size_t bytes) = 0;
  virtual Status download(void* host_dst, const void* device_src, size_t bytes) = 0;
  virtual Status synchronize() = 0;

  // Rewrites weights once, at load, into the layout this device multiplies
  // fastest (e.g. rows interleaved for SIMD), optionally stacking several
  // matrices that share an input (q/k/v, gate/up) so one matmul serves them
  // all. `parts` are GGUF-layout views of one type and n_cols. Unsupported
  // when the device has no better layout for them, or cannot stack them:
  // callers then use the views as they are. The default: a single part is
  // returned unchanged; stacking is unsupported.
  virtual Expected<PreparedWeight> prepare_weights(const std::vector<WeightView>& parts);

  // Runs fn(i) for every i in [0, n), in any order and possibly at once, on
  // host threads the device leaves idle between ops: for host-side work on
  // a step's results, such as sampling each sequence's next token. Called by
  // the device's owner thread, never during an op, and fn must not call the
  // device. The default runs them one after another on the caller; the CPU
  // device spreads them over its pool.
  virtual void host_parallel_for(int64_t n, const std::function<void(int64_t i)>& fn);

  // ---- the op set ----

  // out[t][:] = dequantized row ids[t] of table. ids are checked by the caller.
  virtual void embed(const WeightView& table, const int32_t* ids, int64_t n_tokens, float* out) = 0;
  // out[r][:] = x[r][:] / sqrt(mean(x[r]^2) + eps) * w[:], for rows r of n.
  // Used per token (n = embedding) and per head (q/k norm, n = head_dim).
  virtual void rms_norm(const float* x, const float* w, int64_t rows, int64_t n, float eps, float* out) = 0;
  // out[T][N] = x[T][K] · W[N][K]ᵀ (+ bias[N] when not null). Every weight byte
  // is read once for all T tokens. out[t] depends only on x[t] and W (batch
  // invariance): the reduction order never depends on T.
  virtual void matmul(const float* x, int64_t n_tokens, const WeightView& w, const float* bias, float* out) = 0;
  // Rotates x[T][n_heads][head_dim] in place at the tokens' positions.
  virtual void rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int32_t* positions,
                    const RopeParams& p) = 0;
  // Writes k[T][n_kv_heads*head_dim] and v[T][...] into cache slots slots[T].
  virtual void kv_write(const KvLayerView& kv, const float* k, const float* v, int64_t n_tokens,
                        const int32_t* slots) = 0;
  // Causal attention of q[T][n_heads][head_dim] over the paged cache, for each
  // sequence slice; grouped-query (n_heads a multiple of kv.n_kv_heads).
  // out[T][n_heads][head_dim]. softmax(q·kᵀ·scale)·v, float32 accumulation.
  virtual void attention(const float* q, int64_t n_tokens, int64_t n_heads, const KvLayerView& kv,
                         const SeqSlice* seqs, int32_t n_seqs, float scale, float* out) = 0;
  // out[i] = silu(gate[i]) * up[i]
  virtual void swiglu(const float* gate, const float* up, int64_t n, float* out) = 0;
  // out[i] = a[i] + b[i] (out may alias a or b)
  virtual void add(const float* a, const float* b, int64_t n, float* out) = 0;
  // Element conversion between float32 and F16/BF16/F32 buffers (n elements).
  virtual void convert(const void* src, GgmlType src_type, void* dst, GgmlType dst_type, int64_t n) = 0;
};

struct DeviceOptions {
  int cpu_threads = 0;  // 0: all cores
};

// Every device that initializes. One that fails is skipped; its reason is
// appended to `messages` (never fatal). The CPU device is always first.
std::vector<std::unique_ptr<Device>> discover_devices(const DeviceOptions& options, std::vector<std::string>* messages);

}  // namespace suanli
