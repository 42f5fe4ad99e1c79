// Micro-benchmarks that measure what this CPU can do at best: the roofline
// denominators for `suanli devices` and `suanli bench`. Each runs a fraction
// of a second on every thread of the pool and reports the best of a few runs.
#pragma once

#include <vector>

#include "core/thread_pool.h"
#include "suanli/device.h"

namespace suanli::cpu {

// Sustained read bandwidth from DRAM (a buffer far larger than the caches), GB/s.
double measure_memory_bandwidth_gbs(ThreadPool& pool);
// GB/s of a pure read (no arithmetic) of the matrices `ws` the way matmul
// reads them: one after another, each split over the pool in 16-row groups
// with a barrier after each. The median of passes lasting ~0.1 s. What a
// decode step's matmuls cannot beat (`suanli bench`, the kernel bench).
double measure_read_gbs(ThreadPool& pool, const std::vector<WeightView>& ws);
// Peak int8 multiply-accumulate rate with the best instructions this CPU has
// (AVX-512 VNNI, AVX2, or scalar), in 1e9 ops/s (one MAC = 2 ops).
double measure_peak_int8_gops(ThreadPool& pool);
// Peak fp32 FMA rate (AVX-512F, AVX2+FMA, or scalar), in 1e9 flops/s.
double measure_peak_fp32_gflops(ThreadPool& pool);
// The instruction set the peaks were measured with ("avx512vnni", "avx2", "scalar").
const char* peak_isa_name();

}  // namespace suanli::cpu
