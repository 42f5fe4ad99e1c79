#include "devices/cpu/cpu_device.h"

#include <sys/mman.h>
#include <sys/sysinfo.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <optional>
#include <string_view>
#include <utility>

#include "devices/cpu/reference.h"
#include "devices/cpu/roofline.h"

namespace suanli {
namespace {

// 64-byte aligned host memory.
class HostBuffer final : public Buffer {
 public:
  HostBuffer(void* p, size_t n, bool owned) : p_(p), n_(n), owned_(owned) {}
  ~HostBuffer() override {
    if (owned_) std::free(p_);
  }
  void* data() override { return p_; }
  size_t size() const override { return n_; }

 private:
  void* p_;
  size_t n_;
  bool owned_;
};

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "CPU";
}

}  // namespace

CpuDevice::CpuDevice(int n_threads) : pool_(n_threads) {
  // SUANLI_CPU_PACK=0 keeps every weight in the file's layout (A/B runs).
  if (const char* e = std::getenv("SUANLI_CPU_PACK"); e && std::string_view(e) == "0") packing_ = false;
  caps_.weight_formats = cpu::supported_weight_formats();
  caps_.kv_formats = {GgmlType::kF16, GgmlType::kF32};
  caps_.ops = {Op::kEmbed, Op::kRmsNorm, Op::kMatmul, Op::kRope,    Op::kKvWrite,
               Op::kAttention, Op::kSwiglu, Op::kAdd, Op::kConvert};
}

std::string CpuDevice::name() const { return "cpu (" + cpu_model_name() + ")"; }

namespace {
// The first unsigned number in a file (cgroup limits; "max" reads as none).
std::optional<uint64_t> read_u64(const char* path) {
  std::FILE* f = std::fopen(path, "r");
  if (!f) return std::nullopt;
  unsigned long long v = 0;
  const bool ok = std::fscanf(f, "%llu", &v) == 1;
  std::fclose(f);
  if (!ok) return std::nullopt;
  return static_cast<uint64_t>(v);
}
}  // namespace

// free_bytes: the kernel's MemAvailable (free memory plus the page cache
// and other memory it can reclaim without swapping; sysinfo's free +
// buffers where /proc/meminfo has no such line), capped by this process's
// memory cgroup (a container's --memory limit) minus its usage, for cgroup
// v2 and v1. The cgroup's usage counts its page cache, so the cap errs low.
MemoryInfo CpuDevice::memory() const {
  struct sysinfo si {};
  MemoryInfo m;
  if (sysinfo(&si) == 0) {
    m.total_bytes = static_cast<uint64_t>(si.totalram) * si.mem_unit;
    m.free_bytes = static_cast<uint64_t>(si.freeram + si.bufferram) * si.mem_unit;
  }
  if (std::FILE* f = std::fopen("/proc/meminfo", "r")) {
    char line[256];
    unsigned long long kib = 0;
    while (std::fgets(line, sizeof line, f)) {
      if (std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1) {
        m.free_bytes = static_cast<uint64_t>(kib) * 1024;
        break;
      }
    }
    std::fclose(f);
  }
  const std::pair<const char*, const char*> cgroups[] = {
      {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"},
      {"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"}};
  for (const auto& [limit_path, usage_path] : cgroups) {
    const std::optional<uint64_t> limit = read_u64(limit_path), usage = read_u64(usage_path);
    if (!limit || !usage || *limit >= (uint64_t{1} << 60)) continue;  // no limit ("max", or v1's huge value)
    const uint64_t headroom = *limit > *usage ? *limit - *usage : 0;
    m.free_bytes = std::min(m.free_bytes, headroom);
    break;
  }
  return m;
}

Roofline CpuDevice::measure_roofline() {
  Roofline r;
  r.memory_gbs = cpu::measure_memory_bandwidth_gbs(pool_);
  r.int8_gops = cpu::measure_peak_int8_gops(pool_);
  r.fp32_gflops = cpu::measure_peak_fp32_gflops(pool_);
  return r;
}

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
// SUANLI_CPU_HUGEPAGES=0 turns the huge-page advice off (A/B runs).
bool want_huge_pages() {
  static const bool huge = [] {
    const char* e = std::getenv("SUANLI_CPU_HUGEPAGES");
    return !(e && std::string_view(e) == "0");
  }();
  return huge;
}
void advise_huge(void* p, size_t size) {
#ifdef MADV_HUGEPAGE
  if (want_huge_pages()) madvise(p, size, MADV_HUGEPAGE);  // advice only: ignore failure
#else
  (void)p, (void)size;
#endif
}
}  // namespace

// Buffers of 1 MiB or more (the KV cache pools, one per layer) are rounded
// up to whole 2 MiB pages, 2 MiB-aligned and advised as huge pages, like the packed weights below: attention reads the
// whole cache of every sequence each decode step (at a 4,096-token context,
// as many bytes as the default model's weights), and with 4 KiB pages most
// of those reads also missed the TLB.
Expected<std::unique_ptr<Buffer>> CpuDevice::alloc(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  const bool huge = rounded >= kHugePage / 2;
  if (huge) rounded = (rounded + kHugePage - 1) / kHugePage * kHugePage;
  void* p = std::aligned_alloc(huge ? kHugePage : 64, rounded ? rounded : 64);
  if (!p) return ResourceExhausted("cannot allocate " + std::to_string(bytes) + " bytes of host memory");
  if (huge) advise_huge(p, rounded);
  return std::unique_ptr<Buffer>(new HostBuffer(p, bytes, true));
}

Expected<std::unique_ptr<Buffer>> CpuDevice::map_host(const void* host, size_t bytes) {
  return std::unique_ptr<Buffer>(new HostBuffer(const_cast<void*>(host), bytes, false));
}

Status CpuDevice::upload(void* dst, const void* src, size_t bytes) {
  std::memcpy(dst, src, bytes);
  return Status::Ok();
}

Status CpuDevice::download(void* dst, const void* src, size_t bytes) {
  std::memcpy(dst, src, bytes);
  return Status::Ok();
}

// Prepared weights are carved out of 2 MiB-aligned chunks advised as huge
// pages: decode streams all of them every token, and with 4 KiB pages a
// ~100 MB model misses the TLB once per page.
class ArenaBuffer final : public Buffer {
 public:
  ArenaBuffer(std::shared_ptr<void> chunk, void* p, size_t n) : chunk_(std::move(chunk)), p_(p), n_(n) {}
  void* data() override { return p_; }
  size_t size() const override { return n_; }

 private:
  std::shared_ptr<void> chunk_;
  void* p_;
  size_t n_;
};

Expected<std::unique_ptr<Buffer>> CpuDevice::arena_alloc(size_t bytes) {
  constexpr size_t kChunk = size_t{64} << 20;
  bytes = (bytes + 63) / 64 * 64;
  if (!arena_ || arena_used_ + bytes > arena_size_) {
    const size_t size = std::max(kChunk, (bytes + kHugePage - 1) / kHugePage * kHugePage);
    void* p = std::aligned_alloc(kHugePage, size);
    if (!p) return ResourceExhausted("cannot allocate " + std::to_string(size) + " bytes of host memory");
    advise_huge(p, size);
    arena_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
    arena_used_ = 0;
    arena_size_ = size;
  }
  void* p = static_cast<uint8_t*>(arena_.get()) + arena_used_;
  arena_used_ += bytes;
  return std::unique_ptr<Buffer>(new ArenaBuffer(arena_, p, bytes));
}

Expected<PreparedWeight> CpuDevice::prepare_weights(const std::vector<WeightView>& parts) {
  const size_t bytes = packing_ ? cpu::packed_bytes(parts) : 0;
  if (bytes == 0) return Device::prepare_weights(parts);
  PreparedWeight p;
  SUANLI_ASSIGN_OR_RETURN(p.storage, arena_alloc(bytes));
  p.view = cpu::pack_weights(pool_, parts, p.storage->data());
  return p;
}

void CpuDevice::host_parallel_for(int64_t n, const std::function<void(int64_t)>& fn) {
  if (n <= 1 || pool_.size() == 1) return Device::host_parallel_for(n, fn);
  // One item per piece: items (a sequence's sampling) cost from microseconds
  // to a millisecond, so the pool's stealing evens them out.
  pool_.parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) fn(i);
  });
}

void CpuDevice::embed(const WeightView& table, const int32_t* ids, int64_t n_tokens, float* out) {
  cpu::embed(pool_, table, ids, n_tokens, out);
}
void CpuDevice::rms_norm(const float* x, const float* w, int64_t rows, int64_t n, float eps, float* out) {
  cpu::rms_norm(pool_, x, w, rows, n, eps, out);
}
void CpuDevice::matmul(const float* x, int64_t n_tokens, const WeightView& w, const float* bias, float* out) {
  cpu::matmul(pool_, ws_, x, n_tokens, w, bias, out);
}
void CpuDevice::rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int32_t* positions,
                     const RopeParams& p) {
  cpu::rope(pool_, ws_, x, n_tokens, n_heads, head_dim, positions, p);
}
void CpuDevice::kv_write(const KvLayerView& kv, const float* k, const float* v, int64_t n_tokens,
                         const int32_t* slots) {
  cpu::kv_write(pool_, kv, k, v, n_tokens, slots);
}
void CpuDevice::attention(const float* q, int64_t n_tokens, int64_t n_heads, const KvLayerView& kv,
                          const SeqSlice* seqs, int32_t n_seqs, float scale, float* out) {
  cpu::attention(pool_, ws_, q, n_tokens, n_heads, kv, seqs, n_seqs, scale, out);
}
void CpuDevice::swiglu(const float* gate, const float* up, int64_t n, float* out) {
  cpu::swiglu(pool_, gate, up, n, out);
}
void CpuDevice::add(const float* a, const float* b, int64_t n, float* out) { cpu::add(pool_, a, b, n, out); }
void CpuDevice::convert(const void* src, GgmlType src_type, void* dst, GgmlType dst_type, int64_t n) {
  ref::convert(src, src_type, dst, dst_type, n);
}

}  // namespace suanli
