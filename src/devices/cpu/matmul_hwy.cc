// The "hwy" kernel set: the packed rows16 kernels (matmul_packed.h) written
// once with Google Highway and compiled for every target Highway knows on
// this architecture (x86: SSSE3, SSE4, AVX2, AVX3; Arm: NEON, SVE, SVE2;
// RISC-V: RVV where the compiler has it), picked at run time by
// HWY_DYNAMIC_DISPATCH. It is the fast set on CPUs the hand-written
// AVX-512 / AVX2 files do not cover; on x86 those stay first (about a
// quarter of the instructions per block and token, by count: vpdpbusd /
// vpmaddubsw on byte quads, which Highway 1.0.3 does not expose; not timed).
//
// Bit-identical to the portable kernels (and so to the AVX ones), tested on
// every target the test machine runs (matmul_test.cc), and on aarch64
// (NEON, SVE, SVE2) and riscv64 (EMU128) under qemu (scripts/cross_check.sh):
// - integer block sums are exact, so only the float steps matter, and they
//   are the portable kernel's, in its order, with one fused multiply-add
//   where it calls std::fma;
// - activation codes clamp and round exactly as the portable quantizer
//   (comparisons in std::max / std::min's form, so NaN maps the same way;
//   Round is ties-to-even like std::nearbyint).
//
// Integer dot products without vpdpbusd: a row's 4 code bytes per vector
// are 2 uint16 lanes; one And / shift gives 2 int16 codes per row (elements
// 4q+h and 4q+h+2), and ReorderWidenMulAccumulate multiplies them by an
// int32 lane holding the two matching int16 activations, broadcast. Lane r
// of RearrangeToOddPlusEven is then row r's int32 sum. Codes are <= 255 and
// activations in [-127, 127]: products fit int16 x int16 -> int32.
//
// Vectors hold up to 16 rows (CappedTag<float, 16>): 4 lanes on NEON /
// SSE4, 8 on AVX2, 16 on AVX-512; SVE and RVV take what their width gives,
// a power of two. A group's 16 rows are walked in chunks of that width.
// Per-block state lives in small aligned arrays, not arrays of vectors
// (SVE / RVV vectors are sizeless).
//
// Only pk_quantize_act and pk_tile are here: the GGUF-row members of the
// table stay null and matmul.cc fills them from the portable set.

// Re-included once per target by foreach_target.h (path from src/).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "devices/cpu/matmul_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "devices/cpu/matmul_kernels.h"
#include "devices/cpu/matmul_packed.h"

HWY_BEFORE_NAMESPACE();
namespace suanli::cpu::mm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

const char* running_target() { return hwy::TargetName(HWY_TARGET); }

#if HWY_TARGET == HWY_SCALAR

// One lane cannot hold a row's int16 pair (Highway's last-resort target,
// for CPUs below SSSE3 / NEON, or RISC-V without RVV): the portable kernels.
void pk_quantize_act(const float* x, int64_t k, uint8_t* dst) { portable_kernels()->pk_quantize_act(x, k, dst); }
void pk_tile(GgmlType type, const uint8_t* grp, int64_t nb, const uint8_t* act, size_t as, int n_tok, const float* bias,
             float* out, int64_t ldo, const uint8_t* next) {
  portable_kernels()->pk_tile(type, grp, nb, act, as, n_tok, bias, out, ldo, next);
}

#else

using DF = hn::CappedTag<float, kPkRows>;   // one lane per row
using DI = hn::RebindToSigned<DF>;          // row sums
using DI16 = hn::Repartition<int16_t, DI>;  // two codes per row
using DU16 = hn::RebindToUnsigned<DI16>;

// std::fma on every lane. hn::MulAdd is one fused operation only where the
// target has FMA; elsewhere (SSSE3, SSE4, EMU128, 32-bit Arm without VFPv4)
// it rounds the product first, so those targets call std::fma per lane
// (slow, but they are CPUs from before 2013).
HWY_INLINE hn::Vec<DF> fma_exact(hn::Vec<DF> m, hn::Vec<DF> x, hn::Vec<DF> add) {
#if HWY_NATIVE_FMA
  return hn::MulAdd(m, x, add);
#else
  const DF df;
  HWY_ALIGN float vm[kPkRows], vx[kPkRows], va[kPkRows];
  hn::Store(m, df, vm);
  hn::Store(x, df, vx);
  hn::Store(add, df, va);
  for (size_t i = 0; i < hn::Lanes(df); ++i) va[i] = std::fma(vm[i], vx[i], va[i]);
  return hn::Load(df, va);
#endif
}

void pk_quantize_act(const float* x, int64_t k, uint8_t* dst) {
  const DF df;
  const DI di;
  const hn::Rebind<int8_t, DF> d8;
  const size_t n = hn::Lanes(df);
  const PkActRow a = pk_act_row(dst, k);
  const auto lo = hn::Set(df, -127.0f), hi = hn::Set(df, 127.0f);
  for (int64_t b = 0; b < k / 32; ++b) {
    const float* xb = x + 32 * b;
    // amax = std::max(amax, |x|) over the block: NaN never wins.
    auto vmax = hn::Zero(df);
    auto nan = hn::FirstN(df, 0);  // all false
    for (size_t i = 0; i < 32; i += n) {
      const auto xv = hn::LoadU(df, xb + i);
      const auto ax = hn::Abs(xv);
      vmax = hn::IfThenElse(hn::Lt(vmax, ax), ax, vmax);
      nan = hn::Or(nan, hn::IsNaN(xv));
    }
    const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    // A block holding a NaN: d = NaN (matmul_packed.h).
    const float d = hn::AllFalse(df, nan) ? amax / 127.0f : std::numeric_limits<float>::quiet_NaN();
    const auto id = hn::Set(df, amax > 0.0f ? 127.0f / amax : 0.0f);
    int32_t half[2];
    for (size_t h = 0; h < 2; ++h) {
      auto sum = hn::Zero(di);
      for (size_t i = 16 * h; i < 16 * h + 16; i += n) {
        auto y = hn::Mul(hn::LoadU(df, xb + i), id);
        y = hn::IfThenElse(hn::Lt(lo, y), y, lo);  // std::max(-127, y): NaN -> -127
        y = hn::IfThenElse(hn::Lt(y, hi), y, hi);  // std::min(127, y)
        const auto c = hn::ConvertTo(di, hn::Round(y));
        hn::StoreU(hn::DemoteTo(d8, c), d8, a.q + 32 * b + i);
        sum = hn::Add(sum, c);
      }
      half[h] = hn::GetLane(hn::SumOfLanes(di, sum));
    }
    pk_set_block(a, b, d, half[0], half[1]);
  }
}

// Where a format's fields sit in the packed records (matmul_packed.h).
struct PkFormat {
  bool q8 = false;       // byte codes
  bool has_min = false;  // Q4_1 / Q5_1: + m * sa
  bool k_quant = false;  // Q4_K / Q5_K: d * sc, - dmin * m * sa
  bool fifth = false;    // Q5_0 / Q5_1 / Q5_K: a plane of 5th bits after the nibbles
  bool q6k = false, q3k = false, q2k = false;
  size_t rec_bytes = 0;     // one 32-element (sub-)block's record
  size_t super_bytes = 0;   // K-quants: one 256-element super-block; else 0
  size_t header_bytes = 0;  // K-quants: the super-block's fp16 scales
  size_t scales_at = 0;     // where the record's scales follow its codes
  // A scale per 16-element half, applied to each half's integer sum.
  bool halves() const { return q6k || q3k || q2k; }
};

bool pk_format(GgmlType type, PkFormat* f) {
  const size_t rec = pk_record_bytes(type);
  switch (type) {
    case GgmlType::kQ4_0:
      *f = {.rec_bytes = rec, .scales_at = 256};
      return true;
    case GgmlType::kQ4_1:
      *f = {.has_min = true, .rec_bytes = rec, .scales_at = 256};
      return true;
    case GgmlType::kQ5_0:
      *f = {.fifth = true, .rec_bytes = rec, .scales_at = 256 + 64};
      return true;
    case GgmlType::kQ5_1:
      *f = {.has_min = true, .fifth = true, .rec_bytes = rec, .scales_at = 256 + 64};
      return true;
    case GgmlType::kQ8_0:
      *f = {.q8 = true, .rec_bytes = rec, .scales_at = 512};
      return true;
    case GgmlType::kQ4_K:
      *f = {.k_quant = true,
            .rec_bytes = 256 + 32,
            .super_bytes = kPkQ4KSuper,
            .header_bytes = kPkQ4KHeader,
            .scales_at = 256};
      return true;
    case GgmlType::kQ5_K:
      *f = {.k_quant = true,
            .fifth = true,
            .rec_bytes = kPkQ5KRec,
            .super_bytes = kPkQ5KSuper,
            .header_bytes = kPkQ4KHeader,
            .scales_at = 256 + 64};
      return true;
    case GgmlType::kQ6_K:
      *f = {.q6k = true,
            .rec_bytes = kPkQ6KRec,
            .super_bytes = kPkQ6KSuper,
            .header_bytes = kPkQ6KHeader,
            .scales_at = 256 + 128};
      return true;
    case GgmlType::kQ3_K:
      *f = {.q3k = true,
            .rec_bytes = kPkQ3KRec,
            .super_bytes = kPkQ3KSuper,
            .header_bytes = kPkQ3KHeader,
            .scales_at = 128 + 64};
      return true;
    case GgmlType::kQ2_K:
      *f = {.q2k = true,
            .rec_bytes = kPkQ2KRec,
            .super_bytes = kPkQ2KSuper,
            .header_bytes = kPkQ2KHeader,
            .scales_at = 128};
      return true;
    default:
      return false;
  }
}

// int16 codes of one block for all 16 rows: w[(2q + h) * kPairStride + 2r
// + j] is row r's code of element 4q + h + 2j (q < 8, h < 2, j < 2), so
// quads 0-3 are the block's first 16 elements, 4-7 the last 16.
constexpr size_t kPairStride = 2 * kPkRows;
using BlockCodes = int16_t[16 * kPairStride];

// Bits `shift`.. of each uint16 lane under `mask`, moved to bit `to`: one
// field of a bit plane (Q3_K / Q2_K's low 2 bits at 0, Q3_K's 3rd bit at 2,
// the 5th and 6th bits of Q5_0 / Q5_1 / Q5_K / Q6_K at 4).
HWY_INLINE hn::Vec<DU16> plane_bits(hn::Vec<DU16> plane, int shift, uint16_t mask, int to) {
  const DU16 du;
  return hn::ShiftLeftSame(hn::And(hn::ShiftRightSame(plane, shift), hn::Set(du, mask)), to);
}

void extract_codes(const PkFormat& f, const uint8_t* rec, size_t r0, int16_t* w) {
  const DU16 du;
  const DI16 di16;
  const hn::Repartition<uint8_t, DU16> du8;
  auto load = [&](size_t off) { return hn::BitCast(du, hn::LoadU(du8, rec + off + 4 * r0)); };
  auto put = [&](int q, int h, hn::Vec<DU16> v) {
    hn::Store(hn::BitCast(di16, v), di16, w + (2 * q + h) * kPairStride + 2 * r0);
  };
  const auto m4 = hn::Set(du, 0x0f), m8 = hn::Set(du, 0xff);
  if (f.q8) {  // byte i of vector s: element 4s + i
    for (int s = 0; s < 8; ++s) {
      const auto u = load(64 * s);
      put(s, 0, hn::And(u, m8));
      put(s, 1, hn::ShiftRight<8>(u));
    }
    return;
  }
  // A row's 4 bytes are 2 uint16 lanes: bytes i = 0, 2 in their low halves
  // (lo0 / hi0: elements 4j and 4j + 2 of a half), i = 1, 3 in the high ones
  // (lo1 / hi1). Two kinds of bit planes: 2-bit fields, one plane per half
  // (bits 2j..2j+1 of byte i: element 4j + i of the half), and 1-bit fields
  // (bit j of byte i: element 4j + i; bit 4 + j: element 16 + 4j + i).
  const bool two_bit = f.q3k || f.q2k;  // the low 2 bits in planes 0 and 1
  const auto zero = hn::Zero(du);
  const auto p0 = two_bit ? load(0) : f.q6k ? load(256) : zero;    // 2-bit, elements < 16
  const auto p1 = two_bit ? load(64) : f.q6k ? load(320) : zero;   // 2-bit, elements >= 16
  const auto pb = f.fifth ? load(256) : f.q3k ? load(128) : zero;  // 1-bit
  const int bit_at = f.q3k ? 2 : 4;
  for (int j = 0; j < 4; ++j) {
    hn::Vec<DU16> lo0, lo1, hi0, hi1;
    if (two_bit) {
      lo0 = plane_bits(p0, 2 * j, 3, 0);
      lo1 = plane_bits(p0, 8 + 2 * j, 3, 0);
      hi0 = plane_bits(p1, 2 * j, 3, 0);
      hi1 = plane_bits(p1, 8 + 2 * j, 3, 0);
    } else {  // byte i of vector j: element 4j + i (low nibble) and 16 + 4j + i (high)
      const auto u = load(64 * j);
      lo0 = hn::And(u, m4);
      lo1 = hn::And(hn::ShiftRight<8>(u), m4);
      hi0 = hn::And(hn::ShiftRight<4>(u), m4);
      hi1 = hn::ShiftRight<12>(u);
    }
    if (f.fifth || f.q3k) {
      lo0 = hn::Or(lo0, plane_bits(pb, j, 1, bit_at));
      lo1 = hn::Or(lo1, plane_bits(pb, 8 + j, 1, bit_at));
      hi0 = hn::Or(hi0, plane_bits(pb, 4 + j, 1, bit_at));
      hi1 = hn::Or(hi1, plane_bits(pb, 12 + j, 1, bit_at));
    } else if (f.q6k) {
      lo0 = hn::Or(lo0, plane_bits(p0, 2 * j, 3, 4));
      lo1 = hn::Or(lo1, plane_bits(p0, 8 + 2 * j, 3, 4));
      hi0 = hn::Or(hi0, plane_bits(p1, 2 * j, 3, 4));
      hi1 = hn::Or(hi1, plane_bits(p1, 8 + 2 * j, 3, 4));
    }
    put(j, 0, lo0);
    put(j, 1, lo1);
    put(4 + j, 0, hi0);
    put(4 + j, 1, hi1);
  }
}

// One block's float scales for all 16 rows, formed as the portable kernel
// forms them: products of an fp16 and a small integer (exact), and Q2_K's
// exact division of the min by 32.
struct BlockScales {
  HWY_ALIGN float d[kPkRows];   // the block's scale (d * sc); halves: of elements 0-15
  HWY_ALIGN float d1[kPkRows];  // halves: the scale of elements 16-31
  HWY_ALIGN float m[kPkRows];   // the min: Q4_1 / Q5_1 m, Q4_K / Q5_K dmin * m; Q2_K (dmin * m0) / 32
  HWY_ALIGN float m1[kPkRows];  // Q2_K: (dmin * m1) / 32
};

// Rows r0.. of `s`.
void block_scales(const PkFormat& f, const uint8_t* hdr, const uint8_t* rec, size_t r0, BlockScales* s) {
  const DF df;
  const DI di;
  const hn::Rebind<uint32_t, DF> du32;
  const hn::Rebind<hwy::float16_t, DF> dh;
  auto fp16 = [&](const uint8_t* p) {
    return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p) + r0));
  };
  auto u8 = [&](const uint8_t* p) { return hn::PromoteTo(du32, hn::LoadU(hn::Rebind<uint8_t, DF>(), p + r0)); };
  auto to_float = [&](hn::Vec<decltype(du32)> v) { return hn::ConvertTo(df, hn::BitCast(di, v)); };
  const uint8_t* sc = rec + f.scales_at;
  if (f.q6k || f.q3k) {  // int8 scales of the two halves
    auto i8 = [&](const uint8_t* p) {
      return hn::ConvertTo(
          df, hn::PromoteTo(di, hn::LoadU(hn::Rebind<int8_t, DF>(), reinterpret_cast<const int8_t*>(p) + r0)));
    };
    const auto dd = fp16(hdr);
    hn::Store(hn::Mul(dd, i8(sc)), df, s->d + r0);
    hn::Store(hn::Mul(dd, i8(sc + 16)), df, s->d1 + r0);
  } else if (f.q2k) {  // per half: scale in the low nibble, min in the high one
    const auto dd = fp16(hdr), dmin = fp16(hdr + 32);
    const auto s0 = u8(sc), s1 = u8(sc + 16), low = hn::Set(du32, 0x0f);
    const auto div32 = hn::Set(df, 1.0f / 32);
    hn::Store(hn::Mul(dd, to_float(hn::And(s0, low))), df, s->d + r0);
    hn::Store(hn::Mul(dd, to_float(hn::And(s1, low))), df, s->d1 + r0);
    hn::Store(hn::Mul(hn::Mul(dmin, to_float(hn::ShiftRight<4>(s0))), div32), df, s->m + r0);
    hn::Store(hn::Mul(hn::Mul(dmin, to_float(hn::ShiftRight<4>(s1))), div32), df, s->m1 + r0);
  } else if (f.k_quant) {
    hn::Store(hn::Mul(fp16(hdr), to_float(u8(sc))), df, s->d + r0);
    hn::Store(hn::Mul(fp16(hdr + 32), to_float(u8(sc + 16))), df, s->m + r0);
  } else {
    hn::Store(fp16(sc), df, s->d + r0);
    if (f.has_min) hn::Store(fp16(sc + 32), df, s->m + r0);
  }
}

// One token's block of activations in the code pairs' order: int16 a[4q +
// h], a[4q + h + 2] at pairs[2 (2q + h)] and the next. Swapping the middle
// bytes of each 4 (a0 a1 a2 a3 -> a0 a2 a1 a3), then widening to int16,
// lays them out in that order.
void activation_pairs(const int8_t* ab, int16_t* pairs) {
  const hn::CappedTag<uint32_t, 8> du32;
  const hn::Repartition<int8_t, decltype(du32)> di8;
  HWY_ALIGN int8_t swapped[32];
  for (size_t i = 0; i < 32; i += hn::Lanes(di8)) {
    const auto x = hn::BitCast(du32, hn::LoadU(di8, ab + i));
    const auto mid = hn::Or(hn::And(hn::ShiftRight<8>(x), hn::Set(du32, 0x0000ff00u)),
                            hn::And(hn::ShiftLeft<8>(x), hn::Set(du32, 0x00ff0000u)));
    hn::Store(hn::BitCast(di8, hn::Or(hn::And(x, hn::Set(du32, 0xff0000ffu)), mid)), di8, swapped + i);
  }
  const hn::CappedTag<int16_t, 16> d16;
  const hn::Rebind<int8_t, decltype(d16)> d8;
  for (size_t i = 0; i < 32; i += hn::Lanes(d16))
    hn::Store(hn::PromoteTo(d16, hn::Load(d8, swapped + i)), d16, pairs + i);
}

// Row sums of one block for rows r0.., per 16-element half (sum0: elements
// 0-15, sum1: 16-31), against one token's activation pairs.
HWY_INLINE void block_dot(const int16_t* w, const int16_t* pairs, size_t r0, hn::Vec<DI>& sum0, hn::Vec<DI>& sum1) {
  const DI di;
  const DI16 di16;
  auto chain = [&](int q_begin) {
    auto s = hn::Zero(di), odd = hn::Zero(di);
    for (int p = 2 * q_begin; p < 2 * q_begin + 8; ++p) {
      int32_t pair;  // two int16 activations, broadcast to every row
      std::memcpy(&pair, pairs + 2 * p, 4);
      const auto codes = hn::Load(di16, w + p * kPairStride + 2 * r0);
      s = hn::ReorderWidenMulAccumulate(di, codes, hn::BitCast(di16, hn::Set(di, pair)), s, odd);
    }
    return hn::RearrangeToOddPlusEven(s, odd);
  };
  sum0 = chain(0);
  sum1 = chain(4);
}

void pk_tile(GgmlType type, const uint8_t* grp, int64_t nb, const uint8_t* act, size_t as, int n_tok, const float* bias,
             float* out, int64_t ldo, const uint8_t* next) {
  (void)next;  // a hint this set does not use
  PkFormat f;
  if (!pk_format(type, &f)) return portable_kernels()->pk_tile(type, grp, nb, act, as, n_tok, bias, out, ldo, next);
  const DF df;
  const DI di;
  const size_t n = hn::Lanes(df);
  const int64_t k = nb * 32;
  HWY_ALIGN float acc[kPkTokens][kPkRows] = {};
  BlockScales sc;
  HWY_ALIGN BlockCodes w;
  HWY_ALIGN int16_t pairs[32];
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* hdr = f.super_bytes ? grp + (b / 8) * f.super_bytes : nullptr;
    const uint8_t* rec = hdr ? hdr + f.header_bytes + (b % 8) * f.rec_bytes : grp + b * f.rec_bytes;
    for (size_t r0 = 0; r0 < kPkRows; r0 += n) {
      extract_codes(f, rec, r0, w);
      block_scales(f, hdr, rec, r0, &sc);
    }
    for (int t = 0; t < n_tok; ++t) {
      const PkActRow a = pk_act_row(const_cast<uint8_t*>(act + t * as), k);
      activation_pairs(a.q + 32 * b, pairs);
      const auto da = hn::Set(df, a.da[b]);
      // Code offsets per half, subtracted exactly: Q6_K's 32 * sum, Q3_K's 4 * sum.
      const int32_t off0 = f.q6k ? a.c32h[2 * b] : f.q3k ? a.c32h[2 * b] >> 3 : 0;
      const int32_t off1 = f.q6k ? a.c32h[2 * b + 1] : f.q3k ? a.c32h[2 * b + 1] >> 3 : 0;
      // Q2_K's mins multiply the halves' code sums (32 times: c32h) times da.
      const auto ca0 = hn::Mul(hn::Set(df, static_cast<float>(a.c32h[2 * b])), da);
      const auto ca1 = hn::Mul(hn::Set(df, static_cast<float>(a.c32h[2 * b + 1])), da);
      for (size_t r0 = 0; r0 < kPkRows; r0 += n) {
        hn::Vec<DI> i0, i1;
        block_dot(w, pairs, r0, i0, i1);
        auto o = hn::Load(df, acc[t] + r0);
        const auto vd = hn::Load(df, sc.d + r0);
        if (f.halves()) {  // the two halves with their own scales, in order
          o = fma_exact(hn::ConvertTo(df, hn::Sub(i0, hn::Set(di, off0))), hn::Mul(vd, da), o);
          o = fma_exact(hn::ConvertTo(df, hn::Sub(i1, hn::Set(di, off1))), hn::Mul(hn::Load(df, sc.d1 + r0), da), o);
          if (f.q2k) {
            o = fma_exact(hn::Neg(hn::Load(df, sc.m + r0)), ca0, o);
            o = fma_exact(hn::Neg(hn::Load(df, sc.m1 + r0)), ca1, o);
          }
        } else {
          auto is = hn::Add(i0, i1);
          if (type == GgmlType::kQ4_0) is = hn::Sub(is, hn::Set(di, a.c8[b]));
          if (type == GgmlType::kQ5_0) is = hn::Sub(is, hn::Set(di, 2 * a.c8[b]));
          if (f.q8) is = hn::Sub(is, hn::Set(di, a.c128[b]));
          o = fma_exact(hn::ConvertTo(df, is), hn::Mul(vd, da), o);
          if (f.has_min) o = fma_exact(hn::Load(df, sc.m + r0), hn::Set(df, a.sa[b]), o);
          if (f.k_quant) o = fma_exact(hn::Neg(hn::Load(df, sc.m + r0)), hn::Set(df, a.sa[b]), o);
        }
        hn::Store(o, df, acc[t] + r0);
      }
    }
  }
  for (int t = 0; t < n_tok; ++t) {
    for (size_t r0 = 0; r0 < kPkRows; r0 += n) {
      auto o = hn::Load(df, acc[t] + r0);
      if (bias) o = hn::Add(o, hn::LoadU(df, bias + r0));
      hn::StoreU(o, df, out + t * ldo + r0);
    }
  }
}

#endif  // HWY_TARGET == HWY_SCALAR

}  // namespace HWY_NAMESPACE
}  // namespace suanli::cpu::mm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace suanli::cpu::mm {

HWY_EXPORT(running_target);
HWY_EXPORT(pk_quantize_act);
HWY_EXPORT(pk_tile);

namespace {

void pk_quantize_act_hwy(const float* x, int64_t k, uint8_t* dst) { HWY_DYNAMIC_DISPATCH(pk_quantize_act)(x, k, dst); }

void pk_tile_hwy(GgmlType type, const uint8_t* grp, int64_t nb, const uint8_t* act, size_t as, int n_tok,
                 const float* bias, float* out, int64_t ldo, const uint8_t* next) {
  HWY_DYNAMIC_DISPATCH(pk_tile)(type, grp, nb, act, as, n_tok, bias, out, ldo, next);
}

#if (HWY_TARGETS & (HWY_TARGETS - 1)) == 0
// One target compiled (static dispatch, e.g. HWY_COMPILE_ONLY_STATIC where
// there is no libhwy for the architecture): nothing to choose.
const std::vector<int64_t>& all_targets() {
  static const std::vector<int64_t> kTargets = {HWY_TARGETS};
  return kTargets;
}
void restrict_targets(int64_t) {}
#else
// The targets compiled here that this CPU runs, read before any
// hwy_force_target narrowed what Highway reports.
const std::vector<int64_t>& all_targets() {
  static const std::vector<int64_t> kTargets = hwy::SupportedAndGeneratedTargets();
  return kTargets;
}
// 0: all of them again.
void restrict_targets(int64_t targets) { hwy::SetSupportedTargetsForTest(targets); }
#endif

}  // namespace

const KernelTable* hwy_kernels() {
  static const KernelTable kTable = [] {
    KernelTable t;
    t.name = "hwy";
    t.pk_quantize_act = pk_quantize_act_hwy;
    t.pk_tile = pk_tile_hwy;
    return t;
  }();
  return &kTable;
}

std::vector<std::string> hwy_target_names() {
  std::vector<std::string> names;
  for (int64_t t : all_targets()) names.emplace_back(hwy::TargetName(t));
  return names;
}

bool hwy_force_target(std::string_view name) {
  if (name.empty()) {
    restrict_targets(0);
    return true;
  }
  for (int64_t t : all_targets()) {
    if (name == hwy::TargetName(t)) {
      restrict_targets(t);
      return true;
    }
  }
  return false;
}

const char* hwy_running_target() { return HWY_DYNAMIC_DISPATCH(running_target)(); }

}  // namespace suanli::cpu::mm
#endif  // HWY_ONCE
