// Portable matmul kernels (any CPU): the unpackers of every integer weight
// format into the common unpacked form (matmul_kernels.h), activation
// quantization, and scalar tile kernels with the same data layout and the
// same order of operations as the SIMD ones, minus fused multiply-adds.
// Built with -ffp-contract=off so the order does not depend on the compiler.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/quant/quant.h"
#include "devices/cpu/matmul_kernels.h"
#include "devices/cpu/matmul_packed.h"

namespace suanli::cpu::mm {
namespace {

float fp16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof h);
  return quant::fp16_to_fp32(h);
}

// Writes half-block h's scale (to its 4 lanes) and offset.
inline void set_half(float* dw, float* mo, int64_t h, float scale, float offset) {
  for (int l = 0; l < 4; ++l) dw[4 * h + l] = scale;
  mo[h] = offset;
}

void unpack_nibbles(const uint8_t* qs, uint8_t* u) {
  for (int j = 0; j < 16; ++j) {
    u[j] = qs[j] & 0x0f;
    u[j + 16] = qs[j] >> 4;
  }
}

void add_fifth_bits(const uint8_t* qh_bytes, uint8_t* u) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, sizeof qh);
  for (int j = 0; j < 32; ++j) u[j] |= static_cast<uint8_t>(((qh >> j) & 1) << 4);
}

// Q4_K / Q5_K scale packing (see core/quant/kquants.cc).
void get_scale_min_k4(const uint8_t* scales, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = scales[j] & 63;
    *m = scales[j + 4] & 63;
  } else {
    *sc = (scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4);
    *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
  }
}

inline int half_byte(int e) { return 32 * (e / 128) + e % 32; }

// Integer activation quantization, shared by every ISA's kernels so that the
// codes are identical whichever kernels run: per 32-block, d = amax / 127,
// codes round(x * 127 / amax) to nearest even.
void quantize_act(const float* x, const Geometry& g, uint8_t* dst) {
  int8_t* q = reinterpret_cast<int8_t*>(dst);
  float* da = reinterpret_cast<float*>(dst + g.kp);
  float* ht = reinterpret_cast<float*>(dst + 2 * g.kp);
  const int64_t nb = g.k / 32;
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + 32 * b;
    float amax = 0.0f;
    bool nan = false;
    for (int j = 0; j < 32; ++j) {
      amax = std::fmax(amax, std::fabs(xb[j]));
      nan |= std::isnan(xb[j]);
    }
    // A block holding a NaN: NaN outputs, not finite garbage (codes 0).
    const float d = nan ? std::numeric_limits<float>::quiet_NaN() : amax / 127.0f;
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    int sum[2] = {0, 0};
    for (int j = 0; j < 32; ++j) {
      float v = std::nearbyint(xb[j] * id);
      v = std::isnan(v) ? 0.0f : std::fmin(127.0f, std::fmax(-127.0f, v));
      const int c = static_cast<int>(v);
      q[32 * b + j] = static_cast<int8_t>(c);
      sum[j / 16] += c;
    }
    for (int l = 0; l < 8; ++l) da[8 * b + l] = d;
    ht[2 * b] = d * static_cast<float>(sum[0]);
    ht[2 * b + 1] = d * static_cast<float>(sum[1]);
  }
  std::memset(q + g.k, 0, g.kp - g.k);
  for (int64_t i = g.k / 4; i < g.kp / 4; ++i) da[i] = 0.0f;
  for (int64_t i = g.k / 16; i < g.n_half_pad; ++i) ht[i] = 0.0f;
}

bool unpack_row(GgmlType type, const uint8_t* src, const Geometry& g, uint8_t* dst) {
  unpack_row_portable(type, src, g, dst);
  return true;
}

void int_tile(const uint8_t* w, int n_rows, const uint8_t* a, int n_tok, const Geometry& g, const float* bias,
              float* out, int64_t ldo) {
  for (int r = 0; r < n_rows; ++r) {
    const uint8_t* wr = w + r * g.row_bytes;
    const float* dw = reinterpret_cast<const float*>(wr + g.kp);
    const float* mo = reinterpret_cast<const float*>(wr + 2 * g.kp);
    for (int c = 0; c < n_tok; ++c) {
      const uint8_t* ac = a + c * g.row_bytes;
      const int8_t* q = reinterpret_cast<const int8_t*>(ac);
      const float* da = reinterpret_cast<const float*>(ac + g.kp);
      const float* ht = reinterpret_cast<const float*>(ac + 2 * g.kp);
      float acc[16] = {};
      for (int64_t lane = 0; lane < g.kp / 4; ++lane) {
        int32_t s = 0;
        for (int i = 0; i < 4; ++i) s += static_cast<int32_t>(wr[4 * lane + i]) * q[4 * lane + i];
        acc[lane % 16] += (static_cast<float>(s) * da[lane]) * dw[lane];
      }
      for (int64_t h = 0; h < g.n_half_pad; ++h) acc[h % 16] += mo[h] * ht[h];
      for (int width = 8; width > 0; width /= 2) {
        for (int l = 0; l < width; ++l) acc[l] += acc[l + width];
      }
      out[c * ldo + r] = bias ? acc[0] + bias[r] : acc[0];
    }
  }
}

void float_tile(const float* w, int n_rows, const float* a, int n_tok, const Geometry& g, const float* bias,
                float* out, int64_t ldo) {
  for (int r = 0; r < n_rows; ++r) {
    const float* wr = w + r * g.kf;
    for (int c = 0; c < n_tok; ++c) {
      const float* ac = a + c * g.kf;
      float acc[16] = {};
      for (int64_t k = 0; k < g.kf; ++k) acc[k % 16] += wr[k] * ac[k];
      for (int width = 8; width > 0; width /= 2) {
        for (int l = 0; l < width; ++l) acc[l] += acc[l + width];
      }
      out[c * ldo + r] = bias ? acc[0] + bias[r] : acc[0];
    }
  }
}

}  // namespace

void unpack_row_portable(GgmlType type, const uint8_t* src, const Geometry& g, uint8_t* dst) {
  uint8_t* u = dst;
  float* dw = reinterpret_cast<float*>(dst + g.kp);
  float* mo = reinterpret_cast<float*>(dst + 2 * g.kp);
  const int64_t k = g.k;
  switch (type) {
    case GgmlType::kQ8_0:
      for (int64_t b = 0; b < k / 32; ++b, src += 34) {
        const float d = fp16_at(src);
        for (int j = 0; j < 32; ++j) u[32 * b + j] = src[2 + j] ^ 0x80;
        set_half(dw, mo, 2 * b, d, -128.0f * d);
        set_half(dw, mo, 2 * b + 1, d, -128.0f * d);
      }
      break;
    case GgmlType::kQ4_0:
      for (int64_t b = 0; b < k / 32; ++b, src += 18) {
        const float d = fp16_at(src);
        unpack_nibbles(src + 2, u + 32 * b);
        set_half(dw, mo, 2 * b, d, -8.0f * d);
        set_half(dw, mo, 2 * b + 1, d, -8.0f * d);
      }
      break;
    case GgmlType::kQ4_1:
      for (int64_t b = 0; b < k / 32; ++b, src += 20) {
        const float d = fp16_at(src), m = fp16_at(src + 2);
        unpack_nibbles(src + 4, u + 32 * b);
        set_half(dw, mo, 2 * b, d, m);
        set_half(dw, mo, 2 * b + 1, d, m);
      }
      break;
    case GgmlType::kQ5_0:
      for (int64_t b = 0; b < k / 32; ++b, src += 22) {
        const float d = fp16_at(src);
        unpack_nibbles(src + 6, u + 32 * b);
        add_fifth_bits(src + 2, u + 32 * b);
        set_half(dw, mo, 2 * b, d, -16.0f * d);
        set_half(dw, mo, 2 * b + 1, d, -16.0f * d);
      }
      break;
    case GgmlType::kQ5_1:
      for (int64_t b = 0; b < k / 32; ++b, src += 24) {
        const float d = fp16_at(src), m = fp16_at(src + 2);
        unpack_nibbles(src + 8, u + 32 * b);
        add_fifth_bits(src + 4, u + 32 * b);
        set_half(dw, mo, 2 * b, d, m);
        set_half(dw, mo, 2 * b + 1, d, m);
      }
      break;
    case GgmlType::kQ2_K:
      for (int64_t b = 0; b < k / 256; ++b, src += 84) {
        const uint8_t* scales = src;
        const uint8_t* qs = src + 16;
        const float d = fp16_at(src + 80), dmin = fp16_at(src + 82);
        uint8_t* ub = u + 256 * b;
        for (int e = 0; e < 256; ++e) ub[e] = (qs[half_byte(e)] >> (2 * ((e % 128) / 32))) & 3;
        for (int s = 0; s < 16; ++s) {
          set_half(dw, mo, 16 * b + s, d * static_cast<float>(scales[s] & 0x0f),
                   -(dmin * static_cast<float>(scales[s] >> 4)));
        }
      }
      break;
    case GgmlType::kQ3_K:
      for (int64_t b = 0; b < k / 256; ++b, src += 110) {
        const uint8_t* hmask = src;
        const uint8_t* qs = src + 32;
        const uint8_t* packed = src + 96;
        const float d = fp16_at(src + 108);
        uint8_t* ub = u + 256 * b;
        // Code low + 4 * hbit in 0..7, value d * s * (code - 4).
        for (int e = 0; e < 256; ++e) {
          const int low = (qs[half_byte(e)] >> (2 * ((e % 128) / 32))) & 3;
          const int hbit = (hmask[e % 32] >> (e / 32)) & 1;
          ub[e] = static_cast<uint8_t>(low + 4 * hbit);
        }
        for (int s = 0; s < 16; ++s) {
          const int low = (packed[s % 8] >> (4 * (s / 8))) & 0x0f;
          const int high = (packed[8 + s % 4] >> (2 * (s / 4))) & 3;
          const float scale = d * static_cast<float>((low | (high << 4)) - 32);
          set_half(dw, mo, 16 * b + s, scale, -4.0f * scale);
        }
      }
      break;
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K: {
      const bool five = type == GgmlType::kQ5_K;
      const int64_t bytes = five ? 176 : 144;
      for (int64_t b = 0; b < k / 256; ++b, src += bytes) {
        const float d = fp16_at(src), dmin = fp16_at(src + 2);
        const uint8_t* scales = src + 4;
        const uint8_t* qh = src + 16;
        const uint8_t* qs = src + (five ? 48 : 16);
        uint8_t* ub = u + 256 * b;
        for (int j = 0; j < 8; ++j) {
          int sc, m;
          get_scale_min_k4(scales, j, &sc, &m);
          for (int l = 0; l < 32; ++l) {
            int q = (qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0x0f;
            if (five) q |= ((qh[l] >> j) & 1) << 4;
            ub[32 * j + l] = static_cast<uint8_t>(q);
          }
          const float scale = d * static_cast<float>(sc), offset = -(dmin * static_cast<float>(m));
          set_half(dw, mo, 16 * b + 2 * j, scale, offset);
          set_half(dw, mo, 16 * b + 2 * j + 1, scale, offset);
        }
      }
      break;
    }
    case GgmlType::kQ6_K:
      for (int64_t b = 0; b < k / 256; ++b, src += 210) {
        const uint8_t* ql = src;
        const uint8_t* qh = src + 128;
        const uint8_t* scales = src + 192;
        const float d = fp16_at(src + 208);
        uint8_t* ub = u + 256 * b;
        for (int e = 0; e < 256; ++e) {
          const int kk = (e % 128) / 32;
          const int low = (ql[(e / 128) * 64 + 32 * (kk % 2) + e % 32] >> (4 * (kk / 2))) & 0x0f;
          const int high = (qh[half_byte(e)] >> (2 * kk)) & 3;
          ub[e] = static_cast<uint8_t>(low | (high << 4));
        }
        for (int s = 0; s < 16; ++s) {
          const float scale = d * static_cast<float>(static_cast<int8_t>(scales[s]));
          set_half(dw, mo, 16 * b + s, scale, -32.0f * scale);
        }
      }
      break;
    default:
      SUANLI_CHECK(false && "matmul: weight format without an integer unpacker");
  }
  std::memset(u + k, 0, g.kp - k);
  for (int64_t i = k / 4; i < g.kp / 4; ++i) dw[i] = 0.0f;
  for (int64_t i = k / 16; i < g.n_half_pad; ++i) mo[i] = 0.0f;
}

bool float_row_portable(GgmlType type, const uint8_t* src, const Geometry& g, float* dst) {
  switch (type) {
    case GgmlType::kF32: std::memcpy(dst, src, g.k * sizeof(float)); break;
    case GgmlType::kF16:
    case GgmlType::kBF16:
      for (int64_t i = 0; i < g.k; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, sizeof h);
        dst[i] = type == GgmlType::kF16 ? quant::fp16_to_fp32(h) : quant::bf16_to_fp32(h);
      }
      break;
    case GgmlType::kMXFP8_E4M3: SUANLI_CHECK(quant::dequantize(type, src, dst, g.k).ok()); break;
    default: return false;
  }
  for (int64_t i = g.k; i < g.kf; ++i) dst[i] = 0.0f;
  return true;
}

// ---- the packed rows16 layout (matmul_packed.h), for any CPU ----
// The same integer sums and the same float steps as the AVX-512 and AVX2
// kernels, with std::fma where they fuse: bit-identical to them (tested).
namespace {

void pk_quantize_act_portable(const float* x, int64_t k, uint8_t* dst) {
  const int64_t nb = k / 32;
  const PkActRow a = pk_act_row(dst, k);
  int8_t* q = a.q;
  for (int64_t b = 0; b < nb; ++b) {
    float amax = 0.0f;
    bool nan = false;
    for (int i = 0; i < 32; ++i) {
      amax = std::max(amax, std::fabs(x[32 * b + i]));  // NaN never wins
      nan |= std::isnan(x[32 * b + i]);
    }
    const float d = nan ? std::numeric_limits<float>::quiet_NaN() : amax / 127.0f;
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    int32_t half[2] = {0, 0};
    for (int i = 0; i < 32; ++i) {
      const float y = std::min(127.0f, std::max(-127.0f, x[32 * b + i] * id));
      const int32_t c = static_cast<int32_t>(std::nearbyint(y));  // round to nearest even, as cvtps2dq
      q[32 * b + i] = static_cast<int8_t>(c);
      half[i / 16] += c;
    }
    pk_set_block(a, b, d, half[0], half[1]);
  }
}

float fp16_field(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return quant::fp16_to_fp32(h);
}

void pk_tile_portable(GgmlType type, const uint8_t* grp, int64_t nb, const uint8_t* act, size_t as, int n_tok,
                      const float* bias, float* out, int64_t ldo, const uint8_t* /*next*/) {
  const bool q8 = type == GgmlType::kQ8_0, q4k = type == GgmlType::kQ4_K, q5k = type == GgmlType::kQ5_K;
  const bool q6k = type == GgmlType::kQ6_K, q3k = type == GgmlType::kQ3_K, q2k = type == GgmlType::kQ2_K;
  const bool kq = q4k || q5k;                                               // d * sc, dmin * m
  const bool has_min = type == GgmlType::kQ4_1 || type == GgmlType::kQ5_1;  // + m * sa
  const bool fifth = q5k || type == GgmlType::kQ5_0 || type == GgmlType::kQ5_1;
  const bool halves = q6k || q3k || q2k;  // a scale per 16-element half
  // Record layout (matmul_packed.h): codes_bytes of codes, then the scales.
  const size_t codes_bytes = q8 ? 512 : q3k ? 192 : q2k ? 128 : 256 + (fifth ? 64 : 0) + (q6k ? 128 : 0);
  const size_t rec_bytes = codes_bytes + (has_min ? 64 : 32);
  const size_t header = kq ? kPkQ4KHeader : q6k ? kPkQ6KHeader : q3k ? kPkQ3KHeader : q2k ? kPkQ2KHeader : 0;
  const size_t super = header + 8 * rec_bytes;
  const int64_t k = nb * 32;
  float acc[kPkTokens][kPkRows] = {};
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* hdr = grp + (b / 8) * super;  // super-block formats
    const uint8_t* rec = header ? hdr + header + (b % 8) * rec_bytes : grp + b * rec_bytes;
    for (int r = 0; r < kPkRows; ++r) {
      int32_t code[32];
      for (int j = 0; j < 4; ++j) {
        for (int i = 0; i < 4; ++i) {
          int32_t& lo = code[4 * j + i];  // element 4j+i
          int32_t& hi = code[16 + 4 * j + i];
          if (q8) {
            lo = rec[64 * j + 4 * r + i];
            hi = rec[64 * (j + 4) + 4 * r + i];
            continue;
          }
          if (q3k || q2k) {
            lo = (rec[4 * r + i] >> (2 * j)) & 3;
            hi = (rec[64 + 4 * r + i] >> (2 * j)) & 3;
            if (q3k) {
              const uint8_t plane = rec[128 + 4 * r + i];
              lo |= ((plane >> j) & 1) << 2;
              hi |= ((plane >> (4 + j)) & 1) << 2;
            }
            continue;
          }
          const uint8_t byte = rec[64 * j + 4 * r + i];
          lo = byte & 0x0f;
          hi = byte >> 4;
          if (fifth) {
            const uint8_t plane = rec[256 + 4 * r + i];
            lo |= ((plane >> j) & 1) << 4;
            hi |= ((plane >> (4 + j)) & 1) << 4;
          } else if (q6k) {
            lo |= ((rec[256 + 4 * r + i] >> (2 * j)) & 3) << 4;
            hi |= ((rec[320 + 4 * r + i] >> (2 * j)) & 3) << 4;
          }
        }
      }
      // Per-row scales, formed as the SIMD kernels form them: d / d1 of the
      // block or its halves, mn / mn1 the mins.
      float d, d1 = 0.0f, mn = 0.0f, mn1 = 0.0f;
      const uint8_t* sc = rec + codes_bytes;
      if (q6k || q3k) {
        const float dd = fp16_field(hdr + 2 * r);
        d = dd * static_cast<float>(static_cast<int8_t>(sc[r]));
        d1 = dd * static_cast<float>(static_cast<int8_t>(sc[16 + r]));
      } else if (q2k) {
        const float dd = fp16_field(hdr + 2 * r), dm = fp16_field(hdr + 32 + 2 * r);
        d = dd * static_cast<float>(sc[r] & 0x0f);
        d1 = dd * static_cast<float>(sc[16 + r] & 0x0f);
        mn = (dm * static_cast<float>(sc[r] >> 4)) * (1.0f / 32);
        mn1 = (dm * static_cast<float>(sc[16 + r] >> 4)) * (1.0f / 32);
      } else if (kq) {
        d = fp16_field(hdr + 2 * r) * static_cast<float>(sc[r]);
        mn = fp16_field(hdr + 32 + 2 * r) * static_cast<float>(sc[16 + r]);
      } else {
        d = fp16_field(sc + 2 * r);
        if (has_min) mn = fp16_field(sc + 32 + 2 * r);
      }
      for (int t = 0; t < n_tok; ++t) {
        const uint8_t* a = act + t * as;
        const int8_t* ab = reinterpret_cast<const int8_t*>(a) + 32 * b;
        const float* da = reinterpret_cast<const float*>(a + k);
        const int32_t* c = reinterpret_cast<const int32_t*>(da + 2 * nb);  // c8, c128, c32h
        int32_t i0 = 0, i1 = 0;
        for (int e = 0; e < 16; ++e) i0 += code[e] * ab[e];
        for (int e = 16; e < 32; ++e) i1 += code[e] * ab[e];
        float& o = acc[t][r];
        if (halves) {
          const int32_t* c32h = c + 2 * nb;
          if (q6k) {
            i0 -= c32h[2 * b];
            i1 -= c32h[2 * b + 1];
          } else if (q3k) {
            i0 -= c32h[2 * b] >> 3;
            i1 -= c32h[2 * b + 1] >> 3;
          }
          o = std::fma(static_cast<float>(i0), d * da[b], o);
          o = std::fma(static_cast<float>(i1), d1 * da[b], o);
          if (q2k) {
            o = std::fma(-mn, static_cast<float>(c32h[2 * b]) * da[b], o);
            o = std::fma(-mn1, static_cast<float>(c32h[2 * b + 1]) * da[b], o);
          }
          continue;
        }
        int32_t is = i0 + i1;
        if (type == GgmlType::kQ4_0) is -= c[b];
        if (type == GgmlType::kQ5_0) is -= 2 * c[b];
        if (q8) is -= c[nb + b];
        o = std::fma(static_cast<float>(is), d * da[b], o);
        if (has_min) o = std::fma(mn, da[nb + b], o);
        if (kq) o = std::fma(-mn, da[nb + b], o);
      }
    }
  }
  for (int t = 0; t < n_tok; ++t) {
    for (int r = 0; r < kPkRows; ++r) out[t * ldo + r] = bias ? acc[t][r] + bias[r] : acc[t][r];
  }
}

}  // namespace

const KernelTable* portable_kernels() {
  static const KernelTable kTable = [] {
    KernelTable t{"portable", quantize_act, unpack_row, int_tile, float_row_portable, float_tile};
    t.pk_quantize_act = pk_quantize_act_portable;
    t.pk_tile = pk_tile_portable;
    return t;
  }();
  return &kTable;
}

}  // namespace suanli::cpu::mm
