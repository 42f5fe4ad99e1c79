// The few runtime calls and warp primitives the CUDA device uses, spelled
// once for CUDA and once for HIP, so that the same .cu sources build with
// nvcc (SUANLI_CUDA) and with hipcc / clang -x hip (SUANLI_HIP). Included by
// the .cu files only: nothing outside src/devices/cuda sees a GPU header.
//
// Warps. Every kernel works in *lane groups of 32* (kLanes), whatever the
// hardware's warpSize (32 on NVIDIA and RDNA, 64 on CDNA / GCN / Hygon DCU):
// shuffles take width 32, so a 64-wide wavefront holds two independent
// groups. The lane → data mapping, and so the order of every float
// reduction, is then the same on every vendor's GPU; kernels never assume
// more than 32 lanes run in lock step and synchronize groups explicitly
// (lane_group_sync) before reading what another lane wrote to shared memory.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(SUANLI_GPU_HIP)
#include <hip/hip_runtime.h>
#else
#include <cuda_runtime.h>
#endif

namespace suanli::gpu {

inline constexpr int kLanes = 32;

#if defined(SUANLI_GPU_HIP)
inline constexpr const char* kRuntimeName = "HIP";
using Stream = hipStream_t;
using Event = hipEvent_t;
using Error = hipError_t;
using Graph = hipGraph_t;
using GraphExec = hipGraphExec_t;
inline Error begin_capture(Stream s) { return hipStreamBeginCapture(s, hipStreamCaptureModeThreadLocal); }
inline Error end_capture(Stream s, Graph* g) { return hipStreamEndCapture(s, g); }
inline Error graph_instantiate(GraphExec* e, Graph g) { return hipGraphInstantiate(e, g, nullptr, nullptr, 0); }
inline Error graph_launch(GraphExec e, Stream s) { return hipGraphLaunch(e, s); }
inline Error graph_destroy(Graph g) { return hipGraphDestroy(g); }
inline Error graph_exec_destroy(GraphExec e) { return hipGraphExecDestroy(e); }
inline constexpr Error kSuccess = hipSuccess;
inline const char* error_string(Error e) { return hipGetErrorString(e); }
inline Error get_last_error() { return hipGetLastError(); }
inline Error device_count(int* n) { return hipGetDeviceCount(n); }
inline bool means_no_driver(Error e) { return e == hipErrorNoDevice || e == hipErrorInsufficientDriver; }
inline Error set_device(int d) { return hipSetDevice(d); }
inline Error device_malloc(void** p, size_t n) { return hipMalloc(p, n); }
inline Error device_free(void* p) { return hipFree(p); }
inline Error host_alloc_pinned(void** p, size_t n) { return hipHostMalloc(p, n, hipHostMallocDefault); }
inline Error host_free_pinned(void* p) { return hipHostFree(p); }
inline Error copy_h2d_async(void* d, const void* h, size_t n, Stream s) {
  return hipMemcpyAsync(d, h, n, hipMemcpyHostToDevice, s);
}
inline Error copy_d2h_async(void* h, const void* d, size_t n, Stream s) {
  return hipMemcpyAsync(h, d, n, hipMemcpyDeviceToHost, s);
}
inline Error copy_d2d_async(void* dst, const void* src, size_t n, Stream s) {
  return hipMemcpyAsync(dst, src, n, hipMemcpyDeviceToDevice, s);
}
inline Error memset_async(void* d, int v, size_t n, Stream s) { return hipMemsetAsync(d, v, n, s); }
inline Error stream_create(Stream* s) { return hipStreamCreateWithFlags(s, hipStreamNonBlocking); }
inline Error stream_destroy(Stream s) { return hipStreamDestroy(s); }
inline Error stream_synchronize(Stream s) { return hipStreamSynchronize(s); }
inline Error event_create(Event* e) { return hipEventCreate(e); }
inline Error event_destroy(Event e) { return hipEventDestroy(e); }
inline Error event_record(Event e, Stream s) { return hipEventRecord(e, s); }
inline Error event_synchronize(Event e) { return hipEventSynchronize(e); }
inline Error event_elapsed_ms(float* ms, Event a, Event b) { return hipEventElapsedTime(ms, a, b); }
inline Error mem_get_info(size_t* free_b, size_t* total_b) { return hipMemGetInfo(free_b, total_b); }
inline Error set_max_dynamic_shared(const void* kernel, int bytes) {
  return hipFuncSetAttribute(kernel, hipFuncAttributeMaxDynamicSharedMemorySize, bytes);
}

struct DeviceProps {
  char name[256];
  int major, minor, multiprocessors, warp_size;
  size_t shared_per_block_optin;
};
inline Error device_props(int d, DeviceProps* p) {
  hipDeviceProp_t q;
  const Error e = hipGetDeviceProperties(&q, d);
  if (e != kSuccess) return e;
  for (int i = 0; i < 256; ++i) p->name[i] = q.name[i];
  p->major = q.major;
  p->minor = q.minor;
  p->multiprocessors = q.multiProcessorCount;
  p->warp_size = q.warpSize;
  p->shared_per_block_optin = q.sharedMemPerBlock;
  return e;
}

__device__ inline float shfl_xor(float v, int mask) { return __shfl_xor(v, mask, kLanes); }
__device__ inline float shfl(float v, int lane) { return __shfl(v, lane, kLanes); }
// A wavefront executes in lock step; the barrier only stops the compiler
// from moving shared-memory accesses across it.
__device__ inline void lane_group_sync() { __builtin_amdgcn_wave_barrier(); }
// Signed 8-bit dot product of four lanes packed in an int, plus c.
__device__ inline int dot4_i8(int a, int b, int c) {
  for (int i = 0; i < 4; ++i) c += static_cast<int8_t>(a >> (8 * i)) * static_cast<int8_t>(b >> (8 * i));
  return c;
}
#else
inline constexpr const char* kRuntimeName = "CUDA";
using Stream = cudaStream_t;
using Event = cudaEvent_t;
using Error = cudaError_t;
using Graph = cudaGraph_t;
using GraphExec = cudaGraphExec_t;
inline Error begin_capture(Stream s) { return cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal); }
inline Error end_capture(Stream s, Graph* g) { return cudaStreamEndCapture(s, g); }
inline Error graph_instantiate(GraphExec* e, Graph g) { return cudaGraphInstantiate(e, g, 0); }
inline Error graph_launch(GraphExec e, Stream s) { return cudaGraphLaunch(e, s); }
inline Error graph_destroy(Graph g) { return cudaGraphDestroy(g); }
inline Error graph_exec_destroy(GraphExec e) { return cudaGraphExecDestroy(e); }
inline constexpr Error kSuccess = cudaSuccess;
inline const char* error_string(Error e) { return cudaGetErrorString(e); }
inline Error get_last_error() { return cudaGetLastError(); }
inline Error device_count(int* n) { return cudaGetDeviceCount(n); }
inline bool means_no_driver(Error e) { return e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver; }
inline Error set_device(int d) { return cudaSetDevice(d); }
inline Error device_malloc(void** p, size_t n) { return cudaMalloc(p, n); }
inline Error device_free(void* p) { return cudaFree(p); }
inline Error host_alloc_pinned(void** p, size_t n) { return cudaHostAlloc(p, n, cudaHostAllocDefault); }
inline Error host_free_pinned(void* p) { return cudaFreeHost(p); }
inline Error copy_h2d_async(void* d, const void* h, size_t n, Stream s) {
  return cudaMemcpyAsync(d, h, n, cudaMemcpyHostToDevice, s);
}
inline Error copy_d2h_async(void* h, const void* d, size_t n, Stream s) {
  return cudaMemcpyAsync(h, d, n, cudaMemcpyDeviceToHost, s);
}
inline Error copy_d2d_async(void* dst, const void* src, size_t n, Stream s) {
  return cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, s);
}
inline Error memset_async(void* d, int v, size_t n, Stream s) { return cudaMemsetAsync(d, v, n, s); }
inline Error stream_create(Stream* s) { return cudaStreamCreateWithFlags(s, cudaStreamNonBlocking); }
inline Error stream_destroy(Stream s) { return cudaStreamDestroy(s); }
inline Error stream_synchronize(Stream s) { return cudaStreamSynchronize(s); }
inline Error event_create(Event* e) { return cudaEventCreate(e); }
inline Error event_destroy(Event e) { return cudaEventDestroy(e); }
inline Error event_record(Event e, Stream s) { return cudaEventRecord(e, s); }
inline Error event_synchronize(Event e) { return cudaEventSynchronize(e); }
inline Error event_elapsed_ms(float* ms, Event a, Event b) { return cudaEventElapsedTime(ms, a, b); }
inline Error mem_get_info(size_t* free_b, size_t* total_b) { return cudaMemGetInfo(free_b, total_b); }
inline Error set_max_dynamic_shared(const void* kernel, int bytes) {
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}

struct DeviceProps {
  char name[256];
  int major, minor, multiprocessors, warp_size;
  size_t shared_per_block_optin;
};
inline Error device_props(int d, DeviceProps* p) {
  cudaDeviceProp q;
  const Error e = cudaGetDeviceProperties(&q, d);
  if (e != kSuccess) return e;
  for (int i = 0; i < 256; ++i) p->name[i] = q.name[i];
  p->major = q.major;
  p->minor = q.minor;
  p->multiprocessors = q.multiProcessorCount;
  p->warp_size = q.warpSize;
  p->shared_per_block_optin = q.sharedMemPerBlockOptin;
  return e;
}

__device__ inline float shfl_xor(float v, int mask) { return __shfl_xor_sync(0xffffffffu, v, mask, kLanes); }
__device__ inline float shfl(float v, int lane) { return __shfl_sync(0xffffffffu, v, lane, kLanes); }
__device__ inline void lane_group_sync() { __syncwarp(); }
__device__ inline int dot4_i8(int a, int b, int c) { return __dp4a(a, b, c); }
#endif

// Butterfly reductions over a 32-lane group: every lane ends with the same
// value, and the order of the additions is fixed (deterministic).
__device__ inline float lane_sum(float v) {
  for (int m = kLanes / 2; m > 0; m >>= 1) v += shfl_xor(v, m);
  return v;
}
__device__ inline float lane_max(float v) {
  for (int m = kLanes / 2; m > 0; m >>= 1) v = fmaxf(v, shfl_xor(v, m));
  return v;
}

}  // namespace suanli::gpu
