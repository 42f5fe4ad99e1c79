// CPU kernels for the element-wise and attention ops. matmul lives in
// matmul*.cc. Loops are written so the compiler vectorizes them (the
// library is built with -O3 for src/devices/cpu) and parallelized over
// rows / heads; each output's reduction order is fixed, independent of the
// batch and of the thread count (batch invariance).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/quant/quant.h"
#include "devices/cpu/cpu_features.h"
#include "devices/cpu/kernels.h"
#include "devices/cpu/line_stream.h"
#include "devices/cpu/matmul_kernels.h"
#include "devices/cpu/row_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace suanli::cpu {
namespace {

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

LineStream& line_stream() {
  thread_local LineStream s;
  return s;
}

// Row kernels of attention, kv_write and swiglu (row_kernels.h): portable
// loops here, x86 versions with F16C conversions and AVX2 FMA dot products
// and AVX-512 ones (function-level target attributes; the rest of the file
// stays baseline), and the Highway set in ops_hwy.cc. Dot products use 16
// lanes and a fixed reduction tree in every set.
void swiglu_portable(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = silu(gate[i]) * up[i];
}

float softmax_exp_portable(float* sc, int64_t n, float m) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    sc[i] = std::exp(sc[i] - m);
    sum += sc[i];
  }
  return sum;
}

void f16_to_f32_portable(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = quant::fp16_to_fp32(src[i]);
}
void f32_to_f16_portable(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = quant::fp32_to_fp16(src[i]);
}
void dots_portable(const float* q, const float* k, int64_t nk, int64_t d, float scale, float* out) {
  for (int64_t r = 0; r < nk; ++r) {
    const float* kr = k + r * d;
    float part[16] = {};
    for (int64_t e = 0; e < d; ++e) part[e % 16] += q[e] * kr[e];
    for (int w = 8; w > 0; w /= 2) {
      for (int l = 0; l < w; ++l) part[l] += part[l + w];
    }
    out[r] = part[0] * scale;
  }
}
void accumulate_portable(const float* p, const float* v, int64_t nk, int64_t d, float* acc) {
  for (int64_t r = 0; r < nk; ++r) {
    for (int64_t e = 0; e < d; ++e) acc[e] += p[r] * v[r * d + e];
  }
}

#if defined(__x86_64__)
__attribute__((target("avx2,f16c,fma"))) void f16_to_f32_x86(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  }
  for (; i < n; ++i) dst[i] = _cvtsh_ss(src[i]);
}
__attribute__((target("avx2,f16c,fma"))) void f32_to_f16_x86(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}
#define SUANLI_AVX2_TARGET __attribute__((target("avx2,f16c,fma")))
// Two keys' 16-lane partial sums (lanes 0-7 and 8-15 of key 0, then of key
// 1) reduced by the portable tree, l += l+8, +4, +2, +1: lane 0 of the
// result holds key 0's sum, lane 4 key 1's.
SUANLI_AVX2_TARGET inline __m256 tree16_x2(__m256 lo0, __m256 hi0, __m256 lo1, __m256 hi1) {
  const __m256 s0 = _mm256_add_ps(lo0, hi0), s1 = _mm256_add_ps(lo1, hi1);  // l += l+8
  const __m256 t = _mm256_add_ps(_mm256_permute2f128_ps(s0, s1, 0x20), _mm256_permute2f128_ps(s0, s1, 0x31));  // +4
  const __m256 x = _mm256_add_ps(t, _mm256_shuffle_ps(t, t, _MM_SHUFFLE(3, 2, 3, 2)));  // l += l+2
  return _mm256_add_ps(x, _mm256_shuffle_ps(x, x, _MM_SHUFFLE(1, 1, 1, 1)));           // l += l+1
}
SUANLI_AVX2_TARGET void dots_x86(const float* q, const float* k, int64_t nk, int64_t d, float scale, float* out) {
  const int64_t d16 = d / 16 * 16;
  int64_t r = 0;
  // Four keys at a time, the sums reduced two keys per vector tree: the
  // same operations per key as the one-key loop below.
  if (d16 == d) {
    const __m256 vs = _mm256_set1_ps(scale);
    for (; r + 4 <= nk; r += 4) {
      const float* kr = k + r * d;
      __m256 lo[4], hi[4];
      for (int j = 0; j < 4; ++j) lo[j] = hi[j] = _mm256_setzero_ps();
      for (int64_t e = 0; e < d; e += 16) {
        const __m256 q0 = _mm256_loadu_ps(q + e), q1 = _mm256_loadu_ps(q + e + 8);
        for (int j = 0; j < 4; ++j) {
          lo[j] = _mm256_fmadd_ps(q0, _mm256_loadu_ps(kr + j * d + e), lo[j]);
          hi[j] = _mm256_fmadd_ps(q1, _mm256_loadu_ps(kr + j * d + e + 8), hi[j]);
        }
      }
      const __m256 y01 = _mm256_mul_ps(tree16_x2(lo[0], hi[0], lo[1], hi[1]), vs);
      const __m256 y23 = _mm256_mul_ps(tree16_x2(lo[2], hi[2], lo[3], hi[3]), vs);
      // lanes 0 and 4 of each: keys 0, 1 and 2, 3.
      const __m256 y = _mm256_shuffle_ps(y01, y23, _MM_SHUFFLE(0, 0, 0, 0));  // k0 k0 k2 k2 | k1 k1 k3 k3
      _mm_storeu_ps(out + r, _mm256_castps256_ps128(_mm256_permutevar8x32_ps(y, _mm256_setr_epi32(0, 4, 2, 6, 0, 0, 0, 0))));
    }
  }
  for (; r < nk; ++r) {
    const float* kr = k + r * d;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int64_t e = 0; e < d16; e += 16) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + e), _mm256_loadu_ps(kr + e), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + e + 8), _mm256_loadu_ps(kr + e + 8), a1);
    }
    alignas(32) float part[16];
    _mm256_store_ps(part, a0);
    _mm256_store_ps(part + 8, a1);
    for (int64_t e = d16; e < d; ++e) part[e % 16] += q[e] * kr[e];
    for (int w = 8; w > 0; w /= 2) {
      for (int l = 0; l < w; ++l) part[l] += part[l + w];
    }
    out[r] = part[0] * scale;
  }
}
// acc[e] = fma(p[r], v[r][e], acc[e]) in key order, NV x 8 elements held in
// registers over all keys.
template <int NV>
SUANLI_AVX2_TARGET inline void accumulate_regs_x86(const float* p, const float* v, int64_t nk, int64_t d, float* acc) {
  __m256 a[NV];
  for (int c = 0; c < NV; ++c) a[c] = _mm256_loadu_ps(acc + 8 * c);
  for (int64_t r = 0; r < nk; ++r) {
    const __m256 pr = _mm256_set1_ps(p[r]);
    for (int c = 0; c < NV; ++c) a[c] = _mm256_fmadd_ps(pr, _mm256_loadu_ps(v + r * d + 8 * c), a[c]);
  }
  for (int c = 0; c < NV; ++c) _mm256_storeu_ps(acc + 8 * c, a[c]);
}
SUANLI_AVX2_TARGET void accumulate_x86(const float* p, const float* v, int64_t nk, int64_t d, float* acc) {
  if (d % 8 == 0) {
    for (int64_t c0 = 0; c0 < d; c0 += 64) {  // each element on its own: the same bits in any split
      switch (std::min<int64_t>(8, (d - c0) / 8)) {
        case 1: accumulate_regs_x86<1>(p, v + c0, nk, d, acc + c0); break;
        case 2: accumulate_regs_x86<2>(p, v + c0, nk, d, acc + c0); break;
        case 3: accumulate_regs_x86<3>(p, v + c0, nk, d, acc + c0); break;
        case 4: accumulate_regs_x86<4>(p, v + c0, nk, d, acc + c0); break;
        case 5: accumulate_regs_x86<5>(p, v + c0, nk, d, acc + c0); break;
        case 6: accumulate_regs_x86<6>(p, v + c0, nk, d, acc + c0); break;
        case 7: accumulate_regs_x86<7>(p, v + c0, nk, d, acc + c0); break;
        default: accumulate_regs_x86<8>(p, v + c0, nk, d, acc + c0); break;
      }
    }
    return;
  }
  const int64_t d8 = d / 8 * 8;
  for (int64_t r = 0; r < nk; ++r) {
    const __m256 pr = _mm256_set1_ps(p[r]);
    const float* vr = v + r * d;
    for (int64_t e = 0; e < d8; e += 8) {
      _mm256_storeu_ps(acc + e, _mm256_fmadd_ps(pr, _mm256_loadu_ps(vr + e), _mm256_loadu_ps(acc + e)));
    }
    for (int64_t e = d8; e < d; ++e) acc[e] = std::fma(p[r], vr[e], acc[e]);
  }
}
// 2^m as floats, for m in [-126, 127].
SUANLI_AVX2_TARGET inline __m256 pow2_8(__m256i m) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(m, _mm256_set1_epi32(127)), 23));
}
// exp(x) for every x: x = n ln2 + r, |r| <= ln2/2, exp(r) by the AVX-512
// set's degree-6 polynomial, times 2^n in two exact steps (the value of its
// scalef); below -87.3 the result is 0 (NaN too, as in the AVX-512 set),
// above ln(FLT_MAX) inf.
SUANLI_AVX2_TARGET inline __m256 exp8(__m256 x) {
  // hi: ln(FLT_MAX), the largest x whose exp is finite.
  const __m256 lo = _mm256_set1_ps(-87.3f), hi = _mm256_set1_ps(88.72283935546875f);
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // n in [-126, 128]: times 2^n1 then 2^n2 (n1 = floor(n / 2), both normal
  // powers of two): the first product is exact, the second rounds once, as
  // scalef does (a finite result up to x = 88.72, inf past FLT_MAX).
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
  __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, pow2_8(n1)), pow2_8(n2));
  y = _mm256_and_ps(y, _mm256_cmp_ps(x, lo, _CMP_GE_OQ));                       // 0 below, and for NaN
  return _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
}
// Sum: 8 lane partial sums (lane = i mod 8, in order), then l += l+4, +2, +1.
SUANLI_AVX2_TARGET float softmax_exp_avx2(float* sc, int64_t n, float m) {
  const __m256 vm = _mm256_set1_ps(m);
  __m256 sum = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(sc + i), vm));
    _mm256_storeu_ps(sc + i, e);
    sum = _mm256_add_ps(sum, e);
  }
  alignas(32) float part[8];
  _mm256_store_ps(part, sum);
  if (i < n) {
    alignas(32) float tail[8] = {};
    for (int64_t j = i; j < n; ++j) tail[j - i] = sc[j] - m;
    _mm256_store_ps(tail, exp8(_mm256_load_ps(tail)));
    for (int64_t j = i; j < n; ++j) {
      sc[j] = tail[j - i];
      part[j - i] += tail[j - i];
    }
  }
  for (int w = 4; w > 0; w /= 2) {
    for (int l = 0; l < w; ++l) part[l] += part[l + w];
  }
  return part[0];
}
// out = silu(gate) * up = gate / (1 + exp(-gate)) * up, 8 at a time.
SUANLI_AVX2_TARGET inline __m256 swiglu8(__m256 g, __m256 u) {
  const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
  return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}
SUANLI_AVX2_TARGET void swiglu_avx2(const float* gate, const float* up, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, swiglu8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
  if (i < n) {
    alignas(32) float g[8] = {}, u[8] = {}, o[8];
    std::copy(gate + i, gate + n, g);
    std::copy(up + i, up + n, u);
    _mm256_store_ps(o, swiglu8(_mm256_load_ps(g), _mm256_load_ps(u)));
    std::copy(o, o + (n - i), out + i);
  }
}

// Prefetches every cache line of the F16 row of `d` elements at row[r] (K /
// V rows of one head are 2 d bytes, often more than a line, and the rows of
// one sequence lie one slot apart, a stride the hardware does not follow far
// enough ahead for a memory-bound decode batch).
inline void prefetch_row(const uint16_t* const* row, int64_t r, int64_t nk, int64_t d) {
  if (r >= nk) return;
  const char* p = reinterpret_cast<const char*>(row[r]);
  for (int64_t b = 0; b < 2 * d; b += 64) _mm_prefetch(p + b, _MM_HINT_T0);
}
constexpr int64_t kPrefetchKeys = 8;  // how far ahead K / V rows are fetched

// AVX2 weighted values reading F16 rows in place, for decode-sized query
// groups (at most kAvx2DirectMaxQueries; 16 registers hold no value row
// across a prefill chunk's queries, so accumulate_f16_many_avx2 converts
// each row once into a tile for those). The arithmetic is accumulate_x86's:
// per element one fma per key, in key order. A value row is converted once
// for up to four queries.
constexpr int kAvx2DirectMaxQueries = 8;
// NQ queries' accumulators for 16 elements in registers over all keys; the
// rows are walked once per 16 elements (the first walk fetches them).
template <int NQ>
SUANLI_AVX2_TARGET void accumulate_f16_group_x86(const float* p, int64_t ldp, const uint16_t* const* v,
                                                 const int64_t* lim, int64_t d, float* acc) {
  LineStream& ls = line_stream();
  int64_t nk_all = INT64_MAX, nk = 0;
  for (int i = 0; i < NQ; ++i) {
    nk = std::max(nk, lim[i]);
    nk_all = std::min(nk_all, lim[i]);
  }
  for (int64_t e = 0; e < d; e += 16) {
    __m256 a[NQ][2];
    for (int i = 0; i < NQ; ++i) {
      a[i][0] = _mm256_loadu_ps(acc + i * d + e);
      a[i][1] = _mm256_loadu_ps(acc + i * d + e + 8);
    }
    if (e == 0) {
      for (int64_t r0 = 0; r0 < kPrefetchKeys; ++r0) prefetch_row(v, r0, nk, d);
    }
    for (int64_t r = 0; r < nk; ++r) {
      ls.pump();  // one line of the next unit's rows (LineStream)
      const __m256 v0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v[r] + e)));
      const __m256 v1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v[r] + e + 8)));
      if (e == 0) prefetch_row(v, r + kPrefetchKeys, nk, d);
      for (int i = 0; i < NQ; ++i) {
        if (r >= nk_all && r >= lim[i]) continue;
        const __m256 pr = _mm256_broadcast_ss(p + i * ldp + r);
        a[i][0] = _mm256_fmadd_ps(pr, v0, a[i][0]);
        a[i][1] = _mm256_fmadd_ps(pr, v1, a[i][1]);
      }
    }
    for (int i = 0; i < NQ; ++i) {
      _mm256_storeu_ps(acc + i * d + e, a[i][0]);
      _mm256_storeu_ps(acc + i * d + e + 8, a[i][1]);
    }
  }
}
SUANLI_AVX2_TARGET void accumulate_f16_avx2(const float* p, int64_t ldp, int nq, const uint16_t* const* v,
                                            const int64_t* lim, int64_t d, float* acc) {
  for (int i = 0; i < nq; i += 4) {
    const float* pi = p + i * ldp;
    float* ai = acc + i * d;
    switch (std::min(4, nq - i)) {
      case 1: accumulate_f16_group_x86<1>(pi, ldp, v, lim + i, d, ai); break;
      case 2: accumulate_f16_group_x86<2>(pi, ldp, v, lim + i, d, ai); break;
      case 3: accumulate_f16_group_x86<3>(pi, ldp, v, lim + i, d, ai); break;
      default: accumulate_f16_group_x86<4>(pi, ldp, v, lim + i, d, ai); break;
    }
  }
}

// Keys in lanes: the AVX2 set's scores where the CPU has no AVX-512 (with
// AVX-512, row_kernels() keeps dots_x86's tree, which dots_f16_avx512
// matches). A score is one fma chain over the elements in order,
// s = fma(q[e], k[e], s) from s = 0, then times the scale; eight keys share
// a vector, so there is no reduction tree. Keys are first turned into a
// transposed block kt[e][kKlBlock] (32 keys, zero past the last), which
// every query of the call then reads: a decode group and a prefill chunk's
// 48 queries go through the same chain, so a token's scores are the same
// bits in both. Against the tree: at d = 64 a prefill chunk's dot products
// take 8 FMAs per (query, key) instead of ~14 operations.
constexpr int64_t kKlBlock = 32;
constexpr int kKlQueries = 3;  // queries per microkernel call (a GQA group of 3: one token's heads)

template <typename T>
SUANLI_AVX2_TARGET inline __m256 load8_as_f32(const T* p) {
  if constexpr (std::is_same_v<T, float>) {
    return _mm256_loadu_ps(p);
  } else {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
}
SUANLI_AVX2_TARGET inline void transpose8(__m256* r) {
  __m256 t[8], s[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    s[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    s[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    s[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    s[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
  }
}
// kt[e * kKlBlock + j] = rows[j][e] for j < n, 0 for n <= j < kKlBlock
// (d % 8 == 0).
// Also asks for the next block's rows (next[j], j < n_next) into L1, eight
// rows per eight transposed: a long context's keys come from memory, and
// the transposition alone would not have enough misses in flight.
template <typename T>
SUANLI_AVX2_TARGET void transpose_keys(const T* const* rows, int64_t n, int64_t d, float* kt, const T* const* next,
                                       int64_t n_next) {
  for (int64_t j0 = 0; j0 < kKlBlock; j0 += 8) {
    for (int64_t j = j0; j < std::min(j0 + 8, n_next); ++j) {
      const char* p = reinterpret_cast<const char*>(next[j]);
      for (int64_t b = 0; b < static_cast<int64_t>(d * sizeof(T)); b += 64) _mm_prefetch(p + b, _MM_HINT_T0);
    }
    if (j0 >= n) {
      for (int64_t e = 0; e < d; ++e) _mm256_storeu_ps(kt + e * kKlBlock + j0, _mm256_setzero_ps());
      continue;
    }
    for (int64_t e = 0; e < d; e += 8) {
      __m256 x[8];
      for (int j = 0; j < 8; ++j) x[j] = j0 + j < n ? load8_as_f32(rows[j0 + j] + e) : _mm256_setzero_ps();
      transpose8(x);
      for (int j = 0; j < 8; ++j) _mm256_storeu_ps(kt + (e + j) * kKlBlock + j0, x[j]);
    }
  }
}
// Scores of MQ queries against the first 8 * NV keys of a transposed block;
// out[i * ldo + j] for j < n_out.
template <int MQ, int NV>
SUANLI_AVX2_TARGET void dots_kl_tile(const float* const* q, const float* kt, int64_t d, __m256 vs, float* out,
                                     int64_t ldo, int64_t n_out) {
  __m256 a[MQ][NV];
  for (int i = 0; i < MQ; ++i) {
    for (int c = 0; c < NV; ++c) a[i][c] = _mm256_setzero_ps();
  }
  for (int64_t e = 0; e < d; ++e) {
    const float* k = kt + e * kKlBlock;
#pragma GCC unroll 4
    for (int i = 0; i < MQ; ++i) {
      const __m256 qe = _mm256_broadcast_ss(q[i] + e);
#pragma GCC unroll 4
      for (int c = 0; c < NV; ++c) a[i][c] = _mm256_fmadd_ps(qe, _mm256_loadu_ps(k + 8 * c), a[i][c]);
    }
  }
  // Every accumulator through a constant index (so they stay in
  // registers), then the valid columns out.
  alignas(32) float res[MQ][8 * NV];
#pragma GCC unroll 16
  for (int i = 0; i < MQ; ++i) {
#pragma GCC unroll 4
    for (int c = 0; c < NV; ++c) _mm256_store_ps(res[i] + 8 * c, _mm256_mul_ps(a[i][c], vs));
  }
  for (int i = 0; i < MQ; ++i) std::copy(res[i], res[i] + n_out, out + i * ldo);
}
template <int MQ>
SUANLI_AVX2_TARGET void dots_kl_tile_n(const float* const* q, const float* kt, int64_t d, __m256 vs, float* out,
                                       int64_t ldo, int64_t n_out) {
  switch ((n_out + 7) / 8) {
    case 1: dots_kl_tile<MQ, 1>(q, kt, d, vs, out, ldo, n_out); break;
    case 2: dots_kl_tile<MQ, 2>(q, kt, d, vs, out, ldo, n_out); break;
    case 3: dots_kl_tile<MQ, 3>(q, kt, d, vs, out, ldo, n_out); break;
    default: dots_kl_tile<MQ, 4>(q, kt, d, vs, out, ldo, n_out); break;
  }
}
// out[i * ldo + r] = score(q[i], rows[r]) for r < lim[i] (and up to the
// largest limit of the query's group of kKlQueries), d % 8 == 0.
template <typename T>
SUANLI_AVX2_TARGET void dots_kl(const float* const* q, int nq, const T* const* rows, const int64_t* lim, int64_t d,
                                float scale, float* out, int64_t ldo) {
  int64_t nk = 0;
  for (int i = 0; i < nq; ++i) nk = std::max(nk, lim[i]);
  thread_local std::vector<float> buf;
  if (buf.size() < static_cast<size_t>(kKlBlock * d)) buf.resize(static_cast<size_t>(kKlBlock * d));
  float* kt = buf.data();
  const __m256 vs = _mm256_set1_ps(scale);
  for (int64_t k0 = 0; k0 < nk; k0 += kKlBlock) {
    const int64_t nb = std::min(kKlBlock, nk - k0);
    transpose_keys(rows + k0, nb, d, kt, rows + k0 + nb, std::min(kKlBlock, nk - k0 - nb));
    for (int i = 0; i < nq; i += kKlQueries) {
      const int m = std::min(kKlQueries, nq - i);
      int64_t hi = 0;
      for (int j = i; j < i + m; ++j) hi = std::max(hi, lim[j]);
      const int64_t n_out = std::min(nb, hi - k0);
      if (n_out <= 0) continue;
      float* o = out + i * ldo + k0;
      switch (m) {
        case 1: dots_kl_tile_n<1>(q + i, kt, d, vs, o, ldo, n_out); break;
        case 2: dots_kl_tile_n<2>(q + i, kt, d, vs, o, ldo, n_out); break;
        default: dots_kl_tile_n<3>(q + i, kt, d, vs, o, ldo, n_out); break;
      }
    }
  }
}
SUANLI_AVX2_TARGET void dots_kl_f16_avx2(const float* const* q, int nq, const uint16_t* const* k, const int64_t* lim,
                                         int64_t d, float scale, float* out, int64_t ldo) {
  dots_kl(q, nq, k, lim, d, scale, out, ldo);
}
SUANLI_AVX2_TARGET void dots_kl_f32_avx2(const float* const* q, int nq, const float* const* k, const int64_t* lim,
                                         int64_t d, float scale, float* out, int64_t ldo) {
  if (d % 8 == 0) {
    dots_kl(q, nq, k, lim, d, scale, out, ldo);
    return;
  }
  for (int i = 0; i < nq; ++i) {
    for (int64_t r = 0; r < lim[i]; ++r) {
      float s = 0.0f;
      for (int64_t e = 0; e < d; ++e) s = std::fma(q[i][e], k[r][e], s);
      out[i * ldo + r] = s * scale;
    }
  }
}
// The same scores over float rows k[r * d]; any d (d % 8 != 0: the same
// chain, one key at a time).
SUANLI_AVX2_TARGET void dots_kl_x86(const float* q, const float* k, int64_t nk, int64_t d, float scale, float* out) {
  thread_local std::vector<const float*> rows;
  rows.resize(static_cast<size_t>(nk));
  for (int64_t r = 0; r < nk; ++r) rows[r] = k + r * d;
  dots_kl_f32_avx2(&q, 1, rows.data(), &nk, d, scale, out, nk);
}
// Weighted values for more queries than kAvx2DirectMaxQueries (a prefill
// chunk): per block of kKlBlock keys the V rows are converted once into a
// float tile, then MQ queries x 8 NE elements accumulate in registers over
// the block's keys. Per (query, element) the additions are
// accumulate_f16_group_x86's: one fma per key, in key order.
template <int MQ, int NE>
SUANLI_AVX2_TARGET void accumulate_tile(const float* p, int64_t ldp, const float* vt, int64_t n, int64_t d, float* acc) {
  __m256 a[MQ][NE];
  for (int i = 0; i < MQ; ++i) {
    for (int c = 0; c < NE; ++c) a[i][c] = _mm256_loadu_ps(acc + i * d + 8 * c);
  }
  for (int64_t r = 0; r < n; ++r) {
    __m256 v[NE];
#pragma GCC unroll 4
    for (int c = 0; c < NE; ++c) v[c] = _mm256_loadu_ps(vt + r * d + 8 * c);
#pragma GCC unroll 4
    for (int i = 0; i < MQ; ++i) {
      const __m256 pr = _mm256_broadcast_ss(p + i * ldp + r);
#pragma GCC unroll 4
      for (int c = 0; c < NE; ++c) a[i][c] = _mm256_fmadd_ps(pr, v[c], a[i][c]);
    }
  }
  for (int i = 0; i < MQ; ++i) {
    for (int c = 0; c < NE; ++c) _mm256_storeu_ps(acc + i * d + 8 * c, a[i][c]);
  }
}
template <int MQ>
SUANLI_AVX2_TARGET void accumulate_tile_d(const float* p, int64_t ldp, const float* vt, int64_t n, int64_t d,
                                          float* acc) {
  if (n <= 0) return;
  for (int64_t e = 0; e < d; e += 32) {
    switch (std::min<int64_t>(4, (d - e) / 8)) {
      case 1: accumulate_tile<MQ, 1>(p, ldp, vt + e, n, d, acc + e); break;
      case 2: accumulate_tile<MQ, 2>(p, ldp, vt + e, n, d, acc + e); break;
      case 3: accumulate_tile<MQ, 3>(p, ldp, vt + e, n, d, acc + e); break;
      default: accumulate_tile<MQ, 4>(p, ldp, vt + e, n, d, acc + e); break;
    }
  }
}
SUANLI_AVX2_TARGET void accumulate_f16_many_avx2(const float* p, int64_t ldp, int nq, const uint16_t* const* v,
                                                 const int64_t* lim, int64_t d, float* acc) {
  if (nq <= kAvx2DirectMaxQueries) {
    accumulate_f16_avx2(p, ldp, nq, v, lim, d, acc);
    return;
  }
  int64_t nk = 0;
  for (int i = 0; i < nq; ++i) nk = std::max(nk, lim[i]);
  thread_local std::vector<float> buf;
  if (buf.size() < static_cast<size_t>(kKlBlock * d)) buf.resize(static_cast<size_t>(kKlBlock * d));
  float* vt = buf.data();
  for (int64_t k0 = 0; k0 < nk; k0 += kKlBlock) {
    const int64_t nb = std::min(kKlBlock, nk - k0);
    for (int64_t r = 0; r < nb; ++r) f16_to_f32_x86(v[k0 + r], vt + r * d, d);
    for (int i = 0; i < nq; i += kKlQueries) {
      const int m = std::min(kKlQueries, nq - i);
      // Keys every query of the group sees, then each query's own rest.
      int64_t lo = INT64_MAX;
      for (int j = i; j < i + m; ++j) lo = std::min(lo, lim[j]);
      const int64_t n_all = std::clamp<int64_t>(lo - k0, 0, nb);
      const float* pi = p + i * ldp + k0;
      switch (m) {
        case 1: accumulate_tile_d<1>(pi, ldp, vt, n_all, d, acc + i * d); break;
        case 2: accumulate_tile_d<2>(pi, ldp, vt, n_all, d, acc + i * d); break;
        default: accumulate_tile_d<3>(pi, ldp, vt, n_all, d, acc + i * d); break;
      }
      for (int j = i; j < i + m; ++j) {
        const int64_t n_j = std::clamp<int64_t>(lim[j] - k0, 0, nb);
        if (n_j > n_all) {
          accumulate_tile_d<1>(p + j * ldp + k0 + n_all, ldp, vt + n_all * d, n_j - n_all, d, acc + j * d);
        }
      }
    }
  }
}

// AVX-512 kernels reading F16 rows in place. Their arithmetic is the AVX2
// kernels' above: lane l of one 16-lane FMA accumulator takes elements
// e = l (mod 16) in order, then the same tree (l += l+8, +4, +2, +1), then
// the scale; accumulate is one FMA per element per key in key order.
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns inside its own avx512fintrin.h (_mm512_undefined_*).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#define SUANLI_AVX512_TARGET __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,f16c,fma")))
SUANLI_AVX512_TARGET inline float tree_sum16(__m512 a) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));   // l += l+8
  const __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));      // l += l+4
  const __m128 p = _mm_add_ps(q, _mm_movehl_ps(q, q));                                      // l += l+2
  return _mm_cvtss_f32(_mm_add_ss(p, _mm_movehdup_ps(p)));                                  // l += l+1
}
// exp(x) for x <= 0 (softmax after subtracting the max): x = n ln2 + r,
// |r| <= ln2/2, exp(r) by a degree-6 polynomial (relative error ~2e-7,
// about 2 ulp), times 2^n; below -87.3 the result is 0.
SUANLI_AVX512_TARGET inline __m512 exp_neg16(__m512 x) {
  const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
  const __m512 ln2_hi = _mm512_set1_ps(0.693359375f), ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, ln2_hi, x);
  r = _mm512_fnmadd_ps(n, ln2_lo, r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512 e = _mm512_scalef_ps(p, n);
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_GE_OQ), e);
}
// out = silu(gate) * up = gate / (1 + exp(-gate)) * up, 16 at a time; the
// exponential as above (exp(-g) over 88.7 is inf, giving -0 as it should).
SUANLI_AVX512_TARGET inline __m512 swiglu16(__m512 g, __m512 u) {
  const __m512 e = exp_neg16(_mm512_sub_ps(_mm512_setzero_ps(), g));
  return _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), u);
}
SUANLI_AVX512_TARGET void swiglu_avx512(const float* gate, const float* up, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, swiglu16(_mm512_loadu_ps(gate + i), _mm512_loadu_ps(up + i)));
  if (i < n) {
    const __mmask16 k = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(out + i, k, swiglu16(_mm512_maskz_loadu_ps(k, gate + i), _mm512_maskz_loadu_ps(k, up + i)));
  }
}
// Sum: 16 lane partial sums (lane = i mod 16, in order), then the tree.
SUANLI_AVX512_TARGET float softmax_exp_avx512(float* sc, int64_t n, float m) {
  const __m512 vm = _mm512_set1_ps(m);
  __m512 sum = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 e = exp_neg16(_mm512_sub_ps(_mm512_loadu_ps(sc + i), vm));
    _mm512_storeu_ps(sc + i, e);
    sum = _mm512_add_ps(sum, e);
  }
  if (i < n) {
    const __mmask16 k = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 e = _mm512_maskz_mov_ps(k, exp_neg16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, sc + i), vm)));
    _mm512_mask_storeu_ps(sc + i, k, e);
    sum = _mm512_add_ps(sum, e);
  }
  return tree_sum16(sum);
}
// tree_sum16 of four vectors at once, times scale: the same additions in
// the same pairs (l + l+8, + l+4, + l+2, + l+1), lanes 0, 4, 8, 12 of the
// result hold keys 0..3.
SUANLI_AVX512_TARGET inline __m512 tree_sum16_x4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  const __m512 h01 = _mm512_add_ps(_mm512_shuffle_f32x4(a0, a1, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_f32x4(a0, a1, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 h23 = _mm512_add_ps(_mm512_shuffle_f32x4(a2, a3, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_f32x4(a2, a3, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 q = _mm512_add_ps(_mm512_shuffle_f32x4(h01, h23, _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm512_shuffle_f32x4(h01, h23, _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512 p = _mm512_add_ps(q, _mm512_shuffle_ps(q, q, _MM_SHUFFLE(3, 2, 3, 2)));
  return _mm512_add_ps(p, _mm512_shuffle_ps(p, p, _MM_SHUFFLE(1, 1, 1, 1)));
}
SUANLI_AVX512_TARGET inline __m512 load_f16x16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
SUANLI_AVX512_TARGET void dots_f16_avx512(const float* const* q, int nq, const uint16_t* const* k, const int64_t* lim,
                                          int64_t d, float scale, float* out, int64_t ldo) {
  const int64_t nv = d / 16;
  int64_t nk = 0, nk_all = INT64_MAX;
  for (int i = 0; i < nq; ++i) {
    nk = std::max(nk, lim[i]);
    nk_all = std::min(nk_all, lim[i]);
  }
  for (int64_t r0 = 0; r0 < kPrefetchKeys; ++r0) prefetch_row(k, r0, nk, d);
  int64_t r = 0;
  // Four keys at a time while every query sees all four (d <= 64 keeps
  // the four rows in registers).
  if (nv <= 4) {
    const __m512 vs = _mm512_set1_ps(scale);
    const __m512i pick = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    for (; r + 4 <= nk_all; r += 4) {
      __m512 kr[4][4];
      for (int j = 0; j < 4; ++j) {
        for (int64_t c = 0; c < nv; ++c) kr[j][c] = load_f16x16(k[r + j] + 16 * c);
      }
      for (int j = 0; j < 4; ++j) prefetch_row(k, r + kPrefetchKeys + j, nk, d);
      for (int i = 0; i < nq; ++i) {
        __m512 a[4];
        for (int j = 0; j < 4; ++j) a[j] = _mm512_setzero_ps();
        for (int64_t c = 0; c < nv; ++c) {
          const __m512 qc = _mm512_loadu_ps(q[i] + 16 * c);
          for (int j = 0; j < 4; ++j) a[j] = _mm512_fmadd_ps(qc, kr[j][c], a[j]);
        }
        const __m512 t = _mm512_mul_ps(tree_sum16_x4(a[0], a[1], a[2], a[3]), vs);
        _mm_storeu_ps(out + i * ldo + r, _mm512_castps512_ps128(_mm512_permutexvar_ps(pick, t)));
      }
    }
  }
  for (; r < nk; ++r) {
    __m512 kr[8];
    for (int64_t c = 0; c < nv; ++c) kr[c] = load_f16x16(k[r] + 16 * c);
    prefetch_row(k, r + kPrefetchKeys, nk, d);
    for (int i = 0; i < nq; ++i) {
      if (r >= lim[i]) continue;
      __m512 a = _mm512_setzero_ps();
      for (int64_t c = 0; c < nv; ++c) a = _mm512_fmadd_ps(_mm512_loadu_ps(q[i] + 16 * c), kr[c], a);
      out[i * ldo + r] = tree_sum16(a) * scale;
    }
  }
}
// Accumulators of NQ queries x NV vectors held in registers over all keys.
template <int NQ, int NV>
SUANLI_AVX512_TARGET void accumulate_f16_regs(const float* p, int64_t ldp, const uint16_t* const* v, const int64_t* lim,
                                              float* acc) {
  constexpr int64_t d = NV * 16;
  __m512 a[NQ][NV];
  int64_t nk = 0;
  for (int i = 0; i < NQ; ++i) {
    nk = std::max(nk, lim[i]);
    for (int c = 0; c < NV; ++c) a[i][c] = _mm512_loadu_ps(acc + i * d + 16 * c);
  }
  for (int64_t r0 = 0; r0 < kPrefetchKeys; ++r0) prefetch_row(v, r0, nk, d);
  for (int64_t r = 0; r < nk; ++r) {
    __m512 vr[NV];
    for (int c = 0; c < NV; ++c) vr[c] = load_f16x16(v[r] + 16 * c);
    prefetch_row(v, r + kPrefetchKeys, nk, d);
    for (int i = 0; i < NQ; ++i) {
      if (r >= lim[i]) continue;
      const __m512 pr = _mm512_set1_ps(p[i * ldp + r]);
      for (int c = 0; c < NV; ++c) a[i][c] = _mm512_fmadd_ps(pr, vr[c], a[i][c]);
    }
  }
  for (int i = 0; i < NQ; ++i) {
    for (int c = 0; c < NV; ++c) _mm512_storeu_ps(acc + i * d + 16 * c, a[i][c]);
  }
}
SUANLI_AVX512_TARGET void accumulate_f16_avx512(const float* p, int64_t ldp, int nq, const uint16_t* const* v,
                                                const int64_t* lim, int64_t d, float* acc) {
  const int64_t nv = d / 16;
  // Register-resident accumulators for decode-sized groups (the same fma
  // per element per key, in key order, as the loop below).
  // Prefill-sized groups go through it three (two) queries at a time:
  // converting a value row once per three queries costs less than loading
  // and storing every query's accumulators per key.
  if (nv == 4) {
    for (int i = 0; i < nq; i += 3) {
      const float* pi = p + i * ldp;
      float* ai = acc + i * d;
      switch (std::min(3, nq - i)) {
        case 1: accumulate_f16_regs<1, 4>(pi, ldp, v, lim + i, ai); break;
        case 2: accumulate_f16_regs<2, 4>(pi, ldp, v, lim + i, ai); break;
        default: accumulate_f16_regs<3, 4>(pi, ldp, v, lim + i, ai); break;
      }
    }
    return;
  }
  if (nv == 8) {
    for (int i = 0; i < nq; i += 2) {
      if (nq - i == 1) {
        accumulate_f16_regs<1, 8>(p + i * ldp, ldp, v, lim + i, acc + i * d);
      } else {
        accumulate_f16_regs<2, 8>(p + i * ldp, ldp, v, lim + i, acc + i * d);
      }
    }
    return;
  }
  int64_t nk = 0;
  for (int i = 0; i < nq; ++i) nk = std::max(nk, lim[i]);
  for (int64_t r = 0; r < nk; ++r) {
    __m512 vr[8];
    for (int64_t c = 0; c < nv; ++c) vr[c] = load_f16x16(v[r] + 16 * c);
    prefetch_row(v, r + kPrefetchKeys, nk, d);
    for (int i = 0; i < nq; ++i) {
      if (r >= lim[i]) continue;
      const __m512 pr = _mm512_set1_ps(p[i * ldp + r]);
      float* a = acc + i * d;
      for (int64_t c = 0; c < nv; ++c) {
        _mm512_storeu_ps(a + 16 * c, _mm512_fmadd_ps(pr, vr[c], _mm512_loadu_ps(a + 16 * c)));
      }
    }
  }
}
#endif

}  // namespace

const RowKernels* avx2_row_kernels() {
#if defined(__x86_64__)
  static const std::optional<RowKernels> k = []() -> std::optional<RowKernels> {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !cpu_has_f16c() || !__builtin_cpu_supports("fma")) return std::nullopt;
    return RowKernels{f16_to_f32_x86,   f32_to_f16_x86,           dots_kl_x86,      accumulate_x86,
                      dots_kl_f16_avx2, accumulate_f16_many_avx2, softmax_exp_avx2, swiglu_avx2,
                      dots_kl_f32_avx2};
  }();
  return k ? &*k : nullptr;
#else
  return nullptr;
#endif
}

const RowKernels& row_kernels() {
  static const RowKernels portable{f16_to_f32_portable, f32_to_f16_portable, dots_portable,   accumulate_portable,
                                   nullptr,             nullptr,             softmax_exp_portable, swiglu_portable};
  static const RowKernels hwy = hwy_row_kernels(f32_to_f16_portable);
  const std::string_view isa = mm::selected_isa();
  if (isa == "portable") return portable;
#if defined(__x86_64__)
  static const std::optional<RowKernels> x86 = []() -> std::optional<RowKernels> {
    const RowKernels* avx2 = avx2_row_kernels();
    if (avx2 == nullptr) return std::nullopt;
    RowKernels k = *avx2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw")) {
      k.dots = dots_x86;  // the tree that dots_f16_avx512 follows
      k.dots_f32_rows = nullptr;
      k.dots_f16 = dots_f16_avx512;
      k.accumulate_f16 = accumulate_f16_avx512;
      k.softmax_exp = softmax_exp_avx512;
      k.swiglu = swiglu_avx512;
    }
    return k;
  }();
  if (x86 && isa != "hwy") return *x86;
#endif
  return hwy;
}

void embed(ThreadPool& pool, const WeightView& table, const int32_t* ids, int64_t n_tokens, float* out) {
  pool.parallel_for(n_tokens, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      SUANLI_CHECK(ids[t] >= 0 && ids[t] < table.n_rows);
      const uint8_t* row = static_cast<const uint8_t*>(table.data) + ids[t] * table.row_stride;
      SUANLI_CHECK(quant::dequantize(table.type, row, out + t * table.n_cols, table.n_cols).ok());
    }
  });
}

void rms_norm(ThreadPool& pool, const float* x, const float* w, int64_t rows, int64_t n, float eps, float* out) {
  auto body = [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * n;
      // Fixed 8-lane partial sums: vectorizable and order-stable.
      float part[8] = {};
      int64_t i = 0;
      for (; i + 8 <= n; i += 8) {
        for (int l = 0; l < 8; ++l) part[l] += xr[i + l] * xr[i + l];
      }
      float ss = 0;
      for (int l = 0; l < 8; ++l) ss += part[l];
      for (; i < n; ++i) ss += xr[i] * xr[i];
      const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
      float* o = out + r * n;
      for (int64_t j = 0; j < n; ++j) o[j] = xr[j] * scale * w[j];
    }
  };
  if (rows * n < 16384) {
    body(0, rows);
  } else {
    pool.parallel_for(rows, 1, body);
  }
}

void rope(ThreadPool& pool, Workspace& ws, float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim,
          const int32_t* positions, const RopeParams& p) {
  SUANLI_CHECK(p.n_dims % 2 == 0 && p.n_dims <= head_dim);
  const int64_t half = p.n_dims / 2;
  // The angles in double, as the reference computes them; cached across
  // calls with the same positions and parameters (Workspace::RopeTable).
  Workspace::RopeTable& rt = ws.rope;
  const bool same = rt.n_dims == p.n_dims && rt.freq_base == p.freq_base && rt.freq_scale == p.freq_scale &&
                    static_cast<int64_t>(rt.positions.size()) == n_tokens &&
                    std::equal(positions, positions + n_tokens, rt.positions.begin()) &&
                    (p.freq_factors ? rt.factors.size() == static_cast<size_t>(half) &&
                                          std::equal(p.freq_factors, p.freq_factors + half, rt.factors.begin())
                                    : rt.factors.empty());
  if (!same) {
    rt.n_dims = p.n_dims;
    rt.freq_base = p.freq_base;
    rt.freq_scale = p.freq_scale;
    rt.positions.assign(positions, positions + n_tokens);
    rt.factors.assign(p.freq_factors ? p.freq_factors : nullptr, p.freq_factors ? p.freq_factors + half : nullptr);
    rt.cs.resize(static_cast<size_t>(n_tokens * half));
    rt.sn.resize(rt.cs.size());
    std::vector<double> inv(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) inv[i] = std::pow(static_cast<double>(p.freq_base), -2.0 * i / p.n_dims);
    pool.parallel_for(n_tokens, 16, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const double pos = static_cast<double>(positions[t]) * p.freq_scale;
        for (int64_t i = 0; i < half; ++i) {
          double theta = pos * inv[i];
          if (p.freq_factors) theta /= p.freq_factors[i];
          rt.cs[t * half + i] = static_cast<float>(std::cos(theta));
          rt.sn[t * half + i] = static_cast<float>(std::sin(theta));
        }
      }
    });
  }
  pool.parallel_for(n_tokens, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const float* cs = rt.cs.data() + t * half;
      const float* sn = rt.sn.data() + t * half;
      for (int64_t h = 0; h < n_heads; ++h) {
        float* xh = x + (t * n_heads + h) * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const int64_t a = p.neox ? i : 2 * i;
          const int64_t c = p.neox ? i + half : 2 * i + 1;
          const float x0 = xh[a], x1 = xh[c];
          xh[a] = x0 * cs[i] - x1 * sn[i];
          xh[c] = x0 * sn[i] + x1 * cs[i];
        }
      }
    }
  });
}

void kv_write(ThreadPool& pool, const KvLayerView& kv, const float* k, const float* v, int64_t n_tokens,
              const int32_t* slots) {
  (void)pool;
  const int64_t row = kv.n_kv_heads * kv.head_dim;
  const RowKernels& rk = row_kernels();
  for (int64_t t = 0; t < n_tokens; ++t) {
    SUANLI_CHECK(slots[t] >= 0 && slots[t] < kv.n_blocks * kv.block_size);
    const int64_t base = static_cast<int64_t>(slots[t]) * row;
    if (kv.type == GgmlType::kF32) {
      std::memcpy(static_cast<float*>(kv.k) + base, k + t * row, row * sizeof(float));
      std::memcpy(static_cast<float*>(kv.v) + base, v + t * row, row * sizeof(float));
    } else {
      rk.f32_to_f16(k + t * row, static_cast<uint16_t*>(kv.k) + base, row);
      rk.f32_to_f16(v + t * row, static_cast<uint16_t*>(kv.v) + base, row);
    }
  }
}

// Attention. A query's keys are cut into segments of kSegment keys at fixed
// positions (keys 0..255, 256..511, ... of its sequence). Work items are
// (sequence, chunk of up to kQueryChunk of its tokens, segment): all heads of
// the chunk's tokens against that segment's keys, one kv head at a time (the
// heads of a kv head's group share each key / value row). Per query and
// segment the arithmetic is fixed: scores by one dot-product kernel in key
// order, the segment's max m_s, exp(score - m_s) and their sum l_s in key
// order, then p·v accumulated in key order (o_s). Segments are combined in
// order: m = max m_s, l = sum l_s exp(m_s - m), o = sum o_s exp(m_s - m),
// out = o / l (one segment: out = o_s / l_s, the same bits). None of it
// depends on the chunking, the batch or the thread count, so a token gives
// the same bits in a prefill chunk and as a lone decode step.
//
// Why segments: a long context's decode step is one query per head over
// thousands of keys; segments spread it over every thread (a sequence has
// only n_kv_heads kv heads) and each item streams one contiguous run of
// cache slots, all heads, instead of one head's rows out of every slot.
namespace {
constexpr int64_t kQueryChunk = 16;
constexpr int64_t kKeyBlock = 32;
constexpr int64_t kSegment = 256;
// Units of chunks up to this many tokens queue the next unit's rows.
constexpr int64_t kStreamMaxTokens = 2;
}  // namespace

void attention(ThreadPool& pool, Workspace& ws, const float* q, int64_t n_tokens, int64_t n_heads,
               const KvLayerView& kv, const SeqSlice* seqs, int32_t n_seqs, float scale, float* out) {
  SUANLI_CHECK(n_heads % kv.n_kv_heads == 0);
  const int64_t group = n_heads / kv.n_kv_heads;
  const int64_t d = kv.head_dim;
  const RowKernels& rk = row_kernels();
  struct Item {
    int32_t seq, j0, nj, seg;
    int32_t n_segs;       // segments of the chunk (its last query's)
    int64_t partial = 0;  // first float of this item's partials (n_segs > 1)
  };
  std::vector<Item> items;  // small: one per (sequence, chunk, segment)
  const int64_t partial_floats = n_heads * kQueryChunk * (d + 2);  // per item
  int64_t n_partial = 0;
  for (int32_t s = 0; s < n_seqs; ++s) {
    const SeqSlice& sq = seqs[s];
    SUANLI_CHECK(sq.first_token >= 0 && sq.first_token + sq.n_tokens <= n_tokens);
    SUANLI_CHECK((sq.n_past + sq.n_tokens + kv.block_size - 1) / kv.block_size <= sq.n_blocks);
    for (int32_t j0 = 0; j0 < sq.n_tokens; j0 += kQueryChunk) {
      const int32_t nj = static_cast<int32_t>(std::min<int64_t>(kQueryChunk, sq.n_tokens - j0));
      const int64_t keys_total = sq.n_past + j0 + nj;
      const int32_t n_segs = static_cast<int32_t>((keys_total + kSegment - 1) / kSegment);
      for (int32_t g = 0; g < n_segs; ++g) {
        items.push_back({s, j0, nj, g, n_segs, n_segs > 1 ? n_partial : 0});
        if (n_segs > 1) n_partial += partial_floats;
      }
    }
  }
  if (ws.attn_partials.size() < static_cast<size_t>(n_partial)) ws.attn_partials.resize(n_partial);
  float* partials = ws.attn_partials.data();
  const int64_t max_q = group * kQueryChunk;
  // Per thread: scores [max_q][kSegment], key/value tile [kKeyBlock][d],
  // accumulators [max_q][d].
  const size_t need = static_cast<size_t>(max_q * kSegment + kKeyBlock * d + max_q * d);
  const int64_t n_items = static_cast<int64_t>(items.size());
  // Work units: whole items, or (item, kv head) pairs when there are too
  // few items to keep every thread busy (one short sequence decoding: one
  // item). Heads are independent, so either way gives the same bits.
  const int64_t heads_per_unit = n_items < 2 * pool.size() ? 1 : kv.n_kv_heads;
  const int64_t units_per_item = kv.n_kv_heads / heads_per_unit;
  const int64_t n_units = n_items * units_per_item;
  // SUANLI_CPU_KV_STREAM=0 turns the background stream off (A/B runs).
  static const bool stream = [] {
    const char* e = std::getenv("SUANLI_CPU_KV_STREAM");
    return !(e && std::string_view(e) == "0");
  }();
  // Numbers every call (a thread's stream names the call it was queued in).
  static std::atomic<uint64_t> calls{0};
  const uint64_t call = calls.fetch_add(1, std::memory_order_relaxed) + 1;
  // The cache slots of keys k_lo .. k_lo + n - 1 of a sequence, walked
  // block by block (no division per key).
  auto fill_slots = [&](const SeqSlice& sq, int64_t k_lo, int64_t n, std::vector<int64_t>& slots) {
    slots.resize(static_cast<size_t>(n));
    int64_t blk = k_lo / kv.block_size, in = k_lo % kv.block_size;
    for (int64_t& slot : slots) {
      slot = static_cast<int64_t>(sq.block_table[blk]) * kv.block_size + in;
      if (++in == kv.block_size) {
        in = 0;
        ++blk;
      }
    }
  };
  // The K rows, then the V rows, of work unit u's kv heads over its
  // segment's slots, into a LineStream.
  const size_t elt = kv.type == GgmlType::kF32 ? 4 : 2;
  auto stream_unit = [&](int64_t u, LineStream& ls) {
    const Item& item = items[u / units_per_item];
    const SeqSlice& sq = seqs[item.seq];
    const int64_t h_begin = u % units_per_item * heads_per_unit;
    const int64_t k_lo = item.seg * kSegment;
    const int64_t k_hi = std::min<int64_t>(k_lo + kSegment, sq.n_past + item.j0 + item.nj);
    fill_slots(sq, k_lo, k_hi - k_lo, ls.slots);
    ls.start_heads(call, u, kv.k, kv.v, kv.n_kv_heads, static_cast<size_t>(d) * elt, h_begin, heads_per_unit);
  };
  auto body = [&](int64_t u_begin, int64_t u_end) {
    // Scratch per thread (items are claimed by whichever thread is free).
    thread_local std::vector<float> scratch;
    if (scratch.size() < need) scratch.resize(need);
    float* scores = scratch.data();
    float* tile = scores + max_q * kSegment;
    float* acc = tile + kKeyBlock * d;
    thread_local std::vector<const uint16_t*> krows, vrows;
    thread_local std::vector<const float*> qrows;
    thread_local std::vector<int64_t> lims;
    for (int64_t u = u_begin; u < u_end; ++u) {
      const Item& item = items[u / units_per_item];
      const int64_t h_begin = u % units_per_item * heads_per_unit, h_end = h_begin + heads_per_unit;
      const SeqSlice& sq = seqs[item.seq];
      const int64_t k_lo = item.seg * kSegment;
      const int64_t k_hi = std::min<int64_t>(k_lo + kSegment, sq.n_past + item.j0 + item.nj);
      const int64_t nk = k_hi - k_lo;
      const int64_t nq = group * item.nj;
      thread_local std::vector<int64_t> seg_slots;
      fill_slots(sq, k_lo, nk, seg_slots);
      auto slot_of = [&](int64_t key) { return seg_slots[key - k_lo]; };
      // Keys of this segment that query qi (token j0 + qi / group) sees.
      auto lim_of = [&](int64_t qi) {
        return std::clamp<int64_t>(sq.n_past + item.j0 + qi / group + 1 - k_lo, 0, nk);
      };
      // F16 rows by pointer where the kernels allow (the kernels convert
      // them, in registers or into their own blocks): bit-identical to the
      // tile path.
      const bool direct = kv.type == GgmlType::kF16 && rk.dots_f16 && d % 16 == 0 && d <= 128;
      // With several kv heads, the segment's slots (the K and V rows of
      // this unit's heads) are asked for into L2 before the heads below
      // read them: each head reads a part of every slot, and a long
      // context's keys are far from any cache. Lines the previous unit's
      // kernels already asked for (LineStream) are skipped; the rest go in
      // one burst. (One kv head: its rows are whole slots in address order,
      // which the hardware prefetchers follow.) Then the rows of the unit
      // this thread takes next are queued for this unit's kernels to pump:
      // the next unit of its claimed range, else the next piece of its own
      // run; none when it would steal, or when that unit is a prefill
      // chunk (its arithmetic hides its misses).
      {
        LineStream& ls = line_stream();
        if (kv.n_kv_heads > 1) {
          if (!ls.holds(call, u)) stream_unit(u, ls);
          ls.drain();
        }
        ls.clear();
        const int64_t next = u + 1 < u_end ? u + 1 : n_units > 1 ? pool.next_own_begin() : -1;
        if (stream && next >= 0 && next < n_units && items[next / units_per_item].nj <= kStreamMaxTokens) {
          stream_unit(next, ls);
        }
      }
      for (int64_t h = h_begin; h < h_end; ++h) {
        // Query qi = jj * group + g: token j0 + jj, head h * group + g.
        auto query = [&](int64_t qi) {
          const int64_t t = sq.first_token + item.j0 + qi / group;
          return q + (t * n_heads + h * group + qi % group) * d;
        };
        auto load_tile = [&](const void* pool_base, int64_t k0, int64_t n) {
          for (int64_t r = 0; r < n; ++r) {
            const int64_t idx = (slot_of(k0 + r) * kv.n_kv_heads + h) * d;
            if (kv.type == GgmlType::kF32) {
              std::memcpy(tile + r * d, static_cast<const float*>(pool_base) + idx, d * sizeof(float));
            } else {
              rk.f16_to_f32(static_cast<const uint16_t*>(pool_base) + idx, tile + r * d, d);
            }
          }
        };
        // The query rows and key limits for the by-pointer kernels.
        auto fill_queries = [&] {
          qrows.resize(nq);
          lims.resize(nq);
          for (int64_t qi = 0; qi < nq; ++qi) {
            qrows[qi] = query(qi);
            lims[qi] = lim_of(qi);
          }
        };
        if (direct) {
          krows.resize(nk);
          vrows.resize(nk);
          for (int64_t r = 0; r < nk; ++r) {
            const int64_t idx = (slot_of(k_lo + r) * kv.n_kv_heads + h) * d;
            krows[r] = static_cast<const uint16_t*>(kv.k) + idx;
            vrows[r] = static_cast<const uint16_t*>(kv.v) + idx;
          }
          fill_queries();
          rk.dots_f16(qrows.data(), static_cast<int>(nq), krows.data(), lims.data(), d, scale, scores, kSegment);
        } else if (kv.type == GgmlType::kF32 && rk.dots_f32_rows) {
          thread_local std::vector<const float*> frows;
          frows.resize(nk);
          for (int64_t r = 0; r < nk; ++r) {
            frows[r] = static_cast<const float*>(kv.k) + (slot_of(k_lo + r) * kv.n_kv_heads + h) * d;
          }
          fill_queries();
          rk.dots_f32_rows(qrows.data(), static_cast<int>(nq), frows.data(), lims.data(), d, scale, scores, kSegment);
        } else {
          for (int64_t k0 = 0; k0 < nk; k0 += kKeyBlock) {
            const int64_t nb = std::min(kKeyBlock, nk - k0);
            load_tile(kv.k, k_lo + k0, nb);
            if (rk.dots_f32_rows) {
              // Every query against the tile in one call (the AVX2 set
              // transposes a block once per call, not once per query).
              thread_local std::vector<const float*> trows;
              trows.resize(nb);
              for (int64_t r = 0; r < nb; ++r) trows[r] = tile + r * d;
              fill_queries();
              for (int64_t qi = 0; qi < nq; ++qi) lims[qi] = std::clamp<int64_t>(lim_of(qi) - k0, 0, nb);
              rk.dots_f32_rows(qrows.data(), static_cast<int>(nq), trows.data(), lims.data(), d, scale,
                               scores + k0, kSegment);
              continue;
            }
            for (int64_t qi = 0; qi < nq; ++qi) {
              const int64_t lim = std::min(nb, lim_of(qi) - k0);
              if (lim > 0) rk.dots(query(qi), tile, lim, d, scale, scores + qi * kSegment + k0);
            }
          }
        }
        // Softmax weights (unnormalized) and their sums, per query.
        float mx[kQueryChunk * 64], denom[kQueryChunk * 64];
        SUANLI_CHECK(nq <= kQueryChunk * 64);
        for (int64_t qi = 0; qi < nq; ++qi) {
          float* sc = scores + qi * kSegment;
          const int64_t n = lim_of(qi);
          // The max in 16 independent lanes (the same value as in key
          // order: max is exact), so the compiler vectorizes it.
          float lane[16];
          std::fill(lane, lane + 16, -INFINITY);
          int64_t key = 0;
          for (; key + 16 <= n; key += 16) {
            for (int l = 0; l < 16; ++l) lane[l] = sc[key + l] > lane[l] ? sc[key + l] : lane[l];
          }
          for (; key < n; ++key) lane[0] = sc[key] > lane[0] ? sc[key] : lane[0];
          float m = -INFINITY;
          for (int l = 0; l < 16; ++l) m = std::max(m, lane[l]);
          mx[qi] = m;
          denom[qi] = n > 0 ? rk.softmax_exp(sc, n, m) : 0.0f;
        }
        // Weighted values.
        std::fill(acc, acc + nq * d, 0.0f);
        if (direct) {
          rk.accumulate_f16(scores, kSegment, static_cast<int>(nq), vrows.data(), lims.data(), d, acc);
        } else {
          for (int64_t k0 = 0; k0 < nk; k0 += kKeyBlock) {
            const int64_t nb = std::min(kKeyBlock, nk - k0);
            load_tile(kv.v, k_lo + k0, nb);
            for (int64_t qi = 0; qi < nq; ++qi) {
              const int64_t lim = std::min(nb, lim_of(qi) - k0);
              if (lim > 0) rk.accumulate(scores + qi * kSegment + k0, tile, lim, d, acc + qi * d);
            }
          }
        }
        for (int64_t qi = 0; qi < nq; ++qi) {
          const int64_t head = h * group + qi % group;
          if (item.n_segs == 1) {
            const int64_t t = sq.first_token + item.j0 + qi / group;
            float* oh = out + (t * n_heads + head) * d;
            const float inv = 1.0f / denom[qi];
            for (int64_t e = 0; e < d; ++e) oh[e] = acc[qi * d + e] * inv;
          } else {
            // Partials of (token jj, head): max, sum, then d weighted values.
            float* pp = partials + item.partial + ((qi / group) * n_heads + head) * (d + 2);
            pp[0] = mx[qi];
            pp[1] = denom[qi];
            std::copy(acc + qi * d, acc + qi * d + d, pp + 2);
          }
        }
      }
    }
  };
  if (n_units == 1) {
    body(0, 1);
  } else {
    // Units differ in cost (segments and sequences of different lengths):
    // claimed one by one, up to 32 per thread, so no thread idles behind a
    // long chunk.
    pool.parallel_for(n_units, 1, body, 32);
  }
  if (n_partial == 0) return;
  // Combine the segments of every multi-segment chunk, in segment order.
  std::vector<int64_t> firsts;  // first item of each such chunk
  for (int64_t it = 0; it < n_items; ++it) {
    if (items[it].n_segs > 1 && items[it].seg == 0) firsts.push_back(it);
  }
  pool.parallel_for(static_cast<int64_t>(firsts.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      const Item& first = items[firsts[c]];
      const SeqSlice& sq = seqs[first.seq];
      for (int64_t jj = 0; jj < first.nj; ++jj) {
        for (int64_t head = 0; head < n_heads; ++head) {
          const int64_t off = (jj * n_heads + head) * (d + 2);
          auto part = [&](int32_t g) { return partials + items[firsts[c] + g].partial + off; };
          float m = -INFINITY;
          for (int32_t g = 0; g < first.n_segs; ++g) m = std::max(m, part(g)[0]);
          float* oh = out + ((sq.first_token + first.j0 + jj) * n_heads + head) * d;
          // The first segment with a visible key starts the sums (so one
          // such segment gives o_s * 1 / l_s, exactly the one-segment path).
          float l = 0.0f;
          bool started = false;
          for (int32_t g = 0; g < first.n_segs; ++g) {
            const float* pg = part(g);
            if (pg[1] == 0.0f) continue;  // no key of this segment is visible
            const float w = std::exp(pg[0] - m);
            if (!started) {
              l = pg[1] * w;
              for (int64_t x = 0; x < d; ++x) oh[x] = pg[2 + x] * w;
              started = true;
            } else {
              l += pg[1] * w;
              for (int64_t x = 0; x < d; ++x) oh[x] += pg[2 + x] * w;
            }
          }
          const float inv = 1.0f / l;
          for (int64_t x = 0; x < d; ++x) oh[x] *= inv;
        }
      }
    }
  });
}

void swiglu(ThreadPool& pool, const float* gate, const float* up, int64_t n, float* out) {
  const RowKernels& rk = row_kernels();
  auto body = [&](int64_t b, int64_t e) { rk.swiglu(gate + b, up + b, e - b, out + b); };
  if (n < 32768) {
    body(0, n);
  } else {
    pool.parallel_for(n, 1024, body);
  }
}

void add(ThreadPool& pool, const float* a, const float* b, int64_t n, float* out) {
  auto body = [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) out[i] = a[i] + b[i];
  };
  if (n < 65536) {
    body(0, n);
  } else {
    pool.parallel_for(n, 1024, body);
  }
}

}  // namespace suanli::cpu
