// MXFP8_E4M3: the OCP microscaling block of FP8 E4M3 elements sharing one
// UE8M0 power-of-two scale (docs/fp8.md).
//
// Layout, 33 bytes per 32 elements:
//   e | q[32]          x[j] = 2^(e - 127) * E4M3(q[j])
// Dequantizing is exact: an E4M3 value has at most 4 significant bits, and
// multiplying it by a power of two stays within float's range except where
// the product exceeds FLT_MAX (possible for scale bytes of 247 and up),
// which gives ±inf as float multiplication does. A scale byte of 255 (NaN) makes the whole
// block NaN, as the OCP MX spec says.
//
// Quantizing: the scale is the smallest power of two 2^k with
// amax / 2^k <= 448 (amax: the largest finite |x| of the block), so no
// finite element is clipped; k is clamped to the UE8M0 range [-127, 127]
// (a zero block gets e = 0). This differs from the OCP spec's example
// algorithm, k = floor(log2 amax) - 8, which saturates elements in
// (448, 512) * 2^k. Elements x / 2^k (exact: a power-of-two division) round
// to nearest, ties to even, saturating to ±448; NaN stays NaN and ±inf
// saturates to ±448 (non-finite elements do not influence the scale).
#include "core/quant/fp8.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <limits>

#include "core/quant/formats.h"

namespace suanli::quant {
namespace {

constexpr int64_t kBlock = 32;

float decode_e4m3(uint8_t code) {
  const int exponent = (code >> 3) & 0xf;
  const int mantissa = code & 0x7;
  const float sign = (code & 0x80) ? -1.0f : 1.0f;
  if (exponent == 0xf && mantissa == 0x7) return std::copysign(std::numeric_limits<float>::quiet_NaN(), sign);
  const float magnitude = exponent == 0 ? std::ldexp(static_cast<float>(mantissa), -9)
                                        : std::ldexp(static_cast<float>(8 + mantissa), exponent - 10);
  return sign * magnitude;
}

// Every code's value, built once: decoding is a table lookup in the hot
// dequantize loop (the matmul converts weight rows through it).
const std::array<float, 256>& e4m3_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int c = 0; c < 256; ++c) t[c] = decode_e4m3(static_cast<uint8_t>(c));
    return t;
  }();
  return table;
}

// The k of the block's scale 2^k (see the file comment).
int block_exponent(const float* x) {
  float amax = 0.0f;
  for (int64_t j = 0; j < kBlock; ++j) {
    if (std::isfinite(x[j])) amax = std::max(amax, std::fabs(x[j]));
  }
  if (amax == 0.0f) return -127;
  // amax / 2^k lies in [256, 512) for this k; one more when it is above 448.
  // The comparison is in double, where 448 * 2^k is exact for every k here.
  int k = std::ilogb(amax) - 8;
  if (static_cast<double>(amax) > std::ldexp(448.0, k)) ++k;
  return std::clamp(k, -127, 127);
}

}  // namespace

float e4m3_to_fp32(uint8_t code) { return e4m3_table()[code]; }

uint8_t fp32_to_e4m3(float f) {
  const uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
  if (std::isnan(f)) return sign | kE4M3NaN;
  const double a = std::fabs(static_cast<double>(f));
  if (a >= kE4M3Max) return sign | 0x7e;  // saturate (infinity included)
  // nearbyint rounds ties to even in the default rounding mode, and its
  // argument is exact (a power-of-two multiple of a float), so each branch
  // rounds once.
  if (a < 0x1p-6) {
    // Subnormal steps of 2^-9; 8 steps is 2^-6, whose code 0x08 is the
    // smallest normal, so rounding up into the normals needs no special case.
    return sign | static_cast<uint8_t>(std::nearbyint(a * 512.0));
  }
  const int exponent = std::ilogb(a);                                              // -6 .. 8
  const int steps = static_cast<int>(std::nearbyint(std::ldexp(a, 3 - exponent)));  // 8 .. 16
  // steps = 16 carries into the next exponent through the addition. Below
  // 448 the largest result is exponent 8, steps 14: 0x7e.
  return sign | static_cast<uint8_t>(((exponent + 7) << 3) + (steps - 8));
}

namespace internal {

void dequantize_mxfp8_e4m3(const uint8_t* src, float* dst, int64_t n) {
  const std::array<float, 256>& table = e4m3_table();
  for (int64_t b = 0; b < n / kBlock; ++b, src += 1 + kBlock, dst += kBlock) {
    const float scale = e8m0_to_fp32(src[0]);
    for (int64_t j = 0; j < kBlock; ++j) dst[j] = table[src[1 + j]] * scale;
  }
}

void quantize_mxfp8_e4m3(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b, src += kBlock, dst += 1 + kBlock) {
    const int k = block_exponent(src);
    dst[0] = static_cast<uint8_t>(k + 127);
    // x * 2^-k is exact in float unless it falls below float's normals,
    // where it is far below E4M3's half step (2^-10) and becomes ±0 either
    // way. It cannot overflow: |x| / 2^k <= 448 for finite x.
    for (int64_t j = 0; j < kBlock; ++j) dst[1 + j] = fp32_to_e4m3(std::ldexp(src[j], -k));
  }
}

}  // namespace internal
}  // namespace suanli::quant
