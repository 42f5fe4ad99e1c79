// A device whose memory the host cannot address (a GPU), made to take the
// host arrays the conformance tests pass: each op's inputs are uploaded to
// fresh device buffers, the op runs on the device, and its outputs come
// back. Outputs are uploaded first too, so in-place ops (rope), partial
// writes (kv_write into a few slots) and aliasing (add with out == a) keep
// their meaning. Everything else forwards to the wrapped device.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "suanli/device.h"

namespace suanli::conformance {

class StagedDevice final : public Device {
 public:
  explicit StagedDevice(std::unique_ptr<Device> inner) : d_(std::move(inner)) {}

  std::string name() const override { return d_->name(); }
  DeviceKind kind() const override { return d_->kind(); }
  const DeviceCaps& caps() const override { return d_->caps(); }
  MemoryInfo memory() const override { return d_->memory(); }
  Roofline measure_roofline() override { return d_->measure_roofline(); }
  Expected<std::unique_ptr<Buffer>> alloc(size_t bytes) override { return d_->alloc(bytes); }
  Expected<std::unique_ptr<Buffer>> map_host(const void* host, size_t bytes) override {
    return d_->map_host(host, bytes);
  }
  Status upload(void* dst, const void* src, size_t bytes) override { return d_->upload(dst, src, bytes); }
  Status download(void* dst, const void* src, size_t bytes) override { return d_->download(dst, src, bytes); }
  Status synchronize() override { return d_->synchronize(); }

  void embed(const WeightView& table, const int32_t* ids, int64_t n_tokens, float* out) override {
    d_->embed(weights(table), in(ids, n_tokens * 4), n_tokens, out_f(out, n_tokens * table.n_cols));
    finish();
  }
  void rms_norm(const float* x, const float* w, int64_t rows, int64_t n, float eps, float* out) override {
    d_->rms_norm(in_f(x, rows * n), in_f(w, n), rows, n, eps, out_f(out, rows * n));
    finish();
  }
  void matmul(const float* x, int64_t n_tokens, const WeightView& w, const float* bias, float* out) override {
    d_->matmul(in_f(x, n_tokens * w.n_cols), n_tokens, weights(w), bias ? in_f(bias, w.n_rows) : nullptr,
               out_f(out, n_tokens * w.n_rows));
    finish();
  }
  void rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int32_t* positions,
            const RopeParams& p) override {
    RopeParams dp = p;
    if (p.freq_factors) dp.freq_factors = in_f(p.freq_factors, p.n_dims / 2);
    d_->rope(out_f(x, n_tokens * n_heads * head_dim), n_tokens, n_heads, head_dim, in(positions, n_tokens * 4), dp);
    finish();
  }
  void kv_write(const KvLayerView& kv, const float* k, const float* v, int64_t n_tokens,
                const int32_t* slots) override {
    const int64_t row = kv.n_kv_heads * kv.head_dim;
    d_->kv_write(pools(kv, true), in_f(k, n_tokens * row), in_f(v, n_tokens * row), n_tokens,
                 in(slots, n_tokens * 4));
    finish();
  }
  void attention(const float* q, int64_t n_tokens, int64_t n_heads, const KvLayerView& kv, const SeqSlice* seqs,
                 int32_t n_seqs, float scale, float* out) override {
    std::vector<SeqSlice> dseqs(seqs, seqs + n_seqs);
    for (SeqSlice& s : dseqs) s.block_table = in(s.block_table, int64_t{s.n_blocks} * 4);
    const int64_t n = n_tokens * n_heads * kv.head_dim;
    d_->attention(in_f(q, n), n_tokens, n_heads, pools(kv, false), dseqs.data(), n_seqs, scale, out_f(out, n));
    finish();
  }
  void swiglu(const float* gate, const float* up, int64_t n, float* out) override {
    d_->swiglu(in_f(gate, n), in_f(up, n), n, out_f(out, n));
    finish();
  }
  void add(const float* a, const float* b, int64_t n, float* out) override {
    d_->add(in_f(a, n), in_f(b, n), n, out_f(out, n));
    finish();
  }
  void convert(const void* src, GgmlType src_type, void* dst, GgmlType dst_type, int64_t n) override {
    d_->convert(in(src, row_bytes(src_type, n)), src_type, out(dst, row_bytes(dst_type, n)), dst_type, n);
    finish();
  }

 private:
  struct Staged {
    const void* host;
    size_t bytes;
    std::unique_ptr<Buffer> buffer;
    bool is_output;
  };

  // The device copy of host[0, bytes): one buffer per host pointer per op,
  // so aliased arguments stay aliased.
  void* stage(const void* host, int64_t bytes, bool is_output) {
    for (Staged& s : staged_) {
      if (s.host == host) {
        s.is_output |= is_output;
        return s.buffer->data();
      }
    }
    Expected<std::unique_ptr<Buffer>> b = d_->alloc(static_cast<size_t>(bytes));
    EXPECT_TRUE(b.has_value()) << b.status().message();
    if (!b) std::abort();
    EXPECT_TRUE(d_->upload((*b)->data(), host, static_cast<size_t>(bytes)).ok());
    staged_.push_back({host, static_cast<size_t>(bytes), std::move(*b), is_output});
    return staged_.back().buffer->data();
  }
  template <typename T>
  const T* in(const T* host, int64_t bytes) {
    return static_cast<const T*>(stage(host, bytes, false));
  }
  const float* in_f(const float* host, int64_t n) { return in(host, n * 4); }
  void* out(void* host, int64_t bytes) { return stage(host, bytes, true); }
  float* out_f(float* host, int64_t n) { return static_cast<float*>(out(host, n * 4)); }

  WeightView weights(const WeightView& w) {
    WeightView dw = w;
    dw.data = in(static_cast<const uint8_t*>(w.data), w.n_rows * static_cast<int64_t>(w.row_stride));
    return dw;
  }
  KvLayerView pools(const KvLayerView& kv, bool written) {
    const int64_t bytes = row_bytes(kv.type, kv.n_blocks * kv.block_size * kv.n_kv_heads * kv.head_dim);
    KvLayerView dkv = kv;
    dkv.k = written ? out(kv.k, bytes) : const_cast<void*>(static_cast<const void*>(in(static_cast<const uint8_t*>(kv.k), bytes)));
    dkv.v = written ? out(kv.v, bytes) : const_cast<void*>(static_cast<const void*>(in(static_cast<const uint8_t*>(kv.v), bytes)));
    return dkv;
  }

  // Runs what was enqueued, brings the outputs back, frees the buffers.
  void finish() {
    const Status s = d_->synchronize();
    EXPECT_TRUE(s.ok()) << name() << ": " << s.message();
    for (Staged& st : staged_) {
      if (st.is_output) {
        EXPECT_TRUE(d_->download(const_cast<void*>(st.host), st.buffer->data(), st.bytes).ok());
      }
    }
    staged_.clear();
  }

  std::unique_ptr<Device> d_;
  std::vector<Staged> staged_;
};

}  // namespace suanli::conformance
