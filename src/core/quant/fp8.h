// FP8 E4M3 ("E4M3FN" in the OCP 8-bit floating point spec) and the UE8M0
// power-of-two scale of the OCP microscaling (MX) formats: the element and
// scale codes of MXFP8_E4M3 (docs/fp8.md). Exposed so that fast kernels and
// tests share the one definition. Thread safety: pure functions.
//
// E4M3: sign | 4 exponent bits (bias 7) | 3 mantissa bits. No infinities;
// S.1111.111 is NaN, so the largest finite value is 1.75 * 2^8 = 448.
// Exponent 0 holds subnormals m * 2^-9 (smallest 2^-9).
// UE8M0: 8 exponent bits, no sign or mantissa: 2^(e - 127); e = 255 is NaN.
#pragma once

#include <bit>
#include <cstdint>
#include <limits>

namespace suanli::quant {

inline constexpr float kE4M3Max = 448.0f;
inline constexpr uint8_t kE4M3NaN = 0x7f;     // the positive NaN code (0xff is the negative one)
inline constexpr uint8_t kE8M0NaN = 0xff;

// Exact value of an E4M3 code (NaN for 0x7f / 0xff).
float e4m3_to_fp32(uint8_t code);
// Rounds to the nearest E4M3 value, ties to even mantissa. Saturating: every
// |f| > 448 (including infinity) becomes ±448. NaN becomes a NaN code with
// f's sign. The sign of zero is kept.
uint8_t fp32_to_e4m3(float f);
// 2^(e - 127) (e = 0 gives the float subnormal 2^-127); NaN for e = 255.
// Inline: the CPU kernels call it once per 32-block inside vector loops,
// where an out-of-line call spills every vector register.
inline float e8m0_to_fp32(uint8_t e) {
  if (e == kE8M0NaN) return std::numeric_limits<float>::quiet_NaN();
  // e = 0 is 2^-127, a float subnormal: mantissa bit 22.
  return std::bit_cast<float>(e == 0 ? 0x00400000u : static_cast<uint32_t>(e) << 23);
}

}  // namespace suanli::quant
