// Weight formats on the GPU: the dequantizers (bit-exact with
// src/core/quant/*.cc), embed, the exact matmul, and the bf16 operands of the
// tensor-core path (gemm_cublaslt.cu).
//
// The matmul reads each weight byte once per 8 tokens: a block holds 8
// warps, one weight row each, and a tile of up to 8 tokens' activations in
// shared memory (K in chunks of 1024). Each lane owns a fixed set of 8-element
// units of the row (unit u goes to lane u % 32; single elements for the
// float formats), dequantizes them in registers and accumulates x·w in fp32
// per token; the 32 lane sums are then added by a butterfly. The order of
// every addition depends only on K, never on T or on which tokens share the
// tile: the op's batch invariance (out[t] depends on x[t] and W only).
// Larger batches re-read the weights once per 8 tokens (from L2 mostly);
// the tensor-core path is the fast one for prefill (docs/cuda.md).
#include "devices/cuda/kernels.h"
#include "devices/cuda/dequant.cuh"

#include <cstdlib>
#include <string>

namespace suanli::gpu {
namespace {

const GgmlType kFormats[] = {GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ8_0, GgmlType::kQ4_0,
                             GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ2_K, GgmlType::kQ3_K,
                             GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kMXFP8_E4M3};

constexpr int kThreads = 256;

template <int T>
__global__ void embed_kernel(const uint8_t* table, size_t row_stride, int64_t n_cols, const int32_t* ids,
                             float* out) {
  constexpr int U = Layout<T>::kUnit;
  const int64_t k = (blockIdx.x * int64_t{kThreads} + threadIdx.x) * U;
  if (k >= n_cols) return;
  const int64_t t = blockIdx.y;
  float v[U];
  dequant_at<T>(table + static_cast<int64_t>(ids[t]) * row_stride, k, v);
  for (int i = 0; i < U; ++i) out[t * n_cols + k + i] = v[i];
}

template <int T>
__global__ void dequant_bf16_kernel(const uint8_t* w, size_t row_stride, int64_t n_cols, int64_t row0,
                                    uint16_t* out) {
  constexpr int U = Layout<T>::kUnit;
  const int64_t k = (blockIdx.x * int64_t{kThreads} + threadIdx.x) * U;
  if (k >= n_cols) return;
  const int64_t r = blockIdx.y;
  float v[U];
  dequant_at<T>(w + (row0 + r) * row_stride, k, v);
  for (int i = 0; i < U; ++i) out[r * n_cols + k + i] = f32_to_bf16(v[i]);
}

constexpr int kRowsPerBlock = 8;  // one warp (32-lane group) per row
constexpr int kTokensPerTile = 8;
constexpr int kChunk = 1024;      // K elements of activations in shared memory per token

// Position of chunk element k in shared memory. For 8-element units the
// chunk is stored unit-transposed in groups of 256 (element i of the unit
// of lane l at i * 32 + l), so that the 32 lanes read 32 consecutive words.
template <int U>
__device__ __forceinline__ int smem_index(int k) {
  if constexpr (U == 1) {
    return k;
  } else {
    return (k & ~255) | ((k & 7) << 5) | ((k >> 3) & 31);
  }
}

template <int T>
__global__ void __launch_bounds__(kRowsPerBlock * kLanes)
    matmul_kernel(const float* x, int64_t n_tokens, int64_t K, const uint8_t* w, size_t row_stride, int64_t N,
                  const float* bias, float* out) {
  constexpr int U = Layout<T>::kUnit;
  __shared__ float xs[kTokensPerTile][kChunk];
  const int lane = threadIdx.x % kLanes;
  const int64_t row = blockIdx.x * int64_t{kRowsPerBlock} + threadIdx.x / kLanes;
  const int64_t t0 = blockIdx.y * int64_t{kTokensPerTile};
  const int nt = static_cast<int>(n_tokens - t0 < kTokensPerTile ? n_tokens - t0 : kTokensPerTile);
  const uint8_t* wrow = w + (row < N ? row : 0) * row_stride;
  float acc[kTokensPerTile];
  for (int t = 0; t < kTokensPerTile; ++t) acc[t] = 0.0f;

  for (int64_t c0 = 0; c0 < K; c0 += kChunk) {
    const int len = static_cast<int>(K - c0 < kChunk ? K - c0 : kChunk);
    __syncthreads();
    for (int t = 0; t < nt; ++t) {
      for (int k = threadIdx.x; k < len; k += kRowsPerBlock * kLanes) {
        xs[t][smem_index<U>(k)] = x[(t0 + t) * K + c0 + k];
      }
    }
    __syncthreads();
    if (row >= N) continue;
    const int units = len / U;
    for (int u = lane; u < units; u += kLanes) {
      float wv[U];
      dequant_at<T>(wrow, c0 + int64_t{u} * U, wv);
      const int base = smem_index<U>(u * U);
#pragma unroll
      for (int t = 0; t < kTokensPerTile; ++t) {
        if (t < nt) {
#pragma unroll
          for (int i = 0; i < U; ++i) acc[t] = fmaf(xs[t][base + i * (U == 1 ? 0 : kLanes)], wv[i], acc[t]);
        }
      }
    }
  }
  if (row >= N) return;
  const float b = bias ? bias[row] : 0.0f;
  for (int t = 0; t < nt; ++t) {
    const float s = lane_sum(acc[t]);
    if (lane == 0) out[(t0 + t) * N + row] = bias ? s + b : s;
  }
}

// ---- matmul v2: the decode GEMV, reading each weight byte once with wide loads ----
// A block of kV2Threads threads computes R rows for a tile of up to TT
// tokens. Thread i owns the 8-element units i, i + kV2Threads, ... of the
// row (the same units for every row, token and tile): it loads them with
// unit_load (one or two wide loads per unit), loads the tokens' matching 8
// activations straight from global memory (each activation is needed by one
// thread of the block only, so staging it in shared memory would buy
// nothing) and accumulates x·w in fp32, unit by unit, element by element.
// The thread sums then go through the 32-lane butterfly and the lane groups'
// sums are added in group order. Every (row, token) result therefore takes
// the same additions in the same order whatever R, TT, the tile or the other
// tokens are: the op stays batch invariant. Unlike v1 (one row per warp, the
// activations staged in shared memory behind two barriers per 1024 columns,
// byte-wise loads), nothing here waits on a barrier inside the K loop.
constexpr int kV2Threads = 128;

// 8 activations (16-byte aligned) as two 16-byte loads.
__device__ __forceinline__ void load_x8(const float* p, float* xv) {
  const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
  xv[0] = a.x, xv[1] = a.y, xv[2] = a.z, xv[3] = a.w, xv[4] = b.x, xv[5] = b.y, xv[6] = b.z, xv[7] = b.w;
}

template <int T, int R, int TT, bool kFactored>
__global__ void __launch_bounds__(kV2Threads)
    matmul_v2_kernel(const float* x, int64_t n_tokens, int64_t K, const uint8_t* w, size_t row_stride, int64_t N,
                     const float* bias, float* out) {
  const int tid = threadIdx.x;
  const int64_t row0 = blockIdx.y * int64_t{R};
  const int64_t t0 = blockIdx.x * int64_t{TT};
  const int nt = static_cast<int>(n_tokens - t0 < TT ? n_tokens - t0 : TT);
  const uint8_t* wr[R];
#pragma unroll
  for (int r = 0; r < R; ++r) wr[r] = w + (row0 + r < N ? row0 + r : N - 1) * row_stride;
  float acc[R][TT];
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int t = 0; t < TT; ++t) acc[r][t] = 0.0f;
  }
  const int64_t units = K / 8;
#pragma unroll 2
  for (int64_t u = tid; u < units && kFactored; u += kV2Threads) {
    // w = d * q + m per unit: acc += d * (x · q) + m * Σx (see unit_q).
    float q[R][8], d[R], m[R];
#pragma unroll
    for (int r = 0; r < R; ++r) unit_q<T>(wr[r], u * 8, q[r], &d[r], &m[r]);
#pragma unroll
    for (int t = 0; t < TT; ++t) {
      if (t < nt) {
        float xv[8];
        load_x8(x + (t0 + t) * K + u * 8, xv);
        float sx = 0.0f;
        if constexpr (Factored<T>::kHasMin) {
#pragma unroll
          for (int i = 0; i < 8; ++i) sx += xv[i];
        }
#pragma unroll
        for (int r = 0; r < R; ++r) {
          float sq = 0.0f;
#pragma unroll
          for (int i = 0; i < 8; ++i) sq = fmaf(xv[i], q[r][i], sq);
          acc[r][t] = fmaf(d[r], sq, acc[r][t]);
          if constexpr (Factored<T>::kHasMin) acc[r][t] = fmaf(m[r], sx, acc[r][t]);
        }
      }
    }
  }
#pragma unroll 2
  for (int64_t u = tid; u < units && !kFactored; u += kV2Threads) {
    float wv[R][8];
#pragma unroll
    for (int r = 0; r < R; ++r) unit_load<T>(wr[r], u * 8, wv[r]);
#pragma unroll
    for (int t = 0; t < TT; ++t) {
      if (t < nt) {
        float xv[8];
        load_x8(x + (t0 + t) * K + u * 8, xv);
#pragma unroll
        for (int r = 0; r < R; ++r) {
#pragma unroll
          for (int i = 0; i < 8; ++i) acc[r][t] = fmaf(xv[i], wv[r][i], acc[r][t]);
        }
      }
    }
  }
  constexpr int kGroups = kV2Threads / kLanes;
  __shared__ float red[kGroups][R][TT];
  const int lane = tid % kLanes, g = tid / kLanes;
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int t = 0; t < TT; ++t) {
      const float s = lane_sum(acc[r][t]);
      if (lane == 0) red[g][r][t] = s;
    }
  }
  __syncthreads();
  if (tid < R * TT) {
    const int r = tid / TT, t = tid % TT;
    if (row0 + r < N && t < nt) {
      float s = red[0][r][t];
      for (int gi = 1; gi < kGroups; ++gi) s += red[gi][r][t];
      out[(t0 + t) * N + row0 + r] = bias ? s + bias[row0 + r] : s;
    }
  }
}

__global__ void f32_to_bf16_kernel(const float* x, int64_t n, uint16_t* out) {
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < n; i += int64_t{gridDim.x} * kThreads) {
    out[i] = f32_to_bf16(x[i]);
  }
}

__global__ void add_bias_kernel(float* out, const float* bias, int64_t n_tokens, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < n_tokens * n;
       i += int64_t{gridDim.x} * kThreads) {
    out[i] += bias[i % n];
  }
}

unsigned grid_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > (1 << 20) ? (1 << 20) : b));
}

// Calls f.template operator()<T>() for the format's kernel instance.
template <typename F>
void dispatch(GgmlType type, F&& f) {
  switch (static_cast<int>(type)) {
    case kF32: f.template operator()<kF32>(); return;
    case kF16: f.template operator()<kF16>(); return;
    case kBF16: f.template operator()<kBF16>(); return;
    case kQ4_0: f.template operator()<kQ4_0>(); return;
    case kQ4_1: f.template operator()<kQ4_1>(); return;
    case kQ5_0: f.template operator()<kQ5_0>(); return;
    case kQ5_1: f.template operator()<kQ5_1>(); return;
    case kQ8_0: f.template operator()<kQ8_0>(); return;
    case kQ2_K: f.template operator()<kQ2_K>(); return;
    case kQ3_K: f.template operator()<kQ3_K>(); return;
    case kQ4_K: f.template operator()<kQ4_K>(); return;
    case kQ5_K: f.template operator()<kQ5_K>(); return;
    case kQ6_K: f.template operator()<kQ6_K>(); return;
    case kMXFP8: f.template operator()<kMXFP8>(); return;
  }
  SUANLI_CHECK(false && "weight format not supported by the CUDA device");
}

}  // namespace

const GgmlType* quant_formats(int* count) {
  *count = static_cast<int>(sizeof kFormats / sizeof kFormats[0]);
  return kFormats;
}

void launch_embed(const WeightView& table, const int32_t* ids, int64_t n_tokens, float* out, Stream s) {
  if (n_tokens <= 0) return;
  SUANLI_CHECK(n_tokens <= 65535);
  dispatch(table.type, [&]<int T>() {
    const int64_t units = table.n_cols / Layout<T>::kUnit;
    const dim3 grid(static_cast<unsigned>((units + kThreads - 1) / kThreads), static_cast<unsigned>(n_tokens));
    embed_kernel<T><<<grid, kThreads, 0, s>>>(static_cast<const uint8_t*>(table.data), table.row_stride,
                                              table.n_cols, ids, out);
  });
}

namespace {

// Which matmul kernel: SUANLI_CUDA_MATMUL=v1 forces the byte-wise one (for
// A/B runs); v2 is the default where its alignment and grid limits hold.
bool v2_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("SUANLI_CUDA_MATMUL");
    return !(v && std::string(v) == "v1");
  }();
  return on;
}

// SUANLI_CUDA_MATMUL=v2: the factored path off (every weight dequantized).
bool factored_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("SUANLI_CUDA_MATMUL");
    return !(v && std::string(v) == "v2");
  }();
  return on;
}

template <int T, int R, int TT>
void launch_v2(const float* x, int64_t n_tokens, const WeightView& w, const float* bias, float* out, Stream s) {
  const dim3 grid(static_cast<unsigned>((n_tokens + TT - 1) / TT), static_cast<unsigned>((w.n_rows + R - 1) / R));
  const auto* wd = static_cast<const uint8_t*>(w.data);
  if constexpr (Factored<T>::kOn) {
    if (factored_enabled()) {
      matmul_v2_kernel<T, R, TT, true><<<grid, kV2Threads, 0, s>>>(x, n_tokens, w.n_cols, wd, w.row_stride,
                                                                    w.n_rows, bias, out);
      return;
    }
  }
  matmul_v2_kernel<T, R, TT, false><<<grid, kV2Threads, 0, s>>>(x, n_tokens, w.n_cols, wd, w.row_stride, w.n_rows,
                                                                 bias, out);
}

}  // namespace

void launch_matmul(const float* x, int64_t n_tokens, const WeightView& w, const float* bias, float* out, Stream s) {
  if (n_tokens <= 0 || w.n_rows <= 0) return;
  bool done = false;
  if (v2_enabled() && w.n_cols % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
      (w.n_rows + 3) / 4 <= 65535) {
    dispatch(w.type, [&]<int T>() {
      constexpr uintptr_t a = Wide<T>::kAlign;
      if (reinterpret_cast<uintptr_t>(w.data) % a != 0 || w.row_stride % a != 0) return;
      // The tile shape only decides which work shares a block; every output
      // takes the same additions (see matmul_v2_kernel).
      if (n_tokens == 1) {
        launch_v2<T, 4, 1>(x, n_tokens, w, bias, out, s);
      } else if (n_tokens <= 4) {
        launch_v2<T, 4, 4>(x, n_tokens, w, bias, out, s);
      } else {
        launch_v2<T, 4, 8>(x, n_tokens, w, bias, out, s);
      }
      done = true;
    });
  }
  if (done) return;
  const int64_t tiles = (n_tokens + kTokensPerTile - 1) / kTokensPerTile;
  SUANLI_CHECK(tiles <= 65535);
  dispatch(w.type, [&]<int T>() {
    const dim3 grid(static_cast<unsigned>((w.n_rows + kRowsPerBlock - 1) / kRowsPerBlock),
                    static_cast<unsigned>(tiles));
    matmul_kernel<T><<<grid, kRowsPerBlock * kLanes, 0, s>>>(x, n_tokens, w.n_cols,
                                                              static_cast<const uint8_t*>(w.data), w.row_stride,
                                                              w.n_rows, bias, out);
  });
}

void launch_dequant_bf16(const WeightView& w, int64_t row0, int64_t n_rows, uint16_t* out, Stream s) {
  if (n_rows <= 0) return;
  SUANLI_CHECK(n_rows <= 65535);
  dispatch(w.type, [&]<int T>() {
    const int64_t units = w.n_cols / Layout<T>::kUnit;
    const dim3 grid(static_cast<unsigned>((units + kThreads - 1) / kThreads), static_cast<unsigned>(n_rows));
    dequant_bf16_kernel<T><<<grid, kThreads, 0, s>>>(static_cast<const uint8_t*>(w.data), w.row_stride, w.n_cols,
                                                     row0, out);
  });
}

void launch_f32_to_bf16(const float* x, int64_t n, uint16_t* out, Stream s) {
  if (n > 0) f32_to_bf16_kernel<<<grid_for(n), kThreads, 0, s>>>(x, n, out);
}

void launch_add_bias(float* out, const float* bias, int64_t n_tokens, int64_t n, Stream s) {
  if (n_tokens * n > 0) add_bias_kernel<<<grid_for(n_tokens * n), kThreads, 0, s>>>(out, bias, n_tokens, n);
}

}  // namespace suanli::gpu
