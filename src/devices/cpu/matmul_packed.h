// The CPU device's packed weight layout ("rows16") for the integer formats
// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K, made once at
// load by CpuDevice::prepare_weights.
//
// Why: in GGUF's layout a SIMD lane walks along one row, so every 32 weights
// need their own scale conversion and multiply per token (the generic
// kernel in matmul_kernels.h spends ~4 vector instructions per 64 weights per
// token on scales alone). Here the 16 lanes of a vector hold 16 different
// rows: one vpdpbusd multiplies 4 consecutive weights of 16 rows by the same
// 4 activation bytes (broadcast from memory), and one convert + one FMA per
// 32-block scale 16 rows at once. About 30 instructions per 512 weights at
// one token, against about 70 in the generic kernel.
//
// Layout: groups of 16 rows one after another; within a group, one record
// per 32-element block, in block order:
//   Q4_0 / Q4_1: 4 x 64 bytes of codes: vector j, lane r, byte i holds the
//                codes of elements 4j+i (low nibble) and 16+4j+i (high
//                nibble) of row r; then fp16 d[16] (and fp16 m[16] for
//                Q4_1, the block minimum). 288 / 320 bytes.
//   Q5_0 / Q5_1: the Q4_0 / Q4_1 codes (low 4 bits), then a 64-byte plane of
//                their 5th bits (lane r, byte i, bit jj: element 4jj+i; bit
//                4+jj: element 16+4jj+i), then fp16 d[16] (and m[16]). 352 /
//                384 bytes, as GGUF. Q5_0's codes are q + 16: the kernel
//                subtracts 16 * sum(activation codes) = 2 * c8 exactly.
//   Q8_0:        8 x 64 bytes: vector s, lane r, byte i = code of element
//                4s+i of row r, plus 128 (unsigned); then fp16 d[16]. 544
//                bytes.
//   Q4_K:        per 256-element super-block, a 64-byte header (fp16 d[16],
//                fp16 dmin[16]), then per 32-element sub-block j the Q4
//                codes as above (256 bytes), uint8 sc[16] and uint8 m[16]:
//                2,368 bytes per 16 rows x 256 (GGUF: 2,304). The kernel
//                forms d * sc and dmin * m in float, exactly (11 x 6 bits),
//                as the reference dequantizer does.
//   Q5_K:        as Q4_K plus the codes' 5th bits: per sub-block a 64-byte
//                plane after the codes (lane r, byte i, bit jj: element
//                4jj+i; bit 4+jj: element 16+4jj+i); 2,880 bytes per 16
//                rows x 256 (GGUF: 2,816).
//   Q6_K:        per super-block a 32-byte header (fp16 d[16]), then per
//                32-element sub-block: the low 4 bits of the 6-bit codes as
//                the Q4 codes above (256 bytes), their high 2 bits (2 x 64
//                bytes: vector h, lane r, byte i, bits 2jj..2jj+1 hold
//                element 16h + 4jj + i), int8 sc0[16] and sc1[16] (the
//                scales of elements 0-15 and 16-31). 3,360 bytes per 16 rows
//                x 256, as GGUF. d * sc is exact in float (11 x 8 bits).
//   Q3_K:        per super-block a 32-byte header (fp16 d[16]), then per
//                32-element sub-block: the codes u = q + 4 (0..7), their low
//                2 bits as Q6_K's high-bit planes (2 x 64 bytes: vector h,
//                lane r, byte i, bits 2jj..2jj+1 hold element 16h + 4jj + i),
//                their 3rd bit as a plane like Q5_K's 5th bits (64 bytes),
//                then int8 sc0[16] and sc1[16] (the 6-bit scales minus 32 of
//                elements 0-15 and 16-31). 1,824 bytes per 16 rows x 256
//                (GGUF: 1,760, +3.6%: the scales take a byte each). The
//                kernel subtracts 4 * sum(half's activation codes) = c32h >> 3
//                from each half's integer sum, then scales it as Q6_K does.
//   Q2_K:        per super-block a 64-byte header (fp16 d[16], fp16
//                dmin[16]), then per 32-element sub-block the 2-bit codes as
//                Q3_K's two low-bit planes (128 bytes) and GGUF's scale bytes
//                of the two 16-element halves, uint8 s0[16] and s1[16] (scale
//                in the low nibble, min in the high one). 1,344 bytes per 16
//                rows x 256, as GGUF. Per sub-block and token:
//                  acc = fma(float(i0), (d * sc0) * da, acc)
//                  acc = fma(float(i1), (d * sc1) * da, acc)
//                  acc = fma(-((dmin * m0) * (1/32)), float(c32h0) * da, acc)
//                  acc = fma(-((dmin * m1) * (1/32)), float(c32h1) * da, acc)
//                where d * sc and dmin * m are exact (11 x 4 bits), the
//                multiply by 1/32 is exact, and float(c32h) * da is 32 times
//                the rounded da * sum(half's codes).
// Record sizes equal the formats' own bytes per 512 weights (Q4_K: +2.8%,
// Q5_K +2.3%, Q3_K +3.6%): memory traffic does not grow. The bytes are
// GGUF's, moved: d and m are copied, not converted, so the packed matrix
// holds exactly the same weights.
//
// Activations for it, per token: int8 codes[k] | float da[nb] | float
// sa[nb] | int32 c8[nb] | int32 c128[nb] | int32 c32h[2 nb] (nb = k / 32)
// with codes and da as in the generic kernel (per-32 amax / 127), sa = da *
// sum(codes), c8 / c128 = 8 / 128 * sum(codes) and c32h = 32 * the sums of
// each 16-element half: the integer corrections for the code offsets of
// Q4_0 and Q5_0 (c8, 2 c8), Q8_0 (c128), Q6_K (c32h) and Q3_K (c32h >> 3),
// subtracted exactly before converting to float, and Q2_K's half sums.
//
// Per (row, token) the result is, in this order for b = 0 .. nb-1,
//   acc = fma(float(isum_b), d_b * da_b, acc)   [then + m_b * sa_b for Q4_1 /
//                                               Q5_1; per half and the min
//                                               terms for the K-quants, above]
// with isum_b an exact int32 dot product, then + bias: the same operations
// whatever the batch size, tile or thread split (batch invariance).
#pragma once

#include <cstddef>
#include <cstdint>

#include "suanli/dtype.h"

namespace suanli::cpu::mm {

constexpr int kPkRows = 16;     // rows per group (SIMD lanes)
constexpr int kPkTokens = 8;    // tokens per kernel call
constexpr int32_t kLayoutRows16 = 0x1610;

// Bytes of one group's record for one 32-block (Q4_K: per sub-block,
// without the super-block header); 0 when `type` has no packed layout.
size_t pk_record_bytes(GgmlType type);
// Bytes of one group (16 rows of k elements); 0 when `type` has no packed
// layout or k is not a whole number of its blocks.
size_t pk_group_bytes(GgmlType type, int64_t k);
constexpr size_t kPkQ4KHeader = 64;
constexpr size_t kPkQ4KSuper = kPkQ4KHeader + 8 * (256 + 32);
constexpr size_t kPkQ5KRec = 256 + 64 + 32;
constexpr size_t kPkQ5KSuper = kPkQ4KHeader + 8 * kPkQ5KRec;
constexpr size_t kPkQ6KHeader = 32;
constexpr size_t kPkQ6KRec = 256 + 128 + 32;
constexpr size_t kPkQ6KSuper = kPkQ6KHeader + 8 * kPkQ6KRec;
constexpr size_t kPkQ5_0Rec = 256 + 64 + 32;
constexpr size_t kPkQ5_1Rec = 256 + 64 + 64;
constexpr size_t kPkQ3KHeader = 32;
constexpr size_t kPkQ3KRec = 128 + 64 + 32;
constexpr size_t kPkQ3KSuper = kPkQ3KHeader + 8 * kPkQ3KRec;
constexpr size_t kPkQ2KHeader = 64;
constexpr size_t kPkQ2KRec = 128 + 32;
constexpr size_t kPkQ2KSuper = kPkQ2KHeader + 8 * kPkQ2KRec;
// Where format F's fields sit in its records (above): kCodes
// bytes of codes, then its scales; kRec bytes per 32-element (sub-)block;
// the super-block formats (kHeader > 0) put 8 records after a header of
// fp16 super-scales.
template <GgmlType F>
struct PkFmt {
  static constexpr bool kQ8 = F == GgmlType::kQ8_0;
  static constexpr bool kMin = F == GgmlType::kQ4_1 || F == GgmlType::kQ5_1;  // + m * sa
  static constexpr bool kFifth = F == GgmlType::kQ5_0 || F == GgmlType::kQ5_1 || F == GgmlType::kQ5_K;
  static constexpr bool kScaleMin = F == GgmlType::kQ4_K || F == GgmlType::kQ5_K;  // d * sc, dmin * m
  static constexpr bool kQ6 = F == GgmlType::kQ6_K, kQ3 = F == GgmlType::kQ3_K, kQ2 = F == GgmlType::kQ2_K;
  static constexpr bool kPlanes = kQ2 || kQ3;         // 2-bit code planes instead of nibbles
  static constexpr bool kHalves = kQ6 || kQ3 || kQ2;  // a scale per 16-element half
  static constexpr size_t kHeader = kScaleMin ? kPkQ4KHeader
                                    : kQ6     ? kPkQ6KHeader
                                    : kQ3     ? kPkQ3KHeader
                                    : kQ2     ? kPkQ2KHeader
                                              : 0;
  static constexpr size_t kCodes = kQ8 ? 512 : kQ3 ? 192 : kQ2 ? 128 : 256 + (kFifth ? 64 : 0) + (kQ6 ? 128 : 0);
  static constexpr size_t kRec = kCodes + (kMin ? 64 : 32);
  static constexpr size_t kSuper = kHeader + 8 * kRec;
};
// (Constants only: the per-ISA kernel files, built with different -m
// flags, share no code through this.)
static_assert(PkFmt<GgmlType::kQ5_K>::kRec == kPkQ5KRec && PkFmt<GgmlType::kQ6_K>::kRec == kPkQ6KRec &&
              PkFmt<GgmlType::kQ3_K>::kSuper == kPkQ3KSuper && PkFmt<GgmlType::kQ2_K>::kSuper == kPkQ2KSuper &&
              PkFmt<GgmlType::kQ5_0>::kRec == kPkQ5_0Rec && PkFmt<GgmlType::kQ5_1>::kRec == kPkQ5_1Rec);
// Bytes of one token's quantized activations for row length k (k % 32 == 0),
// rounded up to 64.
size_t pk_act_stride(int64_t k);
// The parts of one token's activation row (layout above), and the per-block
// fields every kernel set's quantizer writes the same way: scale d and the
// code sums of the two 16-element halves.
//
// Non-finite activations, the same in every set: amax skips NaN; a NaN's
// code is -127 (the clamp takes it to its lower bound), as is an infinity's
// once amax is infinite (x * 0); and a block holding a NaN gets d = NaN, so
// the outputs it reaches are NaN, as a float matmul's would be, instead of
// finite garbage (an infinity gives d = infinity, with the same effect).
// The codes stay within [-127, 127], so the integer sums never overflow.
struct PkActRow {
  int8_t* q;
  float* da;
  float* sa;
  int32_t* c8;
  int32_t* c128;
  int32_t* c32h;
};
PkActRow pk_act_row(uint8_t* row, int64_t k);
// `static inline`: every per-ISA file (built with its own -m flags) gets its
// own copy, inlined in its quantizer. A plain inline function would be merged
// by the linker into one copy built with one file's flags (AVX-512 code in
// the AVX2 path); an out-of-line call from AVX-512 code into this baseline
// SSE code stalled on the mixed encodings (6.6% of a 16-stream serve run).
static inline void pk_set_block(const PkActRow& a, int64_t b, float d, int32_t s0, int32_t s1) {
  const int32_t sum = s0 + s1;
  a.da[b] = d;
  a.sa[b] = d * static_cast<float>(sum);
  a.c8[b] = 8 * sum;
  a.c128[b] = 128 * sum;
  a.c32h[2 * b] = 32 * s0;
  a.c32h[2 * b + 1] = 32 * s1;
}
// Packs 16 GGUF rows (row_stride bytes apart, k elements each) into one
// group of nb = k / 32 records at dst.
void pk_pack_group(GgmlType type, const uint8_t* src, size_t row_stride, int64_t k, uint8_t* dst);

}  // namespace suanli::cpu::mm
