// Packing GGUF rows into the rows16 layout (matmul_packed.h). Portable code:
// it runs once per weight at load.
#include "devices/cpu/matmul_packed.h"

#include "core/quant/formats.h"

#include <cstring>

namespace suanli::cpu::mm {

size_t pk_record_bytes(GgmlType type) {
  switch (type) {
    case GgmlType::kQ4_0: return 256 + 32;
    case GgmlType::kQ4_1: return 256 + 64;
    case GgmlType::kQ5_0: return kPkQ5_0Rec;
    case GgmlType::kQ5_1: return kPkQ5_1Rec;
    case GgmlType::kQ8_0: return 512 + 32;
    case GgmlType::kQ2_K: return kPkQ2KRec;
    case GgmlType::kQ3_K: return kPkQ3KRec;
    case GgmlType::kQ4_K: return 256 + 32;
    case GgmlType::kQ5_K: return kPkQ5KRec;
    case GgmlType::kQ6_K: return kPkQ6KRec;
    default: return 0;
  }
}

size_t pk_group_bytes(GgmlType type, int64_t k) {
  size_t super = 0;
  switch (type) {
    case GgmlType::kQ2_K: super = kPkQ2KSuper; break;
    case GgmlType::kQ3_K: super = kPkQ3KSuper; break;
    case GgmlType::kQ4_K: super = kPkQ4KSuper; break;
    case GgmlType::kQ5_K: super = kPkQ5KSuper; break;
    case GgmlType::kQ6_K: super = kPkQ6KSuper; break;
    default: break;
  }
  if (super) return k % 256 == 0 ? static_cast<size_t>(k / 256) * super : 0;
  const size_t rec = pk_record_bytes(type);
  return rec && k % 32 == 0 ? static_cast<size_t>(k / 32) * rec : 0;
}

namespace {

// Q4_K (five_bits false) and Q5_K: one super-block of 16 rows.
void pack_q4_k(const uint8_t* src, size_t row_stride, int64_t sb, uint8_t* dst, bool five_bits) {
  const size_t block = five_bits ? 176 : 144, rec_bytes = five_bits ? kPkQ5KRec : 256 + 32;
  const size_t scale_at = five_bits ? 256 + 64 : 256;
  for (int r = 0; r < kPkRows; ++r) {
    const uint8_t* blk = src + r * row_stride + sb * block;
    std::memcpy(dst + 2 * r, blk, 2);       // d
    std::memcpy(dst + 32 + 2 * r, blk + 2, 2);  // dmin
    for (int j = 0; j < 8; ++j) {
      uint8_t* rec = dst + kPkQ4KHeader + j * rec_bytes;
      int sc, m;
      quant::internal::get_scale_min_k4(blk + 4, j, &sc, &m);
      rec[scale_at + r] = static_cast<uint8_t>(sc);
      rec[scale_at + 16 + r] = static_cast<uint8_t>(m);
      if (five_bits) {  // bit j of qh[l] is element l's 5th bit
        const uint8_t* qh = blk + 16;
        for (int jj = 0; jj < 4; ++jj) {
          for (int i = 0; i < 4; ++i) {
            uint8_t& plane = rec[256 + 4 * r + i];
            if (jj == 0) plane = 0;
            plane = static_cast<uint8_t>(plane | (((qh[4 * jj + i] >> j) & 1) << jj) |
                                         (((qh[16 + 4 * jj + i] >> j) & 1) << (4 + jj)));
          }
        }
      }
      // Element l of sub-block j: nibble j % 2 of qs[32 (j / 2) + l].
      const uint8_t* qs = blk + (five_bits ? 48 : 16) + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int jj = 0; jj < 4; ++jj) {
        for (int i = 0; i < 4; ++i) {
          const int lo = (qs[4 * jj + i] >> shift) & 0x0f;       // element 4jj+i
          const int hi = (qs[16 + 4 * jj + i] >> shift) & 0x0f;  // element 16+4jj+i
          rec[64 * jj + 4 * r + i] = static_cast<uint8_t>(lo | (hi << 4));
        }
      }
    }
  }
}

// Q6_K: one super-block of 16 rows. Element e's 6-bit code and scale as the
// reference dequantizer (kquants.cc) reads them.
void pack_q6_k(const uint8_t* src, size_t row_stride, int64_t sb, uint8_t* dst) {
  for (int r = 0; r < kPkRows; ++r) {
    const uint8_t* blk = src + r * row_stride + sb * 210;
    const uint8_t* ql = blk;
    const uint8_t* qh = blk + 128;
    const uint8_t* scales = blk + 192;
    std::memcpy(dst + 2 * r, blk + 208, 2);  // d
    auto code = [&](int e) {
      const int k = (e % 128) / 32;
      const int low = (ql[(e / 128) * 64 + 32 * (k % 2) + e % 32] >> (4 * (k / 2))) & 0x0f;
      const int high = (qh[32 * (e / 128) + e % 32] >> (2 * k)) & 3;
      return low | (high << 4);
    };
    for (int j = 0; j < 8; ++j) {
      uint8_t* rec = dst + kPkQ6KHeader + j * kPkQ6KRec;
      rec[384 + r] = scales[2 * j];           // elements 0-15 of the sub-block
      rec[384 + 16 + r] = scales[2 * j + 1];  // elements 16-31
      for (int jj = 0; jj < 4; ++jj) {
        for (int i = 0; i < 4; ++i) {
          const int lo = code(32 * j + 4 * jj + i), hi = code(32 * j + 16 + 4 * jj + i);
          rec[64 * jj + 4 * r + i] = static_cast<uint8_t>((lo & 0x0f) | ((hi & 0x0f) << 4));
          uint8_t& h0 = rec[256 + 4 * r + i];
          uint8_t& h1 = rec[256 + 64 + 4 * r + i];
          if (jj == 0) h0 = h1 = 0;
          h0 = static_cast<uint8_t>(h0 | ((lo >> 4) << (2 * jj)));
          h1 = static_cast<uint8_t>(h1 | ((hi >> 4) << (2 * jj)));
        }
      }
    }
  }
}

// Q2_K / Q3_K element e's 2-bit code: bits 2 ((e % 128) / 32) of byte
// 32 (e / 128) + e % 32 of qs.
int two_bit_code(const uint8_t* qs, int e) { return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3; }

// Q2_K (three_bits false) and Q3_K: one super-block of 16 rows. code(r, e)
// is row r's code of element e of the super-block (Q3_K: q + 4, 0..7); the
// scale bytes of the 16-element halves are written by the caller.
template <typename Code>
void pack_low_bit_codes(uint8_t* rec, int r, int j, bool three_bits, Code code) {
  for (int jj = 0; jj < 4; ++jj) {
    for (int i = 0; i < 4; ++i) {
      const int lo = code(32 * j + 4 * jj + i), hi = code(32 * j + 16 + 4 * jj + i);
      uint8_t& p0 = rec[4 * r + i];
      uint8_t& p1 = rec[64 + 4 * r + i];
      if (jj == 0) p0 = p1 = 0;
      p0 = static_cast<uint8_t>(p0 | ((lo & 3) << (2 * jj)));
      p1 = static_cast<uint8_t>(p1 | ((hi & 3) << (2 * jj)));
      if (three_bits) {
        uint8_t& p2 = rec[128 + 4 * r + i];
        if (jj == 0) p2 = 0;
        p2 = static_cast<uint8_t>(p2 | ((lo >> 2) << jj) | ((hi >> 2) << (4 + jj)));
      }
    }
  }
}

void pack_q2_k(const uint8_t* src, size_t row_stride, int64_t sb, uint8_t* dst) {
  for (int r = 0; r < kPkRows; ++r) {
    const uint8_t* blk = src + r * row_stride + sb * 84;
    const uint8_t* scales = blk;
    const uint8_t* qs = blk + 16;
    std::memcpy(dst + 2 * r, blk + 80, 2);       // d
    std::memcpy(dst + 32 + 2 * r, blk + 82, 2);  // dmin
    for (int j = 0; j < 8; ++j) {
      uint8_t* rec = dst + kPkQ2KHeader + j * kPkQ2KRec;
      pack_low_bit_codes(rec, r, j, false, [&](int e) { return two_bit_code(qs, e); });
      rec[128 + r] = scales[2 * j];
      rec[144 + r] = scales[2 * j + 1];
    }
  }
}

void pack_q3_k(const uint8_t* src, size_t row_stride, int64_t sb, uint8_t* dst) {
  for (int r = 0; r < kPkRows; ++r) {
    const uint8_t* blk = src + r * row_stride + sb * 110;
    const uint8_t* hmask = blk;
    const uint8_t* qs = blk + 32;
    const uint8_t* packed = blk + 96;
    std::memcpy(dst + 2 * r, blk + 108, 2);  // d
    for (int j = 0; j < 8; ++j) {
      uint8_t* rec = dst + kPkQ3KHeader + j * kPkQ3KRec;
      // q + 4 = low + 4 * hbit (q = low - 4 when hbit is clear).
      pack_low_bit_codes(rec, r, j, true,
                         [&](int e) { return two_bit_code(qs, e) + 4 * ((hmask[e % 32] >> (e / 32)) & 1); });
      // Sixteen 6-bit scales (kquants.cc): low nibble in byte s % 8, nibble
      // s / 8; top two bits in byte 8 + s % 4, pair s / 4.
      for (int h = 0; h < 2; ++h) {
        const int s = 2 * j + h;
        const int v = (((packed[s % 8] >> (4 * (s / 8))) & 0x0f) | (((packed[8 + s % 4] >> (2 * (s / 4))) & 3) << 4));
        rec[192 + 16 * h + r] = static_cast<uint8_t>(static_cast<int8_t>(v - 32));
      }
    }
  }
}

}  // namespace

size_t pk_act_stride(int64_t k) {
  const size_t nb = static_cast<size_t>(k / 32);
  return (static_cast<size_t>(k) + 24 * nb + 63) / 64 * 64;
}

PkActRow pk_act_row(uint8_t* row, int64_t k) {
  const int64_t nb = k / 32;
  PkActRow a;
  a.q = reinterpret_cast<int8_t*>(row);
  a.da = reinterpret_cast<float*>(row + k);
  a.sa = a.da + nb;
  a.c8 = reinterpret_cast<int32_t*>(a.sa + nb);
  a.c128 = a.c8 + nb;
  a.c32h = a.c128 + nb;
  return a;
}

void pk_pack_group(GgmlType type, const uint8_t* src, size_t row_stride, int64_t k, uint8_t* dst) {
  if (type == GgmlType::kQ4_K) {
    for (int64_t sb = 0; sb < k / 256; ++sb) pack_q4_k(src, row_stride, sb, dst + sb * kPkQ4KSuper, false);
    return;
  }
  if (type == GgmlType::kQ5_K) {
    for (int64_t sb = 0; sb < k / 256; ++sb) pack_q4_k(src, row_stride, sb, dst + sb * kPkQ5KSuper, true);
    return;
  }
  if (type == GgmlType::kQ6_K) {
    for (int64_t sb = 0; sb < k / 256; ++sb) pack_q6_k(src, row_stride, sb, dst + sb * kPkQ6KSuper);
    return;
  }
  if (type == GgmlType::kQ3_K) {
    for (int64_t sb = 0; sb < k / 256; ++sb) pack_q3_k(src, row_stride, sb, dst + sb * kPkQ3KSuper);
    return;
  }
  if (type == GgmlType::kQ2_K) {
    for (int64_t sb = 0; sb < k / 256; ++sb) pack_q2_k(src, row_stride, sb, dst + sb * kPkQ2KSuper);
    return;
  }
  const int64_t nb = k / 32;
  const size_t rec = pk_record_bytes(type);
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* r16 = dst + b * rec;
    for (int r = 0; r < kPkRows; ++r) {
      const uint8_t* row = src + r * row_stride;
      if (type == GgmlType::kQ8_0) {
        const uint8_t* blk = row + b * 34;
        std::memcpy(r16 + 512 + 2 * r, blk, 2);
        for (int s = 0; s < 8; ++s) {
          for (int i = 0; i < 4; ++i) r16[64 * s + 4 * r + i] = static_cast<uint8_t>(blk[2 + 4 * s + i] ^ 0x80);
        }
        continue;
      }
      // Q4_0 / Q4_1 / Q5_0 / Q5_1: d | [m] | [qh[4]] | qs[16].
      const bool has_min = type == GgmlType::kQ4_1 || type == GgmlType::kQ5_1;
      const bool five = type == GgmlType::kQ5_0 || type == GgmlType::kQ5_1;
      const size_t scales_at = five ? 256 + 64 : 256;
      const uint8_t* blk = row + b * ((has_min ? 20 : 18) + (five ? 4 : 0));
      const uint8_t* qs = blk + (has_min ? 4 : 2) + (five ? 4 : 0);
      std::memcpy(r16 + scales_at + 2 * r, blk, 2);
      if (has_min) std::memcpy(r16 + scales_at + 32 + 2 * r, blk + 2, 2);
      if (five) {  // bit e of the little-endian qh is element e's 5th bit
        const uint8_t* qhb = blk + (has_min ? 4 : 2);
        const uint32_t qh = static_cast<uint32_t>(qhb[0]) | static_cast<uint32_t>(qhb[1]) << 8 |
                            static_cast<uint32_t>(qhb[2]) << 16 | static_cast<uint32_t>(qhb[3]) << 24;
        for (int i = 0; i < 4; ++i) {
          uint8_t plane = 0;
          for (int jj = 0; jj < 4; ++jj) {
            plane = static_cast<uint8_t>(plane | (((qh >> (4 * jj + i)) & 1) << jj) |
                                         (((qh >> (16 + 4 * jj + i)) & 1) << (4 + jj)));
          }
          r16[256 + 4 * r + i] = plane;
        }
      }
      // Element e < 16 is qs[e]'s low nibble, e >= 16 is qs[e - 16]'s high one.
      for (int j = 0; j < 4; ++j) {
        for (int i = 0; i < 4; ++i) {
          const uint8_t lo = qs[4 * j + i] & 0x0f;  // element 4j+i
          const uint8_t hi = qs[4 * j + i] >> 4;    // element 16+4j+i
          r16[64 * j + 4 * r + i] = static_cast<uint8_t>(lo | (hi << 4));
        }
      }
    }
  }
}

}  // namespace suanli::cpu::mm
