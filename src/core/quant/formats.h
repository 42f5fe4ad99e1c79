// Internal to src/core/quant: one dequantizer / quantizer per block format.
// Each takes n elements, already checked by quant.cc to be a whole number of
// blocks, so these functions never fail.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/quant/quant.h"

namespace suanli::quant::internal {

// Block formats are byte-packed, so fp16 fields may sit at any address.
inline float load_fp16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof h);
  return fp16_to_fp32(h);
}
inline void store_fp16(uint8_t* p, float f) {
  const uint16_t h = fp32_to_fp16(f);
  std::memcpy(p, &h, sizeof h);
}
// The float an fp16 field will hold once written.
inline float round_to_fp16(float f) { return fp16_to_fp32(fp32_to_fp16(f)); }

// Q4_K / Q5_K: sub-block j's 6-bit scale and min from the 12 packed bytes.
void get_scale_min_k4(const uint8_t* scales, int j, int* sc, int* m);

using DequantizeFn = void (*)(const uint8_t* src, float* dst, int64_t n);
using QuantizeFn = void (*)(const float* src, uint8_t* dst, int64_t n);

// fp.cc
void dequantize_f32(const uint8_t* src, float* dst, int64_t n);
void dequantize_f16(const uint8_t* src, float* dst, int64_t n);
void dequantize_bf16(const uint8_t* src, float* dst, int64_t n);
void dequantize_f64(const uint8_t* src, float* dst, int64_t n);
void quantize_f32(const float* src, uint8_t* dst, int64_t n);
void quantize_f16(const float* src, uint8_t* dst, int64_t n);
void quantize_bf16(const float* src, uint8_t* dst, int64_t n);
void quantize_f64(const float* src, uint8_t* dst, int64_t n);

// legacy.cc
void dequantize_q4_0(const uint8_t* src, float* dst, int64_t n);
void dequantize_q4_1(const uint8_t* src, float* dst, int64_t n);
void dequantize_q5_0(const uint8_t* src, float* dst, int64_t n);
void dequantize_q5_1(const uint8_t* src, float* dst, int64_t n);
void dequantize_q8_0(const uint8_t* src, float* dst, int64_t n);
void quantize_q4_0(const float* src, uint8_t* dst, int64_t n);
void quantize_q4_1(const float* src, uint8_t* dst, int64_t n);
void quantize_q5_0(const float* src, uint8_t* dst, int64_t n);
void quantize_q5_1(const float* src, uint8_t* dst, int64_t n);
void quantize_q8_0(const float* src, uint8_t* dst, int64_t n);

// kquants.cc
void dequantize_q2_k(const uint8_t* src, float* dst, int64_t n);
void dequantize_q3_k(const uint8_t* src, float* dst, int64_t n);
void dequantize_q4_k(const uint8_t* src, float* dst, int64_t n);
void dequantize_q5_k(const uint8_t* src, float* dst, int64_t n);
void dequantize_q6_k(const uint8_t* src, float* dst, int64_t n);
void quantize_q2_k(const float* src, uint8_t* dst, int64_t n);
void quantize_q3_k(const float* src, uint8_t* dst, int64_t n);
void quantize_q4_k(const float* src, uint8_t* dst, int64_t n);
void quantize_q5_k(const float* src, uint8_t* dst, int64_t n);
void quantize_q6_k(const float* src, uint8_t* dst, int64_t n);

// fp8.cc
void dequantize_mxfp8_e4m3(const uint8_t* src, float* dst, int64_t n);
void quantize_mxfp8_e4m3(const float* src, uint8_t* dst, int64_t n);

}  // namespace suanli::quant::internal
