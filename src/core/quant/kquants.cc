// The k-quant super-block formats: 256 elements per block, split into
// sub-blocks that each carry a small integer scale (and min) relative to the
// block's fp16 super-scale(s).
//
// Within a super-block, element e = 128 * h + 32 * k + l (h: half, k: which
// 32-element run of that half, l < 32) keeps its low bits in byte l of the
// half's packed array, shifted by the bits-per-code times k; sub-block and
// scale indices simply follow e in order. Per format (bytes):
//   Q2_K  84: scales[16] (low nibble scale, high nibble min) | qs[64] | d | dmin
//             x = d * sc * q - dmin * m, q in 0..3, 16-element sub-blocks
//   Q3_K 110: hmask[32] | qs[64] | scales[12] | d
//             x = d * (s - 32) * (q - (hbit ? 0 : 4)), q in 0..3, 6-bit s
//             hbit of e is bit e / 32 of hmask[e % 32]
//   Q4_K 144: d | dmin | scales[12] | qs[128]
//             x = d * sc * q - dmin * m, q in 0..15, 32-element sub-blocks;
//             qs[32c + l] holds element 64c + l (low) and 64c + 32 + l (high)
//   Q5_K 176: d | dmin | scales[12] | qh[32] | qs[128]
//             as Q4_K, plus bit 4 of e's code is bit e / 32 of qh[e % 32]
//   Q6_K 210: ql[128] | qh[64] | int8 scales[16] | d
//             x = (d * sc) * (q - 32), q in 0..63, 16-element sub-blocks
// The products are grouped as ggml groups them: for every format but Q6_K
// they are exact in float, so only the final add rounds; Q6_K's
// (d * sc) * q must keep that order to give the same bits.
//
// Q4_K / Q5_K pack eight 6-bit scales and eight 6-bit mins into 12 bytes
// (ggml's get_scale_min_k4): for j < 4, scales[j] and scales[j + 4] hold sc_j
// and m_j in their low 6 bits; sub-blocks 4..7 keep their low nibbles in
// scales[j + 4] (sc low, m high) and their top two bits in the spare top bits
// of scales[j - 4] (sc) and scales[j] (m).
#include <algorithm>
#include <cmath>

#include "core/quant/formats.h"

namespace suanli::quant::internal {
namespace {

constexpr int kQK = 256;

void set_scale_min_k4(const uint8_t* sc, const uint8_t* m, uint8_t* scales) {
  for (int j = 0; j < 4; ++j) {
    scales[j] = static_cast<uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    scales[j + 4] = static_cast<uint8_t>((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0x0f) | ((m[j + 4] & 0x0f) << 4));
  }
}

// The byte of a 32-bytes-per-half array (Q2_K / Q3_K qs, Q6_K qh) that holds
// element e's bits; the shift within it depends on (e % 128) / 32.
inline int half_byte(int e) { return 32 * (e / 128) + e % 32; }

// round(v) clamped to [lo, hi]; NaN gives lo rather than undefined behaviour.
inline int nearest_clamped(float v, int lo, int hi) {
  const float r = std::round(v);
  if (!(r > static_cast<float>(lo))) return lo;
  return r >= static_cast<float>(hi) ? hi : static_cast<int>(r);
}

// Smallest integer k in [0, top] with k * step >= v (v >= 0, step >= 0);
// top when v / step is not a number (inf / inf from non-finite weights).
inline int ceil_index(float v, float step, int top = 63) {
  if (!(step > 0.0f) || !(v > 0.0f)) return 0;
  const float k = std::ceil(v / step);
  return k < static_cast<float>(top) ? static_cast<int>(k) : top;
}

// The asymmetric k-quants' scale / min choice (Q2_K, Q4_K, Q5_K), as in
// quantize_q4_k below: per sub-block of `len` elements (n_sub of them) a min
// index rounded up so -dmin * m covers the smallest value (capped at 0), then
// a scale index rounded up so `levels` steps reach the largest value. Indices
// are in [0, top]; the grid covers each sub-block, so no element clips.
struct ScaleMin {
  float d = 0, dmin = 0;
  uint8_t sc[16] = {}, m[16] = {};
  float min_value[16] = {};
};
ScaleMin choose_scale_min(const float* src, int n_sub, int len, int levels, int top) {
  ScaleMin r;
  float neg_min[16], top_value[16];
  float max_neg_min = 0.0f;
  for (int j = 0; j < n_sub; ++j) {
    float lo = 0.0f, hi = src[len * j];
    for (int l = 0; l < len; ++l) {
      lo = std::min(lo, src[len * j + l]);
      hi = std::max(hi, src[len * j + l]);
    }
    neg_min[j] = -lo;
    top_value[j] = hi;
    max_neg_min = std::max(max_neg_min, neg_min[j]);
  }
  r.dmin = round_to_fp16(max_neg_min / static_cast<float>(top));
  float need[16];
  float max_need = 0.0f;
  for (int j = 0; j < n_sub; ++j) {
    r.m[j] = static_cast<uint8_t>(ceil_index(neg_min[j], r.dmin, top));
    r.min_value[j] = r.dmin * static_cast<float>(r.m[j]);
    need[j] = std::max(0.0f, (top_value[j] + r.min_value[j]) / static_cast<float>(levels));
    max_need = std::max(max_need, need[j]);
  }
  r.d = round_to_fp16(max_need / static_cast<float>(top));
  for (int j = 0; j < n_sub; ++j) r.sc[j] = static_cast<uint8_t>(ceil_index(need[j], r.d, top));
  return r;
}

// The symmetric k-quants' scales (Q3_K, Q6_K): each 16-element sub-block's
// scale maps its largest-magnitude value to code `extreme_code` exactly (the
// sign of the scale follows that value); returns d = max |scale| / top, the
// super-block scale the integer scales are rounded against.
float symmetric_scales(const float* src, float extreme_code, int top, float* scale) {
  float max_abs_scale = 0.0f;
  for (int s = 0; s < 16; ++s) {
    float amax = 0.0f, extreme = 0.0f;
    for (int l = 0; l < 16; ++l) {
      const float v = src[16 * s + l];
      if (std::fabs(v) > amax) {
        amax = std::fabs(v);
        extreme = v;
      }
    }
    scale[s] = extreme / extreme_code;
    max_abs_scale = std::max(max_abs_scale, std::fabs(scale[s]));
  }
  return round_to_fp16(max_abs_scale / static_cast<float>(top));
}

// Element v's code on sub-block j's grid: round((v + min) / step) in
// [0, levels].
inline int grid_code(const ScaleMin& g, int j, float v, int levels) {
  const float step = g.d * static_cast<float>(g.sc[j]);
  return step > 0.0f ? nearest_clamped((v + g.min_value[j]) / step, 0, levels) : 0;
}

}  // namespace

void dequantize_q2_k(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, src += 84, dst += kQK) {
    const uint8_t* scales = src;
    const uint8_t* qs = src + 16;
    const float d = load_fp16(src + 80);
    const float dmin = load_fp16(src + 82);
    for (int e = 0; e < kQK; ++e) {
      const uint8_t sc = scales[e / 16];
      const int q = (qs[half_byte(e)] >> (2 * ((e % 128) / 32))) & 3;
      const float dl = d * static_cast<float>(sc & 0x0f);
      const float ml = dmin * static_cast<float>(sc >> 4);
      dst[e] = dl * static_cast<float>(q) - ml;
    }
  }
}

void dequantize_q3_k(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, src += 110, dst += kQK) {
    const uint8_t* hmask = src;
    const uint8_t* qs = src + 32;
    const uint8_t* packed = src + 96;
    const float d = load_fp16(src + 108);
    // Sixteen 6-bit scales: low nibbles in bytes 0..7 (scale s in byte s % 8,
    // nibble s / 8), top two bits in bytes 8..11 (byte 8 + s % 4, pair s / 4).
    int scale[16];
    for (int s = 0; s < 16; ++s) {
      const int low = (packed[s % 8] >> (4 * (s / 8))) & 0x0f;
      const int high = (packed[8 + s % 4] >> (2 * (s / 4))) & 3;
      scale[s] = (low | (high << 4)) - 32;
    }
    for (int e = 0; e < kQK; ++e) {
      const int low = (qs[half_byte(e)] >> (2 * ((e % 128) / 32))) & 3;
      const int hbit = (hmask[e % 32] >> (e / 32)) & 1;
      const int q = low - (hbit ? 0 : 4);
      dst[e] = d * static_cast<float>(scale[e / 16]) * static_cast<float>(q);
    }
  }
}

void dequantize_q4_k(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, src += 144, dst += kQK) {
    const float d = load_fp16(src);
    const float dmin = load_fp16(src + 2);
    const uint8_t* scales = src + 4;
    const uint8_t* qs = src + 16;
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      get_scale_min_k4(scales, j, &sc, &m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) {
        const int q = (qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0x0f;
        dst[32 * j + l] = d1 * static_cast<float>(q) - m1;
      }
    }
  }
}

void dequantize_q5_k(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, src += 176, dst += kQK) {
    const float d = load_fp16(src);
    const float dmin = load_fp16(src + 2);
    const uint8_t* scales = src + 4;
    const uint8_t* qh = src + 16;
    const uint8_t* qs = src + 48;
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      get_scale_min_k4(scales, j, &sc, &m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) {
        const int low = (qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0x0f;
        const int high = (qh[l] >> j) & 1;
        dst[32 * j + l] = d1 * static_cast<float>(low | (high << 4)) - m1;
      }
    }
  }
}

void dequantize_q6_k(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, src += 210, dst += kQK) {
    const uint8_t* ql = src;
    const uint8_t* qh = src + 128;
    const uint8_t* scales = src + 192;
    const float d = load_fp16(src + 208);
    for (int e = 0; e < kQK; ++e) {
      const int k = (e % 128) / 32;
      const int low = (ql[(e / 128) * 64 + 32 * (k % 2) + e % 32] >> (4 * (k / 2))) & 0x0f;
      const int high = (qh[half_byte(e)] >> (2 * k)) & 3;
      const float dl = d * static_cast<float>(static_cast<int8_t>(scales[e / 16]));
      dst[e] = dl * static_cast<float>((low | (high << 4)) - 32);
    }
  }
}

// Round-to-nearest Q4_K. Unlike ggml's quantize_row_q4_K_ref, which searches
// each sub-block's scale and min by weighted least squares, this picks them so
// the grid always covers the sub-block (choose_scale_min): the min index
// rounds up (so -dmin * m <= the smallest value, which is also capped at 0 as
// ggml does), then the scale index rounds up so that 15 steps reach the
// largest value. With no clipping the error of every element is at most half
// a step, a bound the tests can pin; the cost is a slightly coarser grid than
// least squares. Q5_K (31 steps) and Q2_K (3 steps, 4-bit indices over
// 16-element sub-blocks) are made the same way.
void quantize_q4_k(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, src += kQK, dst += 144) {
    const ScaleMin g = choose_scale_min(src, 8, 32, 15, 63);
    store_fp16(dst, g.d);
    store_fp16(dst + 2, g.dmin);
    set_scale_min_k4(g.sc, g.m, dst + 4);
    uint8_t* qs = dst + 16;
    std::memset(qs, 0, 128);
    for (int j = 0; j < 8; ++j) {
      for (int l = 0; l < 32; ++l) {
        qs[32 * (j / 2) + l] |= static_cast<uint8_t>(grid_code(g, j, src[32 * j + l], 15) << (4 * (j % 2)));
      }
    }
  }
}

void quantize_q5_k(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, src += kQK, dst += 176) {
    const ScaleMin g = choose_scale_min(src, 8, 32, 31, 63);
    store_fp16(dst, g.d);
    store_fp16(dst + 2, g.dmin);
    set_scale_min_k4(g.sc, g.m, dst + 4);
    uint8_t* qh = dst + 16;
    uint8_t* qs = dst + 48;
    std::memset(qh, 0, 32 + 128);
    for (int j = 0; j < 8; ++j) {
      for (int l = 0; l < 32; ++l) {
        const int q = grid_code(g, j, src[32 * j + l], 31);
        qs[32 * (j / 2) + l] |= static_cast<uint8_t>((q & 0x0f) << (4 * (j % 2)));
        qh[l] |= static_cast<uint8_t>((q >> 4) << j);
      }
    }
  }
}

void quantize_q2_k(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, src += kQK, dst += 84) {
    const ScaleMin g = choose_scale_min(src, 16, 16, 3, 15);
    uint8_t* qs = dst + 16;
    std::memset(qs, 0, 64);
    for (int s = 0; s < 16; ++s) dst[s] = static_cast<uint8_t>(g.sc[s] | (g.m[s] << 4));
    for (int e = 0; e < kQK; ++e) {
      qs[half_byte(e)] |= static_cast<uint8_t>(grid_code(g, e / 16, src[e], 3) << (2 * ((e % 128) / 32)));
    }
    store_fp16(dst + 80, g.d);
    store_fp16(dst + 82, g.dmin);
  }
}

// Round-to-nearest Q3_K, symmetric like Q6_K below: each 16-element
// sub-block's scale maps its largest-magnitude value to code -4 exactly,
// scales are rounded to 6 bits (stored + 32) against d = max |scale| / 31,
// codes in [-4, 3] against the scale actually stored.
void quantize_q3_k(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, src += kQK, dst += 110) {
    float scale[16];
    const float d = symmetric_scales(src, -4.0f, 31, scale);
    const float id = d > 0.0f ? 1.0f / d : 0.0f;
    int sc[16];
    uint8_t* hmask = dst;
    uint8_t* qs = dst + 32;
    uint8_t* packed = dst + 96;
    std::memset(dst, 0, 108);
    for (int s = 0; s < 16; ++s) {
      sc[s] = nearest_clamped(scale[s] * id, -32, 31);
      const int u = sc[s] + 32;
      packed[s % 8] |= static_cast<uint8_t>((u & 0x0f) << (4 * (s / 8)));
      packed[8 + s % 4] |= static_cast<uint8_t>((u >> 4) << (2 * (s / 4)));
    }
    store_fp16(dst + 108, d);
    for (int e = 0; e < kQK; ++e) {
      const float step = d * static_cast<float>(sc[e / 16]);
      const int q = (step != 0.0f ? nearest_clamped(src[e] / step, -4, 3) : 0) + 4;  // 0..7
      qs[half_byte(e)] |= static_cast<uint8_t>((q & 3) << (2 * ((e % 128) / 32)));
      hmask[e % 32] |= static_cast<uint8_t>((q >> 2) << (e / 32));
    }
  }
}

// Round-to-nearest Q6_K, after ggml's quantize_row_q6_K_ref minus its scale
// search: each 16-element sub-block's scale maps its largest-magnitude value
// to code -32 exactly (the sign of the scale follows that value), the scales
// are rounded to int8 against d = max |scale| / 127, and codes are rounded
// against the scale actually stored.
void quantize_q6_k(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, src += kQK, dst += 210) {
    float scale[16];
    const float d = symmetric_scales(src, -32.0f, 127, scale);
    const float id = d > 0.0f ? 1.0f / d : 0.0f;
    int8_t sc[16];
    for (int s = 0; s < 16; ++s) sc[s] = static_cast<int8_t>(nearest_clamped(scale[s] * id, -127, 127));

    uint8_t* ql = dst;
    uint8_t* qh = dst + 128;
    std::memset(dst, 0, 192);
    std::memcpy(dst + 192, sc, 16);
    store_fp16(dst + 208, d);
    for (int e = 0; e < kQK; ++e) {
      const float step = d * static_cast<float>(sc[e / 16]);
      const int q = step != 0.0f ? nearest_clamped(src[e] / step, -32, 31) + 32 : 32;
      const int k = (e % 128) / 32;
      ql[(e / 128) * 64 + 32 * (k % 2) + e % 32] |= static_cast<uint8_t>((q & 0x0f) << (4 * (k / 2)));
      qh[half_byte(e)] |= static_cast<uint8_t>((q >> 4) << (2 * k));
    }
  }
}

void get_scale_min_k4(const uint8_t* scales, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = scales[j] & 63;
    *m = scales[j + 4] & 63;
  } else {
    *sc = (scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4);
    *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
  }
}

}  // namespace suanli::quant::internal
