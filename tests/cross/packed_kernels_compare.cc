#include "packed_kernels_compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "devices/cpu/matmul_packed.h"

namespace suanli::cpu::mm {
namespace {

// A GGUF block format with a packed layout, and where its fp16 fields sit.
struct Format {
  GgmlType type;
  const char* name;
  int block;        // elements per block
  int block_bytes;  // bytes per block
  int fp16_fields[2];
  int n_fp16;
};

constexpr Format kFormats[] = {
    {GgmlType::kQ4_0, "Q4_0", 32, 18, {0, 0}, 1},    {GgmlType::kQ4_1, "Q4_1", 32, 20, {0, 2}, 2},
    {GgmlType::kQ8_0, "Q8_0", 32, 34, {0, 0}, 1},    {GgmlType::kQ4_K, "Q4_K", 256, 144, {0, 2}, 2},
    {GgmlType::kQ5_K, "Q5_K", 256, 176, {0, 2}, 2},  {GgmlType::kQ6_K, "Q6_K", 256, 210, {208, 0}, 1},
    {GgmlType::kQ5_0, "Q5_0", 32, 22, {0, 0}, 1},    {GgmlType::kQ5_1, "Q5_1", 32, 24, {0, 2}, 2},
    {GgmlType::kQ2_K, "Q2_K", 256, 84, {80, 82}, 2}, {GgmlType::kQ3_K, "Q3_K", 256, 110, {108, 0}, 1},
};

constexpr int kRows = 2 * kPkRows;    // two groups
constexpr int kMaxT = kPkTokens + 1;  // T = 9 takes two tile calls

// A finite fp16 of magnitude below 2 (subnormals included), so that no sum
// overflows: the kernels' float steps are what is compared, not inf / NaN.
uint16_t random_fp16(std::mt19937_64& rng) {
  const uint32_t bits = static_cast<uint32_t>(rng());
  return static_cast<uint16_t>((bits & 0x8000) | ((bits >> 16) % 16) << 10 | (bits & 0x3ff));
}

std::vector<uint8_t> random_rows(const Format& f, int64_t k, std::mt19937_64& rng) {
  std::vector<uint8_t> rows(static_cast<size_t>(kRows * (k / f.block) * f.block_bytes));
  for (uint8_t& b : rows) b = static_cast<uint8_t>(rng());
  for (size_t blk = 0; blk < rows.size(); blk += f.block_bytes) {
    for (int i = 0; i < f.n_fp16; ++i) {
      const uint16_t h = random_fp16(rng);
      std::memcpy(&rows[blk + f.fp16_fields[i]], &h, 2);
    }
  }
  return rows;
}

// kMaxT tokens of k activations, 32-blocks of different magnitudes, with an
// all-zero block (amax 0), a block of exact .5 ties (amax 127: scale 1) and,
// with_nan, a NaN (skipped by amax, coded -127, and the block's d NaN:
// matmul_packed.h), so that token's outputs are NaN in every set.
std::vector<float> random_activations(int64_t k, std::mt19937_64& rng, bool with_nan) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(kMaxT * k));
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::ldexp(u(rng), static_cast<int>(i / 32 % 13) - 6);
  std::fill(x.begin() + k, x.begin() + k + 32, 0.0f);
  float* ties = x.data() + 2 * k;
  ties[0] = 127.0f;
  for (int i = 1; i < 32; ++i) ties[i] = (i % 2 ? 1.0f : -1.0f) * (static_cast<float>(i * 4 % 126) + 0.5f);
  if (with_nan) x[3 * k + 5] = std::numeric_limits<float>::quiet_NaN();
  return x;
}

std::string describe(const Format& f, int64_t k, const char* what) {
  return std::string(f.name) + " K=" + std::to_string(k) + ": " + what;
}

// Runs one kernel set over every T; out is [T][kRows] per T, concatenated.
std::vector<float> run_tiles(const KernelTable& kt, const Format& f, int64_t k, const uint8_t* packed,
                             const uint8_t* act, size_t as, const float* bias) {
  const size_t group_bytes = pk_group_bytes(f.type, k);
  std::vector<float> out;
  for (int t_count = 1; t_count <= kMaxT; ++t_count) {
    std::vector<float> o(static_cast<size_t>(t_count * kRows));
    const float* b = t_count % 2 ? bias : nullptr;
    for (int g = 0; g < kRows / kPkRows; ++g) {
      for (int t0 = 0; t0 < t_count; t0 += kPkTokens) {
        const int nt = std::min(kPkTokens, t_count - t0);
        // The prefetch hint (the next group, or none) on alternate groups:
        // it must not change a bit.
        const uint8_t* next = g % 2 == 0 && g + 1 < kRows / kPkRows ? packed + (g + 1) * group_bytes : nullptr;
        kt.pk_tile(f.type, packed + g * group_bytes, k / 32, act + t0 * as, as, nt, b ? b + g * kPkRows : nullptr,
                   o.data() + t0 * kRows + g * kPkRows, kRows, next);
      }
    }
    out.insert(out.end(), o.begin(), o.end());
  }
  return out;
}

}  // namespace

PkComparison compare_packed_kernels(const KernelTable& want, const KernelTable& got, uint64_t seed, bool with_nan) {
  PkComparison r;
  std::mt19937_64 rng(seed);
  for (const Format& f : kFormats) {
    const std::vector<int64_t> ks = f.block == 256 ? std::vector<int64_t>{256, 768} : std::vector<int64_t>{32, 96, 608};
    for (int64_t k : ks) {
      const std::vector<uint8_t> rows = random_rows(f, k, rng);
      const size_t row_bytes = static_cast<size_t>(k / f.block * f.block_bytes);
      const size_t group_bytes = pk_group_bytes(f.type, k);
      std::vector<uint8_t> packed(group_bytes * (kRows / kPkRows));
      for (int g = 0; g < kRows / kPkRows; ++g) {
        pk_pack_group(f.type, rows.data() + g * kPkRows * row_bytes, row_bytes, k, packed.data() + g * group_bytes);
      }
      const std::vector<float> x = random_activations(k, rng, with_nan);
      const size_t as = pk_act_stride(k);
      std::vector<uint8_t> act_want(as * kMaxT), act_got(as * kMaxT);
      for (int t = 0; t < kMaxT; ++t) {
        want.pk_quantize_act(x.data() + t * k, k, act_want.data() + t * as);
        got.pk_quantize_act(x.data() + t * k, k, act_got.data() + t * as);
      }
      if (act_want != act_got) {
        const size_t i = std::mismatch(act_want.begin(), act_want.end(), act_got.begin()).first - act_want.begin();
        r.difference = describe(f, k, "pk_quantize_act") + ", token " + std::to_string(i / as) + " byte " +
                       std::to_string(i % as) + ": " + std::to_string(act_want[i]) + " vs " +
                       std::to_string(act_got[i]);
        return r;
      }
      std::vector<float> bias(kRows);
      for (float& b : bias) b = std::ldexp(static_cast<float>(rng() % 2001) - 1000.0f, -8);
      const std::vector<float> o_want = run_tiles(want, f, k, packed.data(), act_want.data(), as, bias.data());
      const std::vector<float> o_got = run_tiles(got, f, k, packed.data(), act_got.data(), as, bias.data());
      r.cases += kMaxT;
      // Bit for bit, except that any NaN equals any NaN (payloads may differ).
      auto same = [&](size_t i) {
        return std::memcmp(&o_want[i], &o_got[i], sizeof(float)) == 0 || (std::isnan(o_want[i]) && std::isnan(o_got[i]));
      };
      size_t i = 0;
      while (i < o_want.size() && same(i)) ++i;
      if (with_nan && i == o_want.size()) {
        // The NaN must have reached its token's outputs (token 3 of each T > 3).
        size_t at = 0;
        for (int t_count = 1; t_count <= kMaxT; ++t_count) {
          if (t_count > 3 && !std::isnan(o_want[at + 3 * kRows])) {
            r.difference = describe(f, k, "a NaN activation gave a finite output");
            return r;
          }
          at += static_cast<size_t>(t_count * kRows);
        }
      }
      if (i < o_want.size()) {
        // Position of i among the concatenated [T][kRows] outputs.
        int t_count = 1;
        size_t at = i;
        while (at >= static_cast<size_t>(t_count * kRows)) at -= static_cast<size_t>(t_count++ * kRows);
        char buf[160];
        std::snprintf(buf, sizeof buf, "pk_tile T=%d token %zu row %zu: %.9g vs %.9g", t_count, at / kRows, at % kRows,
                      o_want[i], o_got[i]);
        r.difference = describe(f, k, buf);
        return r;
      }
    }
  }
  return r;
}

}  // namespace suanli::cpu::mm
