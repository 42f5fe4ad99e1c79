// matmul kernels for x86-64 with AVX-512 VNNI (Intel Ice Lake and later, AMD
// Zen 4 and later). Built with its own -m flags (src/CMakeLists.txt) and
// called only after matmul.cc has checked the CPU supports them.
//
// Everything here sits in an anonymous namespace and uses no inline
// functions or templates from other headers except intrinsics: an
// out-of-line copy of a shared inline function compiled with AVX-512 could
// otherwise be picked by the linker for the baseline code.
//
// The integer kernel: a 4-row x 4-token tile keeps 16 float accumulators of
// 16 lanes in registers; per 64 elements each (row, token) costs one
// vpdpbusd, one convert, one multiply by the activation's lane scales and
// one FMA with the weight's lane scales. The weight rows (4 zmm) are loaded
// once per step and reused across the 4 tokens, the tokens' codes across
// the 4 rows. The tile shape is a template parameter; the arithmetic of one
// output is the same for every shape (batch invariance).
#include "core/quant/fp8.h"
#include "devices/cpu/matmul_kernels.h"
#include "devices/cpu/matmul_packed.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__) && \
    defined(__AVX512DQ__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include <cstring>
#include <limits>

namespace suanli::cpu::mm {
namespace {

inline float fp16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof h);
  return _cvtsh_ss(h);
}

void quantize_act(const float* x, const Geometry& g, uint8_t* dst) {
  int8_t* q = reinterpret_cast<int8_t*>(dst);
  float* da = reinterpret_cast<float*>(dst + g.kp);
  float* ht = reinterpret_cast<float*>(dst + 2 * g.kp);
  const int64_t nb = g.k / 32;
  for (int64_t b = 0; b < nb; ++b) {
    const __m512 x0 = _mm512_loadu_ps(x + 32 * b), x1 = _mm512_loadu_ps(x + 32 * b + 16);
    // Same arithmetic as the portable quantizer: identical codes (NaN:
    // skipped by amax, coded 0, d = NaN).
    const __mmask16 ord0 = _mm512_cmp_ps_mask(x0, x0, _CMP_ORD_Q), ord1 = _mm512_cmp_ps_mask(x1, x1, _CMP_ORD_Q);
    const float amax = _mm512_reduce_max_ps(
        _mm512_max_ps(_mm512_maskz_mov_ps(ord0, _mm512_abs_ps(x0)), _mm512_maskz_mov_ps(ord1, _mm512_abs_ps(x1))));
    const float d = (ord0 & ord1) != 0xffff ? std::numeric_limits<float>::quiet_NaN() : amax / 127.0f;
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    const __m512 vid = _mm512_set1_ps(id);
    const __m512 lim = _mm512_set1_ps(127.0f);
    // The portable path rounds, then maps NaN to 0 and clamps; clamping
    // first gives the same codes for numbers, and NaN products (a NaN, or
    // an infinity times id 0) are zeroed by mask.
    const __m512 p0 = _mm512_mul_ps(x0, vid), p1 = _mm512_mul_ps(x1, vid);
    const __m512 y0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(p0, p0, _CMP_ORD_Q),
                                          _mm512_min_ps(lim, _mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), lim), p0)));
    const __m512 y1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(p1, p1, _CMP_ORD_Q),
                                          _mm512_min_ps(lim, _mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), lim), p1)));
    const __m512i q0 = _mm512_cvtps_epi32(y0), q1 = _mm512_cvtps_epi32(y1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32 * b), _mm512_cvtsepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32 * b + 16), _mm512_cvtsepi32_epi8(q1));
    _mm256_storeu_ps(da + 8 * b, _mm256_set1_ps(d));
    ht[2 * b] = d * static_cast<float>(_mm512_reduce_add_epi32(q0));
    ht[2 * b + 1] = d * static_cast<float>(_mm512_reduce_add_epi32(q1));
  }
  std::memset(q + g.k, 0, g.kp - g.k);
  for (int64_t i = g.k / 4; i < g.kp / 4; ++i) da[i] = 0.0f;
  for (int64_t i = g.k / 16; i < g.n_half_pad; ++i) ht[i] = 0.0f;
}

inline void store_block_scales(float* dw, float* mo, int64_t b, float scale, float offset) {
  _mm256_storeu_ps(dw + 8 * b, _mm256_set1_ps(scale));
  mo[2 * b] = offset;
  mo[2 * b + 1] = offset;
}

// 32 codes from 16 bytes of nibbles (element j low, j + 16 high).
inline __m256i nibbles32(const uint8_t* qs) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m = _mm_set1_epi8(0x0f);
  const __m128i lo = _mm_and_si128(v, m);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
  return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

// Weight rows stream from DRAM once per call and the unpack loop alternates
// with compute, which the hardware prefetcher alone does not cover (measured:
// 5 GB/s per core without, 9 with, see bench/results). Fetch this far ahead:
// past the 4 rows the fused decode kernel walks side by side.
#ifndef SUANLI_PREFETCH_BYTES
#define SUANLI_PREFETCH_BYTES 4096
#endif
constexpr int kPrefetchBytes = SUANLI_PREFETCH_BYTES;
// The packed kernels do not prefetch by default: their records are read in
// address order, which the hardware prefetchers follow, and on the machine
// of bench/results a software prefetch 2-16 KiB ahead (into L1 or L2) made
// decode slower: one thread 27-28 GB/s with it, 32 without (73% / 85% of a
// pure read of the same weights), two threads 374 -> 411 tokens/s.
// -DSUANLI_PK_PREFETCH=1 turns it back on (for other machines).
// Except Q5_1: its 384-byte records (exactly six lines) the hardware
// prefetchers here do not follow: T=1 with prefetch 25 GB/s on one thread
// (10.9 without), 33-38 on two (16-22 without); kernel bench, 2026-11-26.
#ifndef SUANLI_PK_PREFETCH
#define SUANLI_PK_PREFETCH 0
#endif
constexpr bool kPkPrefetch = SUANLI_PK_PREFETCH;

// Codes of a pair of 4-bit blocks in element order [b0 0..31 | b1 0..31],
// from their 16-byte nibble arrays (element j low, j + 16 high).
inline __m512i nibbles64(const uint8_t* qs0, const uint8_t* qs1) {
  const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs0))),
                                            _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs1)), 1);
  const __m256i m = _mm256_set1_epi8(0x0f);
  const __m256i lo = _mm256_and_si256(v, m);                         // [b0 0..15 | b1 0..15]
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);  // [b0 16..31 | b1 16..31]
  const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  return _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
}

// Two blocks' fp16 fields at p0 and p1 (2 or 4 bytes each) as floats
// [p0[0], p0[1], p1[0], p1[1]] (formats with one field read a neighbour byte
// pair as the second, unused).
inline __m128 fp16_pairs(const uint8_t* p0, const uint8_t* p1) {
  uint32_t a, b;
  std::memcpy(&a, p0, 4);
  std::memcpy(&b, p1, 4);
  return _mm_cvtph_ps(_mm_unpacklo_epi32(_mm_cvtsi32_si128(static_cast<int>(a)), _mm_cvtsi32_si128(static_cast<int>(b))));
}

// Lane scales of a pair: f[i0] for lanes 0..7, f[i1] for lanes 8..15.
inline __m512 lane_pair(__m128 f, int i0, int i1) {
  const __m512i idx = _mm512_set_epi32(i1, i1, i1, i1, i1, i1, i1, i1, i0, i0, i0, i0, i0, i0, i0, i0);
  return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(f));
}

// The legacy 32-block formats the default and synthetic models use, a pair
// of blocks per step; the others go through the portable unpacker (correct,
// slower to unpack). Decode is bound by this loop as much as by memory, so
// it avoids scalar fp16 conversions and partial stores.
bool unpack_row(GgmlType type, const uint8_t* src, const Geometry& g, uint8_t* dst) {
  uint8_t* u = dst;
  float* dw = reinterpret_cast<float*>(dst + g.kp);
  float* mo = reinterpret_cast<float*>(dst + 2 * g.kp);
  const int64_t nb = g.k / 32;
  int64_t b = 0;
  switch (type) {
    case GgmlType::kQ4_1:
      for (; b + 2 <= nb; b += 2, src += 40) {
        _mm_prefetch(reinterpret_cast<const char*>(src) + kPrefetchBytes, _MM_HINT_T0);
        _mm512_storeu_si512(u + 32 * b, nibbles64(src + 4, src + 24));
        const __m128 f = fp16_pairs(src, src + 20);  // d0 m0 d1 m1
        _mm512_storeu_ps(dw + 8 * b, lane_pair(f, 0, 2));
        _mm_storeu_ps(mo + 2 * b, _mm_shuffle_ps(f, f, _MM_SHUFFLE(3, 3, 1, 1)));
      }
      if (b < nb) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + 32 * b), nibbles32(src + 4));
        store_block_scales(dw, mo, b, fp16_at(src), fp16_at(src + 2));
      }
      break;
    case GgmlType::kQ4_0: {
      const __m128 minus8 = _mm_set1_ps(-8.0f);
      for (; b + 2 <= nb; b += 2, src += 36) {
        _mm_prefetch(reinterpret_cast<const char*>(src) + kPrefetchBytes, _MM_HINT_T0);
        _mm512_storeu_si512(u + 32 * b, nibbles64(src + 2, src + 20));
        const __m128 f = fp16_pairs(src, src + 18);  // d0 ? d1 ?
        _mm512_storeu_ps(dw + 8 * b, lane_pair(f, 0, 2));
        _mm_storeu_ps(mo + 2 * b, _mm_mul_ps(_mm_shuffle_ps(f, f, _MM_SHUFFLE(2, 2, 0, 0)), minus8));
      }
      if (b < nb) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + 32 * b), nibbles32(src + 2));
        const float d = fp16_at(src);
        store_block_scales(dw, mo, b, d, -8.0f * d);
      }
      break;
    }
    case GgmlType::kQ8_0: {
      const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
      const __m128 minus128 = _mm_set1_ps(-128.0f);
      for (; b + 2 <= nb; b += 2, src += 68) {
        _mm_prefetch(reinterpret_cast<const char*>(src) + kPrefetchBytes, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(src) + kPrefetchBytes + 64, _MM_HINT_T0);
        const __m512i v = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2))),
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 36)), 1);
        _mm512_storeu_si512(u + 32 * b, _mm512_xor_si512(v, flip));
        const __m128 f = fp16_pairs(src, src + 34);
        _mm512_storeu_ps(dw + 8 * b, lane_pair(f, 0, 2));
        _mm_storeu_ps(mo + 2 * b, _mm_mul_ps(_mm_shuffle_ps(f, f, _MM_SHUFFLE(2, 2, 0, 0)), minus128));
      }
      if (b < nb) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + 32 * b), _mm256_xor_si256(v, _mm256_set1_epi8(static_cast<char>(0x80))));
        const float d = fp16_at(src);
        store_block_scales(dw, mo, b, d, -128.0f * d);
      }
      break;
    }
    default: return false;
  }
  std::memset(u + g.k, 0, g.kp - g.k);
  for (int64_t i = g.k / 4; i < g.kp / 4; ++i) dw[i] = 0.0f;
  for (int64_t i = g.k / 16; i < g.n_half_pad; ++i) mo[i] = 0.0f;
  return true;
}

// out[c * ldo + r] = the 16-lane sum of acc[r][c] (+ bias[r]): the one
// reduction every float-accumulating tile ends with (the fused kernels'
// bits equal the tile path's through it).
template <int R, int C>
inline void store_sums(const __m512 (&acc)[R][C], const float* bias, float* out, int64_t ldo) {
  for (int c = 0; c < C; ++c) {
    for (int r = 0; r < R; ++r) {
      const float v = _mm512_reduce_add_ps(acc[r][c]);
      out[c * ldo + r] = bias ? v + bias[r] : v;
    }
  }
}

template <int R, int C>
void int_tile_rc(const uint8_t* w, const uint8_t* a, const Geometry& g, const float* bias, float* out, int64_t ldo) {
  const size_t rb = g.row_bytes;
  const int64_t kp = g.kp;
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < g.n_pairs; ++p) {
    __m512i wv[R];
    for (int r = 0; r < R; ++r) wv[r] = _mm512_loadu_si512(w + r * rb + 64 * p);
    for (int c = 0; c < C; ++c) {
      const uint8_t* ac = a + c * rb;
      const __m512i av = _mm512_loadu_si512(ac + 64 * p);
      const __m512 da = _mm512_loadu_ps(reinterpret_cast<const float*>(ac + kp) + 16 * p);
      for (int r = 0; r < R; ++r) {
        const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[r], av);
        const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(s), da);
        const __m512 dw = _mm512_loadu_ps(reinterpret_cast<const float*>(w + r * rb + kp) + 16 * p);
        acc[r][c] = _mm512_fmadd_ps(f, dw, acc[r][c]);
      }
    }
  }
  for (int64_t h = 0; h < g.n_half_pad; h += 16) {
    for (int c = 0; c < C; ++c) {
      const __m512 ht = _mm512_loadu_ps(reinterpret_cast<const float*>(a + c * rb + 2 * kp) + h);
      for (int r = 0; r < R; ++r) {
        const __m512 mo = _mm512_loadu_ps(reinterpret_cast<const float*>(w + r * rb + 2 * kp) + h);
        acc[r][c] = _mm512_fmadd_ps(mo, ht, acc[r][c]);
      }
    }
  }
  store_sums<R, C>(acc, bias, out, ldo);
}

// Decode (one token chunk): the same arithmetic as unpack_row + int_tile_rc,
// but each pair of weight blocks is decoded straight into registers instead
// of through the L1 tile, saving its stores and reloads per weight byte. The
// codes, lane scales and offsets are the same values unpack_row writes
// (including the zero padding of an odd last block), and every (row, token)
// output goes through the same sequence of vector operations, so results
// are bit-identical to the tiled path (tests/conformance checks T=1 against
// T=37).
struct PairQ41 {
  static constexpr int64_t kBlockBytes = 20;
  static void full(const uint8_t* src, __m512i* codes, __m512* dw, float* mo) {
    *codes = nibbles64(src + 4, src + 24);
    const __m128 f = fp16_pairs(src, src + 20);
    *dw = lane_pair(f, 0, 2);
    _mm_storeu_ps(mo, _mm_shuffle_ps(f, f, _MM_SHUFFLE(3, 3, 1, 1)));
  }
  static void last(const uint8_t* src, __m512i* codes, __m512* dw, float* mo) {
    *codes = _mm512_zextsi256_si512(nibbles32(src + 4));
    const float d = fp16_at(src), m = fp16_at(src + 2);
    *dw = _mm512_zextps256_ps512(_mm256_set1_ps(d));
    mo[0] = m;
    mo[1] = m;
    mo[2] = 0.0f;
    mo[3] = 0.0f;
  }
};

struct PairQ40 {
  static constexpr int64_t kBlockBytes = 18;
  static void full(const uint8_t* src, __m512i* codes, __m512* dw, float* mo) {
    *codes = nibbles64(src + 2, src + 20);
    const __m128 f = fp16_pairs(src, src + 18);
    *dw = lane_pair(f, 0, 2);
    _mm_storeu_ps(mo, _mm_mul_ps(_mm_shuffle_ps(f, f, _MM_SHUFFLE(2, 2, 0, 0)), _mm_set1_ps(-8.0f)));
  }
  static void last(const uint8_t* src, __m512i* codes, __m512* dw, float* mo) {
    *codes = _mm512_zextsi256_si512(nibbles32(src + 2));
    const float d = fp16_at(src);
    *dw = _mm512_zextps256_ps512(_mm256_set1_ps(d));
    mo[0] = mo[1] = -8.0f * d;
    mo[2] = mo[3] = 0.0f;
  }
};

struct PairQ80 {
  static constexpr int64_t kBlockBytes = 34;
  static void full(const uint8_t* src, __m512i* codes, __m512* dw, float* mo) {
    const __m512i v = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2))),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 36)), 1);
    *codes = _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(0x80)));
    const __m128 f = fp16_pairs(src, src + 34);
    *dw = lane_pair(f, 0, 2);
    _mm_storeu_ps(mo, _mm_mul_ps(_mm_shuffle_ps(f, f, _MM_SHUFFLE(2, 2, 0, 0)), _mm_set1_ps(-128.0f)));
  }
  static void last(const uint8_t* src, __m512i* codes, __m512* dw, float* mo) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2));
    *codes = _mm512_zextsi256_si512(_mm256_xor_si256(v, _mm256_set1_epi8(static_cast<char>(0x80))));
    const float d = fp16_at(src);
    *dw = _mm512_zextps256_ps512(_mm256_set1_ps(d));
    mo[0] = mo[1] = -128.0f * d;
    mo[2] = mo[3] = 0.0f;
  }
};

constexpr int64_t kFusedMaxHalves = 1024;  // K <= 16384

template <typename F, int R, int C>
void fused_tile_rc(const uint8_t* wsrc, size_t stride, const uint8_t* a, const Geometry& g, const float* bias,
                   float* out, int64_t ldo) {
  const size_t rb = g.row_bytes;
  const int64_t kp = g.kp, nb = g.k / 32;
  alignas(64) float mo[R][kFusedMaxHalves];
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < g.n_pairs; ++p) {
    __m512i wv[R];
    __m512 dwv[R];
    for (int r = 0; r < R; ++r) {
      const uint8_t* src = wsrc + r * stride + 2 * p * F::kBlockBytes;
      _mm_prefetch(reinterpret_cast<const char*>(src) + kPrefetchBytes, _MM_HINT_T0);
      if (2 * p + 2 <= nb) {
        F::full(src, &wv[r], &dwv[r], mo[r] + 4 * p);
      } else {
        F::last(src, &wv[r], &dwv[r], mo[r] + 4 * p);
      }
    }
    for (int c = 0; c < C; ++c) {
      const uint8_t* ac = a + c * rb;
      const __m512i av = _mm512_loadu_si512(ac + 64 * p);
      const __m512 da = _mm512_loadu_ps(reinterpret_cast<const float*>(ac + kp) + 16 * p);
      for (int r = 0; r < R; ++r) {
        const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[r], av);
        const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(s), da);
        acc[r][c] = _mm512_fmadd_ps(f, dwv[r], acc[r][c]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int64_t h = 4 * g.n_pairs; h < g.n_half_pad; ++h) mo[r][h] = 0.0f;
  }
  for (int64_t h = 0; h < g.n_half_pad; h += 16) {
    for (int c = 0; c < C; ++c) {
      const __m512 ht = _mm512_loadu_ps(reinterpret_cast<const float*>(a + c * rb + 2 * kp) + h);
      for (int r = 0; r < R; ++r) acc[r][c] = _mm512_fmadd_ps(_mm512_load_ps(mo[r] + h), ht, acc[r][c]);
    }
  }
  store_sums<R, C>(acc, bias, out, ldo);
}

using FusedFn = void (*)(const uint8_t*, size_t, const uint8_t*, const Geometry&, const float*, float*, int64_t);

template <typename F, int R>
constexpr FusedFn kFusedRow[4] = {fused_tile_rc<F, R, 1>, fused_tile_rc<F, R, 2>, fused_tile_rc<F, R, 3>,
                                  fused_tile_rc<F, R, 4>};
template <typename F>
constexpr const FusedFn* kFused[4] = {kFusedRow<F, 1>, kFusedRow<F, 2>, kFusedRow<F, 3>, kFusedRow<F, 4>};

bool fused_tile(GgmlType type, const uint8_t* w, size_t stride, int n_rows, const uint8_t* a, int n_tok,
                const Geometry& g, const float* bias, float* out, int64_t ldo) {
  if (g.n_half_pad > kFusedMaxHalves) return false;
  switch (type) {
    case GgmlType::kQ4_1: kFused<PairQ41>[n_rows - 1][n_tok - 1](w, stride, a, g, bias, out, ldo); return true;
    case GgmlType::kQ4_0: kFused<PairQ40>[n_rows - 1][n_tok - 1](w, stride, a, g, bias, out, ldo); return true;
    case GgmlType::kQ8_0: kFused<PairQ80>[n_rows - 1][n_tok - 1](w, stride, a, g, bias, out, ldo); return true;
    default: return false;
  }
}

template <int R, int C>
void float_tile_rc(const float* w, const float* a, const Geometry& g, const float* bias, float* out, int64_t ldo) {
  const int64_t kf = g.kf;
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < kf; k += 16) {
    __m512 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = _mm512_loadu_ps(w + r * kf + k);
    for (int c = 0; c < C; ++c) {
      const __m512 xv = _mm512_loadu_ps(a + c * kf + k);
      for (int r = 0; r < R; ++r) acc[r][c] = _mm512_fmadd_ps(wv[r], xv, acc[r][c]);
    }
  }
  store_sums<R, C>(acc, bias, out, ldo);
}

// float_tile_rc reading raw F32 / F16 / BF16 rows and converting each
// vector in registers (the same values float_row stores, the same FMAs and
// reduction): decode reads an F16 matrix without a store and reload of
// every row. Needs K % 16 == 0 (no padded tail).
// 16 E4M3 codes times a block scale, bit-identical to the reference
// (table value * scale). Normal codes get their exponent rebased by an
// integer add (e + 120: bias 7 -> 127), subnormal ones (exponent 0) are
// mantissa * 2^-9 from an integer convert: exact, with no subnormal float
// operand (many x86 CPUs take a microcode assist on those; the former decode
// multiplied subnormal bit patterns by 2^120). 0x7f is NaN; the sign is ORed
// in; then one multiply by the scale. About 15 vector operations per 16
// weights: MXFP8 decode is compute-bound here (12 GB/s at T=1 on 2 threads,
// a third of a pure read; kernel bench).
inline __m512 mxfp8x16(const uint8_t* codes, float scale) {
  const __m512i magnitude_mask = _mm512_set1_epi32(0x7f);
  const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes)));
  const __m512i m = _mm512_and_si512(b, magnitude_mask);
  const __m512 normal = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_slli_epi32(m, 20), _mm512_set1_epi32(120 << 23)));
  const __m512 sub = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(m, _mm512_set1_epi32(7))), _mm512_set1_ps(0x1p-9f));
  __m512 v = _mm512_mask_mov_ps(normal, _mm512_cmplt_epi32_mask(m, _mm512_set1_epi32(8)), sub);
  v = _mm512_mask_mov_ps(v, _mm512_cmpeq_epi32_mask(m, magnitude_mask),
                         _mm512_set1_ps(std::numeric_limits<float>::quiet_NaN()));
  const __m512i sign = _mm512_slli_epi32(_mm512_andnot_si512(magnitude_mask, b), 24);
  v = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(v), sign));
  return _mm512_mul_ps(v, _mm512_set1_ps(scale));
}

// at(row, k): elements k .. k+15 of a raw row as floats (k % 16 == 0).
struct LoadF32 {
  static __m512 at(const uint8_t* row, int64_t k) { return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + k); }
};
struct LoadF16 {
  static __m512 at(const uint8_t* row, int64_t k) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k)));
  }
};
struct LoadBF16 {
  static __m512 at(const uint8_t* row, int64_t k) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
};
struct LoadMXFP8 {
  static __m512 at(const uint8_t* row, int64_t k) {
    const uint8_t* block = row + k / 32 * 33;
    return mxfp8x16(block + 1 + k % 32, quant::e8m0_to_fp32(block[0]));
  }
};
template <typename L, int R, int C>
void fused_float_rc(const uint8_t* w, size_t stride, const float* a, const Geometry& g, const float* bias, float* out,
                    int64_t ldo) {
  const int64_t kf = g.kf;
  if constexpr (C == 1) {
    // One token: rows one after another, so the weights stream in address
    // order (read side by side, R rows of ~1 KiB are R short streams that
    // the hardware prefetchers do not pick up). Each row's chain is the one
    // below; out-of-order execution overlaps consecutive rows' chains.
    for (int r = 0; r < R; ++r) {
      __m512 acc = _mm512_setzero_ps();
      for (int64_t k = 0; k < kf; k += 16) acc = _mm512_fmadd_ps(L::at(w + r * stride, k), _mm512_loadu_ps(a + k), acc);
      const float v = _mm512_reduce_add_ps(acc);
      out[r] = bias ? v + bias[r] : v;
    }
    return;
  }
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < kf; k += 16) {
    __m512 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = L::at(w + r * stride, k);
    for (int c = 0; c < C; ++c) {
      const __m512 xv = _mm512_loadu_ps(a + c * kf + k);
      for (int r = 0; r < R; ++r) acc[r][c] = _mm512_fmadd_ps(wv[r], xv, acc[r][c]);
    }
  }
  store_sums<R, C>(acc, bias, out, ldo);
}
using FusedFloatFn = void (*)(const uint8_t*, size_t, const float*, const Geometry&, const float*, float*, int64_t);
template <typename L, int R>
constexpr FusedFloatFn kFusedFloatRow[4] = {fused_float_rc<L, R, 1>, fused_float_rc<L, R, 2>, fused_float_rc<L, R, 3>,
                                            fused_float_rc<L, R, 4>};
template <typename L>
constexpr const FusedFloatFn* kFusedFloat[4] = {kFusedFloatRow<L, 1>, kFusedFloatRow<L, 2>, kFusedFloatRow<L, 3>,
                                                kFusedFloatRow<L, 4>};

bool fused_float_tile(GgmlType type, const uint8_t* w, size_t stride, int n_rows, const float* a, int n_tok,
                      const Geometry& g, const float* bias, float* out, int64_t ldo) {
  if (g.k != g.kf) return false;
  const int r = n_rows - 1, c = n_tok - 1;
  switch (type) {
    case GgmlType::kF32: kFusedFloat<LoadF32>[r][c](w, stride, a, g, bias, out, ldo); return true;
    case GgmlType::kF16: kFusedFloat<LoadF16>[r][c](w, stride, a, g, bias, out, ldo); return true;
    case GgmlType::kBF16: kFusedFloat<LoadBF16>[r][c](w, stride, a, g, bias, out, ldo); return true;
    case GgmlType::kMXFP8_E4M3: kFusedFloat<LoadMXFP8>[r][c](w, stride, a, g, bias, out, ldo); return true;
    default: return false;
  }
}

using IntTileFn = void (*)(const uint8_t*, const uint8_t*, const Geometry&, const float*, float*, int64_t);
using FloatTileFn = void (*)(const float*, const float*, const Geometry&, const float*, float*, int64_t);

template <int R>
constexpr IntTileFn kIntRow[4] = {int_tile_rc<R, 1>, int_tile_rc<R, 2>, int_tile_rc<R, 3>, int_tile_rc<R, 4>};
constexpr const IntTileFn* kInt[4] = {kIntRow<1>, kIntRow<2>, kIntRow<3>, kIntRow<4>};
template <int R>
constexpr FloatTileFn kFloatRow[4] = {float_tile_rc<R, 1>, float_tile_rc<R, 2>, float_tile_rc<R, 3>,
                                      float_tile_rc<R, 4>};
constexpr const FloatTileFn* kFloat[4] = {kFloatRow<1>, kFloatRow<2>, kFloatRow<3>, kFloatRow<4>};

void int_tile(const uint8_t* w, int n_rows, const uint8_t* a, int n_tok, const Geometry& g, const float* bias,
              float* out, int64_t ldo) {
  kInt[n_rows - 1][n_tok - 1](w, a, g, bias, out, ldo);
}

void float_tile(const float* w, int n_rows, const float* a, int n_tok, const Geometry& g, const float* bias,
                float* out, int64_t ldo) {
  kFloat[n_rows - 1][n_tok - 1](w, a, g, bias, out, ldo);
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
      for (; i + 16 <= k; i += 16) {
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i));
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(h));
      }
      for (; i < k; ++i) dst[i] = fp16_at(src + 2 * i);
      break;
    case GgmlType::kBF16:
      for (; i + 16 <= k; i += 16) {
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i));
        const __m512i f = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
        _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(f));
      }
      for (; i < k; ++i) {
        uint32_t bits = static_cast<uint32_t>(src[2 * i] | (src[2 * i + 1] << 8)) << 16;
        std::memcpy(dst + i, &bits, sizeof bits);
      }
      break;
    case GgmlType::kMXFP8_E4M3:
      for (; i < k; i += 16) {  // k is a whole number of 32-blocks
        const uint8_t* block = src + i / 32 * 33;
        _mm512_storeu_ps(dst + i, mxfp8x16(block + 1 + i % 32, quant::e8m0_to_fp32(block[0])));
      }
      break;
    default: return false;
  }
  for (; i < g.kf; ++i) dst[i] = 0.0f;
  return true;
}

// ---- the packed rows16 layout (matmul_packed.h) ----

void pk_quantize_act(const float* x, int64_t k, uint8_t* dst) {
  const int64_t nb = k / 32;
  const PkActRow a = pk_act_row(dst, k);
  int8_t* q = a.q;
  const __m512 lim = _mm512_set1_ps(127.0f), nlim = _mm512_set1_ps(-127.0f);
  for (int64_t b = 0; b < nb; ++b) {
    const __m512 x0 = _mm512_loadu_ps(x + 32 * b), x1 = _mm512_loadu_ps(x + 32 * b + 16);
    // The generic quantizer's arithmetic: the same codes and scales (NaN:
    // skipped by amax, coded -127, d = NaN; matmul_packed.h).
    const __mmask16 ord0 = _mm512_cmp_ps_mask(x0, x0, _CMP_ORD_Q), ord1 = _mm512_cmp_ps_mask(x1, x1, _CMP_ORD_Q);
    const float amax = _mm512_reduce_max_ps(
        _mm512_max_ps(_mm512_maskz_mov_ps(ord0, _mm512_abs_ps(x0)), _mm512_maskz_mov_ps(ord1, _mm512_abs_ps(x1))));
    const float d = (ord0 & ord1) != 0xffff ? std::numeric_limits<float>::quiet_NaN() : amax / 127.0f;
    const __m512 vid = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
    // The product first: maxps gives its second operand (-127) for a NaN.
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x0, vid), nlim), lim));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x1, vid), nlim), lim));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32 * b), _mm512_cvtsepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32 * b + 16), _mm512_cvtsepi32_epi8(q1));
    pk_set_block(a, b, d, _mm512_reduce_add_epi32(q0), _mm512_reduce_add_epi32(q1));
  }
}

inline __m512i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}


// One group of 16 rows x NT tokens (NT <= kPkTokens): out[t * ldo + r].
template <GgmlType F, int NT>
void pk_tile_t(const uint8_t* grp, int64_t nb, const uint8_t* act, size_t as, const float* bias, float* out,
               int64_t ldo) {
  using P = PkFmt<F>;
  const int64_t k = nb * 32;
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const __m512i m3 = _mm512_set1_epi8(0x03);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* hdr = grp + (b / 8) * P::kSuper;  // super-block formats
    const uint8_t* rec = P::kHeader ? hdr + P::kHeader + (b % 8) * P::kRec : grp + b * P::kRec;
    if constexpr (NT <= 2 && (kPkPrefetch || F == GgmlType::kQ5_1)) {
      for (size_t off = 0; off < P::kRec; off += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(rec) + kPrefetchBytes + off, _MM_HINT_T0);
      }
    }
    __m512i v[8];
    if constexpr (P::kQ8) {
      for (int j = 0; j < 8; ++j) v[j] = _mm512_loadu_si512(rec + 64 * j);
    } else if constexpr (P::kPlanes) {
      const __m512i h0 = _mm512_loadu_si512(rec), h1 = _mm512_loadu_si512(rec + 64);
      for (int j = 0; j < 4; ++j) {
        v[j] = _mm512_and_si512(_mm512_srli_epi16(h0, 2 * j), m3);
        v[j + 4] = _mm512_and_si512(_mm512_srli_epi16(h1, 2 * j), m3);
      }
      if constexpr (P::kQ3) {  // the codes' 3rd bits, to bit 2
        const __m512i pl = _mm512_loadu_si512(rec + 128);
        const __m512i four = _mm512_set1_epi8(4);
        for (int j = 0; j < 4; ++j) {
          const __m512i lo = j <= 2 ? _mm512_slli_epi16(pl, 2 - j) : _mm512_srli_epi16(pl, j - 2);
          v[j] = _mm512_or_si512(v[j], _mm512_and_si512(lo, four));
          v[j + 4] = _mm512_or_si512(v[j + 4], _mm512_and_si512(_mm512_srli_epi16(pl, 2 + j), four));
        }
      }
    } else {
      for (int j = 0; j < 4; ++j) {
        const __m512i p = _mm512_loadu_si512(rec + 64 * j);
        v[j] = _mm512_and_si512(p, m4);
        v[j + 4] = _mm512_and_si512(_mm512_srli_epi16(p, 4), m4);
      }
      if constexpr (P::kFifth) {  // the 5th bits
        const __m512i pl = _mm512_loadu_si512(rec + 256);
        const __m512i one = _mm512_set1_epi8(1);
        for (int j = 0; j < 4; ++j) {
          v[j] = _mm512_or_si512(v[j], _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(pl, j), one), 4));
          v[j + 4] =
              _mm512_or_si512(v[j + 4], _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(pl, 4 + j), one), 4));
        }
      }
      if constexpr (P::kQ6) {  // the high 2 bits of the 6-bit codes
        const __m512i h0 = _mm512_loadu_si512(rec + 256), h1 = _mm512_loadu_si512(rec + 320);
        for (int j = 0; j < 4; ++j) {
          const __m512i a = _mm512_and_si512(_mm512_srli_epi16(h0, 2 * j), m3);
          const __m512i c = _mm512_and_si512(_mm512_srli_epi16(h1, 2 * j), m3);
          v[j] = _mm512_or_si512(v[j], _mm512_slli_epi16(a, 4));
          v[j + 4] = _mm512_or_si512(v[j + 4], _mm512_slli_epi16(c, 4));
        }
      }
    }
    // d: the block's (or first half's) scale, d1 the second half's; mn the
    // block's min (Q2_K: the first half's, mn1 the second's). All exact.
    __m512 d, d1 = _mm512_setzero_ps(), mn = _mm512_setzero_ps(), mn1 = _mm512_setzero_ps();
    auto u8f = [](const uint8_t* p) {
      return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
    };
    auto fp16x16 = [](const uint8_t* p) {
      return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    };
    if constexpr (P::kQ6 || P::kQ3) {
      // d * sc for each half, exact in float (11 x 8 bits).
      const __m512 dd = fp16x16(hdr);
      auto s8f = [](const uint8_t* p) {
        return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
      };
      d = _mm512_mul_ps(dd, s8f(rec + P::kCodes));
      d1 = _mm512_mul_ps(dd, s8f(rec + P::kCodes + 16));
    } else if constexpr (P::kQ2) {
      // d * sc and (dmin * m) / 32 of each half, exact (11 x 4 bits).
      const __m512 dd = fp16x16(hdr), dm = fp16x16(hdr + 32);
      const __m512i s0 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rec + P::kCodes)));
      const __m512i s1 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rec + P::kCodes + 16)));
      const __m512i lo = _mm512_set1_epi32(0x0f);
      const __m512 k32 = _mm512_set1_ps(1.0f / 32);
      d = _mm512_mul_ps(dd, _mm512_cvtepi32_ps(_mm512_and_si512(s0, lo)));
      d1 = _mm512_mul_ps(dd, _mm512_cvtepi32_ps(_mm512_and_si512(s1, lo)));
      mn = _mm512_mul_ps(_mm512_mul_ps(dm, _mm512_cvtepi32_ps(_mm512_srli_epi32(s0, 4))), k32);
      mn1 = _mm512_mul_ps(_mm512_mul_ps(dm, _mm512_cvtepi32_ps(_mm512_srli_epi32(s1, 4))), k32);
    } else if constexpr (P::kScaleMin) {
      // d * sc and dmin * m, exact in float (11-bit x 6-bit products).
      d = _mm512_mul_ps(fp16x16(hdr), u8f(rec + P::kCodes));
      mn = _mm512_mul_ps(fp16x16(hdr + 32), u8f(rec + P::kCodes + 16));
    } else {
      d = fp16x16(rec + P::kCodes);
      if constexpr (P::kMin) mn = fp16x16(rec + P::kCodes + 32);
    }
    for (int t = 0; t < NT; ++t) {
      const uint8_t* a = act + t * as;
      const int8_t* ab = reinterpret_cast<const int8_t*>(a) + 32 * b;
      const float* da = reinterpret_cast<const float*>(a + k);
      const int32_t* c8 = reinterpret_cast<const int32_t*>(da + 2 * nb);  // then c128, c32h
      // Two independent chains; integer sums are exact in any order.
      __m512i i0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), v[0], bcast4(ab + 0));
      __m512i i1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), v[4], bcast4(ab + 16));
      i0 = _mm512_dpbusd_epi32(i0, v[1], bcast4(ab + 4));
      i1 = _mm512_dpbusd_epi32(i1, v[5], bcast4(ab + 20));
      i0 = _mm512_dpbusd_epi32(i0, v[2], bcast4(ab + 8));
      i1 = _mm512_dpbusd_epi32(i1, v[6], bcast4(ab + 24));
      i0 = _mm512_dpbusd_epi32(i0, v[3], bcast4(ab + 12));
      i1 = _mm512_dpbusd_epi32(i1, v[7], bcast4(ab + 28));
      if constexpr (P::kHalves) {
        // Two 16-element halves with their own scales, in order.
        const int32_t* c32h = c8 + 2 * nb;
        if constexpr (P::kQ6) {
          i0 = _mm512_sub_epi32(i0, _mm512_set1_epi32(c32h[2 * b]));
          i1 = _mm512_sub_epi32(i1, _mm512_set1_epi32(c32h[2 * b + 1]));
        } else if constexpr (P::kQ3) {
          i0 = _mm512_sub_epi32(i0, _mm512_set1_epi32(c32h[2 * b] >> 3));
          i1 = _mm512_sub_epi32(i1, _mm512_set1_epi32(c32h[2 * b + 1] >> 3));
        }
        const __m512 vda = _mm512_set1_ps(da[b]);
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i0), _mm512_mul_ps(d, vda), acc[t]);
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i1), _mm512_mul_ps(d1, vda), acc[t]);
        if constexpr (P::kQ2) {
          acc[t] = _mm512_fnmadd_ps(mn, _mm512_set1_ps(static_cast<float>(c32h[2 * b]) * da[b]), acc[t]);
          acc[t] = _mm512_fnmadd_ps(mn1, _mm512_set1_ps(static_cast<float>(c32h[2 * b + 1]) * da[b]), acc[t]);
        }
        continue;
      }
      __m512i is = _mm512_add_epi32(i0, i1);
      if constexpr (F == GgmlType::kQ4_0) {
        is = _mm512_sub_epi32(is, _mm512_set1_epi32(c8[b]));
      } else if constexpr (F == GgmlType::kQ5_0) {
        is = _mm512_sub_epi32(is, _mm512_set1_epi32(2 * c8[b]));
      } else if constexpr (P::kQ8) {
        is = _mm512_sub_epi32(is, _mm512_set1_epi32(c8[nb + b]));
      }
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(d, _mm512_set1_ps(da[b])), acc[t]);
      if constexpr (P::kMin) acc[t] = _mm512_fmadd_ps(mn, _mm512_set1_ps(da[nb + b]), acc[t]);
      if constexpr (P::kScaleMin) acc[t] = _mm512_fnmadd_ps(mn, _mm512_set1_ps(da[nb + b]), acc[t]);
    }
  }
  const __m512 bv = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
  for (int t = 0; t < NT; ++t) _mm512_storeu_ps(out + t * ldo, bias ? _mm512_add_ps(acc[t], bv) : acc[t]);
}

using PkFn = void (*)(const uint8_t*, int64_t, const uint8_t*, size_t, const float*, float*, int64_t);
template <GgmlType F>
constexpr PkFn kPk[kPkTokens] = {pk_tile_t<F, 1>, pk_tile_t<F, 2>, pk_tile_t<F, 3>, pk_tile_t<F, 4>,
                                 pk_tile_t<F, 5>, pk_tile_t<F, 6>, pk_tile_t<F, 7>, pk_tile_t<F, 8>};

void pk_tile(GgmlType type, const uint8_t* grp, int64_t nb, const uint8_t* act, size_t as, int n_tok,
             const float* bias, float* out, int64_t ldo, const uint8_t* /*next*/) {
  const int i = n_tok - 1;
  switch (type) {
    case GgmlType::kQ4_0: return kPk<GgmlType::kQ4_0>[i](grp, nb, act, as, bias, out, ldo);
    case GgmlType::kQ4_1: return kPk<GgmlType::kQ4_1>[i](grp, nb, act, as, bias, out, ldo);
    case GgmlType::kQ5_0: return kPk<GgmlType::kQ5_0>[i](grp, nb, act, as, bias, out, ldo);
    case GgmlType::kQ5_1: return kPk<GgmlType::kQ5_1>[i](grp, nb, act, as, bias, out, ldo);
    case GgmlType::kQ2_K: return kPk<GgmlType::kQ2_K>[i](grp, nb, act, as, bias, out, ldo);
    case GgmlType::kQ3_K: return kPk<GgmlType::kQ3_K>[i](grp, nb, act, as, bias, out, ldo);
    case GgmlType::kQ8_0: return kPk<GgmlType::kQ8_0>[i](grp, nb, act, as, bias, out, ldo);
    case GgmlType::kQ4_K: return kPk<GgmlType::kQ4_K>[i](grp, nb, act, as, bias, out, ldo);
    case GgmlType::kQ5_K: return kPk<GgmlType::kQ5_K>[i](grp, nb, act, as, bias, out, ldo);
    case GgmlType::kQ6_K: return kPk<GgmlType::kQ6_K>[i](grp, nb, act, as, bias, out, ldo);
    default: break;
  }
}

const KernelTable kTable = {"avx512vnni", quantize_act, unpack_row,       int_tile,        float_row, float_tile,
                            fused_tile,   fused_float_tile, pk_quantize_act, pk_tile};

}  // namespace

const KernelTable* avx512_kernels() { return &kTable; }

}  // namespace suanli::cpu::mm

#else

namespace suanli::cpu::mm {
const KernelTable* avx512_kernels() { return nullptr; }
}  // namespace suanli::cpu::mm

#endif
