// The GPU device's dequantizers (src/devices/cuda/dequant.cuh), run on the
// host: every weight format the GPU device lists, unit by unit, against
// src/core/quant bit for bit. What embed's bit-exactness and matmul's
// weights rest on, checked without a GPU. Compiled by nvcc (SUANLI_CUDA).
#include <gtest/gtest.h>

#include <bit>
#include <initializer_list>

#include "conformance.h"
#include "devices/cuda/dequant.cuh"

namespace suanli::conformance {
namespace {

template <int T>
void check_rows(const Weights& w, const std::vector<float>& want) {
  constexpr int U = gpu::Layout<T>::kUnit;
  const auto* base = static_cast<const uint8_t*>(w.view.data);
  int bad = 0;
  for (int64_t r = 0; r < w.view.n_rows; ++r) {
    for (int64_t k = 0; k < w.view.n_cols && bad < 5; k += U) {
      float v[U];
      gpu::dequant_at<T>(base + r * w.view.row_stride, k, v);
      for (int i = 0; i < U; ++i) {
        const float ref = want[r * w.view.n_cols + k + i];
        if (std::bit_cast<uint32_t>(v[i]) != std::bit_cast<uint32_t>(ref)) {
          ++bad;
          ADD_FAILURE() << "row " << r << " element " << k + i << ": " << v[i] << ", reference " << ref;
        }
      }
    }
  }
}

void check(GgmlType type, const Weights& w, const std::vector<float>& want) {
  switch (static_cast<int>(type)) {
    case gpu::kF32: return check_rows<gpu::kF32>(w, want);
    case gpu::kF16: return check_rows<gpu::kF16>(w, want);
    case gpu::kBF16: return check_rows<gpu::kBF16>(w, want);
    case gpu::kQ4_0: return check_rows<gpu::kQ4_0>(w, want);
    case gpu::kQ4_1: return check_rows<gpu::kQ4_1>(w, want);
    case gpu::kQ5_0: return check_rows<gpu::kQ5_0>(w, want);
    case gpu::kQ5_1: return check_rows<gpu::kQ5_1>(w, want);
    case gpu::kQ8_0: return check_rows<gpu::kQ8_0>(w, want);
    case gpu::kQ2_K: return check_rows<gpu::kQ2_K>(w, want);
    case gpu::kQ3_K: return check_rows<gpu::kQ3_K>(w, want);
    case gpu::kQ4_K: return check_rows<gpu::kQ4_K>(w, want);
    case gpu::kQ5_K: return check_rows<gpu::kQ5_K>(w, want);
    case gpu::kQ6_K: return check_rows<gpu::kQ6_K>(w, want);
    case gpu::kMXFP8: return check_rows<gpu::kMXFP8>(w, want);
  }
  ADD_FAILURE() << "no dequantizer for " << ggml_type_name(type);
}

TEST(GpuDequant, matches_reference_bits_for_every_format_on_the_host) {
  const GgmlType formats[] = {GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ8_0, GgmlType::kQ4_0,
                              GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ2_K, GgmlType::kQ3_K,
                              GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kMXFP8_E4M3};
  for (GgmlType type : formats) {
    Seeded s;
    SCOPED_TRACE(s.trace() + " " + std::string(ggml_type_name(type)));
    const int64_t k = traits(type).block_size == 256 ? 1024 : 608;
    Weights w = make_weights(s, type, 40, k);
    check(type, w, dequantized(w));
  }
}

// Each 8-element unit of w's rows through got(row, k, out[8]) against
// dequant_at: bit for bit, or (bitwise = false) equal as floats (a zero may
// change sign; NaN stays NaN).
template <int T, typename Got>
void compare_units(const Weights& w, Got got, bool bitwise) {
  const auto* base = static_cast<const uint8_t*>(w.view.data);
  int bad = 0;
  for (int64_t r = 0; r < w.view.n_rows; ++r) {
    for (int64_t k = 0; k < w.view.n_cols && bad < 5; k += 8) {
      float a[8], b[8];
      constexpr int U = gpu::Layout<T>::kUnit;  // 1 for the float formats
      for (int i = 0; i < 8; i += U) gpu::dequant_at<T>(base + r * w.view.row_stride, k + i, a + i);
      got(base + r * w.view.row_stride, k, b);
      for (int i = 0; i < 8; ++i) {
        const bool same = bitwise ? std::bit_cast<uint32_t>(a[i]) == std::bit_cast<uint32_t>(b[i])
                                  : (a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])));
        if (!same) {
          ++bad;
          ADD_FAILURE() << "row " << r << " element " << k + i << ": " << b[i] << ", dequant_at " << a[i];
        }
      }
    }
  }
}

// f.template operator()<T>(w) on random rows of each format (the format's
// kernel template argument T).
template <typename F>
void for_formats(std::initializer_list<GgmlType> formats, F&& f) {
  for (GgmlType type : formats) {
    Seeded s;
    SCOPED_TRACE(s.trace() + " " + std::string(ggml_type_name(type)));
    const int64_t k = traits(type).block_size == 256 ? 1024 : 608;
    Weights w = make_weights(s, type, 24, k);
    switch (static_cast<int>(type)) {
      case gpu::kF32: f.template operator()<gpu::kF32>(w); break;
      case gpu::kF16: f.template operator()<gpu::kF16>(w); break;
      case gpu::kBF16: f.template operator()<gpu::kBF16>(w); break;
      case gpu::kQ8_0: f.template operator()<gpu::kQ8_0>(w); break;
      case gpu::kQ4_0: f.template operator()<gpu::kQ4_0>(w); break;
      case gpu::kQ4_1: f.template operator()<gpu::kQ4_1>(w); break;
      case gpu::kQ4_K: f.template operator()<gpu::kQ4_K>(w); break;
      case gpu::kQ6_K: f.template operator()<gpu::kQ6_K>(w); break;
      case gpu::kMXFP8: f.template operator()<gpu::kMXFP8>(w); break;
      default: ADD_FAILURE() << "no case for " << ggml_type_name(type);
    }
  }
}

// The wide loaders of the decode matmul (unit_load): bit for bit.
TEST(GpuDequant, wide_unit_loads_match_dequant_at) {
  for_formats({GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16, GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1,
               GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kMXFP8_E4M3},
              [&]<int T>(const Weights& w) {
                ASSERT_EQ(reinterpret_cast<uintptr_t>(w.view.data) % gpu::Wide<T>::kAlign, 0u);
                ASSERT_EQ(w.view.row_stride % gpu::Wide<T>::kAlign, 0u);
                compare_units<T>(w, [](const uint8_t* row, int64_t k, float* v) { gpu::unit_load<T>(row, k, v); },
                                 true);
              });
}

// The factored units of the decode matmul: d * q + m is dequant_at's value.
TEST(GpuDequant, factored_units_match_dequant_at) {
  for_formats({GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ4_K, GgmlType::kMXFP8_E4M3},
              [&]<int T>(const Weights& w) {
                compare_units<T>(w,
                                 [](const uint8_t* row, int64_t k, float* v) {
                                   float q[8], d, m;
                                   gpu::unit_q<T>(row, k, q, &d, &m);
                                   for (int i = 0; i < 8; ++i) v[i] = d * q[i] + m;
                                 },
                                 false);
              });
}

// Every E4M3 code under scales from the smallest to NaN (the edge cases the
// quantizer never writes), as matmul_test does for the CPU converters.
TEST(GpuDequant, mxfp8_every_code_and_scale) {
  const int64_t k = 256 * 32;
  std::vector<uint8_t> row(static_cast<size_t>(row_bytes(GgmlType::kMXFP8_E4M3, k)));
  for (int64_t b = 0; b < k / 32; ++b) {
    row[b * 33] = static_cast<uint8_t>(b);
    for (int j = 0; j < 32; ++j) row[b * 33 + 1 + j] = static_cast<uint8_t>((b * 32 + j) * 37 + b);
  }
  std::vector<float> want(static_cast<size_t>(k));
  ASSERT_TRUE(quant::dequantize(GgmlType::kMXFP8_E4M3, row.data(), want.data(), k).ok());
  for (int64_t e = 0; e < k; e += 8) {
    float v[8];
    gpu::dequant_at<gpu::kMXFP8>(row.data(), e, v);
    for (int i = 0; i < 8; ++i) {
      if (std::isnan(want[e + i])) {
        ASSERT_TRUE(std::isnan(v[i])) << e + i;
      } else {
        ASSERT_EQ(std::bit_cast<uint32_t>(v[i]), std::bit_cast<uint32_t>(want[e + i])) << e + i << ": " << want[e + i];
      }
    }
  }
}

}  // namespace
}  // namespace suanli::conformance
