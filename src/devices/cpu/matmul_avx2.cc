// matmul kernels for x86-64 with AVX2 + FMA + F16C (Haswell / Zen 1 and
// later), for CPUs without AVX-512 VNNI: the packed rows16 layout
// (matmul_packed.h) for Q4_0 / Q4_1 / Q8_0. The GGUF-row kernels for the
// other formats are not written for AVX2; those fall back to the portable
// ones (matmul.cc fills null members).
//
// A 64-byte record vector is taken as two halves: rows 0-7 and rows 8-15.
// vpdpbusd's 4-element sums become vpmaddubsw + vpmaddwd: exact for 4-bit
// codes (|pair| <= 15 * 127 * 2), and for Q8_0 through the sign trick
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

#include <cstring>

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
    __m256 amax = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(x + 32 * b + 8 * j);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[j]));
    }
    const float m = hmax8(amax);
    const float d = m / 127.0f;
    const __m256 vid = _mm256_set1_ps(m > 0.0f ? 127.0f / m : 0.0f);
    __m256i c[4];
    for (int j = 0; j < 4; ++j) {
      c[j] = _mm256_cvtps_epi32(_mm256_min_ps(lim, _mm256_max_ps(nlim, _mm256_mul_ps(v[j], vid))));
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

// Sum over 4-element groups of u8 codes x s8 activations (no saturation for
// codes <= 15).
inline __m256i dot4_u4(__m256i codes, __m256i a, __m256i ones) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(codes, a), ones);
}
// The same for signed int8 codes q (|q| <= 128) via the sign trick.
inline __m256i dot4_s8(__m256i q, __m256i a, __m256i ones) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(q), _mm256_sign_epi8(a, q)), ones);
}

template <GgmlType F, int NT>
void pk_tile_t(const uint8_t* grp, int64_t nb, const uint8_t* act, size_t as, const float* bias, float* out,
               int64_t ldo) {
  constexpr bool kQ8 = F == GgmlType::kQ8_0;
  constexpr bool kMin = F == GgmlType::kQ4_1;
  constexpr bool k5 = F == GgmlType::kQ5_K;
  constexpr bool kK = F == GgmlType::kQ4_K || k5;  // scales and mins per sub-block
  constexpr size_t kKRec = k5 ? kPkQ5KRec : 256 + 32, kKSuper = k5 ? kPkQ5KSuper : kPkQ4KSuper;
  constexpr size_t kKScales = k5 ? 256 + 64 : 256;
  constexpr bool k6 = F == GgmlType::kQ6_K;
  constexpr size_t kCodes = kQ8 ? 512 : 256;
  constexpr size_t kRec = kCodes + (kMin ? 64 : 32);
  const __m256i m3 = _mm256_set1_epi8(0x03);
  const int64_t k = nb * 32;
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int half = 0; half < 2; ++half) {  // rows 0-7, then 8-15
    __m256 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* rec = kK   ? grp + (b / 8) * kKSuper + kPkQ4KHeader + (b % 8) * kKRec
                           : k6 ? grp + (b / 8) * kPkQ6KSuper + kPkQ6KHeader + (b % 8) * kPkQ6KRec
                                : grp + b * kRec;
      __m256i v[8];
      if constexpr (kQ8) {
        for (int j = 0; j < 8; ++j) {
          v[j] = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + 64 * j + 32 * half)),
                                  flip);  // back to signed q
        }
      } else {
        for (int j = 0; j < 4; ++j) {
          const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + 64 * j + 32 * half));
          v[j] = _mm256_and_si256(p, m4);
          v[j + 4] = _mm256_and_si256(_mm256_srli_epi16(p, 4), m4);
        }
        if constexpr (k5) {  // the 5th bits
          const __m256i pl = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + 256 + 32 * half));
          const __m256i one = _mm256_set1_epi8(1);
          for (int j = 0; j < 4; ++j) {
            v[j] = _mm256_or_si256(v[j], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(pl, j), one), 4));
            v[j + 4] = _mm256_or_si256(v[j + 4],
                                       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(pl, 4 + j), one), 4));
          }
        }
        if constexpr (k6) {
          const __m256i h0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + 256 + 32 * half));
          const __m256i h1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + 320 + 32 * half));
          for (int j = 0; j < 4; ++j) {
            const __m256i a = _mm256_and_si256(_mm256_srli_epi16(h0, 2 * j), m3);
            const __m256i c = _mm256_and_si256(_mm256_srli_epi16(h1, 2 * j), m3);
            v[j] = _mm256_or_si256(v[j], _mm256_slli_epi16(a, 4));
            v[j + 4] = _mm256_or_si256(v[j + 4], _mm256_slli_epi16(c, 4));
          }
        }
      }
      __m256 d, mn = _mm256_setzero_ps();
      if constexpr (k6) {
        const __m256 dd = _mm256_cvtph_ps(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(grp + (b / 8) * kPkQ6KSuper + 16 * half)));
        auto s8f = [](const uint8_t* p) {
          return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
        };
        d = _mm256_mul_ps(dd, s8f(rec + 384 + 8 * half));
        mn = _mm256_mul_ps(dd, s8f(rec + 400 + 8 * half));
      } else if constexpr (kK) {
        const uint8_t* hdr = grp + (b / 8) * kKSuper;
        auto u8f = [](const uint8_t* p) {
          return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
        };
        d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(hdr + 16 * half))),
                          u8f(rec + kKScales + 8 * half));
        mn = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(hdr + 32 + 16 * half))),
                           u8f(rec + kKScales + 16 + 8 * half));
      } else {
        d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rec + kCodes + 16 * half)));
        if constexpr (kMin) {
          mn = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rec + kCodes + 32 + 16 * half)));
        }
      }
      for (int t = 0; t < NT; ++t) {
        const uint8_t* a = act + t * as;
        const int8_t* ab = reinterpret_cast<const int8_t*>(a) + 32 * b;
        const float* da = reinterpret_cast<const float*>(a + k);
        __m256i is0 = _mm256_setzero_si256(), is1 = _mm256_setzero_si256();
        for (int j = 0; j < 4; ++j) {
          const __m256i a0 = bcast4(ab + 4 * j), a1 = bcast4(ab + 16 + 4 * j);
          is0 = _mm256_add_epi32(is0, kQ8 ? dot4_s8(v[j], a0, ones) : dot4_u4(v[j], a0, ones));
          is1 = _mm256_add_epi32(is1, kQ8 ? dot4_s8(v[j + 4], a1, ones) : dot4_u4(v[j + 4], a1, ones));
        }
        if constexpr (k6) {
          const int32_t* c32h = reinterpret_cast<const int32_t*>(da + 4 * nb);
          is0 = _mm256_sub_epi32(is0, _mm256_set1_epi32(c32h[2 * b]));
          is1 = _mm256_sub_epi32(is1, _mm256_set1_epi32(c32h[2 * b + 1]));
          const __m256 vda = _mm256_set1_ps(da[b]);
          acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is0), _mm256_mul_ps(d, vda), acc[t]);
          acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is1), _mm256_mul_ps(mn, vda), acc[t]);
          continue;
        }
        __m256i is = _mm256_add_epi32(is0, is1);
        if constexpr (F == GgmlType::kQ4_0) {
          is = _mm256_sub_epi32(is, _mm256_set1_epi32(reinterpret_cast<const int32_t*>(da + 2 * nb)[b]));
        }
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_mul_ps(d, _mm256_set1_ps(da[b])), acc[t]);
        if constexpr (kMin) acc[t] = _mm256_fmadd_ps(mn, _mm256_set1_ps(da[nb + b]), acc[t]);
        if constexpr (kK) acc[t] = _mm256_fnmadd_ps(mn, _mm256_set1_ps(da[nb + b]), acc[t]);
      }
    }
    const __m256 bv = bias ? _mm256_loadu_ps(bias + 8 * half) : _mm256_setzero_ps();
    for (int t = 0; t < NT; ++t) {
      _mm256_storeu_ps(out + t * ldo + 8 * half, bias ? _mm256_add_ps(acc[t], bv) : acc[t]);
    }
  }
}

using PkFn = void (*)(const uint8_t*, int64_t, const uint8_t*, size_t, const float*, float*, int64_t);
template <GgmlType F>
constexpr PkFn kPk[kPkTokens] = {pk_tile_t<F, 1>, pk_tile_t<F, 2>, pk_tile_t<F, 3>, pk_tile_t<F, 4>,
                                 pk_tile_t<F, 5>, pk_tile_t<F, 6>, pk_tile_t<F, 7>, pk_tile_t<F, 8>};

void pk_tile(GgmlType type, const uint8_t* grp, int64_t nb, const uint8_t* act, size_t as, int n_tok,
             const float* bias, float* out, int64_t ldo) {
  const int i = n_tok - 1;
  switch (type) {
    case GgmlType::kQ4_0: return kPk<GgmlType::kQ4_0>[i](grp, nb, act, as, bias, out, ldo);
    case GgmlType::kQ4_1: return kPk<GgmlType::kQ4_1>[i](grp, nb, act, as, bias, out, ldo);
    case GgmlType::kQ8_0: return kPk<GgmlType::kQ8_0>[i](grp, nb, act, as, bias, out, ldo);
    case GgmlType::kQ4_K: return kPk<GgmlType::kQ4_K>[i](grp, nb, act, as, bias, out, ldo);
    case GgmlType::kQ5_K: return kPk<GgmlType::kQ5_K>[i](grp, nb, act, as, bias, out, ldo);
    case GgmlType::kQ6_K: return kPk<GgmlType::kQ6_K>[i](grp, nb, act, as, bias, out, ldo);
    default: break;
  }
}

KernelTable make_table() {
  KernelTable t;
  t.name = "avx2";
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
