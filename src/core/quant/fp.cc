// IEEE binary16 and bfloat16 conversions, and the plain float row formats.
//
// Conversions work on bit patterns rather than _Float16 / F16C so that every
// compiler and target gives the same bits, including for NaN, infinities and
// subnormals: these are the reference the fast kernels are checked against.
#include <bit>
#include <cstring>

#include "core/quant/formats.h"

namespace suanli::quant {

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exponent = (h >> 10) & 0x1f;
  const uint32_t mantissa = h & 0x3ff;
  if (exponent == 0x1f) {
    // Inf or NaN; the payload moves up unchanged (a signalling NaN stays one).
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  }
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24 is exact in float.
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(magnitude));
  }
  return std::bit_cast<float>(sign | ((exponent + 127 - 15) << 23) | (mantissa << 13));
}

uint16_t fp32_to_fp16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) {
    if (x == 0x7f800000u) return sign | 0x7c00;
    // NaN: quiet it and keep the top payload bits.
    return static_cast<uint16_t>(sign | 0x7e00 | ((x >> 13) & 0x3ff));
  }
  // 65520 is the midpoint between 65504 (largest half, odd mantissa) and
  // 2^16; ties go to even, so it and everything above become infinity.
  if (x >= 0x477ff000u) return sign | 0x7c00;
  if (x < 0x38800000u) {
    // Below 2^-14 the result is subnormal or zero. Adding 0.5f puts the value
    // where one float ulp (2^-24) is one half-subnormal step, so the FPU's own
    // round-to-nearest-even does the rounding; the low bits are the result.
    const float shifted = std::bit_cast<float>(x) + 0.5f;
    return static_cast<uint16_t>(sign | (std::bit_cast<uint32_t>(shifted) - 0x3f000000u));
  }
  // Normal: rebias the exponent and round the 13 dropped bits to nearest
  // even. A carry out of the mantissa correctly bumps the exponent.
  const uint32_t odd = (x >> 13) & 1;
  x += (static_cast<uint32_t>(15 - 127) << 23) + 0xfff + odd;
  return static_cast<uint16_t>(sign | (x >> 13));
}

float bf16_to_fp32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

// Same bits as ggml_compute_fp32_to_bf16 and gguf-py's BF16 quantizer:
// NaN is quieted with its sign and top payload kept, everything else rounds
// to nearest even (overflowing to infinity).
uint16_t fp32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40);
  return static_cast<uint16_t>((static_cast<uint64_t>(x) + 0x7fff + ((x >> 16) & 1)) >> 16);
}

namespace internal {

void dequantize_f32(const uint8_t* src, float* dst, int64_t n) {
  if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void dequantize_f16(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = load_fp16(src + 2 * i);
}

void dequantize_bf16(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, sizeof h);
    dst[i] = bf16_to_fp32(h);
  }
}

void dequantize_f64(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    double d;
    std::memcpy(&d, src + 8 * i, sizeof d);
    dst[i] = static_cast<float>(d);
  }
}

void quantize_f32(const float* src, uint8_t* dst, int64_t n) {
  if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void quantize_f16(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) store_fp16(dst + 2 * i, src[i]);
}

void quantize_bf16(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = fp32_to_bf16(src[i]);
    std::memcpy(dst + 2 * i, &h, sizeof h);
  }
}

void quantize_f64(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double d = src[i];
    std::memcpy(dst + 8 * i, &d, sizeof d);
  }
}

}  // namespace internal
}  // namespace suanli::quant
