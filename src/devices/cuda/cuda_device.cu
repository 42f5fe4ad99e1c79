// CudaDevice: memory, the stream, staging through pinned host memory, and
// the op set's shape checks and launches (the kernels are in the other .cu
// files of this directory). docs/cuda.md describes the design.
#include "devices/cuda/cuda_device.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <mutex>
#include <map>
#include <thread>
#include <vector>
#include <type_traits>
#include <string>
#include <functional>

#include "core/thread_pool.h"
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

// Launches recorded but not yet flushed may use a buffer that is being
// freed, and a graph must not outlive memory it copies to or from: the
// buffer's device (if it is still alive) runs them first and drops its graph
// (buffer_freed, defined below). Several CudaDevice objects may share one
// GPU (the conformance suite makes two), so the buffer names its owner.
class CudaDevice;
void buffer_freed(CudaDevice* owner);

class GpuBuffer final : public Buffer {
 public:
  GpuBuffer(void* p, size_t n, int ordinal, CudaDevice* owner) : p_(p), n_(n), ordinal_(ordinal), owner_(owner) {}
  ~GpuBuffer() override {
    bind_device(ordinal_);
    buffer_freed(owner_);
    (void)gpu::device_free(p_);
  }
  void* data() override { return p_; }
  size_t size() const override { return n_; }

 private:
  void* p_;
  size_t n_;
  int ordinal_;
  CudaDevice* owner_;
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

// The arguments an op's launches read, as bytes (scalars and pointers only,
// so no padding): two flushes whose ops have equal keys launch the same
// kernels with the same arguments, and a graph captured from one can replay
// the other.
class Key {
 public:
  explicit Key(uint8_t op) { b_.push_back(static_cast<char>(op)); }
  template <typename... Ts>
  Key& add(const Ts&... v) {
    (put(v), ...);
    return *this;
  }
  Key& weights(const WeightView& w) {
    return add(w.data, w.type, w.n_rows, w.n_cols, w.row_stride, w.layout, w.n_parts);
  }
  Key& kv(const KvLayerView& kv) {
    return add(kv.k, kv.v, kv.type, kv.n_blocks, kv.block_size, kv.n_kv_heads, kv.head_dim);
  }
  const std::string& bytes() const { return b_; }

 private:
  template <typename T>
  void put(const T& v) {
    static_assert(std::is_scalar_v<T>, "keys hold scalars and pointers only");
    b_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  std::string b_;
};

// Host→device copies that return at once go through a pinned arena: a copy
// is staged there, and the arena is reused after the stream drains (at
// synchronize(), or when it is full). Large copies go in pinned chunks,
// double-buffered (map_host: weights are uploaded once, tensor by tensor).
constexpr size_t kStagingBytes = size_t{16} << 20;
constexpr size_t kChunkBytes = size_t{8} << 20;

std::string matmul_name(const WeightView& w, int64_t n_tokens, bool tc) {
  return std::string("matmul ") + std::string(ggml_type_name(w.type)) +
         (n_tokens == 1 ? " T=1" : n_tokens <= 8 ? " T<=8" : " T>8") + (tc ? " tc" : "") + " " +
         std::to_string(w.n_rows) + "x" + std::to_string(w.n_cols);
}

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
    if (const char* v = std::getenv("SUANLI_CUDA_GRAPHS")) graphs_ = std::string(v) == "1";
    if (const char* v = std::getenv("SUANLI_CUDA_PROFILE")) profile_ = std::string(v) == "1";
  }

  ~CudaDevice() override {
    {
      std::lock_guard<std::mutex> lock(live_mu);
      live_devices().erase(this);
    }
    if (stream_) {
      (void)gpu::set_device(ordinal_);
      t_bound_device = ordinal_;
      flush();
      (void)gpu::stream_synchronize(stream_);
      (void)gpu::stream_destroy(stream_);
    }
    if (exec_) (void)gpu::graph_exec_destroy(exec_);
    if (profile_) {
      collect_profile();
      print_profile();
    }
    for (auto& [a, b] : prof_events_) {
      (void)gpu::event_destroy(a);
      (void)gpu::event_destroy(b);
    }
    if (const char* v = std::getenv("SUANLI_CUDA_GRAPH_STATS"); v && *v == '1') {
      std::fprintf(stderr, "suanli: %s: flushes: %lld graph replays, %lld captures, %lld op by op\n",
                   gpu::kRuntimeName, static_cast<long long>(graph_stats_[0]),
                   static_cast<long long>(graph_stats_[1]), static_cast<long long>(graph_stats_[2]));
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
    {
      std::lock_guard<std::mutex> lock(live_mu);
      live_devices().insert(this);
    }
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
    flush();
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
    return std::unique_ptr<Buffer>(new GpuBuffer(p, bytes, ordinal_, this));
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
    flush();
    Error e = gpu::copy_d2h_async(host_dst, device_src, bytes, stream_);
    if (e == kSuccess) e = gpu::stream_synchronize(stream_);
    if (e != kSuccess) return Internal(gpu_error("download", e));
    return Status::Ok();
  }

  Status synchronize() override {
    bind_device(ordinal_);
    flush();
    const Error e = gpu::stream_synchronize(stream_);
    staging_used_ = 0;
    if (profile_ && e == kSuccess) collect_profile();
    if (e != kSuccess && error_.empty()) error_ = gpu_error("stream", e);
    if (!error_.empty()) {
      Status s = Internal(error_);
      error_.clear();
      return s;
    }
    return Status::Ok();
  }

  // ---- the op set ----
  // Each op checks its shapes now and records its launches as a closure,
  // keyed by every argument the launches read; flush() (at synchronize and
  // download) runs them, as a CUDA graph when the same sequence of ops with
  // the same arguments ran at the previous flush too (see Recorder below).

  void embed(const WeightView& table, const int32_t* ids, int64_t n_tokens, float* out) override {
    bind_device(ordinal_);
    SUANLI_CHECK(caps_.supports(table.type) && table.n_cols % traits(table.type).block_size == 0);
    SUANLI_CHECK(table.layout == 0 && table.n_parts <= 1);  // only GGUF rows: no prepare_weights here
    Key k(1);
    k.weights(table).add(ids, n_tokens, out);
    record(std::move(k), [=, this] {
      gpu::launch_embed(table, ids, n_tokens, out, stream_);
      check_launch("embed");
    }, "embed");
  }

  void rms_norm(const float* x, const float* w, int64_t rows, int64_t n, float eps, float* out) override {
    bind_device(ordinal_);
    SUANLI_CHECK(rows >= 0 && n > 0);
    Key k(2);
    k.add(x, w, rows, n, eps, out);
    record(std::move(k), [=, this] {
      gpu::launch_rms_norm(x, w, rows, n, eps, out, stream_);
      check_launch("rms_norm");
    }, "rms_norm");
  }

  void matmul(const float* x, int64_t n_tokens, const WeightView& w, const float* bias, float* out) override {
    bind_device(ordinal_);
    SUANLI_CHECK(caps_.supports(w.type) && w.n_cols % traits(w.type).block_size == 0);
    SUANLI_CHECK(w.layout == 0 && w.n_parts <= 1);
    const bool tc = tc_ && n_tokens >= tc_min_tokens_;
    Key k(3);
    k.weights(w).add(x, n_tokens, bias, out, tc);
    // cuBLASLt may allocate or free its scratch: such a step is not captured.
    if (tc) no_capture_ = true;
    record(std::move(k), [=, this] {
      if (tc) {
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
    }, profile_ ? matmul_name(w, n_tokens, tc).c_str() : "");
  }

  void rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int32_t* positions,
            const RopeParams& p) override {
    bind_device(ordinal_);
    SUANLI_CHECK(p.n_dims % 2 == 0 && p.n_dims <= head_dim && p.n_dims <= 512);  // rope_kernel's shared table
    Key k(4);
    k.add(x, n_tokens, n_heads, head_dim, positions, p.n_dims, p.neox, p.freq_base, p.freq_scale, p.freq_factors);
    record(std::move(k), [=, this] {
      gpu::launch_rope(x, n_tokens, n_heads, head_dim, positions, p, stream_);
      check_launch("rope");
    }, "rope");
  }

  void kv_write(const KvLayerView& kv, const float* k, const float* v, int64_t n_tokens,
                const int32_t* slots) override {
    bind_device(ordinal_);
    SUANLI_CHECK(kv.type == GgmlType::kF16 || kv.type == GgmlType::kF32);
    Key key(5);
    key.kv(kv).add(k, v, n_tokens, slots);
    record(std::move(key), [=, this] {
      gpu::launch_kv_write(kv, k, v, n_tokens, slots, stream_);
      check_launch("kv_write");
    }, "kv_write");
  }

  void attention(const float* q, int64_t n_tokens, int64_t n_heads, const KvLayerView& kv, const SeqSlice* seqs,
                 int32_t n_seqs, float scale, float* out) override;

  void swiglu(const float* gate, const float* up, int64_t n, float* out) override {
    bind_device(ordinal_);
    Key k(6);
    k.add(gate, up, n, out);
    record(std::move(k), [=, this] {
      gpu::launch_swiglu(gate, up, n, out, stream_);
      check_launch("swiglu");
    }, "swiglu");
  }

  void add(const float* a, const float* b, int64_t n, float* out) override {
    bind_device(ordinal_);
    Key k(7);
    k.add(a, b, n, out);
    record(std::move(k), [=, this] {
      gpu::launch_add(a, b, n, out, stream_);
      check_launch("add");
    }, "add");
  }

  // The engine's per-sequence host work (sampling over the vocabulary):
  // on a GPU serving 64-256 sequences a step, one host thread for all of
  // them would hold each step back. A pool of up to 8 threads, made at the
  // first call with more than one item.
  void host_parallel_for(int64_t n, const std::function<void(int64_t)>& fn) override {
    if (n <= 1) return Device::host_parallel_for(n, fn);
    if (!host_pool_) {
      const int hw = static_cast<int>(std::thread::hardware_concurrency());
      host_pool_ = std::make_unique<ThreadPool>(std::clamp(hw / 2, 1, 8));
    }
    if (host_pool_->size() == 1) return Device::host_parallel_for(n, fn);
    host_pool_->parallel_for(n, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) fn(i);
    });
  }

  void convert(const void* src, GgmlType src_type, void* dst, GgmlType dst_type, int64_t n) override {
    bind_device(ordinal_);
    auto ok = [](GgmlType t) { return t == GgmlType::kF32 || t == GgmlType::kF16 || t == GgmlType::kBF16; };
    SUANLI_CHECK(ok(src_type) && ok(dst_type));
    Key k(8);
    k.add(src, src_type, dst, dst_type, n);
    record(std::move(k), [=, this] {
      gpu::launch_convert(src, src_type, dst, dst_type, n, stream_);
      check_launch("convert");
    }, "convert");
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
      flush();
      const Error e = gpu::stream_synchronize(stream_);
      if (e != kSuccess) return Internal(gpu_error("stream", e));
      staging_used_ = 0;
    }
    const size_t offset = staging_used_;
    uint8_t* slot = staging_ + offset;
    staging_used_ += (bytes + 255) / 256 * 256;
    std::memcpy(slot, host_src, bytes);
    // The copy from the slot is an op like the others: a replayed graph
    // copies what this call just wrote, the slots being the same.
    Key k(9);
    k.add(device_dst, offset, bytes);
    record(std::move(k), [=, this] { note("upload", gpu::copy_h2d_async(device_dst, slot, bytes, stream_)); },
           "upload");
    return Status::Ok();
  }

  // Large uploads: through two pinned chunks in turn, so that copying the
  // next chunk into pinned memory overlaps the DMA of the previous one. The
  // chunks are allocated at the first large upload and kept (the model maps
  // its weights tensor by tensor).
  Status upload_chunked(void* device_dst, const void* host_src, size_t bytes) {
    flush();
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

  // ---- the recorder: ops are launched at flush(), replayed as a graph ----
  // Decode steps repeat the same ops with the same arguments (the model
  // keeps per-step metadata in fixed device buffers), and launching ~500
  // small kernels one by one costs more than the GPU needs to run them. A
  // flush whose key sequence equals the previous flush's is captured into a
  // graph (cudaStreamBeginCapture ... EndCapture, instantiate) and launched;
  // while the sequence keeps repeating, the graph is replayed. Anything else
  // runs as plain launches. Opt-in: SUANLI_CUDA_GRAPHS=1 (see graphs_ below).
  template <typename F>
  void record(Key key, F&& fn, const char* what = "") {
    if (profile_) {
      timed(what, fn);
      return;
    }
    if (!graphs_) {
      fn();
      return;
    }
    pending_key_ += key.bytes();
    pending_.emplace_back(std::forward<F>(fn));
  }

  static inline std::mutex live_mu;
  static std::set<CudaDevice*>& live_devices() {
    static std::set<CudaDevice*> s;
    return s;
  }
  friend void buffer_freed(CudaDevice* owner);

  void drop_graph() {
    if (exec_) (void)gpu::graph_exec_destroy(exec_);
    exec_ = nullptr;
    exec_key_.clear();
    last_key_.clear();
  }

  void flush() {
    if (pending_.empty()) return;
    std::vector<std::function<void()>> ops;
    ops.swap(pending_);
    std::string key;
    key.swap(pending_key_);
    const bool may_capture = !no_capture_;
    no_capture_ = false;
    if (may_capture && exec_ && key == exec_key_) {
      note("graph launch", gpu::graph_launch(exec_, stream_));
      ++graph_stats_[0];
    } else if (may_capture && key == last_key_) {
      capture_and_launch(ops, key);
      ++graph_stats_[1];
    } else {
      for (auto& f : ops) f();
      ++graph_stats_[2];
    }
    last_key_ = std::move(key);
  }

  void capture_and_launch(std::vector<std::function<void()>>& ops, const std::string& key) {
    const std::string error_before = error_;
    Error e = gpu::begin_capture(stream_);
    if (e == kSuccess) {
      for (auto& f : ops) f();
      gpu::Graph g = nullptr;
      e = gpu::end_capture(stream_, &g);
      gpu::GraphExec exec = nullptr;
      if (e == kSuccess) e = gpu::graph_instantiate(&exec, g);
      if (g) (void)gpu::graph_destroy(g);
      if (e == kSuccess) {
        if (exec_) (void)gpu::graph_exec_destroy(exec_);
        exec_ = exec;
        exec_key_ = key;
        note("graph launch", gpu::graph_launch(exec_, stream_));
        return;
      }
    }
    // No graph: what the capture noted is void, the ops run as launches.
    (void)gpu::get_last_error();
    error_ = error_before;
    if (!capture_warned_) {
      capture_warned_ = true;
      std::fprintf(stderr, "suanli: %s: graph capture failed (%s); running kernels one by one\n",
                   gpu::kRuntimeName, gpu::error_string(e));
    }
    for (auto& f : ops) f();
  }

  // SUANLI_CUDA_PROFILE=1: every op runs at once between two events, and the
  // device prints the GPU time per op (and matmul weight format / token
  // count) when it is destroyed. Graphs are off then.
  template <typename F>
  void timed(const std::string& what, F& fn) {
    if (prof_used_ == prof_events_.size()) {
      gpu::Event a = nullptr, b = nullptr;
      note("event", gpu::event_create(&a));
      note("event", gpu::event_create(&b));
      prof_events_.push_back({a, b});
    }
    auto [a, b] = prof_events_[prof_used_];
    prof_names_.resize(prof_used_ + 1);
    prof_names_[prof_used_++] = what;
    note("event", gpu::event_record(a, stream_));
    fn();
    note("event", gpu::event_record(b, stream_));
  }
  void collect_profile() {  // after the stream has drained
    for (size_t i = 0; i < prof_used_; ++i) {
      float ms = 0;
      if (gpu::event_elapsed_ms(&ms, prof_events_[i].first, prof_events_[i].second) == kSuccess) {
        auto& [calls, total] = prof_totals_[prof_names_[i]];
        ++calls;
        total += ms;
      }
    }
    prof_used_ = 0;
  }
  void print_profile() {
    double all = 0;
    for (auto& [name, ct] : prof_totals_) all += ct.second;
    std::vector<std::pair<std::string, std::pair<int64_t, double>>> rows(prof_totals_.begin(), prof_totals_.end());
    std::sort(rows.begin(), rows.end(), [](auto& x, auto& y) { return x.second.second > y.second.second; });
    std::fprintf(stderr, "suanli: %s profile (GPU time per op, %.1f ms in all):\n", gpu::kRuntimeName, all);
    for (auto& [name, ct] : rows) {
      std::fprintf(stderr, "  %-34s %8lld calls %10.2f ms %9.2f us/call %5.1f%%\n", name.c_str(),
                   static_cast<long long>(ct.first), ct.second, 1e3 * ct.second / ct.first,
                   all > 0 ? 100.0 * ct.second / all : 0.0);
    }
  }
  bool profile_ = false;
  std::vector<std::pair<gpu::Event, gpu::Event>> prof_events_;
  std::vector<std::string> prof_names_;
  size_t prof_used_ = 0;
  std::map<std::string, std::pair<int64_t, double>> prof_totals_;

  // Off by default: on the H200 they gained ~3% on tg128 (the kernels, not
  // the launches, are what a decode step waits on; docs/cuda.md), and the
  // conformance suite hit a replay of a graph whose buffers had been freed
  // (fixed since by naming each buffer's owner, not re-run on a GPU).
  bool graphs_ = false;
  int64_t graph_stats_[3] = {0, 0, 0};  // flushes replayed, captured, launched op by op
  bool no_capture_ = false;  // the pending ops include one that must not be captured
  bool capture_warned_ = false;
  std::vector<std::function<void()>> pending_;
  std::string pending_key_, last_key_, exec_key_;
  gpu::GraphExec exec_ = nullptr;

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

  std::unique_ptr<ThreadPool> host_pool_;
  std::unique_ptr<gpu::TensorCoreGemm> tc_;
  int64_t tc_min_tokens_ = 0;  // 0: the tensor-core path is off
  bool tc_warned_ = false;
};

void buffer_freed(CudaDevice* owner) {
  std::lock_guard<std::mutex> lock(CudaDevice::live_mu);
  if (CudaDevice::live_devices().count(owner) == 0) return;
  owner->flush();
  owner->drop_graph();
}

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
    if (attn_meta_.bytes < meta_image_.size()) {  // recorded ops and graphs may still use the old buffer
      flush();
      drop_graph();
    }
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
  if (attn_partials_.bytes < partial_bytes) {
    flush();
    drop_graph();
  }
  note("allocate attention partials", attn_partials_.reserve(partial_bytes));
  if (attn_partials_.bytes < partial_bytes) return;
  const uint8_t* meta = static_cast<const uint8_t*>(attn_meta_.p);
  const auto* dseqs = reinterpret_cast<const SeqSlice*>(meta);
  const auto* ditems = reinterpret_cast<const gpu::AttentionItem*>(meta + seq_bytes);
  const int64_t n_items = static_cast<int64_t>(items_.size());
  float* partials = static_cast<float*>(attn_partials_.p);
  Key k(10);
  k.kv(kv).add(q, n_heads, dseqs, ditems, n_items, tpi, max_splits, scale, partials, out);
  record(std::move(k), [=, this] {
    gpu::launch_attention(q, n_heads, kv, dseqs, ditems, n_items, tpi, max_splits, scale, partials, out, stream_);
    check_launch("attention");
  }, n_tokens == 1 ? "attention T=1" : "attention T>1");
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
