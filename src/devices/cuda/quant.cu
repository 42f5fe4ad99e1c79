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
#include "devices/cuda/numerics.cuh"

namespace suanli::gpu {
namespace {

constexpr int kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ2_K = 10, kQ3_K = 11,
              kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kBF16 = 30, kMXFP8 = 1024;

const GgmlType kFormats[] = {GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ8_0, GgmlType::kQ4_0,
                             GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ2_K, GgmlType::kQ3_K,
                             GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kMXFP8_E4M3};

// Elements per block and bytes per block of each format.
template <int T>
struct Layout;
template <> struct Layout<kF32> { static constexpr int kBlock = 1, kBytes = 4, kUnit = 1; };
template <> struct Layout<kF16> { static constexpr int kBlock = 1, kBytes = 2, kUnit = 1; };
template <> struct Layout<kBF16> { static constexpr int kBlock = 1, kBytes = 2, kUnit = 1; };
template <> struct Layout<kQ4_0> { static constexpr int kBlock = 32, kBytes = 18, kUnit = 8; };
template <> struct Layout<kQ4_1> { static constexpr int kBlock = 32, kBytes = 20, kUnit = 8; };
template <> struct Layout<kQ5_0> { static constexpr int kBlock = 32, kBytes = 22, kUnit = 8; };
template <> struct Layout<kQ5_1> { static constexpr int kBlock = 32, kBytes = 24, kUnit = 8; };
template <> struct Layout<kQ8_0> { static constexpr int kBlock = 32, kBytes = 34, kUnit = 8; };
template <> struct Layout<kQ2_K> { static constexpr int kBlock = 256, kBytes = 84, kUnit = 8; };
template <> struct Layout<kQ3_K> { static constexpr int kBlock = 256, kBytes = 110, kUnit = 8; };
template <> struct Layout<kQ4_K> { static constexpr int kBlock = 256, kBytes = 144, kUnit = 8; };
template <> struct Layout<kQ5_K> { static constexpr int kBlock = 256, kBytes = 176, kUnit = 8; };
template <> struct Layout<kQ6_K> { static constexpr int kBlock = 256, kBytes = 210, kUnit = 8; };
template <> struct Layout<kMXFP8> { static constexpr int kBlock = 32, kBytes = 33, kUnit = 8; };

__device__ __forceinline__ int half_byte(int e) { return 32 * (e / 128) + e % 32; }

__device__ __forceinline__ void scale_min_k4(const uint8_t* scales, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = scales[j] & 63;
    *m = scales[j + 4] & 63;
  } else {
    *sc = (scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4);
    *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
  }
}

// kUnit elements starting at element o of block b (o a multiple of kUnit).
// The float expressions are the reference's, operation for operation; the
// sources are compiled without contraction into FMA (CMakeLists), so the
// results are bit-identical to src/core/quant.
template <int T>
__device__ __forceinline__ void dequant_unit(const uint8_t* b, int o, float* v) {
  if constexpr (T == kF32) {
    v[0] = reinterpret_cast<const float*>(b)[0];
  } else if constexpr (T == kF16) {
    v[0] = load_fp16(b);
  } else if constexpr (T == kBF16) {
    v[0] = bf16_to_f32(load_u16(b));
  } else if constexpr (T == kQ4_0 || T == kQ4_1) {
    const float d = load_fp16(b);
    const float m = T == kQ4_1 ? load_fp16(b + 2) : 0.0f;
    const uint8_t* qs = b + (T == kQ4_1 ? 4 : 2);
    for (int i = 0; i < 8; ++i) {
      const int j = o + i;
      const int q = j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4);
      v[i] = T == kQ4_0 ? d * static_cast<float>(q - 8) : d * static_cast<float>(q) + m;
    }
  } else if constexpr (T == kQ5_0 || T == kQ5_1) {
    const float d = load_fp16(b);
    const float m = T == kQ5_1 ? load_fp16(b + 2) : 0.0f;
    const uint8_t* qhp = b + (T == kQ5_1 ? 4 : 2);
    const uint32_t qh = qhp[0] | (uint32_t{qhp[1]} << 8) | (uint32_t{qhp[2]} << 16) | (uint32_t{qhp[3]} << 24);
    const uint8_t* qs = qhp + 4;
    for (int i = 0; i < 8; ++i) {
      const int j = o + i;
      const int q = (j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4)) | (((qh >> j) & 1) << 4);
      v[i] = T == kQ5_0 ? d * static_cast<float>(q - 16) : d * static_cast<float>(q) + m;
    }
  } else if constexpr (T == kQ8_0) {
    const float d = load_fp16(b);
    for (int i = 0; i < 8; ++i) v[i] = d * static_cast<float>(static_cast<int8_t>(b[2 + o + i]));
  } else if constexpr (T == kMXFP8) {
    const float scale = e8m0_to_f32(b[0]);
    for (int i = 0; i < 8; ++i) v[i] = e4m3_to_f32(b[1 + o + i]) * scale;
  } else if constexpr (T == kQ2_K) {
    const float d = load_fp16(b + 80), dmin = load_fp16(b + 82);
    const uint8_t sc = b[o / 16];
    const float dl = d * static_cast<float>(sc & 0x0f);
    const float ml = dmin * static_cast<float>(sc >> 4);
    for (int i = 0; i < 8; ++i) {
      const int e = o + i;
      const int q = (b[16 + half_byte(e)] >> (2 * ((e % 128) / 32))) & 3;
      v[i] = dl * static_cast<float>(q) - ml;
    }
  } else if constexpr (T == kQ3_K) {
    const float d = load_fp16(b + 108);
    const uint8_t* packed = b + 96;
    const int s = o / 16;
    const int low_s = (packed[s % 8] >> (4 * (s / 8))) & 0x0f;
    const int high_s = (packed[8 + s % 4] >> (2 * (s / 4))) & 3;
    const float ds = d * static_cast<float>((low_s | (high_s << 4)) - 32);
    for (int i = 0; i < 8; ++i) {
      const int e = o + i;
      const int low = (b[32 + half_byte(e)] >> (2 * ((e % 128) / 32))) & 3;
      const int hbit = (b[e % 32] >> (e / 32)) & 1;
      v[i] = ds * static_cast<float>(low - (hbit ? 0 : 4));
    }
  } else if constexpr (T == kQ4_K || T == kQ5_K) {
    const float d = load_fp16(b), dmin = load_fp16(b + 2);
    const int j = o / 32;
    int sc, m;
    scale_min_k4(b + 4, j, &sc, &m);
    const float d1 = d * static_cast<float>(sc);
    const float m1 = dmin * static_cast<float>(m);
    const uint8_t* qs = b + (T == kQ4_K ? 16 : 48);
    for (int i = 0; i < 8; ++i) {
      const int l = (o + i) % 32;
      int q = (qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0x0f;
      if constexpr (T == kQ5_K) q |= ((b[16 + l] >> j) & 1) << 4;
      v[i] = d1 * static_cast<float>(q) - m1;
    }
  } else if constexpr (T == kQ6_K) {
    const float d = load_fp16(b + 208);
    const float dl = d * static_cast<float>(static_cast<int8_t>(b[192 + o / 16]));
    for (int i = 0; i < 8; ++i) {
      const int e = o + i;
      const int k = (e % 128) / 32;
      const int low = (b[(e / 128) * 64 + 32 * (k % 2) + e % 32] >> (4 * (k / 2))) & 0x0f;
      const int high = (b[128 + half_byte(e)] >> (2 * k)) & 3;
      v[i] = dl * static_cast<float>((low | (high << 4)) - 32);
    }
  }
}

// Element k (a multiple of kUnit) of a row.
template <int T>
__device__ __forceinline__ void dequant_at(const uint8_t* row, int64_t k, float* v) {
  using L = Layout<T>;
  dequant_unit<T>(row + (k / L::kBlock) * L::kBytes, static_cast<int>(k % L::kBlock), v);
}

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

void launch_matmul(const float* x, int64_t n_tokens, const WeightView& w, const float* bias, float* out, Stream s) {
  if (n_tokens <= 0 || w.n_rows <= 0) return;
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
