// Bit-exact float conversions on the GPU: the same functions as
// src/core/quant/fp.cc and fp8.cc (fp16 and bf16 round to nearest even with
// the reference's NaN payloads; E4M3 and UE8M0 decode exactly), so that
// embed, convert and kv_write give the reference's bits. Written with
// integer operations rather than the toolkit's __half / __nv_bfloat16
// intrinsics, whose NaN handling differs and which HIP spells differently.
#pragma once

#include <cstdint>

#include "devices/cuda/gpu_compat.h"

// Host and device: the host side lets tests check the dequantizers
// (dequant.cuh) against src/core/quant bit for bit without a GPU.
#define SUANLI_HD __host__ __device__ __forceinline__

namespace suanli::gpu {

SUANLI_HD float bits_to_float(uint32_t u) {
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
  return __uint_as_float(u);
#else
  float f;
  __builtin_memcpy(&f, &u, sizeof f);
  return f;
#endif
}
SUANLI_HD uint32_t float_to_bits(float f) {
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
  return __float_as_uint(f);
#else
  uint32_t u;
  __builtin_memcpy(&u, &f, sizeof u);
  return u;
#endif
}

SUANLI_HD float fp16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exponent = (h >> 10) & 0x1f;
  const uint32_t mantissa = h & 0x3ff;
  if (exponent == 0x1f) return bits_to_float(sign | 0x7f800000u | (mantissa << 13));
  if (exponent == 0) {
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;  // exact
    return bits_to_float(sign | float_to_bits(magnitude));
  }
  return bits_to_float(sign | ((exponent + 127 - 15) << 23) | (mantissa << 13));
}

SUANLI_HD uint16_t f32_to_fp16(float f) {
  uint32_t x = float_to_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) {
    if (x == 0x7f800000u) return sign | 0x7c00;
    return static_cast<uint16_t>(sign | 0x7e00 | ((x >> 13) & 0x3ff));
  }
  if (x >= 0x477ff000u) return sign | 0x7c00;
  if (x < 0x38800000u) {
    // Subnormal (or zero) half: the float adder rounds to nearest even.
    const float shifted = bits_to_float(x) + 0.5f;
    return static_cast<uint16_t>(sign | (float_to_bits(shifted) - 0x3f000000u));
  }
  const uint32_t odd = (x >> 13) & 1;
  x += (static_cast<uint32_t>(15 - 127) << 23) + 0xfff + odd;
  return static_cast<uint16_t>(sign | (x >> 13));
}

SUANLI_HD float bf16_to_f32(uint16_t h) { return bits_to_float(static_cast<uint32_t>(h) << 16); }

SUANLI_HD uint16_t f32_to_bf16(float f) {
  const uint32_t x = float_to_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40);
  return static_cast<uint16_t>((static_cast<uint64_t>(x) + 0x7fff + ((x >> 16) & 1)) >> 16);
}

// E4M3 (OCP E4M3FN): no infinities, S.1111.111 is NaN.
SUANLI_HD float e4m3_to_f32(uint8_t code) {
  const uint32_t exponent = (code >> 3) & 0xf;
  const uint32_t mantissa = code & 0x7;
  const uint32_t sign = static_cast<uint32_t>(code & 0x80) << 24;
  if (exponent == 0xf && mantissa == 0x7) return bits_to_float(sign | 0x7fc00000u);
  if (exponent == 0) {
    const float magnitude = static_cast<float>(mantissa) * 0x1p-9f;  // exact
    return bits_to_float(sign | float_to_bits(magnitude));
  }
  return bits_to_float(sign | ((exponent + 127 - 7) << 23) | (mantissa << 20));
}

// UE8M0: 2^(e - 127); e = 0 is the float subnormal 2^-127, e = 255 NaN.
SUANLI_HD float e8m0_to_f32(uint8_t e) {
  if (e == 0xff) return bits_to_float(0x7fc00000u);
  return bits_to_float(e == 0 ? 0x00400000u : static_cast<uint32_t>(e) << 23);
}

// For the matmul's hot loops (dequant.cuh's unit_load), exact but cheaper
// than the integer code above on the device:
// fp16 → fp32 by the hardware conversion (exact; a NaN may keep another
// payload, which matmul results cannot tell apart).
SUANLI_HD float fp16_to_f32_fast(uint16_t h) {
#if defined(__CUDA_ARCH__)
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
#elif defined(__HIP_DEVICE_COMPILE__)
  return static_cast<float>(__builtin_bit_cast(_Float16, h));
#else
  return fp16_to_f32(h);
#endif
}
// A small integer 0 <= q < 2^23 as a float, minus `offset` (an integer):
// the float whose bits are 2^23's exponent with q in the mantissa is
// 2^23 + q exactly, so one subtraction gives q - offset exactly. Replaces an
// int → float conversion, which runs at a quarter of the FMA rate or less.
SUANLI_HD float small_int_to_f32(uint32_t q, float offset) {
  return bits_to_float(0x4b000000u | q) - (8388608.0f + offset);
}

SUANLI_HD uint16_t load_u16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (static_cast<uint16_t>(p[1]) << 8));
}
SUANLI_HD float load_fp16(const uint8_t* p) { return fp16_to_f32(load_u16(p)); }

}  // namespace suanli::gpu
