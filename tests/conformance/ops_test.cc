// Every op but matmul on every device against the scalar reference
// (devices/cpu/reference.cc), fresh random inputs per run.
//
// Tolerances: element-wise ops without a reduction are exact or within a
// float rounding (add, convert, kv_write, embed: bit-exact; swiglu: 1e-6
// relative); rms_norm 1e-5 relative (float32 sum of squares); rope 2e-5 of
// the vector's magnitude (float rotation of a double angle); attention 1e-4
// of max|v| (float32 scores, softmax and sums over up to a few hundred keys).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "conformance.h"
#include "core/quant/quant.h"
#include "cross/row_kernels_compare.h"
#include "devices/cpu/matmul_kernels.h"
#include "devices/cpu/reference.h"
#include "devices/cpu/row_kernels.h"

namespace suanli::conformance {
namespace {

// Runs body once per CPU kernel set this machine has (the row kernels of
// swiglu and attention follow the matmul set: portable, hwy, avx2, ...),
// once for any other device; the best set is restored afterwards.
template <class F>
void for_each_kernel_set(const Device& dev, F body) {
  if (dev.kind() != DeviceKind::kCpu) {
    body();
    return;
  }
  struct Restore {
    ~Restore() { cpu::mm::select_isa(cpu::mm::available_isas().front()); }
  } restore;
  for (std::string_view isa : cpu::mm::available_isas()) {
    ASSERT_TRUE(cpu::mm::select_isa(isa));
    SCOPED_TRACE("kernel set " + std::string(isa));
    body();
  }
}

// The row kernels of every kernel set against float64 (and their F16
// variants against converting first, bit for bit); the Highway set on every
// Highway target this CPU runs (scripts/cross_check.sh runs the same check on
// aarch64 and riscv64 under qemu).
TEST(Ops, row_kernels_of_every_kernel_set_and_highway_target) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  auto cpu = devices_under_test();
  for_each_kernel_set(*cpu.front(), [&] {
    const cpu::RowComparison r = cpu::check_row_kernels(cpu::row_kernels(), seed);
    EXPECT_TRUE(r.difference.empty()) << r.difference;
    EXPECT_GT(r.cases, 20);
  });
  auto f32_to_f16 = +[](const float* src, uint16_t* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = quant::fp32_to_fp16(src[i]);
  };
  for (const std::string& t : cpu::mm::hwy_target_names()) {
    ASSERT_TRUE(cpu::mm::hwy_force_target(t));
    const cpu::RowComparison r = cpu::check_row_kernels(cpu::hwy_row_kernels(f32_to_f16), seed);
    EXPECT_TRUE(r.difference.empty()) << "Highway target " << t << ": " << r.difference;
  }
  cpu::mm::hwy_force_target("");
}

// The AVX2 row kernels by themselves (on AVX-512 CPUs row_kernels() swaps
// in AVX-512 softmax and SwiGLU, so the kernel-set loop above never reaches
// these there), and their exponential at the ends of float's range: exp
// underflows to 0 below -87.3, stays finite up to ln(FLT_MAX) = 88.72, and is
// inf above; SwiGLU's gate there gives -0 or a tiny product, never NaN.
TEST(Ops, avx2_row_kernels_against_float64_and_at_the_ends_of_exp) {
  const cpu::RowKernels* k = cpu::avx2_row_kernels();
  if (k == nullptr) GTEST_SKIP() << "no AVX2 + FMA + F16C";
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const cpu::RowComparison r = cpu::check_row_kernels(*k, seed);
  EXPECT_TRUE(r.difference.empty()) << r.difference;
  const std::vector<float> gates = {-1000.0f, -100.0f, -88.72f, -88.5f, -88.4f, -87.5f, -87.0f, -20.0f, -1.0f,
                                    -0.0f,    0.0f,    1e-30f,  1.0f,   20.0f,  88.5f,  100.0f};
  std::vector<float> up(gates.size(), 3.0f), out(gates.size());
  k->swiglu(gates.data(), up.data(), static_cast<int64_t>(gates.size()), out.data());
  for (size_t i = 0; i < gates.size(); ++i) {
    const double g = gates[i];
    const double want = g / (1.0 + std::exp(-g)) * 3.0;
    ASSERT_FALSE(std::isnan(out[i])) << "gate " << gates[i];
    EXPECT_NEAR(out[i], want, 1e-6 * std::fabs(want) + 1e-37) << "gate " << gates[i];
  }
  // softmax_exp: exp(x - m) for x - m from -200 to 0, plus -inf (a masked
  // score) and a tail that is not a multiple of the vector width.
  std::vector<float> sc = {0.0f, -1.0f, -10.0f, -87.0f, -87.2f, -87.4f, -88.0f, -100.0f, -200.0f, -INFINITY, -0.5f};
  std::vector<double> want(sc.size());
  double sum = 0;
  for (size_t i = 0; i < sc.size(); ++i) sum += want[i] = std::exp(static_cast<double>(sc[i]));
  const float got_sum = k->softmax_exp(sc.data(), static_cast<int64_t>(sc.size()), 0.0f);
  EXPECT_NEAR(got_sum, sum, 1e-6 * sum);
  for (size_t i = 0; i < sc.size(); ++i) {
    // Below -87.3 the kernels flush to 0 (float's normal range ends at
    // exp(-87.34)); above it the relative error is a few ulp.
    EXPECT_NEAR(sc[i], want[i], want[i] < 1e-37 ? 1.2e-38 : 1e-6 * want[i]) << i;
  }
}

TEST(Ops, add_is_exact_and_may_alias) {
  for (auto& dev : devices_under_test()) {
    Seeded s;
    SCOPED_TRACE(s.trace());
    for (int64_t n : {1, 17, 576, 100000}) {
      auto a = s.normal(n), b = s.normal(n);
      std::vector<float> got(n), want(n);
      dev->add(a.data(), b.data(), n, got.data());
      ref::add(a.data(), b.data(), n, want.data());
      EXPECT_TRUE(bit_equal(got.data(), want.data(), n));
      dev->add(a.data(), b.data(), n, a.data());
      EXPECT_TRUE(bit_equal(a.data(), want.data(), n)) << "out aliasing a";
    }
  }
}

TEST(Ops, swiglu_matches_reference) {
  for (auto& dev : devices_under_test()) {
    for_each_kernel_set(*dev, [&] {
      Seeded s;
      SCOPED_TRACE(s.trace());
      for (int64_t n : {1, 31, 1536, 100000}) {
        auto g = s.normal(n, 3.0f), u = s.normal(n);
        // Extremes: exp(-g) overflows (g very negative) or vanishes.
        if (n > 31) {
          g[0] = -200.0f, g[1] = -89.0f, g[2] = -88.0f, g[3] = 88.0f, g[4] = 200.0f, g[5] = 0.0f, g[6] = -0.0f;
        }
        std::vector<float> got(n), want(n);
        dev->swiglu(g.data(), u.data(), n, got.data());
        ref::swiglu(g.data(), u.data(), n, want.data());
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_NEAR(got[i], want[i], 1e-6 * std::fabs(want[i]) + 1e-7) << "i=" << i << " g=" << g[i];
        }
      }
    });
  }
}

TEST(Ops, rms_norm_matches_reference) {
  for (auto& dev : devices_under_test()) {
    Seeded s;
    SCOPED_TRACE(s.trace());
    for (auto [rows, n] : {std::pair<int64_t, int64_t>{1, 576}, {3, 64}, {17, 576}, {130, 64}, {64, 2048}, {5, 7}}) {
      auto x = s.normal(rows * n, 2.0f), w = s.normal(n);
      std::vector<float> got(rows * n), want(rows * n);
      dev->rms_norm(x.data(), w.data(), rows, n, 1e-5f, got.data());
      ref::rms_norm(x.data(), w.data(), rows, n, 1e-5f, want.data());
      for (int64_t i = 0; i < rows * n; ++i) {
        ASSERT_NEAR(got[i], want[i], 1e-5 * std::fabs(want[i]) + 1e-6) << "rows=" << rows << " n=" << n << " i=" << i;
      }
    }
  }
}

TEST(Ops, rope_matches_reference_normal_neox_and_scaled) {
  for (auto& dev : devices_under_test()) {
    Seeded s;
    SCOPED_TRACE(s.trace());
    const auto factors = s.uniform(32, 1.0f, 8.0f);
    for (bool neox : {false, true}) {
      for (int64_t t_count : {1, 3, 17, 130}) {
        const int64_t heads = 3, hd = 64;
        RopeParams p;
        p.n_dims = t_count == 3 ? 32 : 64;  // partial rotation too
        p.neox = neox;
        p.freq_base = t_count == 17 ? 500000.0f : 10000.0f;
        p.freq_scale = t_count == 130 ? 0.25f : 1.0f;
        p.freq_factors = t_count == 17 ? factors.data() : nullptr;
        std::vector<int32_t> pos(t_count);
        for (auto& v : pos) v = s.uniform_int(0, 8191);
        auto x = s.normal(t_count * heads * hd);
        auto want = x;
        dev->rope(x.data(), t_count, heads, hd, pos.data(), p);
        ref::rope(want.data(), t_count, heads, hd, pos.data(), p);
        for (size_t i = 0; i < x.size(); ++i) {
          ASSERT_NEAR(x[i], want[i], 2e-5 * (std::fabs(want[i]) + 1.0)) << "neox=" << neox << " T=" << t_count << " i=" << i;
        }
      }
    }
  }
}

// Devices may cache angles between calls (the CPU keeps the last positions'
// table): every change of positions, factors, base, scale or dims must be
// seen, and a repeated call must give the bits of the first.
TEST(Ops, rope_sees_every_change_between_calls) {
  for (auto& dev : devices_under_test()) {
    Seeded s;
    SCOPED_TRACE(s.trace());
    const int64_t t_count = 5, heads = 2, hd = 64;
    auto f1 = s.uniform(32, 1.0f, 8.0f), f2 = f1;
    f2[7] *= 2.0f;
    std::vector<int32_t> pos(t_count);
    for (auto& v : pos) v = s.uniform_int(0, 4095);
    const auto x0 = s.normal(t_count * heads * hd);
    std::vector<float> first;
    for (int step = 0; step < 8; ++step) {
      RopeParams p;
      p.n_dims = step == 5 ? 32 : 64;
      p.freq_base = step == 3 ? 1e6f : 10000.0f;
      p.freq_scale = step == 4 ? 0.5f : 1.0f;
      p.freq_factors = step == 1 ? f1.data() : step == 2 ? f2.data() : nullptr;
      if (step == 6) pos[2] += 1;  // same length, one position differs
      auto x = x0, want = x0;
      dev->rope(x.data(), t_count, heads, hd, pos.data(), p);
      ref::rope(want.data(), t_count, heads, hd, pos.data(), p);
      for (size_t i = 0; i < x.size(); ++i) {
        ASSERT_NEAR(x[i], want[i], 2e-5 * (std::fabs(want[i]) + 1.0)) << "step " << step << " i=" << i;
      }
      if (step == 0) first = x;
      if (step == 7) {
        pos[2] -= 1;  // back to step 0's input
        auto again = x0;
        RopeParams p0;
        p0.n_dims = 64;
        dev->rope(again.data(), t_count, heads, hd, pos.data(), p0);
        EXPECT_TRUE(bit_equal(again.data(), first.data(), again.size()));
      }
    }
  }
}

TEST(Ops, embed_is_exact_for_every_format) {
  for (auto& dev : devices_under_test()) {
    for (GgmlType type : dev->caps().weight_formats) {
      Seeded s;
      SCOPED_TRACE(s.trace() + " " + std::string(ggml_type_name(type)));
      const int64_t k = traits(type).block_size == 256 ? 512 : 576;
      Weights w = make_weights(s, type, 50, k);
      std::vector<int32_t> ids = {0, 49, 7, 7, 23};
      std::vector<float> got(ids.size() * k), want(got.size());
      dev->embed(w.view, ids.data(), ids.size(), got.data());
      ref::embed(w.view, ids.data(), ids.size(), want.data());
      EXPECT_TRUE(bit_equal(got.data(), want.data(), got.size()));
    }
  }
}

TEST(Ops, convert_is_exact_between_float_types) {
  for (auto& dev : devices_under_test()) {
    Seeded s;
    SCOPED_TRACE(s.trace());
    const int64_t n = 1001;
    const auto f = s.normal(n, 100.0f);
    for (GgmlType dst_type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16}) {
      std::vector<uint8_t> got(n * 4), want(n * 4);
      dev->convert(f.data(), GgmlType::kF32, got.data(), dst_type, n);
      ref::convert(f.data(), GgmlType::kF32, want.data(), dst_type, n);
      EXPECT_EQ(got, want) << ggml_type_name(dst_type);
      std::vector<float> back(n), back_want(n);
      dev->convert(got.data(), dst_type, back.data(), GgmlType::kF32, n);
      ref::convert(want.data(), dst_type, back_want.data(), GgmlType::kF32, n);
      EXPECT_TRUE(bit_equal(back.data(), back_want.data(), n)) << ggml_type_name(dst_type);
    }
  }
}

// A paged KV layer with its own storage.
struct KvLayer {
  std::vector<uint8_t> k, v;
  KvLayerView view;
  KvLayer(GgmlType type, int64_t blocks, int64_t block_size, int64_t kv_heads, int64_t hd) {
    const size_t bytes = static_cast<size_t>(blocks * block_size * kv_heads * hd) * (type == GgmlType::kF32 ? 4 : 2);
    k.assign(bytes, 0);
    v.assign(bytes, 0);
    view = KvLayerView{k.data(), v.data(), type, blocks, block_size, kv_heads, hd};
  }
};

TEST(Ops, kv_write_is_exact_for_f16_and_f32) {
  for (auto& dev : devices_under_test()) {
    for (GgmlType type : {GgmlType::kF16, GgmlType::kF32}) {
      Seeded s;
      SCOPED_TRACE(s.trace() + " " + std::string(ggml_type_name(type)));
      KvLayer got(type, 8, 16, 3, 64), want(type, 8, 16, 3, 64);
      const int64_t t_count = 17, row = 3 * 64;
      auto k = s.normal(t_count * row, 10.0f), v = s.normal(t_count * row, 10.0f);
      std::vector<int32_t> slots(128);
      std::iota(slots.begin(), slots.end(), 0);
      std::shuffle(slots.begin(), slots.end(), s.rng);
      slots.resize(t_count);
      dev->kv_write(got.view, k.data(), v.data(), t_count, slots.data());
      ref::kv_write(want.view, k.data(), v.data(), t_count, slots.data());
      EXPECT_EQ(got.k, want.k);
      EXPECT_EQ(got.v, want.v);
    }
  }
}

// Sequences sharing one batch: each has n_past cached keys and n_tokens new
// ones, in physical blocks handed out in scrambled order.
struct AttentionCase {
  int64_t n_heads, n_kv_heads, hd, block_size;
  std::vector<std::pair<int32_t, int32_t>> seqs;  // (n_past, n_tokens)
};

struct AttentionBatch {
  KvLayer kv;
  std::vector<std::vector<int32_t>> tables;
  std::vector<SeqSlice> slices;
  std::vector<float> q;
  int64_t n_tokens = 0;
};

AttentionBatch make_attention(Seeded& s, const AttentionCase& c, GgmlType type) {
  int64_t blocks_needed = 0;
  for (auto [past, n] : c.seqs) blocks_needed += (past + n + c.block_size - 1) / c.block_size;
  AttentionBatch b{KvLayer(type, blocks_needed + 3, c.block_size, c.n_kv_heads, c.hd), {}, {}, {}, 0};
  std::vector<int32_t> free_blocks(blocks_needed + 3);
  std::iota(free_blocks.begin(), free_blocks.end(), 0);
  std::shuffle(free_blocks.begin(), free_blocks.end(), s.rng);
  // Fill the whole cache with random keys/values through the reference.
  const int64_t row = c.n_kv_heads * c.hd, slots = (blocks_needed + 3) * c.block_size;
  auto k = s.normal(slots * row), v = s.normal(slots * row);
  std::vector<int32_t> all(slots);
  std::iota(all.begin(), all.end(), 0);
  ref::kv_write(b.kv.view, k.data(), v.data(), slots, all.data());
  size_t next = 0;
  for (auto [past, n] : c.seqs) {
    const int64_t nb = (past + n + c.block_size - 1) / c.block_size;
    b.tables.emplace_back(free_blocks.begin() + next, free_blocks.begin() + next + nb);
    next += nb;
  }
  for (size_t i = 0; i < c.seqs.size(); ++i) {
    b.slices.push_back(SeqSlice{static_cast<int32_t>(b.n_tokens), c.seqs[i].second, c.seqs[i].first,
                                b.tables[i].data(), static_cast<int32_t>(b.tables[i].size())});
    b.n_tokens += c.seqs[i].second;
  }
  b.q = s.normal(b.n_tokens * c.n_heads * c.hd);
  return b;
}

const std::vector<AttentionCase>& attention_cases() {
  static const std::vector<AttentionCase> cases = {
      {9, 3, 64, 16, {{0, 1}}},                       // SmolLM2 shape, first token
      {9, 3, 64, 16, {{0, 17}, {40, 1}, {5, 3}}},     // prefill + decode + chunk
      {8, 8, 32, 32, {{100, 1}, {0, 64}, {33, 2}}},   // MHA (ratio 1)
      {16, 4, 128, 16, {{130, 5}, {250, 1}}},         // ratio 4, long context
      {4, 1, 64, 16, {{0, 130}}},                     // MQA, long prefill
      {8, 2, 64, 16, {{1100, 1}, {700, 3}}},          // contexts past 512 keys (GPU: several splits)
  };
  return cases;
}

TEST(Ops, attention_matches_reference_gqa_paged_multi_sequence) {
  for (auto& dev : devices_under_test()) {
    for_each_kernel_set(*dev, [&] {
    for (GgmlType type : {GgmlType::kF16, GgmlType::kF32}) {
      for (const AttentionCase& c : attention_cases()) {
        Seeded s;
        SCOPED_TRACE(s.trace() + " " + std::string(ggml_type_name(type)) + " heads=" + std::to_string(c.n_heads) +
                     "/" + std::to_string(c.n_kv_heads) + " hd=" + std::to_string(c.hd));
        AttentionBatch b = make_attention(s, c, type);
        const float scale = 1.0f / std::sqrt(static_cast<float>(c.hd));
        std::vector<float> got(b.q.size()), want(b.q.size());
        dev->attention(b.q.data(), b.n_tokens, c.n_heads, b.kv.view, b.slices.data(),
                       static_cast<int32_t>(b.slices.size()), scale, got.data());
        ref::attention(b.q.data(), b.n_tokens, c.n_heads, b.kv.view, b.slices.data(),
                       static_cast<int32_t>(b.slices.size()), scale, want.data());
        double vmax = 0;
        for (float x : want) vmax = std::max<double>(vmax, std::fabs(x));
        for (size_t i = 0; i < got.size(); ++i) {
          ASSERT_NEAR(got[i], want[i], 1e-4 * std::max(1.0, vmax)) << "i=" << i;
        }
      }
    }
    });
  }
}

// A query's output is bit-identical whether it is computed alone (a decode
// step at its position), inside its prefill chunk, or next to other
// sequences, and with 1 or 2 threads: with short contexts (one key segment)
// and with a prefill that crosses a segment boundary (256 keys) next to a
// long decode (several segments combined).
TEST(Ops, attention_is_batch_and_thread_invariant) {
  auto devs2 = devices_under_test(2);
  auto devs1 = devices_under_test(1);
  const AttentionCase cases[] = {{9, 3, 64, 16, {{3, 1}, {20, 37}, {7, 2}}},
                                 {9, 3, 64, 16, {{600, 1}, {240, 37}, {5, 2}}}};
  for (size_t d = 0; d < devs2.size(); ++d) {
    for_each_kernel_set(*devs2[d], [&] {
    for (const AttentionCase& c : cases) {
    for (GgmlType type : {GgmlType::kF16, GgmlType::kF32}) {
      Seeded s;
      SCOPED_TRACE(s.trace() + " " + std::string(ggml_type_name(type)) + " past=" + std::to_string(c.seqs[1].first));
      AttentionBatch b = make_attention(s, c, type);
      const int64_t width = c.n_heads * c.hd;
      std::vector<float> batch(b.q.size()), batch1(b.q.size()), single(width);
      devs2[d]->attention(b.q.data(), b.n_tokens, c.n_heads, b.kv.view, b.slices.data(), 3, 0.125f, batch.data());
      devs1[d]->attention(b.q.data(), b.n_tokens, c.n_heads, b.kv.view, b.slices.data(), 3, 0.125f, batch1.data());
      EXPECT_TRUE(bit_equal(batch.data(), batch1.data(), batch.size())) << "1 vs 2 threads";
      // Token j of the 37-token prefill of sequence 1, as a lone decode step.
      for (int32_t j : {0, 11, 15, 16, 36}) {
        const int64_t t = b.slices[1].first_token + j;
        SeqSlice lone = b.slices[1];
        lone.first_token = 0;
        lone.n_tokens = 1;
        lone.n_past = b.slices[1].n_past + j;
        devs2[d]->attention(b.q.data() + t * width, 1, c.n_heads, b.kv.view, &lone, 1, 0.125f, single.data());
        EXPECT_TRUE(bit_equal(single.data(), batch.data() + t * width, width)) << "token " << j;
      }
      // Sequence 0 (the decode) alone.
      SeqSlice lone0 = b.slices[0];
      lone0.first_token = 0;
      devs1[d]->attention(b.q.data() + b.slices[0].first_token * width, 1, c.n_heads, b.kv.view, &lone0, 1, 0.125f,
                          single.data());
      EXPECT_TRUE(bit_equal(single.data(), batch.data() + b.slices[0].first_token * width, width)) << "sequence 0";
    }
    }
    });
  }
}

}  // namespace
}  // namespace suanli::conformance
