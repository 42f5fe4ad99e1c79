// The element-wise and per-row ops: add, swiglu, rms_norm, rope, convert,
// kv_write. Each mirrors its line in devices/cpu/reference.cc; see
// docs/cuda.md for what is exact and what is within the conformance
// tolerance.
#include <cmath>

#include "devices/cuda/kernels.h"
#include "devices/cuda/numerics.cuh"

namespace suanli::gpu {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxRopePairs = 256;  // head_dim <= 512

unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 65535 * 32 ? 65535 * 32 : b));
}

__global__ void add_kernel(const float* a, const float* b, int64_t n, float* out) {
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < n; i += int64_t{gridDim.x} * kThreads) {
    out[i] = a[i] + b[i];
  }
}

// silu(g) * up in float, as the CPU device computes it; expf, not the
// fast __expf (whose error grows with |g|).
__global__ void swiglu_kernel(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < n; i += int64_t{gridDim.x} * kThreads) {
    const float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

// One block per row; out may alias x (every thread writes only what it
// read, after the reduction). Rows up to kCached * kThreads long keep the
// thread's x and w in registers, so that the writes need no second round
// of loads: with out aliasing x, the compiler cannot move a load above an
// earlier store, and the loop would wait on memory once per element. Both
// paths add in the same order (thread i: elements i, i + kThreads, ...).
constexpr int kCached = 32;

// The block's sum of the threads' ss (butterfly, then the groups in order),
// as 1 / sqrt(mean + eps) computed in double.
__device__ __forceinline__ float rms_scale(float ss, int64_t n, float eps, float* partial) {
  ss = lane_sum(ss);
  if (threadIdx.x % kLanes == 0) partial[threadIdx.x / kLanes] = ss;
  __syncthreads();
  float total = 0;
  for (int i = 0; i < kThreads / kLanes; ++i) total += partial[i];
  return static_cast<float>(1.0 / sqrt(static_cast<double>(total) / n + eps));
}

__global__ void rms_norm_kernel(const float* x, const float* w, int64_t n, float eps, float* out) {
  __shared__ float partial[kThreads / kLanes];
  const float* xr = x + blockIdx.x * n;
  float* orow = out + blockIdx.x * n;
  float ss = 0;
  if (n <= int64_t{kCached} * kThreads) {
    float xv[kCached], wv[kCached];
#pragma unroll
    for (int j = 0; j < kCached; ++j) {
      const int64_t i = threadIdx.x + int64_t{j} * kThreads;
      xv[j] = i < n ? xr[i] : 0.0f;
      wv[j] = i < n ? w[i] : 0.0f;
    }
#pragma unroll
    for (int j = 0; j < kCached; ++j) {
      if (threadIdx.x + int64_t{j} * kThreads < n) ss = fmaf(xv[j], xv[j], ss);
    }
    const float scale = rms_scale(ss, n, eps, partial);
#pragma unroll
    for (int j = 0; j < kCached; ++j) {
      const int64_t i = threadIdx.x + int64_t{j} * kThreads;
      if (i < n) orow[i] = xv[j] * scale * wv[j];
    }
    return;
  }
  for (int64_t i = threadIdx.x; i < n; i += kThreads) ss = fmaf(xr[i], xr[i], ss);
  const float scale = rms_scale(ss, n, eps, partial);
  for (int64_t i = threadIdx.x; i < n; i += kThreads) orow[i] = xr[i] * scale * w[i];
}

// One block per token. The pair angles are computed in double, as the
// reference computes them (positions reach 10^5, where a float angle would
// be off by more than the tolerance), once per token into shared memory;
// then the block's threads rotate every (head, pair) of the token, loading
// kRopeBatch pairs before storing any (x is updated in place, so the
// compiler could not move a load above an earlier store by itself).
constexpr int kRopeThreads = 512, kRopeBatch = 4;

__global__ void rope_kernel(float* x, int64_t n_heads, int64_t head_dim, const int32_t* positions, int32_t n_dims,
                            bool neox, float freq_base, float freq_scale, const float* freq_factors) {
  __shared__ double cs[kMaxRopePairs * 2];  // cos, then sin, per pair
  const int64_t t = blockIdx.x;
  const int half = n_dims / 2;
  for (int i = threadIdx.x; i < half; i += kRopeThreads) {
    const double pos = static_cast<double>(positions[t]) * freq_scale;
    double theta = pos * pow(static_cast<double>(freq_base), -2.0 * static_cast<double>(i) / n_dims);
    if (freq_factors) theta /= freq_factors[i];
    double s, c;
    sincos(theta, &s, &c);
    cs[i] = c;
    cs[kMaxRopePairs + i] = s;
  }
  __syncthreads();
  float* xt = x + t * n_heads * head_dim;
  const int64_t n = n_heads * half;
  for (int64_t j0 = threadIdx.x; j0 < n; j0 += int64_t{kRopeThreads} * kRopeBatch) {
    double x0[kRopeBatch], x1[kRopeBatch];
    float* pa[kRopeBatch];
    float* pb[kRopeBatch];
    int pair[kRopeBatch];
#pragma unroll
    for (int u = 0; u < kRopeBatch; ++u) {
      const int64_t j = j0 + int64_t{u} * kRopeThreads;
      const int64_t jj = j < n ? j : 0;
      const int64_t h = jj / half;
      const int i = static_cast<int>(jj % half);
      float* xh = xt + h * head_dim;
      pa[u] = xh + (neox ? i : 2 * i);
      pb[u] = xh + (neox ? i + half : 2 * i + 1);
      pair[u] = i;
      x0[u] = *pa[u];
      x1[u] = *pb[u];
    }
#pragma unroll
    for (int u = 0; u < kRopeBatch; ++u) {
      if (j0 + int64_t{u} * kRopeThreads >= n) break;
      const double c = cs[pair[u]], s = cs[kMaxRopePairs + pair[u]];
      *pa[u] = static_cast<float>(x0[u] * c - x1[u] * s);
      *pb[u] = static_cast<float>(x0[u] * s + x1[u] * c);
    }
  }
}

__device__ __forceinline__ float load_elem(const void* base, int type, int64_t i) {
  switch (type) {
    case 1: return fp16_to_f32(static_cast<const uint16_t*>(base)[i]);
    case 30: return bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
    default: return static_cast<const float*>(base)[i];
  }
}
__device__ __forceinline__ void store_elem(void* base, int type, int64_t i, float v) {
  switch (type) {
    case 1: static_cast<uint16_t*>(base)[i] = f32_to_fp16(v); return;
    case 30: static_cast<uint16_t*>(base)[i] = f32_to_bf16(v); return;
    default: static_cast<float*>(base)[i] = v; return;
  }
}

__global__ void convert_kernel(const void* src, int src_type, void* dst, int dst_type, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < n; i += int64_t{gridDim.x} * kThreads) {
    store_elem(dst, dst_type, i, load_elem(src, src_type, i));
  }
}

__global__ void kv_write_kernel(void* kc, void* vc, int type, int64_t row, const float* k, const float* v,
                                int64_t n_tokens, const int32_t* slots) {
  const int64_t n = n_tokens * row;
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < n; i += int64_t{gridDim.x} * kThreads) {
    const int64_t t = i / row, e = i % row;
    const int64_t dst = static_cast<int64_t>(slots[t]) * row + e;
    store_elem(kc, type, dst, k[i]);
    store_elem(vc, type, dst, v[i]);
  }
}

}  // namespace

void launch_add(const float* a, const float* b, int64_t n, float* out, Stream s) {
  if (n > 0) add_kernel<<<blocks_for(n), kThreads, 0, s>>>(a, b, n, out);
}

void launch_swiglu(const float* gate, const float* up, int64_t n, float* out, Stream s) {
  if (n > 0) swiglu_kernel<<<blocks_for(n), kThreads, 0, s>>>(gate, up, n, out);
}

void launch_rms_norm(const float* x, const float* w, int64_t rows, int64_t n, float eps, float* out, Stream s) {
  SUANLI_CHECK(rows <= 0x7fffffff);
  if (rows > 0) rms_norm_kernel<<<static_cast<unsigned>(rows), kThreads, 0, s>>>(x, w, n, eps, out);
}

void launch_rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int32_t* positions,
                 const RopeParams& p, Stream s) {
  if (n_tokens <= 0 || p.n_dims <= 0) return;
  SUANLI_CHECK(p.n_dims / 2 <= kMaxRopePairs && n_tokens <= 0x7fffffff);
  rope_kernel<<<static_cast<unsigned>(n_tokens), kRopeThreads, 0, s>>>(
      x, n_heads, head_dim, positions, p.n_dims, p.neox, p.freq_base, p.freq_scale, p.freq_factors);
}

void launch_convert(const void* src, GgmlType src_type, void* dst, GgmlType dst_type, int64_t n, Stream s) {
  if (n <= 0) return;
  if (src_type == dst_type) {
    (void)copy_d2d_async(dst, src, static_cast<size_t>(row_bytes(src_type, n)), s);
    return;
  }
  convert_kernel<<<blocks_for(n), kThreads, 0, s>>>(src, static_cast<int>(src_type), dst,
                                                     static_cast<int>(dst_type), n);
}

void launch_kv_write(const KvLayerView& kv, const float* k, const float* v, int64_t n_tokens, const int32_t* slots,
                     Stream s) {
  const int64_t row = kv.n_kv_heads * kv.head_dim;
  if (n_tokens * row <= 0) return;
  kv_write_kernel<<<blocks_for(n_tokens * row), kThreads, 0, s>>>(kv.k, kv.v, static_cast<int>(kv.type), row, k, v,
                                                                   n_tokens, slots);
}

}  // namespace suanli::gpu
