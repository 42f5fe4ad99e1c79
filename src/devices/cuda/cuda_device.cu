// CudaDevice: memory, the stream, staging through pinned host memory, and
// the op set's shape checks and launches (the kernels are in the other .cu
// files of this directory). docs/cuda.md describes the design.
#include "devices/cuda/cuda_device.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "devices/cuda/kernels.h"

namespace suanli {
namespace {

using gpu::Error;
using gpu::kSuccess;

std::string gpu_error(const char* what, Error e) {
  return std::string(gpu::kRuntimeName) + " " + what + ": " + gpu::error_string(e);
}

// The calling thread's current device, as this file last set it: every
// entry point binds its device first (the engine drives a device from its
// own loop thread, and a machine may hold several GPUs).
thread_local int t_bound_device = -1;
void bind_device(int ordinal) {
  if (t_bound_device != ordinal) {
    (void)gpu::set_device(ordinal);
    t_bound_device = ordinal;
  }
}

class GpuBuffer final : public Buffer {
 public:
  GpuBuffer(void* p, size_t n, int ordinal) : p_(p), n_(n), ordinal_(ordinal) {}
  ~GpuBuffer() override {
    bind_device(ordinal_);
    (void)gpu::device_free(p_);
  }
  void* data() override { return p_; }
  size_t size() const override { return n_; }

 private:
  void* p_;
  size_t n_;
  int ordinal_;
};

// A device array that grows on demand (contents are not kept).
struct Scratch {
  void* p = nullptr;
  size_t bytes = 0;
  ~Scratch() {
    if (p) (void)gpu::device_free(p);
  }
  Error reserve(size_t need) {
    if (need <= bytes) return kSuccess;
    if (p) (void)gpu::device_free(p);  // synchronizes with work still reading it
    p = nullptr;
    bytes = 0;
    const size_t rounded = std::max<size_t>(need + need / 2, 4096);
    const Error e = gpu::device_malloc(&p, rounded);
    if (e == kSuccess) {
      bytes = rounded;
    } else {
      (void)gpu::get_last_error();  // reported by the caller, not by the next launch check
    }
    return e;
  }
};

// Host→device copies that return at once go through a pinned arena: a copy
// is staged there, and the arena is reused after the stream drains (at
// synchronize(), or when it is full). Large copies go in pinned chunks,
// double-buffered (map_host: weights are uploaded once, tensor by tensor).
constexpr size_t kStagingBytes = size_t{16} << 20;
constexpr size_t kChunkBytes = size_t{8} << 20;

class CudaDevice final : public Device {
 public:
  CudaDevice(int ordinal, const gpu::DeviceProps& props) : ordinal_(ordinal), props_(props) {
    int n = 0;
    const GgmlType* formats = gpu::quant_formats(&n);
    caps_.weight_formats.assign(formats, formats + n);
    caps_.kv_formats = {GgmlType::kF16, GgmlType::kF32};
    caps_.ops = {Op::kEmbed,     Op::kRmsNorm, Op::kMatmul, Op::kRope,   Op::kKvWrite,
                 Op::kAttention, Op::kSwiglu,  Op::kAdd,    Op::kConvert};
    if (const char* v = std::getenv("SUANLI_CUDA_TC_MIN_TOKENS")) tc_min_tokens_ = std::atoll(v);
  }

  ~CudaDevice() override {
    if (stream_) {
      (void)gpu::set_device(ordinal_);
      (void)gpu::stream_synchronize(stream_);
      (void)gpu::stream_destroy(stream_);
    }
    if (staging_) (void)gpu::host_free_pinned(staging_);
    if (chunks_) (void)gpu::host_free_pinned(chunks_);
    for (gpu::Event e : chunk_done_) {
      if (e) (void)gpu::event_destroy(e);
    }
  }

  Status init() {
    Error e = gpu::set_device(ordinal_);
    if (e != kSuccess) return Internal(gpu_error("set device", e));
    t_bound_device = ordinal_;
    e = gpu::stream_create(&stream_);
    if (e != kSuccess) return Internal(gpu_error("create stream", e));
    e = gpu::host_alloc_pinned(reinterpret_cast<void**>(&staging_), kStagingBytes);
    if (e != kSuccess) return Internal(gpu_error("allocate pinned host memory", e));
    if (tc_min_tokens_ > 0) {
      std::string why;
      tc_ = gpu::TensorCoreGemm::create(&why);
      if (!tc_) {
        std::fprintf(stderr, "suanli: %s: tensor-core matmul unavailable: %s\n", gpu::kRuntimeName, why.c_str());
        tc_min_tokens_ = 0;
      }
    }
    return Status::Ok();
  }

  std::string name() const override {
    std::string kind = gpu::kRuntimeName;
    for (char& c : kind) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return kind + ":" + std::to_string(ordinal_) + " (" + props_.name + ", " +
           (std::string(gpu::kRuntimeName) == "CUDA" ? "sm_" : "gfx") + std::to_string(props_.major) +
           std::to_string(props_.minor) + ")";
  }
  DeviceKind kind() const override { return DeviceKind::kCuda; }
  const DeviceCaps& caps() const override { return caps_; }

  MemoryInfo memory() const override {
    MemoryInfo m;
    size_t free_b = 0, total_b = 0;
    bind_device(ordinal_);
    if (gpu::mem_get_info(&free_b, &total_b) == kSuccess) {
      m.free_bytes = free_b;
      m.total_bytes = total_b;
    }
    return m;
  }

  Roofline measure_roofline() override {
    bind_device(ordinal_);
    Roofline r;
    r.memory_gbs = gpu::measure_copy_gbs(stream_);
    r.int8_gops = gpu::measure_int8_gops(stream_, props_.multiprocessors);
    r.fp32_gflops = gpu::measure_fp32_gflops(stream_, props_.multiprocessors);
    check_launch("roofline");
    return r;
  }

  Expected<std::unique_ptr<Buffer>> alloc(size_t bytes) override {
    bind_device(ordinal_);
    void* p = nullptr;
    const Error e = gpu::device_malloc(&p, std::max<size_t>(bytes, 256));
    if (e != kSuccess) {
      (void)gpu::get_last_error();  // clear it: an allocation failure is reported here, not at synchronize
      return ResourceExhausted("cannot allocate " + std::to_string(bytes) + " bytes on " + name() + ": " +
                               gpu::error_string(e));
    }
    return std::unique_ptr<Buffer>(new GpuBuffer(p, bytes, ordinal_));
  }

  Expected<std::unique_ptr<Buffer>> map_host(const void* host, size_t bytes) override {
    SUANLI_ASSIGN_OR_RETURN(std::unique_ptr<Buffer> b, alloc(bytes));
    SUANLI_RETURN_IF_ERROR(upload(b->data(), host, bytes));
    return Expected<std::unique_ptr<Buffer>>(std::move(b));
  }

  Status upload(void* device_dst, const void* host_src, size_t bytes) override {
    if (bytes == 0) return Status::Ok();
    bind_device(ordinal_);
    if (bytes > kStagingBytes / 4) return upload_chunked(device_dst, host_src, bytes);
    return copy_staged(device_dst, host_src, bytes);
  }

  Status download(void* host_dst, const void* device_src, size_t bytes) override {
    if (bytes == 0) return Status::Ok();
    bind_device(ordinal_);
    Error e = gpu::copy_d2h_async(host_dst, device_src, bytes, stream_);
    if (e == kSuccess) e = gpu::stream_synchronize(stream_);
    if (e != kSuccess) return Internal(gpu_error("download", e));
    return Status::Ok();
  }

  Status synchronize() override {
    bind_device(ordinal_);
    const Error e = gpu::stream_synchronize(stream_);
    staging_used_ = 0;
    if (e != kSuccess && error_.empty()) error_ = gpu_error("stream", e);
    if (!error_.empty()) {
      Status s = Internal(error_);
      error_.clear();
      return s;
    }
    return Status::Ok();
  }

  // ---- the op set ----

  void embed(const WeightView& table, const int32_t* ids, int64_t n_tokens, float* out) override {
    bind_device(ordinal_);
    SUANLI_CHECK(caps_.supports(table.type) && table.n_cols % traits(table.type).block_size == 0);
    SUANLI_CHECK(table.layout == 0 && table.n_parts <= 1);  // only GGUF rows: no prepare_weights here
    gpu::launch_embed(table, ids, n_tokens, out, stream_);
    check_launch("embed");
  }

  void rms_norm(const float* x, const float* w, int64_t rows, int64_t n, float eps, float* out) override {
    bind_device(ordinal_);
    SUANLI_CHECK(rows >= 0 && n > 0);
    gpu::launch_rms_norm(x, w, rows, n, eps, out, stream_);
    check_launch("rms_norm");
  }

  void matmul(const float* x, int64_t n_tokens, const WeightView& w, const float* bias, float* out) override {
    bind_device(ordinal_);
    SUANLI_CHECK(caps_.supports(w.type) && w.n_cols % traits(w.type).block_size == 0);
    SUANLI_CHECK(w.layout == 0 && w.n_parts <= 1);
    if (tc_ && n_tokens >= tc_min_tokens_) {
      std::string why;
      if (tc_->run(x, n_tokens, w, bias, out, stream_, &why)) {
        check_launch("matmul (tensor cores)");
        return;
      }
      if (!tc_warned_) {
        tc_warned_ = true;
        std::fprintf(stderr, "suanli: %s: tensor-core matmul fell back to the exact kernel: %s\n",
                     gpu::kRuntimeName, why.c_str());
      }
    }
    gpu::launch_matmul(x, n_tokens, w, bias, out, stream_);
    check_launch("matmul");
  }

  void rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int32_t* positions,
            const RopeParams& p) override {
    bind_device(ordinal_);
    SUANLI_CHECK(p.n_dims % 2 == 0 && p.n_dims <= head_dim);
    gpu::launch_rope(x, n_tokens, n_heads, head_dim, positions, p, stream_);
    check_launch("rope");
  }

  void kv_write(const KvLayerView& kv, const float* k, const float* v, int64_t n_tokens,
                const int32_t* slots) override {
    bind_device(ordinal_);
    SUANLI_CHECK(kv.type == GgmlType::kF16 || kv.type == GgmlType::kF32);
    gpu::launch_kv_write(kv, k, v, n_tokens, slots, stream_);
    check_launch("kv_write");
  }

  void attention(const float* q, int64_t n_tokens, int64_t n_heads, const KvLayerView& kv, const SeqSlice* seqs,
                 int32_t n_seqs, float scale, float* out) override;

  void swiglu(const float* gate, const float* up, int64_t n, float* out) override {
    bind_device(ordinal_);
    gpu::launch_swiglu(gate, up, n, out, stream_);
    check_launch("swiglu");
  }

  void add(const float* a, const float* b, int64_t n, float* out) override {
    bind_device(ordinal_);
    gpu::launch_add(a, b, n, out, stream_);
    check_launch("add");
  }

  void convert(const void* src, GgmlType src_type, void* dst, GgmlType dst_type, int64_t n) override {
    bind_device(ordinal_);
    auto ok = [](GgmlType t) { return t == GgmlType::kF32 || t == GgmlType::kF16 || t == GgmlType::kBF16; };
    SUANLI_CHECK(ok(src_type) && ok(dst_type));
    gpu::launch_convert(src, src_type, dst, dst_type, n, stream_);
    check_launch("convert");
  }

 private:
  // Remembers the first launch or copy error; synchronize() reports it.
  void check_launch(const char* op) {
    const Error e = gpu::get_last_error();
    if (e != kSuccess && error_.empty()) error_ = gpu_error(op, e);
  }
  void note(const char* what, Error e) {
    if (e != kSuccess && error_.empty()) error_ = gpu_error(what, e);
  }

  // Copies host bytes into the staging arena and enqueues their upload; the
  // host memory may change as soon as this returns.
  Status copy_staged(void* device_dst, const void* host_src, size_t bytes) {
    SUANLI_CHECK(bytes <= kStagingBytes);
    if (staging_used_ + bytes > kStagingBytes) {
      const Error e = gpu::stream_synchronize(stream_);
      if (e != kSuccess) return Internal(gpu_error("stream", e));
      staging_used_ = 0;
    }
    uint8_t* slot = staging_ + staging_used_;
    staging_used_ += (bytes + 255) / 256 * 256;
    std::memcpy(slot, host_src, bytes);
    const Error e = gpu::copy_h2d_async(device_dst, slot, bytes, stream_);
    if (e != kSuccess) return Internal(gpu_error("upload", e));
    return Status::Ok();
  }

  // Large uploads: through two pinned chunks in turn, so that copying the
  // next chunk into pinned memory overlaps the DMA of the previous one. The
  // chunks are allocated at the first large upload and kept (the model maps
  // its weights tensor by tensor).
  Status upload_chunked(void* device_dst, const void* host_src, size_t bytes) {
    Error e = gpu::stream_synchronize(stream_);
    staging_used_ = 0;
    if (e != kSuccess) return Internal(gpu_error("stream", e));
    if (!chunks_) {
      if (!chunk_done_[0]) e = gpu::event_create(&chunk_done_[0]);
      if (e == kSuccess && !chunk_done_[1]) e = gpu::event_create(&chunk_done_[1]);
      if (e == kSuccess) e = gpu::host_alloc_pinned(reinterpret_cast<void**>(&chunks_), 2 * kChunkBytes);
      if (e != kSuccess) {
        chunks_ = nullptr;
        (void)gpu::get_last_error();
        return Internal(gpu_error("allocate pinned host memory", e));
      }
    }
    const uint8_t* src = static_cast<const uint8_t*>(host_src);
    uint8_t* dst = static_cast<uint8_t*>(device_dst);
    size_t i = 0;
    for (size_t off = 0; off < bytes && e == kSuccess; off += kChunkBytes, ++i) {
      const size_t n = std::min(kChunkBytes, bytes - off);
      uint8_t* chunk = chunks_ + (i % 2) * kChunkBytes;
      if (i >= 2) e = gpu::event_synchronize(chunk_done_[i % 2]);  // the chunk's previous copy
      if (e != kSuccess) break;
      std::memcpy(chunk, src + off, n);
      e = gpu::copy_h2d_async(dst + off, chunk, n, stream_);
      if (e == kSuccess) e = gpu::event_record(chunk_done_[i % 2], stream_);
    }
    const Error sync = gpu::stream_synchronize(stream_);
    if (e == kSuccess) e = sync;
    if (e != kSuccess) return Internal(gpu_error("upload", e));
    return Status::Ok();
  }

  int ordinal_;
  gpu::DeviceProps props_;
  DeviceCaps caps_;
  gpu::Stream stream_ = nullptr;
  uint8_t* staging_ = nullptr;  // kStagingBytes, pinned
  size_t staging_used_ = 0;
  uint8_t* chunks_ = nullptr;   // 2 x kChunkBytes, pinned, for large uploads
  gpu::Event chunk_done_[2] = {nullptr, nullptr};
  std::string error_;

  // Attention: the work list on the device, reused while it is unchanged
  // (every layer of a step runs the same one).
  std::vector<gpu::AttentionItem> items_;
  std::vector<uint8_t> meta_image_, last_upload_;
  Scratch attn_meta_, attn_partials_;

  std::unique_ptr<gpu::TensorCoreGemm> tc_;
  int64_t tc_min_tokens_ = 0;  // 0: the tensor-core path is off
  bool tc_warned_ = false;
};

void CudaDevice::attention(const float* q, int64_t n_tokens, int64_t n_heads, const KvLayerView& kv,
                           const SeqSlice* seqs, int32_t n_seqs, float scale, float* out) {
  bind_device(ordinal_);
  SUANLI_CHECK(kv.n_kv_heads > 0 && n_heads % kv.n_kv_heads == 0);
  SUANLI_CHECK(kv.type == GgmlType::kF16 || kv.type == GgmlType::kF32);
  if (n_seqs <= 0) return;
  const int64_t group = n_heads / kv.n_kv_heads;
  int64_t max_seq_tokens = 0, max_keys = 0;
  for (int32_t s = 0; s < n_seqs; ++s) {
    const SeqSlice& sq = seqs[s];
    SUANLI_CHECK(sq.first_token >= 0 && sq.first_token + sq.n_tokens <= n_tokens);
    SUANLI_CHECK((sq.n_past + sq.n_tokens + kv.block_size - 1) / kv.block_size <= sq.n_blocks);
    max_seq_tokens = std::max<int64_t>(max_seq_tokens, sq.n_tokens);
    max_keys = std::max<int64_t>(max_keys, sq.n_past + sq.n_tokens);
  }
  const int hpi = gpu::attention_heads_per_item(group, kv.head_dim);
  const int tpi = gpu::attention_tokens_per_item(group, kv.head_dim, max_seq_tokens);
  items_.clear();
  for (int32_t s = 0; s < n_seqs; ++s) {
    const SeqSlice& sq = seqs[s];
    for (int32_t j0 = 0; j0 < sq.n_tokens; j0 += tpi) {
      const int32_t nj = std::min<int32_t>(tpi, sq.n_tokens - j0);
      const int64_t splits = gpu::attention_splits(static_cast<int64_t>(sq.n_past) + j0 + nj);
      for (int32_t kvh = 0; kvh < kv.n_kv_heads; ++kvh) {
        for (int32_t h0 = 0; h0 < group; h0 += hpi) {
          for (int32_t split = 0; split < splits; ++split) items_.push_back({s, j0, nj, kvh, h0, split});
        }
      }
    }
  }
  const int64_t max_splits = gpu::attention_splits(max_keys);
  // Device metadata: the SeqSlice array (its block tables already point to
  // device memory), then the items.
  const size_t seq_bytes = (sizeof(SeqSlice) * static_cast<size_t>(n_seqs) + 15) / 16 * 16;
  const size_t item_bytes = sizeof(gpu::AttentionItem) * items_.size();
  meta_image_.assign(seq_bytes + item_bytes, 0);
  std::memcpy(meta_image_.data(), seqs, sizeof(SeqSlice) * static_cast<size_t>(n_seqs));
  std::memcpy(meta_image_.data() + seq_bytes, items_.data(), item_bytes);
  if (meta_image_ != last_upload_ || attn_meta_.bytes < meta_image_.size()) {
    note("allocate attention metadata", attn_meta_.reserve(meta_image_.size()));
    if (attn_meta_.bytes < meta_image_.size()) return;
    const Status st = meta_image_.size() <= kStagingBytes
                          ? copy_staged(attn_meta_.p, meta_image_.data(), meta_image_.size())
                          : upload_chunked(attn_meta_.p, meta_image_.data(), meta_image_.size());
    if (!st.ok()) {
      if (error_.empty()) error_ = st.message();
      last_upload_.clear();
      return;
    }
    last_upload_ = meta_image_;
  }
  const size_t partial_bytes =
      sizeof(float) * gpu::attention_partials_floats(n_tokens, n_heads, max_splits, kv.head_dim);
  note("allocate attention partials", attn_partials_.reserve(partial_bytes));
  if (attn_partials_.bytes < partial_bytes) return;
  const uint8_t* meta = static_cast<const uint8_t*>(attn_meta_.p);
  gpu::launch_attention(q, n_heads, kv, reinterpret_cast<const SeqSlice*>(meta),
                        reinterpret_cast<const gpu::AttentionItem*>(meta + seq_bytes),
                        static_cast<int64_t>(items_.size()), tpi, max_splits, scale,
                        static_cast<float*>(attn_partials_.p), out, stream_);
  check_launch("attention");
}

}  // namespace

void discover_gpu_devices(std::vector<std::unique_ptr<Device>>* devices, std::vector<std::string>* messages) {
  const std::string rt = gpu::kRuntimeName;
  int n = 0;
  const Error e = gpu::device_count(&n);
  if (e != kSuccess) {
    (void)gpu::get_last_error();
    messages->push_back(rt + ": no device: " + gpu::error_string(e) +
                        (gpu::means_no_driver(e) ? " (no GPU driver on this machine, or one older than the runtime)"
                                                 : ""));
    return;
  }
  if (n == 0) {
    messages->push_back(rt + ": no device: the driver reports none");
    return;
  }
  for (int i = 0; i < n; ++i) {
    gpu::DeviceProps props{};
    Error pe = gpu::device_props(i, &props);
    if (pe != kSuccess) {
      messages->push_back(rt + " device " + std::to_string(i) + " skipped: " + gpu::error_string(pe));
      continue;
    }
    auto dev = std::make_unique<CudaDevice>(i, props);
    if (Status s = dev->init(); !s.ok()) {
      messages->push_back(rt + " device " + std::to_string(i) + " skipped: " + s.message());
      continue;
    }
    devices->push_back(std::move(dev));
  }
}

}  // namespace suanli
