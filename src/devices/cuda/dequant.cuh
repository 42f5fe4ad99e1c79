// The weight formats' dequantizers for the GPU device, one 8-element unit
// (or one element, for F32/F16/BF16) at a time: the float expressions of
// src/core/quant/*.cc, operation for operation. Compiled without FMA
// contraction (CMakeLists), they give the reference's bits; host and device
// (tests/conformance/gpu_dequant_test.cu checks every format on the host).
#pragma once

#include <cstdint>

#include "devices/cuda/numerics.cuh"

namespace suanli::gpu {

constexpr int kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ2_K = 10, kQ3_K = 11,
              kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kBF16 = 30, kMXFP8 = 1024;

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

SUANLI_HD int half_byte(int e) { return 32 * (e / 128) + e % 32; }

SUANLI_HD void scale_min_k4(const uint8_t* scales, int j, int* sc, int* m) {
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
SUANLI_HD void dequant_unit(const uint8_t* b, int o, float* v) {
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
SUANLI_HD void dequant_at(const uint8_t* row, int64_t k, float* v) {
  using L = Layout<T>;
  dequant_unit<T>(row + (k / L::kBlock) * L::kBytes, static_cast<int>(k % L::kBlock), v);
}

}  // namespace suanli::gpu
