// matmul on every device, every weight format, every kernel set the CPU can
// run, against the float64 reference (devices/cpu/reference.cc).
//
// Tolerances. Integer formats quantize activations to int8 per 32-block
// (scale amax/127), so each product carries at most |w|·amax/254 of
// activation rounding: the bound is Σ|w_k|·amax_b(k)/250 plus 2e-5·Σ|x||w|
// for float rounding of scales and sums. Float formats (F32/F16/BF16, and
// MXFP8_E4M3, whose rows convert to float exactly) only round their float32
// sums: 1e-5·Σ|x||w|.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include "conformance.h"
#include "cross/packed_kernels_compare.h"
#include "devices/cpu/matmul_kernels.h"
#include "devices/cpu/matmul_packed.h"
#include "devices/cpu/reference.h"

namespace suanli::conformance {
namespace {

bool is_float(GgmlType t) {
  return t == GgmlType::kF32 || t == GgmlType::kF16 || t == GgmlType::kBF16 || t == GgmlType::kMXFP8_E4M3;
}

// Row lengths that exercise each format: a whole number of blocks, an odd
// number of 64-element steps, and the default model's K=576 and 1536.
std::vector<int64_t> ks_for(GgmlType t) {
  const int64_t bs = traits(t).block_size;
  if (bs == 256) return {256, 768, 1536};
  if (bs == 32) return {32, 96, 576, 1536};
  return {7, 33, 576};
}

// Restores the best kernel set when a test that switches them ends.
struct IsaGuard {
  ~IsaGuard() { cpu::mm::select_isa(cpu::mm::available_isas().front()); }
};

std::vector<std::string_view> isas_to_test(const Device& dev) {
  if (dev.kind() != DeviceKind::kCpu) return {""};
  return cpu::mm::available_isas();
}

// got and want are [t_count][n] products of x [t_count][k] with the
// dequantized weights wf [n][k] in `type`: within the tolerances above.
void expect_close(GgmlType type, const std::vector<float>& x, const std::vector<float>& wf, int64_t t_count,
                  int64_t n, int64_t k, const float* got, const float* want) {
  int bad = 0;
  for (int64_t t = 0; t < t_count && bad < 5; ++t) {
    std::vector<double> amax(static_cast<size_t>((k + 31) / 32), 0.0);
    for (int64_t i = 0; i < k; ++i) amax[i / 32] = std::max<double>(amax[i / 32], std::fabs(x[t * k + i]));
    for (int64_t r = 0; r < n && bad < 5; ++r) {
      double mag = 0, act_err = 0;
      for (int64_t i = 0; i < k; ++i) {
        const double aw = std::fabs(wf[r * k + i]);
        mag += aw * std::fabs(x[t * k + i]);
        act_err += aw * amax[i / 32] / 250.0;
      }
      const double tol = is_float(type) ? 1e-5 * mag + 1e-6 : act_err + 2e-5 * mag + 1e-6;
      const double err = std::fabs(static_cast<double>(got[t * n + r]) - want[t * n + r]);
      if (!(err <= tol)) {
        ++bad;
        ADD_FAILURE() << "out[" << t << "][" << r << "] = " << got[t * n + r] << ", reference " << want[t * n + r]
                      << ", error " << err << " > tolerance " << tol;
      }
    }
  }
}

void check_matmul(Device& dev, Seeded& s, GgmlType type, int64_t t_count, int64_t n, int64_t k, bool with_bias) {
  SCOPED_TRACE(std::string(ggml_type_name(type)) + " T=" + std::to_string(t_count) + " N=" + std::to_string(n) +
               " K=" + std::to_string(k));
  Weights w = make_weights(s, type, n, k);
  const std::vector<float> wf = dequantized(w);
  const std::vector<float> x = s.normal(static_cast<size_t>(t_count * k));
  const std::vector<float> bias = s.normal(static_cast<size_t>(n));
  const float* b = with_bias ? bias.data() : nullptr;
  std::vector<float> got(static_cast<size_t>(t_count * n)), want(got.size());
  dev.matmul(x.data(), t_count, w.view, b, got.data());
  ASSERT_TRUE(dev.synchronize().ok());
  ref::matmul(x.data(), t_count, w.view, b, want.data());
  expect_close(type, x, wf, t_count, n, k, got.data(), want.data());
}

TEST(Matmul, matches_reference_for_every_format_shape_and_kernel_set) {
  IsaGuard guard;
  for (auto& dev : devices_under_test()) {
    for (std::string_view isa : isas_to_test(*dev)) {
      if (!isa.empty()) {
        ASSERT_TRUE(cpu::mm::select_isa(isa));
      }
      SCOPED_TRACE(dev->name() + " kernels=" + std::string(isa));
      for (GgmlType type : dev->caps().weight_formats) {
        Seeded s;
        SCOPED_TRACE(s.trace());
        for (int64_t k : ks_for(type)) {
          for (int64_t t_count : {1, 3, 17, 64, 130}) {
            // Big K with big T is slow on the portable kernels; the shapes
            // that matter for tiling are covered by the smaller K.
            if (k >= 1536 && t_count > 17) continue;
            check_matmul(*dev, s, type, t_count, 37, k, t_count % 2 == 1);
          }
        }
      }
    }
  }
}

// The float-row converters must give the portable (reference) floats bit for
// bit; MXFP8 blocks with every element code under scales from the smallest to
// NaN, where products overflow to inf.
TEST(Matmul, float_row_converters_match_portable_for_mxfp8) {
  const GgmlType type = GgmlType::kMXFP8_E4M3;
  const int64_t k = 256 * 32;
  const cpu::mm::Geometry g = cpu::mm::make_geometry(k);
  std::vector<uint8_t> row(static_cast<size_t>(row_bytes(type, k)));
  for (int64_t b = 0; b < k / 32; ++b) {
    row[b * 33] = static_cast<uint8_t>(b);
    for (int j = 0; j < 32; ++j) row[b * 33 + 1 + j] = static_cast<uint8_t>((b * 32 + j) * 37 + b);
  }
  std::vector<float> want(static_cast<size_t>(g.kf)), got(want.size());
  ASSERT_TRUE(cpu::mm::float_row_portable(type, row.data(), g, want.data()));
  std::vector<const cpu::mm::KernelTable*> tables;
  const std::vector<std::string_view> isas = cpu::mm::available_isas();
  if (std::find(isas.begin(), isas.end(), "avx2") != isas.end()) tables.push_back(cpu::mm::avx2_kernels());
  if (std::find(isas.begin(), isas.end(), "avx512vnni") != isas.end()) tables.push_back(cpu::mm::avx512_kernels());
  for (const cpu::mm::KernelTable* t : tables) {
    if (t == nullptr || t->float_row == nullptr || !t->float_row(type, row.data(), g, got.data())) continue;
    SCOPED_TRACE(t->name);
    for (size_t i = 0; i < want.size(); ++i) {
      if (std::isnan(want[i])) {
        ASSERT_TRUE(std::isnan(got[i])) << i;
      } else {
        ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i])) << i << ": " << want[i];
      }
    }
  }
}

// Weights a device rewrote with prepare_weights (the CPU's packed layout for
// the legacy and K-quant integer formats), alone and stacked q/k/v-style: each part's output
// matches the reference on the original matrix, is laid out [T][rows] part
// after part, and is batch and thread invariant.
TEST(Matmul, prepared_and_stacked_weights_match_reference) {
  IsaGuard guard;
  auto devs2 = devices_under_test(2);
  auto devs1 = devices_under_test(1);
  for (size_t d = 0; d < devs2.size(); ++d) {
    Device& dev = *devs2[d];
    int prepared = 0;
    for (std::string_view isa : isas_to_test(dev)) {
      if (!isa.empty()) {
        ASSERT_TRUE(cpu::mm::select_isa(isa));
      }
      SCOPED_TRACE("kernels=" + std::string(isa));
    for (GgmlType type : {GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ8_0,
                          GgmlType::kQ2_K, GgmlType::kQ3_K, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K,
                          GgmlType::kF16}) {
      for (int64_t k : traits(type).block_size == 256 ? std::vector<int64_t>{256, 768} : std::vector<int64_t>{32, 576, 608}) {
        Seeded s;
        SCOPED_TRACE(dev.name() + " " + s.trace() + " " + std::string(ggml_type_name(type)) + " K=" + std::to_string(k));
        const std::vector<int64_t> rows = {48, 16, 32};
        std::vector<Weights> ws;
        std::vector<WeightView> views;
        int64_t n_total = 0;
        for (int64_t r : rows) {
          ws.push_back(make_weights(s, type, r, k));
          n_total += r;
        }
        for (const Weights& w : ws) views.push_back(w.view);
        Expected<PreparedWeight> p = dev.prepare_weights(views);
        if (!p) {
          EXPECT_EQ(p.status().code(), StatusCode::kUnsupported) << p.status().message();
          // A single matrix is always accepted (unchanged at worst).
          Expected<PreparedWeight> one = dev.prepare_weights({views[0]});
          ASSERT_TRUE(one.has_value()) << one.status().message();
          continue;
        }
        ++prepared;
        ASSERT_EQ(p->view.n_rows, n_total);
        const std::vector<float> bias = s.normal(static_cast<size_t>(n_total));
        // Up to 32 tokens every thread quantizes its own copy of the
        // activations (matmul_packed); 40 shares one.
        for (int64_t t_count : {1, 3, 8, 9, 21, 40}) {
          SCOPED_TRACE("T=" + std::to_string(t_count));
          const std::vector<float> x = s.normal(static_cast<size_t>(t_count * k));
          std::vector<float> got(static_cast<size_t>(t_count * n_total)), got1(got.size());
          dev.matmul(x.data(), t_count, p->view, bias.data(), got.data());
          ASSERT_TRUE(dev.synchronize().ok());
          int64_t off = 0;
          for (size_t part = 0; part < ws.size(); ++part) {
            const int64_t n = rows[part];
            std::vector<float> want(static_cast<size_t>(t_count * n));
            ref::matmul(x.data(), t_count, ws[part].view, bias.data() + off, want.data());
            expect_close(type, x, dequantized(ws[part]), t_count, n, k, got.data() + t_count * off, want.data());
            off += n;
          }
          // One thread, and each token alone: the same bits.
          Expected<PreparedWeight> p1 = devs1[d]->prepare_weights(views);
          ASSERT_TRUE(p1.has_value());
          devs1[d]->matmul(x.data(), t_count, p1->view, bias.data(), got1.data());
          EXPECT_TRUE(bit_equal(got.data(), got1.data(), got.size())) << "1 vs 2 threads";
          std::vector<float> single(static_cast<size_t>(n_total));
          const int64_t t = t_count - 1;
          dev.matmul(x.data() + t * k, 1, p->view, bias.data(), single.data());
          off = 0;
          for (int64_t n : rows) {
            EXPECT_TRUE(bit_equal(single.data() + off, got.data() + t_count * off + t * n, n)) << "T=1 vs batch";
            off += n;
          }
          // The same call shape again with other inputs (and the 1-thread
          // device's call in between): no thread reuses the activations it
          // quantized for an earlier call.
          const std::vector<float> x2 = s.normal(static_cast<size_t>(t_count * k));
          std::vector<float> again(got.size());
          dev.matmul(x2.data(), t_count, p->view, bias.data(), again.data());
          devs1[d]->matmul(x2.data(), t_count, p1->view, bias.data(), got1.data());
          EXPECT_TRUE(bit_equal(again.data(), got1.data(), got.size())) << "second call, 1 vs 2 threads";
          dev.matmul(x.data(), t_count, p->view, bias.data(), again.data());
          EXPECT_TRUE(bit_equal(again.data(), got.data(), got.size())) << "third call vs first";
        }
      }
    }
    }
    if (dev.kind() == DeviceKind::kCpu && cpu::mm::available_isas().front() == "avx512vnni") {
      EXPECT_GT(prepared, 0) << "the AVX-512 CPU device packs Q4_0 / Q4_1 / Q8_0";
    }
  }
}

// The packed kernels of every CPU kernel set that has them (AVX-512 VNNI,
// AVX2, Highway at its best target, portable) give the same bits: integer
// sums are exact and the float steps per (row, token) are the same.
TEST(Matmul, packed_kernels_agree_across_instruction_sets) {
  IsaGuard guard;
  auto devs = devices_under_test(2);
  Device& cpu = *devs[0];
  ASSERT_EQ(cpu.kind(), DeviceKind::kCpu);
  Seeded s;
  SCOPED_TRACE(s.trace());
  for (GgmlType type : {GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ8_0,
                        GgmlType::kQ2_K, GgmlType::kQ3_K, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    SCOPED_TRACE(ggml_type_name(type));
    const int64_t k = traits(type).block_size == 256 ? 512 : 608, n = 48, t_count = 11;
    Weights w = make_weights(s, type, n, k);
    const std::vector<float> x = s.normal(static_cast<size_t>(t_count * k));
    std::vector<float> first;
    std::string first_isa;
    int sets = 0;
    for (std::string_view isa : cpu::mm::available_isas()) {
      ASSERT_TRUE(cpu::mm::select_isa(isa));
      Expected<PreparedWeight> p = cpu.prepare_weights({w.view});
      ASSERT_TRUE(p.has_value());
      if (p->view.layout == 0) continue;  // this set has no packed kernels
      ++sets;
      std::vector<float> got(static_cast<size_t>(t_count * n));
      cpu.matmul(x.data(), t_count, p->view, nullptr, got.data());
      if (first.empty()) {
        first = got;
        first_isa = isa;
      } else {
        EXPECT_TRUE(bit_equal(first.data(), got.data(), got.size())) << isa << " vs " << first_isa;
      }
    }
    if (sets < 2) std::printf("note: only %d kernel set(s) with packed kernels here\n", sets);
  }
}

// The hand-written x86 sets' packed kernels against the portable ones on
// random GGUF rows of every packed format (every code and scale byte, fp16
// scales down to subnormals) and awkward activations (a NaN among them),
// bit for bit (tests/cross/packed_kernels_compare.h).
TEST(Matmul, packed_kernels_match_portable_on_random_blocks) {
  Seeded s;
  SCOPED_TRACE(s.trace());
  const std::vector<std::string_view> isas = cpu::mm::available_isas();
  int sets = 0;
  for (const cpu::mm::KernelTable* t : {cpu::mm::avx512_kernels(), cpu::mm::avx2_kernels()}) {
    if (t == nullptr || std::find(isas.begin(), isas.end(), t->name) == isas.end()) continue;
    SCOPED_TRACE(t->name);
    ++sets;
    const cpu::mm::PkComparison r =
        cpu::mm::compare_packed_kernels(*cpu::mm::portable_kernels(), *t, s.seed, /*with_nan=*/true);
    EXPECT_EQ(r.difference, "");
    if (r.difference.empty()) {
      EXPECT_EQ(r.cases, 5 * 3 * 9 + 5 * 2 * 9);  // formats x K x T
    }
  }
  if (sets == 0) std::printf("note: no x86 kernel set with packed kernels here\n");
}

// Random GGUF blocks of every packed format (every code; every scale byte:
// Q3_K's scales from -32 to 31, Q2_K's every scale / min nibble; moderate
// fp16 super-scales), packed by prepare_weights, through every kernel set,
// against the float64 reference on the original rows.
TEST(Matmul, packed_random_blocks_match_reference) {
  struct Format {
    GgmlType type;
    std::vector<int> fp16_fields;
  };
  const Format formats[] = {
      {GgmlType::kQ4_0, {0}},    {GgmlType::kQ4_1, {0, 2}},   {GgmlType::kQ5_0, {0}},   {GgmlType::kQ5_1, {0, 2}},
      {GgmlType::kQ8_0, {0}},    {GgmlType::kQ2_K, {80, 82}}, {GgmlType::kQ3_K, {108}}, {GgmlType::kQ4_K, {0, 2}},
      {GgmlType::kQ5_K, {0, 2}}, {GgmlType::kQ6_K, {208}},
  };
  IsaGuard guard;
  const char* pack_env = std::getenv("SUANLI_CPU_PACK");
  const bool packing = !(pack_env && std::string_view(pack_env) == "0");
  auto devs = devices_under_test(2);
  Device& dev = *devs[0];
  ASSERT_EQ(dev.kind(), DeviceKind::kCpu);
  for (std::string_view isa : isas_to_test(dev)) {
    ASSERT_TRUE(cpu::mm::select_isa(isa));
    for (const Format& f : formats) {
      Seeded s;
      SCOPED_TRACE("kernels=" + std::string(isa) + " " + s.trace() + " " + std::string(ggml_type_name(f.type)));
      const int64_t n = 32, k = traits(f.type).block_size == 256 ? 512 : 96;
      Weights w;
      w.bytes.resize(static_cast<size_t>(n * row_bytes(f.type, k)));
      for (uint8_t& b : w.bytes) b = static_cast<uint8_t>(s.uniform_int(0, 255));
      const int64_t tsize = traits(f.type).type_size;
      for (size_t off = 0; off < w.bytes.size(); off += tsize) {
        for (int at : f.fp16_fields) put_fp16(w.bytes.data() + off + at, s.uniform(1, 0.001f, 0.02f)[0]);
      }
      w.view = WeightView{w.bytes.data(), f.type, n, k, static_cast<size_t>(row_bytes(f.type, k))};
      Expected<PreparedWeight> p = dev.prepare_weights({w.view});
      ASSERT_TRUE(p.has_value()) << p.status().message();
      if (packing) {
        EXPECT_EQ(p->view.layout, cpu::mm::kLayoutRows16) << "not packed";
      }
      const std::vector<float> wf = dequantized(w);
      for (int64_t t_count : {1, 2, 5, 8, 13, 21}) {
        SCOPED_TRACE("T=" + std::to_string(t_count));
        const std::vector<float> x = s.normal(static_cast<size_t>(t_count * k));
        const std::vector<float> bias = s.normal(static_cast<size_t>(n));
        std::vector<float> got(static_cast<size_t>(t_count * n)), want(got.size());
        dev.matmul(x.data(), t_count, p->view, bias.data(), got.data());
        ASSERT_TRUE(dev.synchronize().ok());
        ref::matmul(x.data(), t_count, w.view, bias.data(), want.data());
        expect_close(f.type, x, wf, t_count, n, k, got.data(), want.data());
      }
    }
  }
}

// The Highway kernel set on every Highway target this CPU runs (here x86:
// SSSE3, SSE4, AVX2, AVX3), against the portable kernels, bit for bit: every
// packed format, several K, T = 1..9 (tests/cross/packed_kernels_compare.h;
// scripts/cross_check.sh runs the same comparison for aarch64 under qemu).
TEST(Matmul, hwy_packed_kernels_match_portable_on_every_highway_target) {
  struct RestoreBest {
    ~RestoreBest() { cpu::mm::hwy_force_target(""); }
  } restore;
  const std::vector<std::string> targets = cpu::mm::hwy_target_names();
  ASSERT_FALSE(targets.empty());
  Seeded s;
  SCOPED_TRACE(s.trace());
  for (const std::string& target : targets) {
    SCOPED_TRACE("Highway target " + target);
    ASSERT_TRUE(cpu::mm::hwy_force_target(target));
    EXPECT_EQ(std::string(cpu::mm::hwy_running_target()), target);
    const cpu::mm::PkComparison r =
        cpu::mm::compare_packed_kernels(*cpu::mm::portable_kernels(), *cpu::mm::hwy_kernels(), s.seed);
    EXPECT_EQ(r.difference, "");
    if (r.difference.empty()) {
      EXPECT_EQ(r.cases, 5 * 3 * 9 + 5 * 2 * 9);  // formats x K x T
    }
  }
  // The set is registered (so the device tests above run it too), after the
  // hand-written x86 sets and before the portable one.
  const std::vector<std::string_view> isas = cpu::mm::available_isas();
  ASSERT_GE(isas.size(), 2u);
  EXPECT_EQ(isas[isas.size() - 2], "hwy");
  EXPECT_EQ(isas.back(), "portable");
  std::printf("note: hwy kernels checked on Highway targets:");
  for (const std::string& t : targets) std::printf(" %s", t.c_str());
  std::printf("\n");
}

TEST(Matmul, handles_single_row_and_many_rows) {
  for (auto& dev : devices_under_test()) {
    Seeded s;
    SCOPED_TRACE(s.trace());
    for (GgmlType type : {GgmlType::kQ4_1, GgmlType::kQ8_0, GgmlType::kF16}) {
      check_matmul(*dev, s, type, 5, 1, 64, true);
      check_matmul(*dev, s, type, 2, 1000, 64, false);
    }
  }
}

// out[t] depends on x[t] and W only: bit-identical with T=1, inside a batch
// of 37 unrelated rows, and with 1 or 2 threads.
TEST(Matmul, is_batch_and_thread_invariant) {
  IsaGuard guard;
  auto devs2 = devices_under_test(2);
  auto devs1 = devices_under_test(1);
  ASSERT_EQ(devs1.size(), devs2.size());
  for (size_t d = 0; d < devs2.size(); ++d) {
    for (std::string_view isa : isas_to_test(*devs2[d])) {
      if (!isa.empty()) {
        ASSERT_TRUE(cpu::mm::select_isa(isa));
      }
      SCOPED_TRACE(devs2[d]->name() + " kernels=" + std::string(isa));
      for (GgmlType type : devs2[d]->caps().weight_formats) {
        Seeded s;
        SCOPED_TRACE(s.trace() + " " + std::string(ggml_type_name(type)));
        // 608 = 19 blocks of 32: an odd last block (padding in the kernels).
        const int64_t k = traits(type).block_size == 256 ? 512 : 608, n = 75, t_count = 37;
        Weights w = make_weights(s, type, n, k);
        const std::vector<float> x = s.normal(static_cast<size_t>(t_count * k));
        const std::vector<float> bias = s.normal(n);
        std::vector<float> batch(t_count * n), batch1(t_count * n), single(n);
        devs2[d]->matmul(x.data(), t_count, w.view, bias.data(), batch.data());
        devs1[d]->matmul(x.data(), t_count, w.view, bias.data(), batch1.data());
        EXPECT_TRUE(bit_equal(batch.data(), batch1.data(), batch.size())) << "1 vs 2 threads";
        for (int64_t t : {0, 5, 18, 36}) {
          devs2[d]->matmul(x.data() + t * k, 1, w.view, bias.data(), single.data());
          EXPECT_TRUE(bit_equal(single.data(), batch.data() + t * n, n)) << "token " << t << ": T=1 vs T=37";
        }
        // A 3-token batch starting at token 18 (different tile positions).
        std::vector<float> three(3 * n);
        devs2[d]->matmul(x.data() + 18 * k, 3, w.view, bias.data(), three.data());
        EXPECT_TRUE(bit_equal(three.data(), batch.data() + 18 * n, 3 * n)) << "T=3 vs T=37";
      }
    }
  }
}

}  // namespace
}  // namespace suanli::conformance
