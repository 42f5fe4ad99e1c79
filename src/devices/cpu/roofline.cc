#include "devices/cpu/roofline.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SUANLI_X86 1
#endif

namespace suanli::cpu {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

#if SUANLI_X86
bool has_avx512vnni() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni");
}
bool has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// Twelve independent accumulators cover the instruction's latency (5 cycles
// on current cores) at two per cycle. Returns multiply-adds performed.
// Named accumulators (not an array): with an array GCC kept some of them
// on the stack, and the store-forwarding round trip capped the measured
// peak at about half the real one.
#define SUANLI_ACC12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

__attribute__((target("avx512f,avx512vnni"))) int64_t vnni_loop(int64_t iters, int32_t* sink) {
#define SUANLI_DECL(i) __m512i a##i = _mm512_set1_epi32(i);
  SUANLI_ACC12(SUANLI_DECL)
#undef SUANLI_DECL
  const __m512i x = _mm512_set1_epi8(1), y = _mm512_set1_epi8(2);
  for (int64_t it = 0; it < iters; ++it) {
#define SUANLI_STEP(i) a##i = _mm512_dpbusd_epi32(a##i, x, y);
    SUANLI_ACC12(SUANLI_STEP)
#undef SUANLI_STEP
    __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));
    __asm__ volatile("" : "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
  }
  __m512i s = a0;
#define SUANLI_SUM(i) s = _mm512_add_epi32(s, a##i);
  SUANLI_ACC12(SUANLI_SUM)
#undef SUANLI_SUM
  int32_t lanes[16];
  _mm512_storeu_si512(lanes, s);
  *sink = lanes[0];
  return iters * 12 * 64;
}

// The AVX2 int8 peak: vpmaddubsw's rate (32 uint8 x int8 multiply-adds
// each; the packed kernels add its results in int16 and widen once per 8).
// Each accumulator feeds its own next product, as vpdpbusd does above: an
// earlier loop, add(a, madd(maddubs(x, y), ones)) with constant x and y,
// let the compiler hoist the products out of the loop (and merge the twelve
// equal ones), so the "peak" measured vpaddd: 1,130-1,450 GOPS on a 2-core
// AVX2 EPYC, several times the real rate.
__attribute__((target("avx2"))) int64_t maddubs_loop(int64_t iters, int32_t* sink) {
#define SUANLI_DECL(i) __m256i a##i = _mm256_set1_epi8(static_cast<char>(i + 1));
  SUANLI_ACC12(SUANLI_DECL)
#undef SUANLI_DECL
  __m256i y = _mm256_set1_epi8(1);
  for (int64_t it = 0; it < iters; ++it) {
    __asm__ volatile("" : "+x"(y));
#define SUANLI_STEP(i) a##i = _mm256_maddubs_epi16(a##i, y);
    SUANLI_ACC12(SUANLI_STEP)
#undef SUANLI_STEP
    __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5));
    __asm__ volatile("" : "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));
  }
  __m256i s = a0;
#define SUANLI_SUM(i) s = _mm256_add_epi16(s, a##i);
  SUANLI_ACC12(SUANLI_SUM)
#undef SUANLI_SUM
  int16_t out[16];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), s);
  *sink = out[0];
  return iters * 12 * 32;
}

__attribute__((target("avx512f"))) int64_t fma512_loop(int64_t iters, float* sink) {
#define SUANLI_DECL(i) __m512 a##i = _mm512_set1_ps(static_cast<float>(i));
  SUANLI_ACC12(SUANLI_DECL)
#undef SUANLI_DECL
  const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(0.001f);
  for (int64_t it = 0; it < iters; ++it) {
#define SUANLI_STEP(i) a##i = _mm512_fmadd_ps(a##i, x, y);
    SUANLI_ACC12(SUANLI_STEP)
#undef SUANLI_STEP
    __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));
    __asm__ volatile("" : "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
  }
  __m512 s = a0;
#define SUANLI_SUM(i) s = _mm512_add_ps(s, a##i);
  SUANLI_ACC12(SUANLI_SUM)
#undef SUANLI_SUM
  float lanes[16];
  _mm512_storeu_ps(lanes, s);
  *sink = lanes[0];
  return iters * 12 * 16;
}

__attribute__((target("avx2,fma"))) int64_t fma256_loop(int64_t iters, float* sink) {
#define SUANLI_DECL(i) __m256 a##i = _mm256_set1_ps(static_cast<float>(i));
  SUANLI_ACC12(SUANLI_DECL)
#undef SUANLI_DECL
  const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(0.001f);
  for (int64_t it = 0; it < iters; ++it) {
#define SUANLI_STEP(i) a##i = _mm256_fmadd_ps(a##i, x, y);
    SUANLI_ACC12(SUANLI_STEP)
#undef SUANLI_STEP
    __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5));
    __asm__ volatile("" : "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));
  }
  __m256 s = a0;
#define SUANLI_SUM(i) s = _mm256_add_ps(s, a##i);
  SUANLI_ACC12(SUANLI_SUM)
#undef SUANLI_SUM
  float out[8];
  _mm256_storeu_ps(out, s);
  *sink = out[0];
  return iters * 12 * 8;
}
#endif

int64_t scalar_int8_loop(int64_t iters, int32_t* sink) {
  uint32_t acc[8] = {1, 2, 3, 4, 5, 6, 7, 8};  // unsigned: wraps, no overflow
  volatile int8_t va = 3, vb = 5;
  uint32_t a = static_cast<uint32_t>(va);
  const uint32_t b = static_cast<uint32_t>(vb);
  for (int64_t it = 0; it < iters; ++it) {
    __asm__ volatile("" : "+r"(a));  // products made every iteration, not hoisted
    for (int i = 0; i < 8; ++i) acc[i] += a * (b + i);
  }
  *sink = static_cast<int32_t>(acc[0] + acc[7]);
  return iters * 8;
}

int64_t scalar_fp32_loop(int64_t iters, float* sink) {
  float acc[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  volatile float va = 0.999f, vb = 0.001f;
  const float a = va, b = vb;
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 8; ++i) acc[i] = acc[i] * a + b;
  }
  *sink = acc[0] + acc[7];
  return iters * 8;
}

// Runs loop(iters) on every thread, doubling iters until a pass lasts
// ~50 ms; returns the best of a few passes in units per second * 2 (ops).
template <typename Sink>
double peak_rate(ThreadPool& pool, int64_t (*loop)(int64_t, Sink*)) {
  int64_t iters = 1 << 12;
  Sink sink{};
  for (;;) {
    const auto t0 = Clock::now();
    loop(iters, &sink);
    if (seconds_since(t0) > 0.02) break;
    iters *= 2;
  }
  double best = 0;
  const auto start = Clock::now();
  while (seconds_since(start) < 0.3) {
    std::atomic<int64_t> total{0};
    const auto t0 = Clock::now();
    pool.run([&](int) {
      Sink s{};
      total += loop(iters, &s);
    });
    best = std::max(best, 2.0 * static_cast<double>(total.load()) / seconds_since(t0));
  }
  return best;
}

}  // namespace

double measure_memory_bandwidth_gbs(ThreadPool& pool) {
  // 256 MiB: 8x a large server L3 slice, so reads come from DRAM.
  constexpr size_t kBytes = size_t{256} << 20;
  constexpr size_t kWords = kBytes / sizeof(uint64_t);
  // 2 MiB-aligned and advised as huge pages, as the CPU device's prepared
  // weights are: the measured peak must not be held back by TLB misses.
  uint64_t* buf = static_cast<uint64_t*>(std::aligned_alloc(size_t{2} << 20, kBytes));
  if (!buf) return 0.0;
#ifdef MADV_HUGEPAGE
  madvise(buf, kBytes, MADV_HUGEPAGE);
#endif
  const int n = pool.size();
  // First touch by the thread that reads the share (NUMA locality).
  pool.run([&](int i) {
    const size_t b = kWords * i / n, e = kWords * (i + 1) / n;
    for (size_t w = b; w < e; ++w) buf[w] = w;
  });
  std::vector<double> rates;
  std::atomic<uint64_t> sink{0};
  const auto start = Clock::now();
  int passes = 0;
  while (passes < 9 || (seconds_since(start) < 0.6 && passes < 40)) {
    const auto t0 = Clock::now();
    pool.run([&](int i) {
      const size_t b = kWords * i / n, e = kWords * (i + 1) / n;
      // Eight independent sums: the loop vectorizes and keeps enough loads
      // in flight on any target.
      uint64_t s[8] = {};
      for (size_t w = b; w + 8 <= e; w += 8) {
        for (int l = 0; l < 8; ++l) s[l] += buf[w + l];
      }
      sink += s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
    });
    rates.push_back(static_cast<double>(kBytes) / seconds_since(t0) / 1e9);
    ++passes;
  }
  std::free(buf);
  // The median pass, not the best: on a shared host (this VM) single passes
  // catch bursts of bandwidth that no workload sustains for seconds, which
  // made the figure jump between ~37 and ~70 GB/s from run to run.
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

double measure_read_gbs(ThreadPool& pool, const std::vector<WeightView>& ws) {
  std::atomic<uint64_t> sink{0};
  uint64_t bytes = 0;
  for (const WeightView& w : ws) bytes += static_cast<uint64_t>(w.row_stride) * w.n_rows;
  auto pass = [&] {
    for (const WeightView& w : ws) {
      const uint8_t* base = static_cast<const uint8_t*>(w.data);
      const size_t group = w.row_stride * 16;
      const size_t end = w.row_stride * static_cast<size_t>(w.n_rows);
      pool.parallel_for((w.n_rows + 15) / 16, 1, [&](int64_t g0, int64_t g1) {
        const size_t b = static_cast<size_t>(g0) * group, e = std::min(end, static_cast<size_t>(g1) * group);
        uint64_t acc[8] = {};
        size_t i = b;
        for (; i + 64 <= e; i += 64) {
          for (int l = 0; l < 8; ++l) {
            uint64_t v;
            std::memcpy(&v, base + i + 8 * l, 8);  // one load (the bytes may be unaligned)
            acc[l] += v;
          }
        }
        for (; i < e; ++i) acc[0] += base[i];
        sink += acc[0] + acc[1] + acc[2] + acc[3] + acc[4] + acc[5] + acc[6] + acc[7];
      });
    }
  };
  std::vector<double> rates;
  const auto start = Clock::now();
  while (rates.size() < 3 || (seconds_since(start) < 0.1 && rates.size() < 50)) {
    const auto t0 = Clock::now();
    pass();
    rates.push_back(static_cast<double>(bytes) / seconds_since(t0) / 1e9);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

double measure_peak_int8_gops(ThreadPool& pool) {
#if SUANLI_X86
  if (has_avx512vnni()) return peak_rate<int32_t>(pool, vnni_loop) / 1e9;
  if (has_avx2()) return peak_rate<int32_t>(pool, maddubs_loop) / 1e9;
#endif
  return peak_rate<int32_t>(pool, scalar_int8_loop) / 1e9;
}

double measure_peak_fp32_gflops(ThreadPool& pool) {
#if SUANLI_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return peak_rate<float>(pool, fma512_loop) / 1e9;
  if (has_avx2()) return peak_rate<float>(pool, fma256_loop) / 1e9;
#endif
  return peak_rate<float>(pool, scalar_fp32_loop) / 1e9;
}

const char* peak_isa_name() {
#if SUANLI_X86
  if (has_avx512vnni()) return "avx512vnni";
  if (has_avx2()) return "avx2";
#endif
  return "scalar";
}

}  // namespace suanli::cpu
