// Scalar reference code for the block formats: the definition of what each
// weight format means. Fast kernels (SIMD, GPU) are checked against these.
//
// Layouts follow the GGUF/ggml block definitions bit for bit, so a tensor
// written by any GGUF tool dequantizes to the same floats here.
// Thread safety: pure functions.
#pragma once

#include <cstdint>

#include "suanli/dtype.h"
#include "suanli/status.h"

namespace suanli::quant {

bool can_dequantize(GgmlType type);
bool can_quantize(GgmlType type);

// Dequantizes n elements of `type` (n a multiple of the block size) from
// `src` into `dst`. InvalidArgument when n is not a whole number of blocks,
// Unsupported for a type without a dequantizer.
Status dequantize(GgmlType type, const void* src, float* dst, int64_t n);

// Quantizes n floats into blocks of `type` (row_bytes(type, n) bytes at dst).
// Round-to-nearest reference quantizers, matching ggml's reference output
// where one exists.
Status quantize(GgmlType type, const float* src, void* dst, int64_t n);

// IEEE half and bfloat16 conversions (round to nearest even).
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

}  // namespace suanli::quant
