// The 32-element block formats from ggml's first generation of quants.
//
// Layouts (fp16 fields little-endian, at any alignment):
//   Q4_0  18 bytes: d | qs[16]          x = d * (q - 8)
//   Q4_1  20 bytes: d | m | qs[16]      x = d * q + m
//   Q5_0  22 bytes: d | qh[4] | qs[16]  x = d * (q - 16)
//   Q5_1  24 bytes: d | m | qh[4] | qs[16]
//   Q8_0  34 bytes: d | int8 qs[32]     x = d * q
// Nibbles: qs[j] holds element j in its low half and element j + 16 in its
// high half. Q5 fifth bits: bit j of the little-endian uint32 qh belongs to
// element j.
//
// The quantizers reproduce ggml's quantize_row_*_ref (and gguf-py, which
// mirrors them) bit for bit: scales are computed in float from the block's
// extreme values, codes use the float scale (not its fp16 rounding), and
// codes are truncated after adding the offset + 0.5, exactly as ggml does.
// Every step is a single float operation so the result does not depend on
// FMA contraction (the file is also built with -ffp-contract=off).
#include <algorithm>
#include <cmath>

#include "core/quant/formats.h"

namespace suanli::quant::internal {
namespace {

constexpr int64_t kBlock = 32;

// (int)v clamped to [0, hi]; ggml writes MIN(hi, (int8_t)v) with v >= 0 for
// finite inputs. NaN maps to 0 instead of undefined behaviour.
inline uint8_t truncate_code(float v, int hi) {
  if (!(v > 0.0f)) return 0;
  if (v >= static_cast<float>(hi)) return static_cast<uint8_t>(hi);
  return static_cast<uint8_t>(static_cast<int>(v));
}

inline float reciprocal_or_zero(float d) { return d != 0.0f ? 1.0f / d : 0.0f; }

// The value of largest magnitude, keeping its sign (first one on ties).
float signed_absmax(const float* x) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int j = 0; j < kBlock; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void min_max(const float* x, float* lo, float* hi) {
  *lo = x[0];
  *hi = x[0];
  for (int j = 1; j < kBlock; ++j) {
    *lo = x[j] < *lo ? x[j] : *lo;
    *hi = x[j] > *hi ? x[j] : *hi;
  }
}

void unpack_nibbles(const uint8_t* qs, uint8_t* q) {
  for (int j = 0; j < kBlock / 2; ++j) {
    q[j] = qs[j] & 0x0f;
    q[j + kBlock / 2] = qs[j] >> 4;
  }
}

void pack_nibbles(const uint8_t* q, uint8_t* qs) {
  for (int j = 0; j < kBlock / 2; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0x0f) | ((q[j + kBlock / 2] & 0x0f) << 4));
  }
}

// Five-bit codes: low nibbles from qs, bit 4 from qh.
void unpack_5bit(const uint8_t* qh_bytes, const uint8_t* qs, uint8_t* q) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, sizeof qh);
  unpack_nibbles(qs, q);
  for (int j = 0; j < kBlock; ++j) q[j] |= static_cast<uint8_t>(((qh >> j) & 1) << 4);
}

void pack_5bit(const uint8_t* q, uint8_t* qh_bytes, uint8_t* qs) {
  uint32_t qh = 0;
  for (int j = 0; j < kBlock; ++j) qh |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
  std::memcpy(qh_bytes, &qh, sizeof qh);
  pack_nibbles(q, qs);
}

}  // namespace

void dequantize_q4_0(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b, src += 18, dst += kBlock) {
    const float d = load_fp16(src);
    uint8_t q[kBlock];
    unpack_nibbles(src + 2, q);
    for (int j = 0; j < kBlock; ++j) dst[j] = d * static_cast<float>(q[j] - 8);
  }
}

void dequantize_q4_1(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b, src += 20, dst += kBlock) {
    const float d = load_fp16(src);
    const float m = load_fp16(src + 2);
    uint8_t q[kBlock];
    unpack_nibbles(src + 4, q);
    for (int j = 0; j < kBlock; ++j) dst[j] = d * static_cast<float>(q[j]) + m;
  }
}

void dequantize_q5_0(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b, src += 22, dst += kBlock) {
    const float d = load_fp16(src);
    uint8_t q[kBlock];
    unpack_5bit(src + 2, src + 6, q);
    for (int j = 0; j < kBlock; ++j) dst[j] = d * static_cast<float>(q[j] - 16);
  }
}

void dequantize_q5_1(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b, src += 24, dst += kBlock) {
    const float d = load_fp16(src);
    const float m = load_fp16(src + 2);
    uint8_t q[kBlock];
    unpack_5bit(src + 4, src + 8, q);
    for (int j = 0; j < kBlock; ++j) dst[j] = d * static_cast<float>(q[j]) + m;
  }
}

void dequantize_q8_0(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b, src += 34, dst += kBlock) {
    const float d = load_fp16(src);
    for (int j = 0; j < kBlock; ++j) dst[j] = d * static_cast<float>(static_cast<int8_t>(src[2 + j]));
  }
}

// The extreme value maps to code 0 (q - 8 = -8); its opposite would need 16
// and is clipped to 15, as in ggml.
void quantize_q4_0(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b, src += kBlock, dst += 18) {
    const float d = signed_absmax(src) / -8.0f;
    const float id = reciprocal_or_zero(d);
    uint8_t q[kBlock];
    for (int j = 0; j < kBlock; ++j) q[j] = truncate_code(src[j] * id + 8.5f, 15);
    store_fp16(dst, d);
    pack_nibbles(q, dst + 2);
  }
}

void quantize_q4_1(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b, src += kBlock, dst += 20) {
    float lo, hi;
    min_max(src, &lo, &hi);
    const float d = (hi - lo) / 15.0f;
    const float id = reciprocal_or_zero(d);
    uint8_t q[kBlock];
    for (int j = 0; j < kBlock; ++j) q[j] = truncate_code((src[j] - lo) * id + 0.5f, 15);
    store_fp16(dst, d);
    store_fp16(dst + 2, lo);
    pack_nibbles(q, dst + 4);
  }
}

void quantize_q5_0(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b, src += kBlock, dst += 22) {
    const float d = signed_absmax(src) / -16.0f;
    const float id = reciprocal_or_zero(d);
    uint8_t q[kBlock];
    for (int j = 0; j < kBlock; ++j) q[j] = truncate_code(src[j] * id + 16.5f, 31);
    store_fp16(dst, d);
    pack_5bit(q, dst + 2, dst + 6);
  }
}

void quantize_q5_1(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b, src += kBlock, dst += 24) {
    float lo, hi;
    min_max(src, &lo, &hi);
    const float d = (hi - lo) / 31.0f;
    const float id = reciprocal_or_zero(d);
    uint8_t q[kBlock];
    for (int j = 0; j < kBlock; ++j) q[j] = truncate_code((src[j] - lo) * id + 0.5f, 31);
    store_fp16(dst, d);
    store_fp16(dst + 2, lo);
    pack_5bit(q, dst + 4, dst + 8);
  }
}

// Codes round half away from zero (roundf), as ggml's reference does.
void quantize_q8_0(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b, src += kBlock, dst += 34) {
    float amax = 0.0f;
    for (int j = 0; j < kBlock; ++j) amax = std::fmax(amax, std::fabs(src[j]));
    const float d = amax / 127.0f;
    const float id = reciprocal_or_zero(d);
    store_fp16(dst, d);
    for (int j = 0; j < kBlock; ++j) {
      float v = std::round(src[j] * id);
      v = std::isnan(v) ? 0.0f : std::clamp(v, -127.0f, 127.0f);
      dst[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(v));
    }
  }
}

}  // namespace suanli::quant::internal
