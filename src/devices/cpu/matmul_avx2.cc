// matmul kernels for x86-64 with AVX2 + FMA + F16C (Haswell / Zen 1 and
// later), for CPUs without AVX-512 VNNI: the packed rows16 layout
// (matmul_packed.h), every format it has, and the float formats' rows (F32,
// F16, BF16, MXFP8_E4M3). The integer GGUF-row kernels (formats or shapes
// the packed layout does not take) are not written for AVX2; those fall
// back to the portable ones (matmul.cc fills null members).
//
// A 64-byte record vector is taken as two halves: rows 0-7 and rows 8-15.
// vpdpbusd's 4-element sums become vpmaddubsw + vpmaddwd: exact for codes
// of up to 6 bits (|pair| <= 63 * 127 * 2), and for Q8_0 through the sign trick
// (|q| as unsigned times a with q's sign, |pair| <= 128 * 127 * 2; the
// activation quantizer clamps codes to [-127, 127]). Integer sums are exact,
// and the float operations per (row, token) are the AVX-512 kernel's, in
// the same order: both give the same bits.
//
// As in matmul_avx512.cc, everything sits in an anonymous namespace.
#include "devices/cpu/matmul_kernels.h"
#include "devices/cpu/matmul_packed.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/quant/fp8.h"

namespace suanli::cpu::mm {
namespace {

inline float hmax8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

inline int32_t hsum8_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// The AVX-512 quantizer's arithmetic: the same codes and scales.
void pk_quantize_act(const float* x, int64_t k, uint8_t* dst) {
  const int64_t nb = k / 32;
  const PkActRow a = pk_act_row(dst, k);
  int8_t* q = a.q;
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 lim = _mm256_set1_ps(127.0f), nlim = _mm256_set1_ps(-127.0f);
  for (int64_t b = 0; b < nb; ++b) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(x + 32 * b + 8 * j);
      // maxps returns its second operand when either is NaN: NaN never wins.
      amax = _mm256_max_ps(_mm256_andnot_ps(sign, v[j]), amax);
      nan = _mm256_or_ps(nan, _mm256_cmp_ps(v[j], v[j], _CMP_UNORD_Q));
    }
    const float m = hmax8(amax);
    const float d = _mm256_movemask_ps(nan) ? std::numeric_limits<float>::quiet_NaN() : m / 127.0f;
    const __m256 vid = _mm256_set1_ps(m > 0.0f ? 127.0f / m : 0.0f);
    __m256i c[4];
    for (int j = 0; j < 4; ++j) {
      // Clamp with the product first: a NaN becomes -127 (matmul_packed.h).
      c[j] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v[j], vid), nlim), lim));
    }
    // int32 -> int8 in element order (packs work within 128-bit lanes).
    const __m256i p16a = _mm256_packs_epi32(c[0], c[1]);  // 0-3 8-11 | 4-7 12-15
    const __m256i p16b = _mm256_packs_epi32(c[2], c[3]);
    const __m256i p8 = _mm256_packs_epi16(p16a, p16b);
    const __m256i perm = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 32 * b), perm);
    pk_set_block(a, b, d, hsum8_epi32(_mm256_add_epi32(c[0], c[1])), hsum8_epi32(_mm256_add_epi32(c[2], c[3])));
  }
}

inline __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Q6_K's int32 sums of four pair-sum vectors, added in int16 two at a time
// (|pair| <= 2 * 63 * 127: two fit int16, three do not).
inline __m256i sum_i32_depth2(const __m256i* p, __m256i ones) {
  return _mm256_add_epi32(_mm256_madd_epi16(_mm256_add_epi16(p[0], p[1]), ones),
                          _mm256_madd_epi16(_mm256_add_epi16(p[2], p[3]), ones));
}

// Token counts up to which pk_tile_t walks both halves of each block in one
// pass (see there).
constexpr int kBothHalvesMaxTokens = 1;
// How far ahead that pass prefetches: the hardware prefetchers alone left a
// one-token pass at ~75% of a pure read of the same bytes, one thread
// streaming from memory; 2 KiB ahead ~90% (AMD EPYC, Zen 3).
constexpr size_t kPrefetchAhead = 2048;

template <GgmlType F, int NT>
void pk_tile_t(const uint8_t* grp, int64_t nb, const uint8_t* act, size_t as, const float* bias, float* out,
               int64_t ldo, const uint8_t* next) {
  using P = PkFmt<F>;
  const __m256i m3 = _mm256_set1_epi8(0x03);
  const int64_t k = nb * 32;
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  auto load32 = [](const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); };
  auto fp16x8 = [](const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); };
  auto u8x8 = [](const uint8_t* p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  };
  // Pair sums of vpmaddubsw that int16 holds exactly, added up (codes of
  // 4 bits: 8; 5 bits: 4; Q6_K's 6 bits: 2; Q3_K / Q2_K: 8).
  constexpr int kDepth = P::kQ6 ? 2 : P::kFifth ? 4 : 8;
  constexpr bool kOneSum = !P::kQ8 && !P::kHalves && kDepth >= 8;  // is0 holds the block's sum
  // One block of rows 0-7 (half 0) or 8-15 (half 1) for every token.
  auto block = [&](int half, int64_t b, __m256* acc) __attribute__((always_inline)) {
    const uint8_t* hdr = grp + (b / 8) * P::kSuper;  // super-block formats
    const uint8_t* rec = P::kHeader ? hdr + P::kHeader + (b % 8) * P::kRec : grp + b * P::kRec;
    __m256i v[8], sg[P::kQ8 ? 8 : 1];
    if constexpr (P::kQ8) {
      for (int j = 0; j < 8; ++j) v[j] = _mm256_xor_si256(load32(rec + 64 * j + 32 * half), flip);  // signed q
    } else if constexpr (P::kPlanes) {
      const __m256i h0 = load32(rec + 32 * half), h1 = load32(rec + 64 + 32 * half);
      for (int j = 0; j < 4; ++j) {
        v[j] = _mm256_and_si256(_mm256_srli_epi16(h0, 2 * j), m3);
        v[j + 4] = _mm256_and_si256(_mm256_srli_epi16(h1, 2 * j), m3);
      }
      if constexpr (P::kQ3) {  // the codes' 3rd bits, to bit 2
        const __m256i pl = load32(rec + 128 + 32 * half);
        const __m256i four = _mm256_set1_epi8(4);
        for (int j = 0; j < 4; ++j) {
          const __m256i lo = j <= 2 ? _mm256_slli_epi16(pl, 2 - j) : _mm256_srli_epi16(pl, j - 2);
          v[j] = _mm256_or_si256(v[j], _mm256_and_si256(lo, four));
          v[j + 4] = _mm256_or_si256(v[j + 4], _mm256_and_si256(_mm256_srli_epi16(pl, 2 + j), four));
        }
      }
    } else {
      for (int j = 0; j < 4; ++j) {
        const __m256i p = load32(rec + 64 * j + 32 * half);
        v[j] = _mm256_and_si256(p, m4);
        v[j + 4] = _mm256_and_si256(_mm256_srli_epi16(p, 4), m4);
      }
      if constexpr (P::kFifth) {  // the 5th bits
        const __m256i pl = load32(rec + 256 + 32 * half);
        const __m256i one = _mm256_set1_epi8(1);
        for (int j = 0; j < 4; ++j) {
          v[j] = _mm256_or_si256(v[j], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(pl, j), one), 4));
          v[j + 4] =
              _mm256_or_si256(v[j + 4], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(pl, 4 + j), one), 4));
        }
      }
      if constexpr (P::kQ6) {
        const __m256i h0 = load32(rec + 256 + 32 * half), h1 = load32(rec + 320 + 32 * half);
        for (int j = 0; j < 4; ++j) {
          const __m256i a = _mm256_and_si256(_mm256_srli_epi16(h0, 2 * j), m3);
          const __m256i c = _mm256_and_si256(_mm256_srli_epi16(h1, 2 * j), m3);
          v[j] = _mm256_or_si256(v[j], _mm256_slli_epi16(a, 4));
          v[j + 4] = _mm256_or_si256(v[j + 4], _mm256_slli_epi16(c, 4));
        }
      }
    }
    // As the AVX-512 kernel: d / d1 the scales of the block or its halves,
    // mn / mn1 the mins.
    __m256 d, d1 = _mm256_setzero_ps(), mn = _mm256_setzero_ps(), mn1 = _mm256_setzero_ps();
    if constexpr (P::kQ6 || P::kQ3) {
      const __m256 dd = fp16x8(hdr + 16 * half);
      auto s8f = [](const uint8_t* p) {
        return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
      };
      d = _mm256_mul_ps(dd, s8f(rec + P::kCodes + 8 * half));
      d1 = _mm256_mul_ps(dd, s8f(rec + P::kCodes + 16 + 8 * half));
    } else if constexpr (P::kQ2) {
      const __m256 dd = fp16x8(hdr + 16 * half), dm = fp16x8(hdr + 32 + 16 * half);
      const __m256i s0 = u8x8(rec + P::kCodes + 8 * half), s1 = u8x8(rec + P::kCodes + 16 + 8 * half);
      const __m256i lo = _mm256_set1_epi32(0x0f);
      const __m256 k32 = _mm256_set1_ps(1.0f / 32);
      d = _mm256_mul_ps(dd, _mm256_cvtepi32_ps(_mm256_and_si256(s0, lo)));
      d1 = _mm256_mul_ps(dd, _mm256_cvtepi32_ps(_mm256_and_si256(s1, lo)));
      mn = _mm256_mul_ps(_mm256_mul_ps(dm, _mm256_cvtepi32_ps(_mm256_srli_epi32(s0, 4))), k32);
      mn1 = _mm256_mul_ps(_mm256_mul_ps(dm, _mm256_cvtepi32_ps(_mm256_srli_epi32(s1, 4))), k32);
    } else if constexpr (P::kScaleMin) {
      d = _mm256_mul_ps(fp16x8(hdr + 16 * half), _mm256_cvtepi32_ps(u8x8(rec + P::kCodes + 8 * half)));
      mn = _mm256_mul_ps(fp16x8(hdr + 32 + 16 * half), _mm256_cvtepi32_ps(u8x8(rec + P::kCodes + 16 + 8 * half)));
    } else {
      d = fp16x8(rec + P::kCodes + 16 * half);
      if constexpr (P::kMin) mn = fp16x8(rec + P::kCodes + 32 + 16 * half);
    }
    if constexpr (P::kQ8) {
      for (int j = 0; j < 8; ++j) {
        sg[j] = v[j];
        v[j] = _mm256_abs_epi8(v[j]);  // |q|, once per block for every token
      }
    }
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const uint8_t* a = act + t * as;
      const int8_t* ab = reinterpret_cast<const int8_t*>(a) + 32 * b;
      const float* da = reinterpret_cast<const float*>(a + k);
      const int32_t* c8 = reinterpret_cast<const int32_t*>(da + 2 * nb);  // then c128, c32h
      __m256i is0, is1;
      if constexpr (P::kQ8) {
        is0 = is1 = _mm256_setzero_si256();
        for (int j = 0; j < 4; ++j) {
          const __m256i a0 = bcast4(ab + 4 * j), a1 = bcast4(ab + 16 + 4 * j);
          is0 = _mm256_add_epi32(is0, _mm256_madd_epi16(_mm256_maddubs_epi16(v[j], _mm256_sign_epi8(a0, sg[j])), ones));
          is1 = _mm256_add_epi32(
              is1, _mm256_madd_epi16(_mm256_maddubs_epi16(v[j + 4], _mm256_sign_epi8(a1, sg[j + 4])), ones));
        }
      } else {
        // vpmaddubsw's pair sums (|pair| <= 2 * max code * 127) added in
        // int16 kDepth at a time, then one vpmaddwd: exact, no saturation.
        if constexpr (kDepth >= 4) {
          // Two running int16 sums (the block's halves), so few products
          // are live at once (the kernel then keeps its accumulators and
          // codes in registers).
          __m256i s0 = _mm256_maddubs_epi16(v[0], bcast4(ab));
          __m256i s1 = _mm256_maddubs_epi16(v[4], bcast4(ab + 16));
          for (int j = 1; j < 4; ++j) {
            s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(v[j], bcast4(ab + 4 * j)));
            s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(v[j + 4], bcast4(ab + 16 + 4 * j)));
          }
          if constexpr (kOneSum) {
            is0 = _mm256_madd_epi16(_mm256_add_epi16(s0, s1), ones);
            is1 = _mm256_setzero_si256();
          } else {
            is0 = _mm256_madd_epi16(s0, ones);
            is1 = _mm256_madd_epi16(s1, ones);
          }
        } else {
          __m256i pr[8];
          for (int j = 0; j < 4; ++j) {
            pr[j] = _mm256_maddubs_epi16(v[j], bcast4(ab + 4 * j));
            pr[j + 4] = _mm256_maddubs_epi16(v[j + 4], bcast4(ab + 16 + 4 * j));
          }
          is0 = sum_i32_depth2(pr, ones);
          is1 = sum_i32_depth2(pr + 4, ones);
        }
      }
      if constexpr (P::kHalves) {
        const int32_t* c32h = c8 + 2 * nb;
        if constexpr (P::kQ6) {
          is0 = _mm256_sub_epi32(is0, _mm256_set1_epi32(c32h[2 * b]));
          is1 = _mm256_sub_epi32(is1, _mm256_set1_epi32(c32h[2 * b + 1]));
        } else if constexpr (P::kQ3) {
          is0 = _mm256_sub_epi32(is0, _mm256_set1_epi32(c32h[2 * b] >> 3));
          is1 = _mm256_sub_epi32(is1, _mm256_set1_epi32(c32h[2 * b + 1] >> 3));
        }
        const __m256 vda = _mm256_set1_ps(da[b]);
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is0), _mm256_mul_ps(d, vda), acc[t]);
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is1), _mm256_mul_ps(d1, vda), acc[t]);
        if constexpr (P::kQ2) {
          acc[t] = _mm256_fnmadd_ps(mn, _mm256_set1_ps(static_cast<float>(c32h[2 * b]) * da[b]), acc[t]);
          acc[t] = _mm256_fnmadd_ps(mn1, _mm256_set1_ps(static_cast<float>(c32h[2 * b + 1]) * da[b]), acc[t]);
        }
        continue;
      }
      __m256i is = kOneSum ? is0 : _mm256_add_epi32(is0, is1);
      if constexpr (F == GgmlType::kQ4_0) {
        is = _mm256_sub_epi32(is, _mm256_set1_epi32(c8[b]));
      } else if constexpr (F == GgmlType::kQ5_0) {
        is = _mm256_sub_epi32(is, _mm256_set1_epi32(2 * c8[b]));
      }
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_mul_ps(d, _mm256_set1_ps(da[b])), acc[t]);
      if constexpr (P::kMin) acc[t] = _mm256_fmadd_ps(mn, _mm256_set1_ps(da[nb + b]), acc[t]);
      if constexpr (P::kScaleMin) acc[t] = _mm256_fnmadd_ps(mn, _mm256_set1_ps(da[nb + b]), acc[t]);
    }
  };
  auto store = [&](int half, const __m256* acc) {
    const __m256 bv = bias ? _mm256_loadu_ps(bias + 8 * half) : _mm256_setzero_ps();
    for (int t = 0; t < NT; ++t) {
      _mm256_storeu_ps(out + t * ldo + 8 * half, bias ? _mm256_add_ps(acc[t], bv) : acc[t]);
    }
  };
  // A group's bytes per 32-element block (the group is nb of them).
  constexpr size_t kBlockBytes = P::kHeader ? P::kSuper / 8 : P::kRec;
  const size_t group_bytes = static_cast<size_t>(nb) * kBlockBytes;
  if constexpr (NT <= kBothHalvesMaxTokens) {
    // Few tokens: both halves of a block, then the next block, so every
    // 64-byte line of the group is used whole when it arrives (decode
    // streams the weights from memory once; two passes, each using half of
    // each line, left the memory idle during the second). Each (row, token)
    // still adds its blocks in order: the same bits.
    __m256 acc0[NT], acc1[NT];
    for (int t = 0; t < NT; ++t) acc0[t] = acc1[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      // One block's worth of bytes, kPrefetchAhead further on in this
      // group, then in `next`.
      for (size_t off = 0; off < kBlockBytes; off += 64) {
        const size_t at = static_cast<size_t>(b) * kBlockBytes + kPrefetchAhead + off;
        if (at < group_bytes) {
          _mm_prefetch(reinterpret_cast<const char*>(grp) + at, _MM_HINT_T0);
        } else if (next && at - group_bytes < group_bytes) {  // within `next` (a small group may end sooner)
          _mm_prefetch(reinterpret_cast<const char*>(next) + (at - group_bytes), _MM_HINT_T0);
        }
      }
      block(0, b, acc0);
      block(1, b, acc1);
    }
    store(0, acc0);
    store(1, acc1);
  } else {
    // More tokens: a half's codes stay in registers while every token
    // passes over them (8 of the 16 vector registers). The first pass takes
    // the group from memory (or from L2, where the previous call asked for
    // it); given `next`, its bytes are asked into L2 a little per block over
    // both passes, so memory streams while the kernel computes.
    auto pass = [&](int half, bool prefetch) __attribute__((always_inline)) {
      __m256 acc[NT];
      for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
      for (int64_t b = 0; b < nb; ++b) {
        if (prefetch) {
          const size_t step = static_cast<size_t>(half * nb + b);
          for (size_t off = step * kBlockBytes / 2 / 64 * 64; off < (step + 1) * kBlockBytes / 2; off += 64) {
            _mm_prefetch(reinterpret_cast<const char*>(next) + off, _MM_HINT_T1);
          }
        }
        block(half, b, acc);
      }
      store(half, acc);
    };
    if (next) {
      pass(0, true);
      pass(1, true);
    } else {
      pass(0, false);
      pass(1, false);
    }
  }
}

// Float formats (F32 / F16 / BF16 / MXFP8_E4M3). A dot product keeps 16 lanes in two vectors (lane l: elements
// k = l mod 16, one FMA each, in order), then the tree l += l+8, +4, +2, +1:
// the AVX-512 set's arithmetic, so both give the same bits. The tile path
// (prefill) and the fused path (decode: raw rows converted in registers,
// row after row in address order) share the loop below.
struct SrcF32 {
  static __m256 at(const uint8_t* row, int64_t k) { return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k); }
};
struct SrcF16 {
  static __m256 at(const uint8_t* row, int64_t k) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k)));
  }
};
struct SrcBF16 {
  static __m256 at(const uint8_t* row, int64_t k) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
};
// 8 E4M3 codes times a block scale, as the AVX-512 set's mxfp8x16: normal
// codes rebase their exponent by an integer add, subnormal ones are
// mantissa * 2^-9 from an integer convert (no subnormal float operand),
// 0x7f is NaN, the sign is ORed in, then one multiply by the scale.
inline __m256 mxfp8x8(const uint8_t* codes, float scale) {
  const __m256i magnitude_mask = _mm256_set1_epi32(0x7f);
  const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes)));
  const __m256i m = _mm256_and_si256(b, magnitude_mask);
  const __m256 normal = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_slli_epi32(m, 20), _mm256_set1_epi32(120 << 23)));
  const __m256 sub = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(m, _mm256_set1_epi32(7))), _mm256_set1_ps(0x1p-9f));
  __m256 v = _mm256_blendv_ps(normal, sub, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(8), m)));
  v = _mm256_blendv_ps(v, _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN()),
                       _mm256_castsi256_ps(_mm256_cmpeq_epi32(m, magnitude_mask)));
  const __m256i sign = _mm256_slli_epi32(_mm256_andnot_si256(magnitude_mask, b), 24);
  v = _mm256_castsi256_ps(_mm256_or_si256(_mm256_castps_si256(v), sign));
  return _mm256_mul_ps(v, _mm256_set1_ps(scale));
}
struct SrcMXFP8 {
  static __m256 at(const uint8_t* row, int64_t k) {
    const uint8_t* block = row + k / 32 * 33;
    return mxfp8x8(block + 1 + k % 32, quant::e8m0_to_fp32(block[0]));
  }
};
inline float tree16(__m256 lo, __m256 hi) {
  const __m256 s = _mm256_add_ps(lo, hi);                                              // l += l+8
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));     // l += l+4
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));                                              // l += l+2
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));                             // l += l+1
}
// out[c * ldo] = row . a[c] (+ bias) for c < C; a rows kf floats apart.
template <typename L, int C>
inline void float_dots(const uint8_t* row, const float* a, int64_t kf, const float* bias, float* out, int64_t ldo) {
  __m256 lo[C], hi[C];
  for (int c = 0; c < C; ++c) lo[c] = hi[c] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kf; k += 16) {
    const __m256 w0 = L::at(row, k), w1 = L::at(row, k + 8);
    for (int c = 0; c < C; ++c) {
      lo[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(a + c * kf + k), lo[c]);
      hi[c] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(a + c * kf + k + 8), hi[c]);
    }
  }
  for (int c = 0; c < C; ++c) {
    const float v = tree16(lo[c], hi[c]);
    out[c * ldo] = bias ? v + *bias : v;
  }
}
template <typename L>
void float_rows(const uint8_t* w, size_t stride, int n_rows, const float* a, int n_tok, int64_t kf, const float* bias,
                float* out, int64_t ldo) {
  for (int r = 0; r < n_rows; ++r) {
    const uint8_t* row = w + r * stride;
    const float* b = bias ? bias + r : nullptr;
    for (int c0 = 0; c0 < n_tok; c0 += 4) {
      const float* ac = a + c0 * kf;
      float* o = out + c0 * ldo + r;
      switch (std::min(4, n_tok - c0)) {
        case 1: float_dots<L, 1>(row, ac, kf, b, o, ldo); break;
        case 2: float_dots<L, 2>(row, ac, kf, b, o, ldo); break;
        case 3: float_dots<L, 3>(row, ac, kf, b, o, ldo); break;
        default: float_dots<L, 4>(row, ac, kf, b, o, ldo); break;
      }
    }
  }
}
void float_tile(const float* w, int n_rows, const float* a, int n_tok, const Geometry& g, const float* bias,
                float* out, int64_t ldo) {
  float_rows<SrcF32>(reinterpret_cast<const uint8_t*>(w), g.kf * sizeof(float), n_rows, a, n_tok, g.kf, bias, out,
                     ldo);
}
bool fused_float_tile(GgmlType type, const uint8_t* w, size_t stride, int n_rows, const float* a, int n_tok,
                      const Geometry& g, const float* bias, float* out, int64_t ldo) {
  if (g.k != g.kf) return false;  // rows with a padded tail go through float_row
  switch (type) {
    case GgmlType::kF32: float_rows<SrcF32>(w, stride, n_rows, a, n_tok, g.kf, bias, out, ldo); return true;
    case GgmlType::kF16: float_rows<SrcF16>(w, stride, n_rows, a, n_tok, g.kf, bias, out, ldo); return true;
    case GgmlType::kBF16: float_rows<SrcBF16>(w, stride, n_rows, a, n_tok, g.kf, bias, out, ldo); return true;
    case GgmlType::kMXFP8_E4M3: float_rows<SrcMXFP8>(w, stride, n_rows, a, n_tok, g.kf, bias, out, ldo); return true;
    default: return false;
  }
}
bool float_row(GgmlType type, const uint8_t* src, const Geometry& g, float* dst) {
  const int64_t k = g.k;
  int64_t i = 0;
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(dst, src, k * sizeof(float));
      i = k;
      break;
    case GgmlType::kF16:
      for (; i + 8 <= k; i += 8) _mm256_storeu_ps(dst + i, SrcF16::at(src, i));
      for (; i < k; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, sizeof h);
        dst[i] = _cvtsh_ss(h);
      }
      break;
    case GgmlType::kBF16:
      for (; i + 8 <= k; i += 8) _mm256_storeu_ps(dst + i, SrcBF16::at(src, i));
      for (; i < k; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, sizeof h);
        const uint32_t bits = static_cast<uint32_t>(h) << 16;
        std::memcpy(dst + i, &bits, 4);
      }
      break;
    case GgmlType::kMXFP8_E4M3:  // k % 32 == 0
      for (; i < k; i += 8) _mm256_storeu_ps(dst + i, SrcMXFP8::at(src, i));
      break;
    default: return false;
  }
  for (; i < g.kf; ++i) dst[i] = 0.0f;
  return true;
}

using PkFn = void (*)(const uint8_t*, int64_t, const uint8_t*, size_t, const float*, float*, int64_t, const uint8_t*);
template <GgmlType F>
constexpr PkFn kPk[kPkTokens] = {pk_tile_t<F, 1>, pk_tile_t<F, 2>, pk_tile_t<F, 3>, pk_tile_t<F, 4>,
                                 pk_tile_t<F, 5>, pk_tile_t<F, 6>, pk_tile_t<F, 7>, pk_tile_t<F, 8>};

void pk_tile(GgmlType type, const uint8_t* grp, int64_t nb, const uint8_t* act, size_t as, int n_tok,
             const float* bias, float* out, int64_t ldo, const uint8_t* next) {
  const int i = n_tok - 1;
  switch (type) {
    case GgmlType::kQ4_0: return kPk<GgmlType::kQ4_0>[i](grp, nb, act, as, bias, out, ldo, next);
    case GgmlType::kQ4_1: return kPk<GgmlType::kQ4_1>[i](grp, nb, act, as, bias, out, ldo, next);
    case GgmlType::kQ5_0: return kPk<GgmlType::kQ5_0>[i](grp, nb, act, as, bias, out, ldo, next);
    case GgmlType::kQ5_1: return kPk<GgmlType::kQ5_1>[i](grp, nb, act, as, bias, out, ldo, next);
    case GgmlType::kQ2_K: return kPk<GgmlType::kQ2_K>[i](grp, nb, act, as, bias, out, ldo, next);
    case GgmlType::kQ3_K: return kPk<GgmlType::kQ3_K>[i](grp, nb, act, as, bias, out, ldo, next);
    case GgmlType::kQ8_0: return kPk<GgmlType::kQ8_0>[i](grp, nb, act, as, bias, out, ldo, next);
    case GgmlType::kQ4_K: return kPk<GgmlType::kQ4_K>[i](grp, nb, act, as, bias, out, ldo, next);
    case GgmlType::kQ5_K: return kPk<GgmlType::kQ5_K>[i](grp, nb, act, as, bias, out, ldo, next);
    case GgmlType::kQ6_K: return kPk<GgmlType::kQ6_K>[i](grp, nb, act, as, bias, out, ldo, next);
    default: break;
  }
}

KernelTable make_table() {
  KernelTable t;
  t.name = "avx2";
  t.float_row = float_row;
  t.float_tile = float_tile;
  t.fused_float_tile = fused_float_tile;
  t.pk_quantize_act = pk_quantize_act;
  t.pk_tile = pk_tile;
  return t;
}
const KernelTable kTable = make_table();

}  // namespace

const KernelTable* avx2_kernels() { return &kTable; }

}  // namespace suanli::cpu::mm

#else

namespace suanli::cpu::mm {
const KernelTable* avx2_kernels() { return nullptr; }
}  // namespace suanli::cpu::mm

#endif
