#include "core/quant/quant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace suanli::quant {
namespace {

uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }
float from_bits(uint32_t u) { return std::bit_cast<float>(u); }

void put_u16(std::vector<uint8_t>& block, size_t at, uint16_t v) { std::memcpy(block.data() + at, &v, 2); }

std::vector<float> dequant(GgmlType type, const std::vector<uint8_t>& block) {
  const int64_t n = static_cast<int64_t>(block.size()) / traits(type).type_size * traits(type).block_size;
  std::vector<float> out(static_cast<size_t>(n));
  Status s = dequantize(type, block.data(), out.data(), n);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return out;
}

TEST(Fp16, converts_special_values) {
  EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3c00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xc000);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65519.99f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);  // tie rounds to even: infinity
  EXPECT_EQ(fp32_to_fp16(1e10f), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-INFINITY), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(0x1p-24f), 0x0001);        // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(0x1p-25f), 0x0000);        // tie to even: zero
  EXPECT_EQ(fp32_to_fp16(0x1.8p-25f), 0x0001);
  EXPECT_EQ(fp32_to_fp16(0x1.8p-24f), 0x0002);      // tie 1.5 -> 2
  EXPECT_EQ(fp32_to_fp16(0x1p-14f), 0x0400);        // smallest normal
  EXPECT_EQ(fp32_to_fp16(0x1.ffcp-15f), 0x0400);    // subnormal rounding up into normal
  EXPECT_EQ(fp32_to_fp16(1.0f + 0x1p-11f), 0x3c00);  // tie, even below
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3c02);  // tie, even above
  EXPECT_EQ(fp32_to_fp16(1e-10f), 0x0000);
  const uint16_t nan = fp32_to_fp16(NAN);
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  EXPECT_NE(fp32_to_fp16(from_bits(0x7f800001)) & 0x03ff, 0);  // tiny payload stays NaN

  EXPECT_EQ(fp16_to_fp32(0x3c00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0x0001), 0x1p-24f);
  EXPECT_EQ(fp16_to_fp32(0x03ff), 0x1.ff8p-15f);
  EXPECT_EQ(fp16_to_fp32(0x7bff), 65504.0f);
  EXPECT_EQ(bits(fp16_to_fp32(0x8000)), 0x80000000u);
  EXPECT_EQ(fp16_to_fp32(0x7c00), INFINITY);
  EXPECT_EQ(fp16_to_fp32(0xfc00), -INFINITY);
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7e00)));
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7c01)));
}

TEST(Fp16, every_half_value_decodes_exactly_and_round_trips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    const uint32_t exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    const float sign = (h & 0x8000) ? -1.0f : 1.0f;
    if (exponent == 0x1f) {
      ASSERT_TRUE(mantissa ? std::isnan(f) : std::isinf(f)) << std::hex << h;
      if (mantissa & 0x200) {  // quiet NaNs keep their payload
        ASSERT_EQ(fp32_to_fp16(f), h) << std::hex << h;
      }
      continue;
    }
    const double expected = exponent == 0 ? std::ldexp(static_cast<double>(mantissa), -24)
                                          : std::ldexp(1.0 + mantissa / 1024.0, static_cast<int>(exponent) - 15);
    ASSERT_EQ(static_cast<double>(f), sign * expected) << std::hex << h;
    ASSERT_EQ(fp32_to_fp16(f), h) << std::hex << h;
  }
}

TEST(Fp16, rounds_to_nearest_even_around_every_midpoint) {
  for (uint32_t h = 0; h < 0x7bff; ++h) {
    const float lo = fp16_to_fp32(static_cast<uint16_t>(h));
    const float hi = fp16_to_fp32(static_cast<uint16_t>(h + 1));
    const float mid = (lo + hi) / 2;  // exact in float
    ASSERT_EQ(fp32_to_fp16(mid), (h & 1) ? h + 1 : h) << std::hex << h;
    ASSERT_EQ(fp32_to_fp16(std::nextafter(mid, 0.0f)), h) << std::hex << h;
    ASSERT_EQ(fp32_to_fp16(std::nextafter(mid, INFINITY)), h + 1) << std::hex << h;
    ASSERT_EQ(fp32_to_fp16(-mid), ((h & 1) ? h + 1 : h) | 0x8000) << std::hex << h;
  }
}

TEST(Bf16, rounds_to_nearest_even_and_keeps_nan_quiet) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f808000)), 0x3f80);  // tie, even below
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f818000)), 0x3f82);  // tie, even above
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f808001)), 0x3f81);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f807fff)), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7f7fffff)), 0x7f80);  // overflow to infinity
  EXPECT_EQ(fp32_to_bf16(INFINITY), 0x7f80);
  EXPECT_EQ(fp32_to_bf16(-INFINITY), 0xff80);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7fc00001)), 0x7fc0);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7f800001)), 0x7fc0);  // signalling NaN quieted, not rounded to inf
  EXPECT_EQ(fp32_to_bf16(from_bits(0xffffffff)), 0xffff);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x00000001)), 0x0000);
  EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_fp32(0xc040), -3.0f);
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = bf16_to_fp32(static_cast<uint16_t>(h));
    ASSERT_EQ(bits(f), h << 16);
    if (!std::isnan(f) || (h & 0x40)) {
      ASSERT_EQ(fp32_to_bf16(f), h) << std::hex << h;
    }
  }
}

// Largest |x - y| allowed. Block formats: a fraction of the block's largest
// |x| (a block: 32 elements for the legacy formats, 256 for k-quants),
// derived from each format's step size (see legacy.cc / kquants.cc). Plain
// float formats: a fraction of |x| itself, plus half the smallest subnormal.
struct RoundTripCase {
  GgmlType type;
  double tolerance;
  bool per_element = false;
  double absolute = 0.0;
};

constexpr RoundTripCase kRoundTrip[] = {
    {GgmlType::kF32, 0.0, true},
    {GgmlType::kF64, 0.0, true},
    {GgmlType::kF16, 0x1p-11, true, 0x1p-25},
    {GgmlType::kBF16, 0x1p-8, true},
    {GgmlType::kQ8_0, 0.005},  // half a step (1/254) + fp16 scale rounding
    {GgmlType::kQ4_0, 0.13},   // the value opposite the extreme clips: one step (1/8)
    {GgmlType::kQ4_1, 0.07},   // half a step of 2/15
    {GgmlType::kQ5_0, 0.066},  // clipping opposite the extreme: 1/16
    {GgmlType::kQ5_1, 0.035},  // half a step of 2/31
    {GgmlType::kQ2_K, 0.37},   // half a step of (2 + 1/15)/3 * (1 + 1/15)
    {GgmlType::kQ3_K, 0.27},   // clipping opposite the extreme: 1/4 + 2 d (d = 1/124)
    {GgmlType::kQ4_K, 0.07},   // half a step of (2 + 1/63)/15 * (1 + 1/63)
    {GgmlType::kQ5_K, 0.035},  // half a step of (2 + 1/63)/31 * (1 + 1/63)
    {GgmlType::kQ6_K, 0.036},  // clipping opposite the extreme: 1/32 + scale rounding
};

TEST(Quantize, round_trip_error_is_within_each_formats_bound) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  // Magnitudes at which every fp16 scale stays a normal number (a subnormal
  // scale has fewer bits, so the relative bounds would not hold) and F16
  // does not overflow.
  std::uniform_real_distribution<float> log_scale(-2.0f, 10.0f);
  constexpr int64_t kN = 256 * 16;
  std::vector<float> x(kN);
  // Each 256-element run gets its own magnitude; some runs are all positive
  // or hold a zero sub-block, which exercises the min and zero-scale paths.
  for (int64_t r = 0; r < kN / 256; ++r) {
    const float scale = std::exp2(log_scale(rng));
    for (int64_t i = 0; i < 256; ++i) {
      float v = normal(rng) * scale;
      if (r % 4 == 1) v = std::fabs(v) + scale;
      if (r % 4 == 2 && i < 32) v = 0.0f;
      x[r * 256 + i] = v;
    }
  }
  for (const RoundTripCase& c : kRoundTrip) {
    SCOPED_TRACE(std::string(ggml_type_name(c.type)));
    ASSERT_TRUE(can_quantize(c.type));
    std::vector<uint8_t> q(static_cast<size_t>(row_bytes(c.type, kN)));
    std::vector<float> y(kN);
    ASSERT_TRUE(quantize(c.type, x.data(), q.data(), kN).ok());
    ASSERT_TRUE(dequantize(c.type, q.data(), y.data(), kN).ok());
    const int64_t block = traits(c.type).block_size;
    for (int64_t b = 0; b < kN; b += block) {
      double amax = 0.0;
      for (int64_t i = b; i < b + block; ++i) amax = std::max(amax, std::fabs(static_cast<double>(x[i])));
      for (int64_t i = b; i < b + block; ++i) {
        const double err = std::fabs(static_cast<double>(x[i]) - y[i]);
        const double bound = c.per_element ? c.tolerance * std::fabs(x[i]) + c.absolute : c.tolerance * amax;
        ASSERT_LE(err, bound) << "element " << i << ": " << x[i] << " -> " << y[i];
      }
    }
  }
}

TEST(Quantize, all_zero_input_gives_zeros) {
  std::vector<float> x(256, 0.0f), y(256, 1.0f);
  for (const RoundTripCase& c : kRoundTrip) {
    std::vector<uint8_t> q(static_cast<size_t>(row_bytes(c.type, 256)));
    ASSERT_TRUE(quantize(c.type, x.data(), q.data(), 256).ok());
    ASSERT_TRUE(dequantize(c.type, q.data(), y.data(), 256).ok());
    for (float v : y) ASSERT_EQ(v, 0.0f) << ggml_type_name(c.type);
  }
}

// Untrusted weights (suanli quantize reads any GGUF): NaN, infinities, the
// largest floats and subnormals in a block must not crash or hit undefined
// behaviour (the asan/ubsan build runs this), and the other, finite blocks
// of the row still round-trip within their bound.
TEST(Quantize, non_finite_and_extreme_inputs_are_survived) {
  constexpr int64_t kN = 256 * 4;
  std::vector<float> x(kN);
  for (int64_t i = 0; i < kN; ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
  const float odd[] = {NAN, INFINITY, -INFINITY, 3.0e38f, -3.0e38f, 1e-40f, -1e-45f, 0.0f};
  for (int64_t i = 0; i < 256; ++i) x[i] = odd[i % 8];  // block 0 (and its 32-blocks) only
  for (const RoundTripCase& c : kRoundTrip) {
    SCOPED_TRACE(std::string(ggml_type_name(c.type)));
    std::vector<uint8_t> q(static_cast<size_t>(row_bytes(c.type, kN)));
    std::vector<float> y(kN);
    ASSERT_TRUE(quantize(c.type, x.data(), q.data(), kN).ok());
    ASSERT_TRUE(dequantize(c.type, q.data(), y.data(), kN).ok());
    for (int64_t i = 256; i < kN; ++i) {
      if (c.per_element) continue;
      ASSERT_LE(std::fabs(x[i] - y[i]), c.tolerance * 1.0 + 1e-6) << "finite block element " << i;
    }
  }
}

TEST(Quantize, rejects_count_not_a_multiple_of_the_block_size) {
  std::vector<float> x(512, 1.0f);
  std::vector<uint8_t> q(1024);
  Status s = quantize(GgmlType::kQ4_0, x.data(), q.data(), 31);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("Q4_0"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("32"), std::string::npos) << s.message();
  EXPECT_EQ(dequantize(GgmlType::kQ4_K, q.data(), x.data(), 100).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(dequantize(GgmlType::kQ8_0, q.data(), x.data(), -32).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(dequantize(GgmlType::kQ8_0, q.data(), x.data(), 0).ok());
}

TEST(Quantize, unsupported_types_are_named) {
  std::vector<float> x(256);
  std::vector<uint8_t> q(1024);
  EXPECT_FALSE(can_dequantize(GgmlType::kIQ2_XXS));
  Status s = dequantize(GgmlType::kIQ2_XXS, q.data(), x.data(), 256);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("IQ2_XXS"), std::string::npos) << s.message();
  EXPECT_FALSE(can_quantize(GgmlType::kIQ4_XS));
  s = quantize(GgmlType::kIQ4_XS, x.data(), q.data(), 256);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("IQ4_XS"), std::string::npos) << s.message();
  EXPECT_EQ(dequantize(static_cast<GgmlType>(999), q.data(), x.data(), 1).code(), StatusCode::kUnsupported);
}

// Blocks built by hand from the format definitions, with values worked out
// on paper. fp16: 0x3c00 = 1, 0x3800 = 0.5, 0x3400 = 0.25, 0x3000 = 0.125,
// 0xbc00 = -1, 0x4000 = 2.
TEST(Dequantize, plain_float_formats) {
  std::vector<uint8_t> f16(4);
  put_u16(f16, 0, 0xc000);
  put_u16(f16, 2, 0x3555);
  EXPECT_EQ(dequant(GgmlType::kF16, f16), (std::vector<float>{-2.0f, 0x1.554p-2f}));
  std::vector<uint8_t> b16(2);
  put_u16(b16, 0, 0x4049);
  EXPECT_EQ(dequant(GgmlType::kBF16, b16), (std::vector<float>{3.140625f}));
  std::vector<uint8_t> f64(8);
  const double d = 0.1;
  std::memcpy(f64.data(), &d, 8);
  EXPECT_EQ(dequant(GgmlType::kF64, f64), (std::vector<float>{0.1f}));
  std::vector<uint8_t> f32(4);
  const float f = -7.25f;
  std::memcpy(f32.data(), &f, 4);
  EXPECT_EQ(dequant(GgmlType::kF32, f32), (std::vector<float>{-7.25f}));
}

TEST(Dequantize, q4_0_block) {
  std::vector<uint8_t> b(18, 0);
  put_u16(b, 0, 0x3800);  // d = 0.5
  b[2 + 0] = 0x1f;        // element 0: 15, element 16: 1
  b[2 + 5] = 0x80;        // element 5: 0, element 21: 8
  std::vector<float> y = dequant(GgmlType::kQ4_0, b);
  std::vector<float> expected(32, -4.0f);
  expected[0] = 3.5f;
  expected[16] = -3.5f;
  expected[21] = 0.0f;
  EXPECT_EQ(y, expected);
}

TEST(Dequantize, q4_1_block) {
  std::vector<uint8_t> b(20, 0);
  put_u16(b, 0, 0x3400);  // d = 0.25
  put_u16(b, 2, 0xbc00);  // m = -1
  b[4 + 0] = 0x3a;        // element 0: 10, element 16: 3
  b[4 + 15] = 0xf0;       // element 15: 0, element 31: 15
  std::vector<float> y = dequant(GgmlType::kQ4_1, b);
  std::vector<float> expected(32, -1.0f);
  expected[0] = 1.5f;
  expected[16] = -0.25f;
  expected[31] = 2.75f;
  EXPECT_EQ(y, expected);
}

TEST(Dequantize, q5_0_block) {
  std::vector<uint8_t> b(22, 0);
  put_u16(b, 0, 0x3c00);  // d = 1
  b[2] = 0x01;            // qh bit 0: element 0 gets 16
  b[4] = 0x02;            // qh bit 17: element 17 gets 16
  b[6 + 1] = 0xf5;        // element 1: 5, element 17: 15
  std::vector<float> y = dequant(GgmlType::kQ5_0, b);
  std::vector<float> expected(32, -16.0f);
  expected[0] = 0.0f;
  expected[1] = -11.0f;
  expected[17] = 15.0f;
  EXPECT_EQ(y, expected);
}

TEST(Dequantize, q5_1_block) {
  std::vector<uint8_t> b(24, 0);
  put_u16(b, 0, 0x3800);  // d = 0.5
  put_u16(b, 2, 0x4000);  // m = 2
  b[7] = 0x80;            // qh bit 31
  b[8 + 15] = 0xf0;       // element 15: 0, element 31: 15 | 16
  b[8 + 2] = 0x07;        // element 2: 7
  std::vector<float> y = dequant(GgmlType::kQ5_1, b);
  std::vector<float> expected(32, 2.0f);
  expected[2] = 5.5f;
  expected[31] = 17.5f;
  EXPECT_EQ(y, expected);
}

TEST(Dequantize, q8_0_block) {
  std::vector<uint8_t> b(34, 0);
  put_u16(b, 0, 0x3000);  // d = 0.125
  b[2] = 0x7f;
  b[3] = 0x81;
  b[4] = 0x80;
  b[33] = 0x03;
  std::vector<float> y = dequant(GgmlType::kQ8_0, b);
  std::vector<float> expected(32, 0.0f);
  expected[0] = 15.875f;
  expected[1] = -15.875f;
  expected[2] = -16.0f;
  expected[31] = 0.375f;
  EXPECT_EQ(y, expected);
}

TEST(Dequantize, q2_k_block) {
  std::vector<uint8_t> b(84, 0);
  b[0] = 0x21;            // sub-block 0 (elements 0..15): scale 1, min 2
  b[2] = 0x13;            // sub-block 2 (32..47): scale 3, min 1
  b[4] = 0x05;            // sub-block 4 (64..79): scale 5, min 0
  b[8] = 0xf2;            // sub-block 8 (128..143): scale 2, min 15
  b[16 + 0] = 0xe4;       // codes of elements 0, 32, 64, 96: 0, 1, 2, 3
  b[16 + 32] = 0x03;      // element 128: 3
  put_u16(b, 80, 0x3c00);  // d = 1
  put_u16(b, 82, 0x3800);  // dmin = 0.5
  std::vector<float> y = dequant(GgmlType::kQ2_K, b);
  EXPECT_EQ(y[0], -1.0f);
  EXPECT_EQ(y[1], -1.0f);
  EXPECT_EQ(y[32], 2.5f);
  EXPECT_EQ(y[33], -0.5f);
  EXPECT_EQ(y[64], 10.0f);
  EXPECT_EQ(y[96], 0.0f);
  EXPECT_EQ(y[128], -1.5f);
  EXPECT_EQ(y[255], 0.0f);
}

TEST(Dequantize, q3_k_block) {
  std::vector<uint8_t> b(110, 0);
  b[0] = 0x01;             // hmask: element 0 has its high bit (no -4)
  b[31] = 0x80;            // element 255 has its high bit
  b[32 + 0] = 0x03;        // element 0: low bits 3
  b[32 + 63] = 0x80;       // element 255 (half 1, run 3, l 31): low bits 2
  b[96 + 0] = 0x01;        // scale 0 low nibble 1
  b[96 + 8] = 0x02;        // scale 0 high bits 2: 33 - 32 = +1
  b[96 + 7] = 0x50;        // scale 15 low nibble 5
  b[96 + 11] = 0xc0;       // scale 15 high bits 3: 53 - 32 = 21
  put_u16(b, 108, 0x3800);  // d = 0.5
  std::vector<float> y = dequant(GgmlType::kQ3_K, b);
  EXPECT_EQ(y[0], 1.5f);    // 0.5 * 1 * 3
  EXPECT_EQ(y[1], -2.0f);   // 0.5 * 1 * (0 - 4)
  EXPECT_EQ(y[32], 64.0f);  // 0.5 * -32 * (0 - 4)
  EXPECT_EQ(y[255], 21.0f);  // 0.5 * 21 * 2
  EXPECT_EQ(y[254], -42.0f);  // 0.5 * 21 * (0 - 4)
}

// Q4_K / Q5_K share this scale block: sub-block 0 has scale 2, min 4;
// sub-block 5 has scale 42 (0b101010), min 19 (0b010011).
void put_k4_scales(std::vector<uint8_t>& b) {
  b[4 + 0] = 2;
  b[4 + 4] = 4;
  b[4 + 1] = 2 << 6;  // scale 5, top bits
  b[4 + 5] = 1 << 6;  // min 5, top bits
  b[4 + 9] = 0x3a;    // scale 5 low nibble 0xa, min 5 low nibble 3
  put_u16(b, 0, 0x3c00);  // d = 1
  put_u16(b, 2, 0x3800);  // dmin = 0.5
}

TEST(Dequantize, q4_k_block) {
  std::vector<uint8_t> b(144, 0);
  put_k4_scales(b);
  b[16 + 0] = 0x07;   // element 0: 7
  b[16 + 64] = 0x90;  // element 160 (sub-block 5, high nibble of chunk 2): 9
  std::vector<float> y = dequant(GgmlType::kQ4_K, b);
  EXPECT_EQ(y[0], 12.0f);     // 2 * 7 - 0.5 * 4
  EXPECT_EQ(y[1], -2.0f);
  EXPECT_EQ(y[160], 368.5f);  // 42 * 9 - 0.5 * 19
  EXPECT_EQ(y[161], -9.5f);
  EXPECT_EQ(y[32], 0.0f);     // sub-block 1: scale 0, min 0
}

TEST(Dequantize, q5_k_block) {
  std::vector<uint8_t> b(176, 0);
  put_k4_scales(b);
  b[16 + 0] = 0x21;   // qh[0]: bit 0 (element 0) and bit 5 (element 160)
  b[48 + 0] = 0x07;
  b[48 + 64] = 0x90;
  std::vector<float> y = dequant(GgmlType::kQ5_K, b);
  EXPECT_EQ(y[0], 44.0f);      // 2 * 23 - 2
  EXPECT_EQ(y[160], 1040.5f);  // 42 * 25 - 9.5
  EXPECT_EQ(y[161], -9.5f);
}

TEST(Dequantize, q6_k_block) {
  std::vector<uint8_t> b(210, 0);
  b[0] = 0x05;           // element 0 low nibble 5; element 64 low nibble 0
  b[128 + 0] = 0x02;     // element 0 high bits 2: 37 - 32 = 5
  b[127] = 0x30;         // element 255 (half 1, run 3, l 31): low nibble 3
  b[192 + 0] = 0xfd;     // scale 0 = -3
  b[192 + 4] = 1;        // scale 4 (elements 64..79) = 1
  b[192 + 15] = 4;
  put_u16(b, 208, 0x3800);  // d = 0.5
  std::vector<float> y = dequant(GgmlType::kQ6_K, b);
  EXPECT_EQ(y[0], -7.5f);    // 0.5 * -3 * 5
  EXPECT_EQ(y[1], 48.0f);    // 0.5 * -3 * -32
  EXPECT_EQ(y[64], -16.0f);  // 0.5 * 1 * -32
  EXPECT_EQ(y[255], -58.0f);  // 0.5 * 4 * (3 - 32)
  EXPECT_EQ(y[20], 0.0f);    // scale 1 = 0
}

}  // namespace
}  // namespace suanli::quant
