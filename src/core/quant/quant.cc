// Dispatch from a GgmlType to its block format code, with the argument checks
// every format shares.
#include "core/quant/quant.h"

#include <string>

#include "core/quant/formats.h"

namespace suanli::quant {
namespace {

using internal::DequantizeFn;
using internal::QuantizeFn;

struct Format {
  GgmlType type;
  DequantizeFn dequantize;
  QuantizeFn quantize;  // null: no quantizer
};

constexpr Format kFormats[] = {
    {GgmlType::kF32, internal::dequantize_f32, internal::quantize_f32},
    {GgmlType::kF16, internal::dequantize_f16, internal::quantize_f16},
    {GgmlType::kBF16, internal::dequantize_bf16, internal::quantize_bf16},
    {GgmlType::kF64, internal::dequantize_f64, internal::quantize_f64},
    {GgmlType::kQ4_0, internal::dequantize_q4_0, internal::quantize_q4_0},
    {GgmlType::kQ4_1, internal::dequantize_q4_1, internal::quantize_q4_1},
    {GgmlType::kQ5_0, internal::dequantize_q5_0, internal::quantize_q5_0},
    {GgmlType::kQ5_1, internal::dequantize_q5_1, internal::quantize_q5_1},
    {GgmlType::kQ8_0, internal::dequantize_q8_0, internal::quantize_q8_0},
    {GgmlType::kQ2_K, internal::dequantize_q2_k, internal::quantize_q2_k},
    {GgmlType::kQ3_K, internal::dequantize_q3_k, internal::quantize_q3_k},
    {GgmlType::kQ4_K, internal::dequantize_q4_k, internal::quantize_q4_k},
    {GgmlType::kQ5_K, internal::dequantize_q5_k, internal::quantize_q5_k},
    {GgmlType::kQ6_K, internal::dequantize_q6_k, internal::quantize_q6_k},
    {GgmlType::kMXFP8_E4M3, internal::dequantize_mxfp8_e4m3, internal::quantize_mxfp8_e4m3},
};

const Format* find_format(GgmlType type) {
  for (const Format& f : kFormats) {
    if (f.type == type) return &f;
  }
  return nullptr;
}

// The name of a type id that may not be a valid enumerator (it can come from
// a file); traits() would SUANLI_CHECK on an unknown one.
std::string type_name(GgmlType type) {
  if (ggml_type_traits(static_cast<uint32_t>(type))) return std::string(ggml_type_name(type));
  return "type id " + std::to_string(static_cast<uint32_t>(type));
}

Status check_count(GgmlType type, int64_t n) {
  const int64_t block = traits(type).block_size;
  if (n < 0) return InvalidArgument("element count must be >= 0, got " + std::to_string(n));
  if (n % block != 0) {
    return InvalidArgument(type_name(type) + " needs a multiple of " + std::to_string(block) +
                           " elements (its block size), got " + std::to_string(n));
  }
  return Status::Ok();
}

}  // namespace

bool can_dequantize(GgmlType type) { return find_format(type) != nullptr; }

bool can_quantize(GgmlType type) {
  const Format* f = find_format(type);
  return f != nullptr && f->quantize != nullptr;
}

Status dequantize(GgmlType type, const void* src, float* dst, int64_t n) {
  const Format* f = find_format(type);
  if (f == nullptr) return Unsupported("no dequantizer for " + type_name(type));
  SUANLI_RETURN_IF_ERROR(check_count(type, n));
  f->dequantize(static_cast<const uint8_t*>(src), dst, n);
  return Status::Ok();
}

Status quantize(GgmlType type, const float* src, void* dst, int64_t n) {
  const Format* f = find_format(type);
  if (f == nullptr || f->quantize == nullptr) return Unsupported("no quantizer for " + type_name(type));
  SUANLI_RETURN_IF_ERROR(check_count(type, n));
  f->quantize(src, static_cast<uint8_t*>(dst), n);
  return Status::Ok();
}

}  // namespace suanli::quant
