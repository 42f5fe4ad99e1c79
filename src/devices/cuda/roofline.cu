// The CUDA device's roofline: measured, never from a datasheet.
//  - memory: device-to-device copies of a 256 MiB buffer; a copy reads and
//    writes every byte, so 2 × bytes / time (the figure bandwidthTest prints).
//  - int8: chains of 4-way int8 dot products (dp4a on NVIDIA; the portable
//    fallback on HIP) in registers, 4 multiply-accumulates each. This is the
//    CUDA-core rate; tensor-core int8 (IMMA) is not measured.
//  - fp32: chains of fused multiply-adds in registers.
// Each loop keeps 8 independent accumulators per thread in registers and
// stores them once, so nothing spills and nothing is optimized away.
#include "devices/cuda/kernels.h"

namespace suanli::gpu {
namespace {

constexpr int kChains = 8;
constexpr int kIters = 4096;
constexpr int kThreads = 256;

__global__ void int8_peak_kernel(int seed, int* sink) {
  int acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = seed + c + static_cast<int>(threadIdx.x);
  const int b = 0x01fe02fd ^ seed;
  for (int i = 0; i < kIters; ++i) {
#pragma unroll
    for (int c = 0; c < kChains; ++c) acc[c] = dot4_i8(acc[c], b, acc[c]);
  }
  int s = 0;
  for (int c = 0; c < kChains; ++c) s += acc[c];
  if (s == 0x7fffffff) sink[0] = s;  // practically never: the compiler cannot know
}

__global__ void fp32_peak_kernel(float seed, float* sink) {
  float acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = seed * static_cast<float>(c + threadIdx.x);
  const float a = 0.999f + seed * 1e-7f, b = 1e-4f * seed;
  for (int i = 0; i < kIters; ++i) {
#pragma unroll
    for (int c = 0; c < kChains; ++c) acc[c] = fmaf(acc[c], a, b);
  }
  float s = 0;
  for (int c = 0; c < kChains; ++c) s += acc[c];
  if (s == -1.2345f) sink[0] = s;
}

// Seconds of the best of `reps` timed runs of f (after one warm-up).
template <typename F>
double best_seconds(Stream s, int reps, F&& f) {
  Event a, b;
  if (event_create(&a) != kSuccess) return 0;
  if (event_create(&b) != kSuccess) {
    (void)event_destroy(a);
    return 0;
  }
  f();
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    (void)event_record(a, s);
    f();
    (void)event_record(b, s);
    if (stream_synchronize(s) != kSuccess) break;
    float ms = 0;
    (void)event_elapsed_ms(&ms, a, b);
    if (ms > 0 && (best == 0 || ms * 1e-3 < best)) best = ms * 1e-3;
  }
  (void)event_destroy(a);
  (void)event_destroy(b);
  return best;
}

}  // namespace

double measure_copy_gbs(Stream s) {
  size_t free_b = 0, total_b = 0;
  (void)mem_get_info(&free_b, &total_b);
  size_t bytes = size_t{256} << 20;
  while (bytes > (size_t{16} << 20) && 2 * bytes > free_b / 2) bytes /= 2;
  void *src = nullptr, *dst = nullptr;
  if (device_malloc(&src, bytes) != kSuccess) return 0;
  if (device_malloc(&dst, bytes) != kSuccess) {
    (void)device_free(src);
    return 0;
  }
  (void)memset_async(src, 1, bytes, s);
  constexpr int kCopies = 8;
  const double sec = best_seconds(s, 5, [&] {
    for (int i = 0; i < kCopies; ++i) (void)copy_d2d_async(dst, src, bytes, s);
  });
  (void)stream_synchronize(s);
  (void)device_free(src);
  (void)device_free(dst);
  return sec > 0 ? 2.0 * bytes * kCopies / sec / 1e9 : 0;
}

double measure_int8_gops(Stream s, int multiprocessors) {
  int* sink = nullptr;
  if (device_malloc(reinterpret_cast<void**>(&sink), sizeof(int)) != kSuccess) return 0;
  const unsigned blocks = static_cast<unsigned>(multiprocessors * 8);
  const double sec = best_seconds(s, 3, [&] { int8_peak_kernel<<<blocks, kThreads, 0, s>>>(3, sink); });
  (void)device_free(sink);
  // 4 multiply-accumulates (8 ops) per dot product.
  const double ops = static_cast<double>(blocks) * kThreads * kIters * kChains * 8.0;
  return sec > 0 ? ops / sec / 1e9 : 0;
}

double measure_fp32_gflops(Stream s, int multiprocessors) {
  float* sink = nullptr;
  if (device_malloc(reinterpret_cast<void**>(&sink), sizeof(float)) != kSuccess) return 0;
  const unsigned blocks = static_cast<unsigned>(multiprocessors * 8);
  const double sec = best_seconds(s, 3, [&] { fp32_peak_kernel<<<blocks, kThreads, 0, s>>>(1.0f, sink); });
  (void)device_free(sink);
  const double flops = static_cast<double>(blocks) * kThreads * kIters * kChains * 2.0;
  return sec > 0 ? flops / sec / 1e9 : 0;
}

}  // namespace suanli::gpu
