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

namespace suanli::gpu {

// ---- Wide loads for the decode matmul (matmul_v2 in quant.cu) ----
// unit_load<T>(row, k, v) gives exactly dequant_at<T>'s 8 values (same float
// expressions, bit for bit; tests/conformance/gpu_dequant_test.cu checks it
// on the host), but reads the unit's bytes with as few loads as the format's
// alignment allows: one 16-byte load for F16/BF16, 8 bytes plus a word of
// scales for Q4_K, and so on. kWideAlign is the alignment the row start and
// the row stride must have (the launcher falls back to the exact byte-wise
// kernel otherwise). Formats without a wide loader use dequant_at. The
// block formats share their loads with unit_q (below); unit_load itself is
// at the end of this file.
template <int T>
struct Wide {
  static constexpr int kAlign = 1;
};
template <> struct Wide<kF32> { static constexpr int kAlign = 16; };
template <> struct Wide<kF16> { static constexpr int kAlign = 16; };
template <> struct Wide<kBF16> { static constexpr int kAlign = 16; };
template <> struct Wide<kQ8_0> { static constexpr int kAlign = 2; };
template <> struct Wide<kQ4_0> { static constexpr int kAlign = 2; };
template <> struct Wide<kQ4_1> { static constexpr int kAlign = 4; };
template <> struct Wide<kQ4_K> { static constexpr int kAlign = 8; };
template <> struct Wide<kMXFP8> { static constexpr int kAlign = 1; };

SUANLI_HD uint32_t ld_u16(const uint8_t* p) { return *reinterpret_cast<const uint16_t*>(p); }
SUANLI_HD uint32_t ld_u32(const uint8_t* p) { return *reinterpret_cast<const uint32_t*>(p); }
// Byte i (0..7) of a little-endian pair of words.
SUANLI_HD uint32_t byte_of(uint32_t lo, uint32_t hi, int i) { return ((i < 4 ? lo : hi) >> (8 * (i & 3))) & 0xffu; }

// Q4_K's sub-block j (0..7) of block b: d1 = d * scale_j, m1 = dmin * min_j
// (the reference's expressions, scale_min_k4 read from three words).
SUANLI_HD void q4k_scales(const uint8_t* b, int j, float* d1, float* m1) {
  const uint32_t dd = ld_u32(b);
  const float d = fp16_to_f32_fast(static_cast<uint16_t>(dd));
  const float dmin = fp16_to_f32_fast(static_cast<uint16_t>(dd >> 16));
  const uint32_t s0 = ld_u32(b + 4), s1 = ld_u32(b + 8), s2 = ld_u32(b + 12);
  auto sbyte = [&](int i) -> int {
    const uint32_t w = i < 4 ? s0 : (i < 8 ? s1 : s2);
    return static_cast<int>((w >> (8 * (i & 3))) & 0xffu);
  };
  int sc, m;
  if (j < 4) {
    sc = sbyte(j) & 63;
    m = sbyte(j + 4) & 63;
  } else {
    sc = (sbyte(j + 4) & 0x0f) | ((sbyte(j - 4) >> 6) << 4);
    m = (sbyte(j + 4) >> 4) | ((sbyte(j) >> 6) << 4);
  }
  *d1 = d * small_int_to_f32(static_cast<uint32_t>(sc), 0.0f);
  *m1 = dmin * small_int_to_f32(static_cast<uint32_t>(m), 0.0f);
}

}  // namespace suanli::gpu

namespace suanli::gpu {

// ---- Factored units for the decode matmul ----
// For the block formats, w = d * q + m within a unit (m = 0 where the format
// has no minimum): unit_q<T> gives the 8 q as exact floats (small integers,
// or E4M3 values) with the unit's d and m, so that the matmul can form
// d * (x · q) + m * Σx per unit instead of dequantizing each weight (one FMA
// per weight instead of four or five operations). d * q + m is the value
// dequant_at gives (bit for bit, up to the sign of a zero); the host test
// checks it.
template <int T>
struct Factored {
  static constexpr bool kOn = false, kHasMin = false;
};
template <> struct Factored<kQ8_0> { static constexpr bool kOn = true, kHasMin = false; };
template <> struct Factored<kQ4_0> { static constexpr bool kOn = true, kHasMin = false; };
template <> struct Factored<kQ4_1> { static constexpr bool kOn = true, kHasMin = true; };
template <> struct Factored<kQ4_K> { static constexpr bool kOn = true, kHasMin = true; };
template <> struct Factored<kMXFP8> { static constexpr bool kOn = true, kHasMin = false; };

// Byte k (0..3) of w, minus `offset`, as a float: on NVIDIA one byte
// permute puts the byte under 2^23's exponent and one subtraction removes
// 2^23 + offset (exact, see small_int_to_f32).
SUANLI_HD float magic_byte(uint32_t w, int k, float offset) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(__byte_perm(w, 0x4b000000u, 0x7440u | static_cast<unsigned>(k))) - (8388608.0f + offset);
#else
  return small_int_to_f32((w >> (8 * k)) & 0xffu, offset);
#endif
}
// Four 4-bit values (low or high nibbles of w's bytes) or four bytes → q.
SUANLI_HD void four_q(uint32_t w, float offset, float* q) {
  for (int k = 0; k < 4; ++k) q[k] = magic_byte(w, k, offset);
}

template <int T>
SUANLI_HD void unit_q(const uint8_t* row, int64_t k, float* q, float* d, float* m) {
  *m = 0.0f;
  if constexpr (T == kQ8_0 || T == kQ4_0) {
    const uint8_t* b = row + (k / 32) * Layout<T>::kBytes;
    const int o = static_cast<int>(k % 32);
    *d = fp16_to_f32_fast(static_cast<uint16_t>(ld_u16(b)));
    const uint8_t* p = b + 2 + (T == kQ8_0 ? o : (o & 15));
    const uint32_t lo = ld_u16(p) | (ld_u16(p + 2) << 16), hi = ld_u16(p + 4) | (ld_u16(p + 6) << 16);
    if constexpr (T == kQ8_0) {  // int8 v = (v ^ 0x80) - 128
      four_q(lo ^ 0x80808080u, 128.0f, q);
      four_q(hi ^ 0x80808080u, 128.0f, q + 4);
    } else {
      const int shift = o < 16 ? 0 : 4;
      four_q((lo >> shift) & 0x0f0f0f0fu, 8.0f, q);
      four_q((hi >> shift) & 0x0f0f0f0fu, 8.0f, q + 4);
    }
  } else if constexpr (T == kQ4_1) {
    const uint8_t* b = row + (k / 32) * 20;
    const int o = static_cast<int>(k % 32);
    const uint32_t dm = ld_u32(b);
    *d = fp16_to_f32_fast(static_cast<uint16_t>(dm));
    *m = fp16_to_f32_fast(static_cast<uint16_t>(dm >> 16));
    const uint8_t* p = b + 4 + (o & 15);
    const uint32_t lo = ld_u32(p), hi = ld_u32(p + 4);
    const int shift = o < 16 ? 0 : 4;
    four_q((lo >> shift) & 0x0f0f0f0fu, 0.0f, q);
    four_q((hi >> shift) & 0x0f0f0f0fu, 0.0f, q + 4);
  } else if constexpr (T == kQ4_K) {
    const uint8_t* b = row + (k / 256) * 144;
    const int o = static_cast<int>(k % 256);
    const int j = o / 32, l = o % 32;
    float d1, m1;
    q4k_scales(b, j, &d1, &m1);
    *d = d1;
    *m = -m1;
    const uint2 p = *reinterpret_cast<const uint2*>(b + 16 + 32 * (j / 2) + l);
    const int shift = 4 * (j % 2);
    four_q((p.x >> shift) & 0x0f0f0f0fu, 0.0f, q);
    four_q((p.y >> shift) & 0x0f0f0f0fu, 0.0f, q + 4);
  } else if constexpr (T == kMXFP8) {
    const uint8_t* b = row + (k / 32) * 33;
    const int o = static_cast<int>(k % 32);
    *d = e8m0_to_f32(b[0]);
    const uint8_t* p = b + 1 + o;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
    for (int i = 0; i < 8; i += 2) {
      const uint16_t pair = static_cast<uint16_t>(p[i] | (p[i + 1] << 8));
      uint32_t h2;
      asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h2) : "h"(pair));
      q[i] = fp16_to_f32_fast(static_cast<uint16_t>(h2));
      q[i + 1] = fp16_to_f32_fast(static_cast<uint16_t>(h2 >> 16));
    }
#else
    for (int i = 0; i < 8; ++i) q[i] = e4m3_to_f32(p[i]);
#endif
  }
}

}  // namespace suanli::gpu

namespace suanli::gpu {

// The unit's 8 weights as floats, bit for bit dequant_at's (see "Wide loads").
template <int T>
SUANLI_HD void unit_load(const uint8_t* row, int64_t k, float* v) {
  if constexpr (T == kF32) {
    const float4 a = reinterpret_cast<const float4*>(row)[k / 4];
    const float4 b = reinterpret_cast<const float4*>(row)[k / 4 + 1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  } else if constexpr (T == kF16 || T == kBF16) {
    const uint4 q = reinterpret_cast<const uint4*>(row)[k / 8];
    const uint32_t w[4] = {q.x, q.y, q.z, q.w};
    for (int i = 0; i < 8; ++i) {
      const uint16_t h = static_cast<uint16_t>(w[i / 2] >> (16 * (i % 2)));
      if constexpr (T == kF16) {
        v[i] = fp16_to_f32_fast(h);
      } else {
        v[i] = bf16_to_f32(h);
      }
    }
  } else if constexpr (Factored<T>::kOn) {
    // The factored unit's d * q (+ m): the reference's expressions again
    // (q is exact; x - y and x + (-y) round alike).
    float q[8], d, m;
    unit_q<T>(row, k, q, &d, &m);
    for (int i = 0; i < 8; ++i) v[i] = Factored<T>::kHasMin ? d * q[i] + m : d * q[i];
  } else {
    dequant_at<T>(row, k, v);
  }
}

}  // namespace suanli::gpu
