// Internal to the CPU device's matmul: the packed layouts every ISA's kernels
// share, and the per-ISA kernel tables.
//
// Integer weight formats. Every supported block format is rewritten, one
// weight row at a time, into one common "unpacked" form:
//   x[e] = dw[e / 4] * u[e] + mo[e / 16]        u: uint8 code
// (a scale per 4-element lane, an offset per 16-element half block). Every
// ggml format fits: Q8_0 stores w + 128 with mo = -128 d; Q4_0 / Q5_0 their
// biased codes with mo = -8 d / -16 d; Q4_1 / Q5_1 / K-quants their code,
// sub-block scale and min. Activations are quantized per 32-block to int8
// (Q8_0-like, float scale) with per-16 sums, so for one token
//   Σ x·y = Σ_lanes dw·da·(Σ_4 u·a) + Σ_halves mo·(da·Σ_16 a).
// The first sum is one vpdpbusd (uint8 × int8) per 64 elements; the second is
// a short float dot product over K/16 terms. One kernel serves every format,
// a format is only an unpacker, and the arithmetic for one output is the same
// sequence of float operations whatever the batch size, tiling or thread
// count (batch invariance): the kernels are templated on their tile shape,
// never on a different accumulation order.
//
// Row layout (both unpacked weight rows and quantized activation rows):
//   uint8/int8 codes[kp] | float lane_scale[kp / 4] | float half_term[n_half_pad]
// with kp = K rounded up to 64 and n_half_pad = kp / 16 rounded up to 16;
// padding is zero. For activations lane_scale is da (repeated per lane) and
// half_term is da·Σ_16 a; for weights they are dw and mo.
//
// Float weight formats (F32 / F16 / BF16, and MXFP8_E4M3 converted to
// floats) use float rows of kf = K rounded up
// to 16 for both weights and activations, and a float FMA kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "suanli/dtype.h"

namespace suanli::cpu::mm {

constexpr int64_t kPairElems = 64;  // elements per inner step: two 32-blocks
constexpr int kMaxTileRows = 4;     // rows per kernel call
constexpr int kMaxTileTokens = 4;   // tokens per kernel call

struct Geometry {
  int64_t k = 0;           // logical row length
  int64_t kp = 0;          // codes per row, padded to 64
  int64_t n_pairs = 0;     // kp / 64
  int64_t n_half_pad = 0;  // half terms per row, padded to 16
  size_t row_bytes = 0;    // bytes of one packed row, a multiple of 64
  int64_t kf = 0;          // float rows: K padded to 16
};
Geometry make_geometry(int64_t k);

inline const float* lane_scales(const uint8_t* row, const Geometry& g) {
  return reinterpret_cast<const float*>(row + g.kp);
}
inline const float* half_terms(const uint8_t* row, const Geometry& g) {
  return reinterpret_cast<const float*>(row + g.kp + g.kp);
}

// One ISA's kernels. Null members fall back to the portable ones.
struct KernelTable {
  const char* name = nullptr;
  // Quantizes one token's activations x[K] into a packed row (64-aligned).
  void (*quantize_act)(const float* x, const Geometry& g, uint8_t* dst) = nullptr;
  // Unpacks one weight row of `type` into a packed row; false when this ISA
  // has no unpacker for the format (the portable one is used).
  bool (*unpack_row)(GgmlType type, const uint8_t* src, const Geometry& g, uint8_t* dst) = nullptr;
  // out[c * ldo + r] = dot(weight row r, activation row c) (+ bias[r]) for
  // r < n_rows, c < n_tok (both <= 4). Rows are row_bytes apart.
  void (*int_tile)(const uint8_t* w, int n_rows, const uint8_t* a, int n_tok, const Geometry& g, const float* bias,
                   float* out, int64_t ldo) = nullptr;
  // Converts one float-format weight row (F32 / F16 / BF16 / MXFP8_E4M3) to
  // kf floats (zero padded); false when this ISA has no converter for it.
  bool (*float_row)(GgmlType type, const uint8_t* src, const Geometry& g, float* dst) = nullptr;
  // As int_tile for float rows of kf floats.
  void (*float_tile)(const float* w, int n_rows, const float* a, int n_tok, const Geometry& g, const float* bias,
                     float* out, int64_t ldo) = nullptr;
  // Optional, for one token chunk (decode): as unpack_row + int_tile for
  // n_rows raw weight rows `stride` bytes apart, bit-identical to them;
  // false when this ISA has no fused kernel for the format / size.
  bool (*fused_tile)(GgmlType type, const uint8_t* w, size_t stride, int n_rows, const uint8_t* a, int n_tok,
                     const Geometry& g, const float* bias, float* out, int64_t ldo) = nullptr;
  // Optional, for one token chunk (decode) of a float format (F32 / F16 /
  // BF16 / MXFP8_E4M3): as float_row + float_tile for n_rows raw weight rows `stride`
  // bytes apart, converted in registers instead of through a tile,
  // bit-identical to them; false when this ISA has none for the format / K.
  bool (*fused_float_tile)(GgmlType type, const uint8_t* w, size_t stride, int n_rows, const float* a, int n_tok,
                           const Geometry& g, const float* bias, float* out, int64_t ldo) = nullptr;
  // Optional, the packed rows16 layout (matmul_packed.h); both or neither.
  // Quantizes one token's x[k] (k % 32 == 0) into pk_act_stride(k) bytes.
  void (*pk_quantize_act)(const float* x, int64_t k, uint8_t* dst) = nullptr;
  // One group of 16 packed rows (nb records) x n_tok <= kPkTokens tokens
  // (activation rows `act_stride` bytes apart): out[t * ldo + r] (+ bias[r]).
  // `next`, when not null, is the group the caller passes next and that is
  // not yet in cache (decode's next rows): a kernel may ask for its bytes
  // while it computes. A hint only: the results do not depend on it.
  void (*pk_tile)(GgmlType type, const uint8_t* group, int64_t nb, const uint8_t* act, size_t act_stride, int n_tok,
                  const float* bias, float* out, int64_t ldo, const uint8_t* next) = nullptr;
};

// Per-ISA tables; each returns null when the ISA was not compiled in.
const KernelTable* portable_kernels();
const KernelTable* avx2_kernels();
const KernelTable* avx512_kernels();
// Highway (matmul_hwy.cc): packed rows16 kernels only, dispatched at run time
// to the best target Highway compiled for this CPU; its other members are
// null (the portable ones serve).
const KernelTable* hwy_kernels();

// For tests of the hwy set on every target: the Highway targets compiled in
// that this CPU runs, best first ("AVX3", "AVX2", "SSE4", "NEON", "SVE2",
// ...); making the hwy kernels run on one of them ("" = the best again;
// false if not in the list; process wide, not thread safe with running
// matmuls); and the target they run on now.
std::vector<std::string> hwy_target_names();
bool hwy_force_target(std::string_view name);
const char* hwy_running_target();

// The portable unpacker (any integer format in supported_weight_formats()).
void unpack_row_portable(GgmlType type, const uint8_t* src, const Geometry& g, uint8_t* dst);
bool float_row_portable(GgmlType type, const uint8_t* src, const Geometry& g, float* dst);

// Names of the kernel sets this machine can run, best first ("avx512vnni",
// "avx2", "hwy", "portable"). select_isa picks one for all later matmuls (tests and
// benchmarks compare them); false if it is not available here. Not thread
// safe with concurrent matmuls.
std::vector<std::string_view> available_isas();
bool select_isa(std::string_view name);
std::string_view selected_isa();

}  // namespace suanli::cpu::mm
