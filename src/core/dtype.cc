#include "suanli/dtype.h"

#include <array>
#include <cctype>

#include "suanli/status.h"

namespace suanli {
namespace {

constexpr int64_t kQK_K = 256;

struct Entry {
  GgmlType type;
  GgmlTypeTraits traits;
};

// Block layouts from the GGUF specification (ggml's type table).
constexpr std::array kTypes = {
    Entry{GgmlType::kF32, {"F32", 1, 4}},
    Entry{GgmlType::kF16, {"F16", 1, 2}},
    Entry{GgmlType::kQ4_0, {"Q4_0", 32, 2 + 16}},
    Entry{GgmlType::kQ4_1, {"Q4_1", 32, 2 + 2 + 16}},
    Entry{GgmlType::kQ5_0, {"Q5_0", 32, 2 + 4 + 16}},
    Entry{GgmlType::kQ5_1, {"Q5_1", 32, 2 + 2 + 4 + 16}},
    Entry{GgmlType::kQ8_0, {"Q8_0", 32, 2 + 32}},
    Entry{GgmlType::kQ8_1, {"Q8_1", 32, 4 + 4 + 32}},
    Entry{GgmlType::kQ2_K, {"Q2_K", kQK_K, 2 + 2 + kQK_K / 16 + kQK_K / 4}},
    Entry{GgmlType::kQ3_K, {"Q3_K", kQK_K, 2 + kQK_K / 4 + kQK_K / 8 + 12}},
    Entry{GgmlType::kQ4_K, {"Q4_K", kQK_K, 2 + 2 + kQK_K / 2 + 12}},
    Entry{GgmlType::kQ5_K, {"Q5_K", kQK_K, 2 + 2 + kQK_K / 2 + kQK_K / 8 + 12}},
    Entry{GgmlType::kQ6_K, {"Q6_K", kQK_K, 2 + kQK_K / 2 + kQK_K / 4 + kQK_K / 16}},
    Entry{GgmlType::kQ8_K, {"Q8_K", kQK_K, 4 + kQK_K + kQK_K / 8}},
    Entry{GgmlType::kIQ2_XXS, {"IQ2_XXS", kQK_K, 2 + kQK_K / 4}},
    Entry{GgmlType::kIQ2_XS, {"IQ2_XS", kQK_K, 2 + kQK_K / 4 + kQK_K / 32}},
    Entry{GgmlType::kIQ3_XXS, {"IQ3_XXS", kQK_K, 2 + kQK_K / 4 + kQK_K / 8}},
    Entry{GgmlType::kIQ1_S, {"IQ1_S", kQK_K, 2 + kQK_K / 8 + kQK_K / 16}},
    Entry{GgmlType::kIQ4_NL, {"IQ4_NL", 32, 2 + 16}},
    Entry{GgmlType::kIQ3_S, {"IQ3_S", kQK_K, 2 + kQK_K / 4 + kQK_K / 8 + kQK_K / 32 + 4}},
    Entry{GgmlType::kIQ2_S, {"IQ2_S", kQK_K, 2 + kQK_K / 4 + kQK_K / 16}},
    Entry{GgmlType::kIQ4_XS, {"IQ4_XS", kQK_K, 2 + 2 + kQK_K / 2 + kQK_K / 64}},
    Entry{GgmlType::kI8, {"I8", 1, 1}},
    Entry{GgmlType::kI16, {"I16", 1, 2}},
    Entry{GgmlType::kI32, {"I32", 1, 4}},
    Entry{GgmlType::kI64, {"I64", 1, 8}},
    Entry{GgmlType::kF64, {"F64", 1, 8}},
    Entry{GgmlType::kIQ1_M, {"IQ1_M", kQK_K, kQK_K / 8 + kQK_K / 16 + kQK_K / 32}},
    Entry{GgmlType::kBF16, {"BF16", 1, 2}},
    Entry{GgmlType::kTQ1_0, {"TQ1_0", kQK_K, 2 + 4 * 13}},
    Entry{GgmlType::kTQ2_0, {"TQ2_0", kQK_K, 2 + 64}},
    Entry{GgmlType::kMXFP4, {"MXFP4", 32, 1 + 16}},
    // suanli's extension (docs/fp8.md): UE8M0 scale byte + 32 E4M3 bytes.
    Entry{GgmlType::kMXFP8_E4M3, {"MXFP8_E4M3", 32, 1 + 32}},
};

}  // namespace

std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type_id) {
  for (const Entry& e : kTypes) {
    if (static_cast<uint32_t>(e.type) == type_id) return e.traits;
  }
  return std::nullopt;
}

const GgmlTypeTraits& traits(GgmlType type) {
  for (const Entry& e : kTypes) {
    if (e.type == type) return e.traits;
  }
  SUANLI_CHECK(false && "unknown GgmlType");
  __builtin_unreachable();
}

std::string_view ggml_type_name(GgmlType type) { return traits(type).name; }

std::optional<GgmlType> parse_ggml_type(std::string_view name) {
  if (name == "fp8" || name == "FP8") return GgmlType::kMXFP8_E4M3;
  for (const Entry& e : kTypes) {
    if (e.traits.name.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i) {
      same = std::toupper(static_cast<unsigned char>(name[i])) == e.traits.name[i];
    }
    if (same) return e.type;
  }
  return std::nullopt;
}

std::optional<uint32_t> gguf_file_type(GgmlType type) {
  switch (type) {
    case GgmlType::kF32: return 0;
    case GgmlType::kF16: return 1;
    case GgmlType::kQ4_0: return 2;
    case GgmlType::kQ4_1: return 3;
    case GgmlType::kQ8_0: return 7;
    case GgmlType::kQ5_0: return 8;
    case GgmlType::kQ5_1: return 9;
    case GgmlType::kQ2_K: return 10;
    case GgmlType::kQ3_K: return 11;
    case GgmlType::kQ4_K: return 14;
    case GgmlType::kQ5_K: return 16;
    case GgmlType::kQ6_K: return 18;
    case GgmlType::kBF16: return 32;
    default: return std::nullopt;
  }
}

}  // namespace suanli
