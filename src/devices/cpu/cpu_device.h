// The CPU device: host memory, a persistent thread pool, the op set.
#pragma once

#include <memory>

#include "core/thread_pool.h"
#include "devices/cpu/kernels.h"
#include "suanli/device.h"

namespace suanli {

class CpuDevice final : public Device {
 public:
  explicit CpuDevice(int n_threads);

  std::string name() const override;
  DeviceKind kind() const override { return DeviceKind::kCpu; }
  const DeviceCaps& caps() const override { return caps_; }
  MemoryInfo memory() const override;
  Roofline measure_roofline() override;
  int threads() const { return pool_.size(); }
  ThreadPool& pool() { return pool_; }

  Expected<std::unique_ptr<Buffer>> alloc(size_t bytes) override;
  Expected<std::unique_ptr<Buffer>> map_host(const void* host, size_t bytes) override;
  Status upload(void* device_dst, const void* host_src, size_t bytes) override;
  Status download(void* host_dst, const void* device_src, size_t bytes) override;
  Status synchronize() override { return Status::Ok(); }
  Expected<PreparedWeight> prepare_weights(const std::vector<WeightView>& parts) override;
  void host_parallel_for(int64_t n, const std::function<void(int64_t)>& fn) override;
  // Off: prepare_weights leaves every weight as it is (tests, A/B benchmarks).
  void set_packing(bool on) { packing_ = on; }

  void embed(const WeightView& table, const int32_t* ids, int64_t n_tokens, float* out) override;
  void rms_norm(const float* x, const float* w, int64_t rows, int64_t n, float eps, float* out) override;
  void matmul(const float* x, int64_t n_tokens, const WeightView& w, const float* bias, float* out) override;
  void rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int32_t* positions,
            const RopeParams& p) override;
  void kv_write(const KvLayerView& kv, const float* k, const float* v, int64_t n_tokens,
                const int32_t* slots) override;
  void attention(const float* q, int64_t n_tokens, int64_t n_heads, const KvLayerView& kv, const SeqSlice* seqs,
                 int32_t n_seqs, float scale, float* out) override;
  void swiglu(const float* gate, const float* up, int64_t n, float* out) override;
  void add(const float* a, const float* b, int64_t n, float* out) override;
  void convert(const void* src, GgmlType src_type, void* dst, GgmlType dst_type, int64_t n) override;

 private:
  ThreadPool pool_;
  cpu::Workspace ws_;
  DeviceCaps caps_;
  bool packing_ = true;
  // Huge-page chunks that prepared weights are carved from (see .cc).
  Expected<std::unique_ptr<Buffer>> arena_alloc(size_t bytes);
  std::shared_ptr<void> arena_;
  size_t arena_used_ = 0, arena_size_ = 0;
};

}  // namespace suanli
