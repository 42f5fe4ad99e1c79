// Tensor element types as numbered in the GGUF format (ggml's type ids), and
// their block layout. Every type the GGUF reader accepts is listed here, even
// those suanli cannot compute with: a file holding them is well-formed, and
// `suanli inspect` must still describe it. can_dequantize / can_quantize say
// which ones the scalar reference code implements (src/core/quant/).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace suanli {

enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
  // suanli's own, not a ggml type: OCP MX FP8 (E4M3FN elements, UE8M0
  // power-of-two scale per 32). Far above ggml's ids so that a type ggml adds
  // later cannot collide with it; see docs/fp8.md.
  kMXFP8_E4M3 = 1024,
};

struct GgmlTypeTraits {
  std::string_view name;  // "Q4_K", as gguf-py and llama.cpp spell it
  int64_t block_size;     // elements per block
  int64_t type_size;      // bytes per block
};

// Layout of a known type; nullopt for an id no GGUF writer defines.
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type_id);
// Traits of a valid enum value (SUANLI_CHECKs it is known).
const GgmlTypeTraits& traits(GgmlType type);
std::string_view ggml_type_name(GgmlType type);
// Parses "q4_k" / "Q4_K" / "f16" (case-insensitive; "fp8" is short for
// MXFP8_E4M3); nullopt if unknown.
std::optional<GgmlType> parse_ggml_type(std::string_view name);

// The `general.file_type` value (llama.cpp's llama_ftype, "mostly T") of a
// model whose matrices are all in `type`; nullopt where llama.cpp defines
// none (MXFP8). Q3_K, Q4_K and Q5_K map to their "_S" variants (one type
// throughout), Q2_K and Q6_K to their only ones, as llama-quantize writes them.
std::optional<uint32_t> gguf_file_type(GgmlType type);

// Bytes occupied by n elements (n a multiple of the block size).
inline int64_t row_bytes(GgmlType type, int64_t n) {
  const GgmlTypeTraits& t = traits(type);
  return n / t.block_size * t.type_size;
}

}  // namespace suanli
