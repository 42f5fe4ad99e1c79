// MXFP8_E4M3 (src/core/quant/fp8.cc, docs/fp8.md): the E4M3 and UE8M0 codes
// against formulas written out here, and the block quantizer's choices.
#include "core/quant/fp8.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <vector>

#include "core/quant/quant.h"

namespace suanli::quant {
namespace {

constexpr int64_t kBlock = 32;
constexpr int64_t kBlockBytes = 33;

// The OCP E4M3FN definition, in double.
double e4m3_formula(int code) {
  const int s = code >> 7, e = (code >> 3) & 0xf, m = code & 0x7;
  const double magnitude = e == 0 ? m / 8.0 * std::ldexp(1.0, -6) : (1.0 + m / 8.0) * std::ldexp(1.0, e - 7);
  return s ? -magnitude : magnitude;
}

std::vector<uint8_t> quantize_block(const std::vector<float>& x) {
  std::vector<uint8_t> q(static_cast<size_t>(row_bytes(GgmlType::kMXFP8_E4M3, static_cast<int64_t>(x.size()))));
  Status s = quantize(GgmlType::kMXFP8_E4M3, x.data(), q.data(), static_cast<int64_t>(x.size()));
  EXPECT_TRUE(s.ok()) << s.to_string();
  return q;
}

std::vector<float> dequantize_blocks(const std::vector<uint8_t>& q) {
  const int64_t n = static_cast<int64_t>(q.size()) / kBlockBytes * kBlock;
  std::vector<float> y(static_cast<size_t>(n));
  Status s = dequantize(GgmlType::kMXFP8_E4M3, q.data(), y.data(), n);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return y;
}

TEST(Mxfp8Type, is_in_the_type_table_with_its_own_id_and_names) {
  const std::optional<GgmlTypeTraits> t = ggml_type_traits(1024);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->name, "MXFP8_E4M3");
  EXPECT_EQ(t->block_size, 32);
  EXPECT_EQ(t->type_size, 33);
  EXPECT_EQ(parse_ggml_type("mxfp8_e4m3"), GgmlType::kMXFP8_E4M3);
  EXPECT_EQ(parse_ggml_type("MXFP8_E4M3"), GgmlType::kMXFP8_E4M3);
  EXPECT_EQ(parse_ggml_type("fp8"), GgmlType::kMXFP8_E4M3);
  EXPECT_EQ(row_bytes(GgmlType::kMXFP8_E4M3, 576), 18 * 33);
  EXPECT_TRUE(can_quantize(GgmlType::kMXFP8_E4M3));
  EXPECT_TRUE(can_dequantize(GgmlType::kMXFP8_E4M3));
  std::vector<float> x(64);
  std::vector<uint8_t> q(66);
  EXPECT_EQ(quantize(GgmlType::kMXFP8_E4M3, x.data(), q.data(), 33).code(), StatusCode::kInvalidArgument);
}

TEST(E4m3, decodes_every_code_by_the_formula_and_round_trips) {
  for (int c = 0; c < 256; ++c) {
    const float f = e4m3_to_fp32(static_cast<uint8_t>(c));
    if ((c & 0x7f) == 0x7f) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << c;
      ASSERT_EQ(std::signbit(f), c >= 0x80) << std::hex << c;
      ASSERT_EQ(fp32_to_e4m3(f), c) << std::hex << c;
      continue;
    }
    ASSERT_EQ(static_cast<double>(f), e4m3_formula(c)) << std::hex << c;
    ASSERT_EQ(std::signbit(f), c >= 0x80) << std::hex << c;  // -0 is 0x80
    ASSERT_EQ(fp32_to_e4m3(f), c) << std::hex << c;
  }
  EXPECT_EQ(e4m3_to_fp32(0x7e), 448.0f);
  EXPECT_EQ(e4m3_to_fp32(0x01), 0x1p-9f);
  EXPECT_EQ(e4m3_to_fp32(0x08), 0x1p-6f);
  EXPECT_EQ(e4m3_to_fp32(0x38), 1.0f);
  EXPECT_EQ(e4m3_to_fp32(0xc4), -3.0f);
}

TEST(E4m3, rounds_to_nearest_even_at_every_midpoint) {
  // Adjacent positive codes c, c + 1 up to 0x7d / 0x7e (448). The midpoint
  // of two E4M3 values is exact in float. Code parity is mantissa parity,
  // also across a binade boundary (0x0f -> 0x10).
  for (int c = 0; c < 0x7e; ++c) {
    const float lo = e4m3_to_fp32(static_cast<uint8_t>(c));
    const float hi = e4m3_to_fp32(static_cast<uint8_t>(c + 1));
    const float mid = (lo + hi) / 2;
    const int even = (c & 1) ? c + 1 : c;
    ASSERT_EQ(fp32_to_e4m3(mid), even) << std::hex << c;
    ASSERT_EQ(fp32_to_e4m3(-mid), even | 0x80) << std::hex << c;
    ASSERT_EQ(fp32_to_e4m3(std::nextafter(mid, 0.0f)), c) << std::hex << c;
    ASSERT_EQ(fp32_to_e4m3(std::nextafter(mid, INFINITY)), c + 1) << std::hex << c;
  }
  EXPECT_EQ(fp32_to_e4m3(0x1p-10f), 0x00);    // half the smallest subnormal: tie to zero
  EXPECT_EQ(fp32_to_e4m3(-0x1p-10f), 0x80);
  EXPECT_EQ(fp32_to_e4m3(0x1p-11f), 0x00);
  EXPECT_EQ(fp32_to_e4m3(0x1p-149f), 0x00);  // smallest float subnormal
  EXPECT_EQ(fp32_to_e4m3(-0.0f), 0x80);
}

TEST(E4m3, saturates_to_448_and_keeps_nan) {
  EXPECT_EQ(fp32_to_e4m3(448.0f), 0x7e);
  EXPECT_EQ(fp32_to_e4m3(449.0f), 0x7e);
  EXPECT_EQ(fp32_to_e4m3(464.0f), 0x7e);  // would round to 480, which E4M3 lacks (its code is NaN)
  EXPECT_EQ(fp32_to_e4m3(1e30f), 0x7e);
  EXPECT_EQ(fp32_to_e4m3(INFINITY), 0x7e);
  EXPECT_EQ(fp32_to_e4m3(-INFINITY), 0xfe);
  EXPECT_EQ(fp32_to_e4m3(-500.0f), 0xfe);
  EXPECT_EQ(fp32_to_e4m3(432.0f), 0x7e);  // midpoint 416 | 448: even mantissa is 448
  EXPECT_EQ(fp32_to_e4m3(NAN), kE4M3NaN);
  EXPECT_EQ(fp32_to_e4m3(-NAN), 0xff);
  EXPECT_EQ(fp32_to_e4m3(std::bit_cast<float>(0x7f800001u)), kE4M3NaN);  // signalling NaN
}

TEST(E8m0, is_a_power_of_two_or_nan) {
  for (int e = 0; e < 255; ++e) {
    ASSERT_EQ(static_cast<double>(e8m0_to_fp32(static_cast<uint8_t>(e))), std::ldexp(1.0, e - 127)) << e;
  }
  EXPECT_TRUE(std::isnan(e8m0_to_fp32(255)));
}

TEST(Mxfp8, dequantizes_a_hand_built_block) {
  std::vector<uint8_t> q(kBlockBytes, 0);
  q[0] = 127 - 3;  // scale 1/8
  q[1] = 0x38;     // 1 -> 1/8
  q[2] = 0xc4;     // -3 -> -3/8
  q[3] = 0x7e;     // 448 -> 56
  q[4] = 0x01;     // 2^-9 -> 2^-12
  q[5] = 0x80;     // -0
  q[6] = 0x7f;     // NaN
  const std::vector<float> y = dequantize_blocks(q);
  EXPECT_EQ(y[0], 0.125f);
  EXPECT_EQ(y[1], -0.375f);
  EXPECT_EQ(y[2], 56.0f);
  EXPECT_EQ(y[3], 0x1p-12f);
  EXPECT_EQ(std::bit_cast<uint32_t>(y[4]), 0x80000000u);
  EXPECT_TRUE(std::isnan(y[5]));
  for (int j = 6; j < 32; ++j) EXPECT_EQ(y[j], 0.0f);
}

TEST(Mxfp8, nan_scale_makes_the_block_nan_and_large_scales_overflow_to_inf) {
  std::vector<uint8_t> q(2 * kBlockBytes, 0);
  q[0] = 255;
  q[kBlockBytes] = 254;            // 2^127
  q[kBlockBytes + 1] = 0x08;       // 2^-6 -> 2^121
  q[kBlockBytes + 2] = 0x7e;       // 448 * 2^127 > FLT_MAX
  q[kBlockBytes + 3] = 0xfe;
  const std::vector<float> y = dequantize_blocks(q);
  for (int j = 0; j < 32; ++j) EXPECT_TRUE(std::isnan(y[j])) << j;
  EXPECT_EQ(y[32], 0x1p121f);
  EXPECT_EQ(y[33], INFINITY);
  EXPECT_EQ(y[34], -INFINITY);
}

TEST(Mxfp8, scale_is_the_smallest_power_of_two_that_fits_amax) {
  for (int k : {-100, -20, -1, 0, 1, 7, 100}) {
    SCOPED_TRACE("k " + std::to_string(k));
    std::vector<float> x(kBlock, 0.0f);
    // Exactly 448 * 2^k: scale 2^k, the element is 448.
    x[3] = std::ldexp(448.0f, k);
    x[4] = -std::ldexp(1.0f, k);
    std::vector<uint8_t> q = quantize_block(x);
    EXPECT_EQ(q[0], 127 + k);
    EXPECT_EQ(q[1 + 3], 0x7e);
    EXPECT_EQ(q[1 + 4], 0xb8);  // -1
    // Just above: the next power of two; 448+ulp halves to 224 (0x76).
    x[3] = std::nextafter(x[3], INFINITY);
    q = quantize_block(x);
    EXPECT_EQ(q[0], 127 + k + 1);
    EXPECT_EQ(q[1 + 3], 0x76);
    EXPECT_EQ(q[1 + 4], 0xb0);  // -1/2
    // A power of two 2^(k+8) = 256 * 2^k also takes 2^k.
    x[3] = -std::ldexp(1.0f, k + 8);
    q = quantize_block(x);
    EXPECT_EQ(q[0], 127 + k);
    EXPECT_EQ(q[1 + 3], 0xf8);
  }
}

TEST(Mxfp8, zero_block_gets_the_smallest_scale_and_zero_codes) {
  std::vector<float> x(kBlock, 0.0f);
  x[7] = -0.0f;
  const std::vector<uint8_t> q = quantize_block(x);
  EXPECT_EQ(q[0], 0);
  for (int j = 0; j < kBlock; ++j) EXPECT_EQ(q[1 + j], j == 7 ? 0x80 : 0x00) << j;
  for (float v : dequantize_blocks(q)) EXPECT_EQ(v, 0.0f);
}

TEST(Mxfp8, tiny_blocks_clamp_the_scale_and_use_subnormals) {
  std::vector<float> x(kBlock, 0.0f);
  x[0] = 0x1.8p-134f;  // 3 * 2^-135: at scale 2^-127 it is 6 * 2^-9, subnormal code 6
  x[1] = -0x1p-136f;   // 2^-9: code 1
  x[2] = 0x1p-137f;    // half of 2^-9: ties to zero
  x[3] = 0x1.8p-136f;  // 1.5 * 2^-9: ties to 2
  x[4] = 0x1p-149f;
  const std::vector<uint8_t> q = quantize_block(x);
  EXPECT_EQ(q[0], 0);  // k would be -142; clamped to -127
  EXPECT_EQ(q[1 + 0], 0x06);
  EXPECT_EQ(q[1 + 1], 0x81);
  EXPECT_EQ(q[1 + 2], 0x00);
  EXPECT_EQ(q[1 + 3], 0x02);
  EXPECT_EQ(q[1 + 4], 0x00);
  const std::vector<float> y = dequantize_blocks(q);
  EXPECT_EQ(y[0], x[0]);
  EXPECT_EQ(y[1], x[1]);
  EXPECT_EQ(y[3], 0x1p-135f);
}

TEST(Mxfp8, small_elements_of_a_large_block_round_as_subnormals) {
  std::vector<float> x(kBlock, 0.0f);
  x[0] = 448.0f;          // scale 1
  x[1] = 0x1p-10f;        // half of the smallest subnormal: tie to 0
  x[2] = 0x1.8p-9f;       // 1.5 steps: tie to 2
  x[3] = 0x1.fp-7f;       // 7.75 subnormal steps: rounds up into the normals, 2^-6 (0x08)
  x[4] = 0x1.fp-6f;       // 1.9375 * 2^-6: tie between 0x0f (1.875) and 0x10 (2): even
  x[5] = 0x1.ep-6f;       // 1.875 * 2^-6 exactly
  x[6] = 0x1.cp-7f;       // 7 * 2^-9, the largest subnormal
  const std::vector<uint8_t> q = quantize_block(x);
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[1 + 1], 0x00);
  EXPECT_EQ(q[1 + 2], 0x02);
  EXPECT_EQ(q[1 + 3], 0x08);
  EXPECT_EQ(q[1 + 4], 0x10);
  EXPECT_EQ(q[1 + 5], 0x0f);
  EXPECT_EQ(q[1 + 6], 0x07);
}

TEST(Mxfp8, nan_and_infinite_elements_leave_the_scale_alone) {
  std::vector<float> x(kBlock, 1.0f);
  x[0] = NAN;
  x[1] = INFINITY;
  x[2] = -INFINITY;
  x[3] = 448.0f;
  const std::vector<uint8_t> q = quantize_block(x);
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[1 + 0], kE4M3NaN);
  EXPECT_EQ(q[1 + 1], 0x7e);
  EXPECT_EQ(q[1 + 2], 0xfe);
  EXPECT_EQ(q[1 + 4], 0x38);
  std::vector<float> all_nan(kBlock, NAN);
  const std::vector<uint8_t> qn = quantize_block(all_nan);
  EXPECT_EQ(qn[0], 0);
  for (int j = 0; j < kBlock; ++j) EXPECT_EQ(qn[1 + j], kE4M3NaN);
}

// Error bound of a quantize -> dequantize round trip, per element, with 2^k
// the block's scale: |x - y| <= 2^-4 |x| (half an ulp of a 3-bit mantissa)
// for elements in E4M3's normal range, and <= 2^-10 * 2^k (half the
// subnormal step) below it; the sum of the two covers both. Since
// 2^k < amax / 224 (unclamped), that is at most amax / 16 per block.
TEST(Mxfp8, round_trip_error_is_within_half_an_e4m3_step) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> log_scale(-60.0f, 60.0f);
  std::uniform_real_distribution<float> log_spread(-20.0f, 0.0f);
  constexpr int64_t kN = kBlock * 512;
  std::vector<float> x(kN);
  for (int64_t b = 0; b < kN / kBlock; ++b) {
    const float scale = std::exp2(log_scale(rng));
    for (int64_t j = 0; j < kBlock; ++j) {
      // Some elements far below the block's largest, into the subnormals.
      x[b * kBlock + j] = normal(rng) * scale * (j % 4 == 0 ? std::exp2(log_spread(rng)) : 1.0f);
    }
  }
  const std::vector<uint8_t> q = quantize_block(x);
  const std::vector<float> y = dequantize_blocks(q);
  for (int64_t b = 0; b < kN / kBlock; ++b) {
    const double scale = std::ldexp(1.0, q[b * kBlockBytes] - 127);
    double amax = 0;
    for (int64_t j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(static_cast<double>(x[b * kBlock + j])));
    ASSERT_LE(amax, 448 * scale);
    ASSERT_GT(amax, 224 * scale);
    for (int64_t j = 0; j < kBlock; ++j) {
      const int64_t i = b * kBlock + j;
      const double err = std::fabs(static_cast<double>(x[i]) - y[i]);
      ASSERT_LE(err, 0x1p-4 * std::fabs(x[i]) + 0x1p-10 * scale) << "element " << i << ": " << x[i] << " -> " << y[i];
      ASSERT_LE(err, amax / 16) << "element " << i;
    }
  }
}

}  // namespace
}  // namespace suanli::quant
