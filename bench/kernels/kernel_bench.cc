// Kernel benchmark for the CPU device's matmul (the lab: see also
// tests/conformance for correctness). Usage:
//   suanli_kernel_bench [--threads N] [--isa avx512vnni|avx2|portable]
//                       [--no-pack] [--quick]
// Matrices are laid out as the CPU device prepares a model's weights: in the
// packed rows16 layout where the format has one (matmul_packed.h; --no-pack
// keeps GGUF's row layout), on 2 MiB-aligned memory advised as huge pages.
// Prints, per weight format, T=1 bandwidth (weight bytes / time) as a
// fraction of the bandwidth probe and of a pure read of the same matrix
// (cpu::measure_read_gbs, measured right after: the same bytes, threads and
// split, no arithmetic), and T=512 throughput (2·T·N·K ops / time) as a
// fraction of the measured int8 (integer formats) or fp32 (float formats)
// peak; then a decode step of SmolLM2-135M's matmuls (Q4_1 layers with q/k/v
// and gate/up stacked as the model stacks them, tied Q8_0 output) as
// tokens/s, against the probe and a pure read of the step's matrices.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <sys/mman.h>

#include "core/quant/quant.h"
#include "core/thread_pool.h"
#include "devices/cpu/kernels.h"
#include "devices/cpu/matmul_kernels.h"
#include "devices/cpu/roofline.h"

namespace suanli {
namespace {

using Clock = std::chrono::steady_clock;

// 2 MiB-aligned bytes advised as huge pages, as the CPU device allocates
// prepared weights (4 KiB pages cost decode ~30% of its bandwidth in TLB
// misses here).
struct HugeBuffer {
  uint8_t* p = nullptr;
  size_t n = 0;
  HugeBuffer() = default;
  explicit HugeBuffer(size_t bytes) : n(bytes) {
    const size_t align = size_t{2} << 20;
    p = static_cast<uint8_t*>(std::aligned_alloc(align, (bytes + align - 1) / align * align));
    if (!p) std::abort();
#ifdef MADV_HUGEPAGE
    madvise(p, (bytes + align - 1) / align * align, MADV_HUGEPAGE);
#endif
  }
  HugeBuffer(HugeBuffer&& o) noexcept : p(std::exchange(o.p, nullptr)), n(o.n) {}
  HugeBuffer& operator=(HugeBuffer&& o) noexcept {
    std::swap(p, o.p);
    n = o.n;
    return *this;
  }
  ~HugeBuffer() { std::free(p); }
};

struct Matrix {
  HugeBuffer bytes;
  WeightView view;
  size_t size() const { return bytes.n; }
};

// n x k weights in `type`: 64 distinct quantized rows repeated (quantizing
// hundreds of MB would dominate the run; the kernels' speed does not depend
// on the values). Formats without a quantizer get random blocks with small
// fp16 scales.
Matrix make_gguf_matrix(GgmlType type, int64_t n, int64_t k, std::mt19937& rng) {
  Matrix m;
  const int64_t rb = row_bytes(type, k);
  const int64_t distinct = std::min<int64_t>(64, n);
  std::vector<uint8_t> seed_rows(static_cast<size_t>(rb * distinct));
  std::normal_distribution<float> normal(0.0f, 0.5f);
  if (quant::can_quantize(type)) {
    std::vector<float> f(static_cast<size_t>(k));
    for (int64_t r = 0; r < distinct; ++r) {
      for (float& v : f) v = normal(rng);
      (void)quant::quantize(type, f.data(), seed_rows.data() + r * rb, k);
    }
  } else {
    for (uint8_t& b : seed_rows) b = static_cast<uint8_t>(rng());
    const uint16_t small = quant::fp32_to_fp16(0.01f);
    const int64_t ts = traits(type).type_size;
    for (int64_t off = 0; off < static_cast<int64_t>(seed_rows.size()); off += ts) {
      uint8_t* blk = seed_rows.data() + off;
      if (type == GgmlType::kQ2_K) { std::memcpy(blk + 80, &small, 2); std::memcpy(blk + 82, &small, 2); }
      if (type == GgmlType::kQ3_K) std::memcpy(blk + 108, &small, 2);
      if (type == GgmlType::kQ5_K) { std::memcpy(blk, &small, 2); std::memcpy(blk + 2, &small, 2); }
    }
  }
  m.bytes = HugeBuffer(static_cast<size_t>(rb * n));
  for (int64_t r = 0; r < n; ++r) std::memcpy(m.bytes.p + r * rb, seed_rows.data() + (r % distinct) * rb, rb);
  m.view = WeightView{m.bytes.p, type, n, k, static_cast<size_t>(rb)};
  return m;
}

// The matrices stacked (one matmul for all, as the model stacks q/k/v and
// gate/up) in the packed layout when `pack` and the format allow, else the
// first one as it is.
Matrix make_matrix(ThreadPool& pool, GgmlType type, const std::vector<int64_t>& rows, int64_t k, bool pack,
                   std::mt19937& rng) {
  std::vector<Matrix> parts;
  std::vector<WeightView> views;
  for (int64_t n : rows) {
    parts.push_back(make_gguf_matrix(type, n, k, rng));
    views.push_back(parts.back().view);
  }
  const size_t packed = pack ? cpu::packed_bytes(views) : 0;
  if (packed == 0) return std::move(parts[0]);
  Matrix m;
  m.bytes = HugeBuffer(packed);
  m.view = cpu::pack_weights(pool, views, m.bytes.p);
  return m;
}

// Median seconds of fn() over repeated runs lasting ~min_s in all.
template <typename Fn>
double time_median(Fn&& fn, double min_s) {
  fn();  // warm up (workspace growth, page faults)
  std::vector<double> runs;
  const auto start = Clock::now();
  while (runs.size() < 3 || (std::chrono::duration<double>(Clock::now() - start).count() < min_s && runs.size() < 200)) {
    const auto t0 = Clock::now();
    fn();
    runs.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

bool is_float(GgmlType t) { return t == GgmlType::kF32 || t == GgmlType::kF16 || t == GgmlType::kBF16; }

}  // namespace
}  // namespace suanli

int main(int argc, char** argv) {
  using namespace suanli;
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  std::string isa;
  bool quick = false, pack = true, attention_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--isa" && i + 1 < argc) isa = argv[++i];
    else if (a == "--quick") quick = true;
    else if (a == "--no-pack") pack = false;
    else if (a == "--attention") attention_only = true;
    else {
      std::fprintf(stderr, "usage: suanli_kernel_bench [--threads N] [--isa NAME] [--no-pack] [--quick] [--attention]\n");
      return 2;
    }
  }
  if (!isa.empty() && !cpu::mm::select_isa(isa)) {
    std::fprintf(stderr, "kernel set %s is not available on this CPU\n", isa.c_str());
    return 2;
  }
  ThreadPool pool(threads);
  cpu::Workspace ws;
  std::mt19937 rng(42);

  const double bw = cpu::measure_memory_bandwidth_gbs(pool);
  const double int8_peak = cpu::measure_peak_int8_gops(pool);
  const double fp32_peak = cpu::measure_peak_fp32_gflops(pool);
  std::printf("threads %d, matmul kernels %s\n", pool.size(), std::string(cpu::mm::selected_isa()).c_str());
  std::printf("roofline: read bandwidth %.1f GB/s, int8 peak %.0f GOPS (%s), fp32 peak %.0f GFLOPS\n\n", bw, int8_peak,
              cpu::peak_isa_name(), fp32_peak);

  const double min_s = quick ? 0.1 : 0.4;
  const int64_t k = 1536;
  // --attention: only the attention sections below.
  if (!attention_only) {
    std::printf("weights in the %s layout\n\n", pack ? "packed rows16 (where the format has it)" : "GGUF row");
    std::printf("| format | layout | T=1 GB/s | of probe | pure read GB/s | of pure read | T=512 GOPS | of peak |\n");
    std::printf("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (GgmlType type : cpu::supported_weight_formats()) {
      // T=1: ~128 MiB of weights, 4x a large L3, so bytes come from DRAM.
      const int64_t rb = row_bytes(type, k);
      const int64_t n1 = (int64_t{128} << 20) / rb / 64 * 64;
      Matrix big = make_matrix(pool, type, {n1}, k, pack, rng);
      const bool packed = big.view.layout != 0;
      std::vector<float> x(static_cast<size_t>(512 * k)), out(static_cast<size_t>(512) * std::max<int64_t>(n1, 4096));
      for (float& v : x) v = std::normal_distribution<float>(0.0f, 1.0f)(rng);
      const double t1 = time_median([&] { cpu::matmul(pool, ws, x.data(), 1, big.view, nullptr, out.data()); }, min_s);
      const double gbs = static_cast<double>(big.size()) / t1 / 1e9;
      const double read = cpu::measure_read_gbs(pool, {big.view});
      big = Matrix{};
      // T=512: 4096 x 1536, compute-bound.
      const int64_t n2 = 4096, t_count = 512;
      Matrix mid = make_matrix(pool, type, {n2}, k, pack, rng);
      const double t2 =
          time_median([&] { cpu::matmul(pool, ws, x.data(), t_count, mid.view, nullptr, out.data()); }, min_s);
      const double gops = 2.0 * t_count * n2 * k / t2 / 1e9;
      const double peak = is_float(type) ? fp32_peak : int8_peak;
      std::printf("| %s | %s | %.1f | %.0f%% | %.1f | %.0f%% | %.0f | %.0f%% |\n", std::string(ggml_type_name(type)).c_str(),
                  packed ? "rows16" : "rows", gbs, 100 * gbs / bw, read, 100 * gbs / read, gops, 100 * gops / peak);
      std::fflush(stdout);
    }

    // One decode step of SmolLM2-135M's matmuls: 30 layers of q/k/v (stacked),
    // o, gate/up (stacked), down in Q4_1 plus the tied Q8_0 output matrix.
    // Distinct matrices, so nothing stays cached between steps.
    std::printf("\nSmolLM2-135M decode step (matmuls only, Q4_1 layers + Q8_0 output):\n");
    struct Shape {
      std::vector<int64_t> rows;
      int64_t k;
    };
    const Shape layer[] = {{{576, 192, 192}, 576}, {{576}, 576}, {{1536, 1536}, 576}, {{576}, 1536}};
    std::vector<Matrix> mats;
    std::vector<WeightView> views;
    size_t bytes = 0;
    for (int l = 0; l < 30; ++l) {
      for (const Shape& sh : layer) mats.push_back(make_matrix(pool, GgmlType::kQ4_1, sh.rows, sh.k, pack, rng));
    }
    mats.push_back(make_matrix(pool, GgmlType::kQ8_0, {49152}, 576, pack, rng));
    for (const Matrix& m : mats) {
      bytes += m.size();
      views.push_back(m.view);
    }
    std::vector<float> x(64 * 3072, 0.5f), out(64 * 49152);
    for (int64_t t_count : {1, 4, 16, 64}) {
      const double step = time_median(
          [&] {
            for (const Matrix& m : mats) cpu::matmul(pool, ws, x.data(), t_count, m.view, nullptr, out.data());
          },
          min_s);
      const double gbs = static_cast<double>(bytes) / step / 1e9;
      const double read = t_count == 1 ? cpu::measure_read_gbs(pool, views) : 0;
      std::printf("  T=%-3lld %.2f ms/step  %.1f MB weights  %.1f GB/s = %.0f%% of the probe", static_cast<long long>(t_count),
                  step * 1e3, bytes / 1e6, gbs, 100 * gbs / bw);
      if (read > 0) std::printf(", %.0f%% of a pure read (%.1f GB/s)", 100 * gbs / read, read);
      std::printf("  %.0f tokens/s\n", t_count / step);
    }
  }

  // Attention of SmolLM2-135M's shape (9 heads, 3 kv heads, head_dim 64, F16
  // cache, blocks of 16): a 512-token prefill and one decode step at 512.
  {
    const int64_t heads = 9, kvh = 3, hd = 64, bs = 16, ctx = 512;
    std::vector<uint16_t> kc(ctx * kvh * hd), vc(ctx * kvh * hd);
    for (size_t i = 0; i < kc.size(); ++i) {
      kc[i] = quant::fp32_to_fp16(std::normal_distribution<float>(0, 1)(rng));
      vc[i] = quant::fp32_to_fp16(std::normal_distribution<float>(0, 1)(rng));
    }
    KvLayerView kv{kc.data(), vc.data(), GgmlType::kF16, ctx / bs, bs, kvh, hd};
    std::vector<int32_t> table(ctx / bs);
    for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<int32_t>(i);
    std::vector<float> q(ctx * heads * hd, 0.1f), o(ctx * heads * hd);
    SeqSlice prefill{0, static_cast<int32_t>(ctx), 0, table.data(), static_cast<int32_t>(table.size())};
    SeqSlice decode{0, 1, static_cast<int32_t>(ctx - 1), table.data(), static_cast<int32_t>(table.size())};
    const double tp = time_median(
        [&] { cpu::attention(pool, ws, q.data(), ctx, heads, kv, &prefill, 1, 0.125f, o.data()); }, min_s);
    const double td = time_median(
        [&] { cpu::attention(pool, ws, q.data(), 1, heads, kv, &decode, 1, 0.125f, o.data()); }, min_s);
    // Shallow decode steps, what a tg128 run sees (one segment per kv head).
    double shallow[2];
    for (int i = 0; i < 2; ++i) {
      SeqSlice dec{0, 1, static_cast<int32_t>(i ? 127 : 63), table.data(), static_cast<int32_t>(table.size())};
      shallow[i] = time_median(
          [&] { cpu::attention(pool, ws, q.data(), 1, heads, kv, &dec, 1, 0.125f, o.data()); }, min_s);
    }
    const double flops = 4.0 * heads * hd * (ctx * (ctx + 1) / 2.0);
    std::printf("\nattention (SmolLM2 shape, F16 KV): prefill 512: %.2f ms/layer = %.1f GFLOPS (%.0f%% of fp32 peak); "
                "decode at 64 / 128 / 512: %.1f / %.1f / %.1f us/layer\n",
                tp * 1e3, flops / tp / 1e9, 100 * flops / tp / 1e9 / fp32_peak, shallow[0] * 1e6, shallow[1] * 1e6,
                td * 1e6);
  }

  // One decode step's attention at a 4,096-token context over 30 layers,
  // each with its own cache (94 MB in all, what `suanli bench -d 4096`
  // reads beside the weights): streamed from memory, against the probe.
  {
    const int64_t heads = 9, kvh = 3, hd = 64, bs = 16, ctx = 4096, layers = 30;
    const int64_t n = ctx * kvh * hd;
    std::vector<std::vector<uint16_t>> kc(layers), vc(layers);
    for (int64_t l = 0; l < layers; ++l) {
      kc[l].resize(n);
      vc[l].resize(n);
      for (int64_t i = 0; i < n; ++i) {
        kc[l][i] = quant::fp32_to_fp16(0.01f * static_cast<float>((i * 7 + l) % 200 - 100));
        vc[l][i] = quant::fp32_to_fp16(0.01f * static_cast<float>((i * 13 + l) % 200 - 100));
      }
    }
    std::vector<int32_t> table(ctx / bs);
    for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<int32_t>(i);
    std::vector<float> q(heads * hd, 0.1f), o(heads * hd);
    SeqSlice decode{0, 1, static_cast<int32_t>(ctx - 1), table.data(), static_cast<int32_t>(table.size())};
    const double td = time_median(
        [&] {
          for (int64_t l = 0; l < layers; ++l) {
            KvLayerView kv{kc[l].data(), vc[l].data(), GgmlType::kF16, static_cast<int32_t>(ctx / bs),
                           static_cast<int32_t>(bs), kvh, hd};
            cpu::attention(pool, ws, q.data(), 1, heads, kv, &decode, 1, 0.125f, o.data());
          }
        },
        min_s);
    const double bytes = 2.0 * layers * n * sizeof(uint16_t);
    std::printf("attention decode at 4096, 30 layers: %.2f ms/step, %.1f MB of K/V at %.1f GB/s = %.0f%% of the probe\n",
                td * 1e3, bytes / 1e6, bytes / td / 1e9, 100 * bytes / td / 1e9 / bw);
  }
  return 0;
}
