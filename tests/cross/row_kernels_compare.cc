#include "cross/row_kernels_compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "core/quant/quant.h"

namespace suanli::cpu {
namespace {

std::string where(const char* what, int64_t a, int64_t b, double got, double want) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s [%lld, %lld]: got %.9g want %.9g", what, static_cast<long long>(a),
                static_cast<long long>(b), got, want);
  return buf;
}

std::vector<uint16_t> to_f16(const std::vector<float>& x) {
  std::vector<uint16_t> h(x.size());
  for (size_t i = 0; i < x.size(); ++i) h[i] = quant::fp32_to_fp16(x[i]);
  return h;
}
std::vector<float> from_f16(const std::vector<uint16_t>& h) {
  std::vector<float> x(h.size());
  for (size_t i = 0; i < h.size(); ++i) x[i] = quant::fp16_to_fp32(h[i]);
  return x;
}

}  // namespace

RowComparison check_row_kernels(const RowKernels& k, uint64_t seed) {
  RowComparison r;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto fill = [&](std::vector<float>& v, float scale) {
    for (float& x : v) x = normal(rng) * scale;
  };
  auto fail = [&](std::string s) {
    if (r.difference.empty()) r.difference = std::move(s);
  };

  // F16 -> F32: every finite bit pattern class, odd lengths (tails).
  for (int64_t n : {1, 7, 16, 37}) {
    std::vector<uint16_t> h(n);
    for (auto& x : h) {
      x = static_cast<uint16_t>(rng());
      if ((x & 0x7c00) == 0x7c00) x &= 0x83ff;  // no inf / NaN
    }
    std::vector<float> got(n);
    k.f16_to_f32(h.data(), got.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const float want = quant::fp16_to_fp32(h[i]);
      if (std::memcmp(&got[i], &want, sizeof want) != 0) fail(where("f16_to_f32", n, i, got[i], want));
    }
    ++r.cases;
  }

  // Dots and accumulate, float rows and F16 rows.
  // d = 12 and 24: tails (the AVX2 scores' scalar chain for d % 8 != 0);
  // nk = 12 and 50: last blocks of 9-24 keys (partial vectors of keys).
  for (int64_t d : {12, 16, 24, 64, 80, 128}) {
    for (int64_t nk : {1, 5, 12, 33, 50, 70}) {
      std::vector<float> q(d), kk(nk * d), p(nk);
      fill(q, 1.0f);
      fill(kk, 1.0f);
      fill(p, 0.5f);
      // Keys and values through F16, so the float and F16 paths see the
      // same numbers.
      const std::vector<uint16_t> kh = to_f16(kk);
      kk = from_f16(kh);
      std::vector<float> got(nk);
      k.dots(q.data(), kk.data(), nk, d, 0.125f, got.data());
      for (int64_t j = 0; j < nk; ++j) {
        double want = 0, mag = 0;
        for (int64_t e = 0; e < d; ++e) {
          want += static_cast<double>(q[e]) * kk[j * d + e];
          mag += std::fabs(static_cast<double>(q[e]) * kk[j * d + e]);
        }
        want *= 0.125;
        if (std::fabs(got[j] - want) > 1e-5 * 0.125 * mag + 1e-30) fail(where("dots", d, j, got[j], want));
      }
      std::vector<float> acc(d, 0.5f), want_acc(d);
      for (int64_t e = 0; e < d; ++e) {
        double s = 0.5;
        for (int64_t j = 0; j < nk; ++j) s += static_cast<double>(p[j]) * kk[j * d + e];
        want_acc[e] = static_cast<float>(s);
      }
      k.accumulate(p.data(), kk.data(), nk, d, acc.data());
      for (int64_t e = 0; e < d; ++e) {
        double mag = 0.5;
        for (int64_t j = 0; j < nk; ++j) mag += std::fabs(static_cast<double>(p[j]) * kk[j * d + e]);
        if (std::fabs(acc[e] - want_acc[e]) > 1e-5 * mag) fail(where("accumulate", d, e, acc[e], want_acc[e]));
      }
      // Keys reversed in memory for the by-pointer kernels (pointers must be
      // followed); krev holds them in key order for the one-query kernels.
      // Queries see limits nk - 1, nk, nk - 2, ... (the largest not first in
      // a group of 3). Rows of out and p are ld = nk + 3 apart: the slots
      // past nk stay untouched.
      std::vector<float> krev(nk * d);
      for (int64_t j = 0; j < nk; ++j) {
        std::copy(kk.begin() + (nk - 1 - j) * d, kk.begin() + (nk - j) * d, krev.begin() + j * d);
      }
      std::vector<const float*> frows(nk);
      for (int64_t j = 0; j < nk; ++j) frows[j] = krev.data() + j * d;
      const int64_t ld = nk + 3;
      struct Queries {
        std::vector<std::vector<float>> rows;
        std::vector<const float*> ptr;
        std::vector<int64_t> lim;
      };
      auto make_queries = [&](int nq) {
        Queries qs{std::vector<std::vector<float>>(nq, std::vector<float>(d)), std::vector<const float*>(nq),
                   std::vector<int64_t>(nq)};
        for (int i = 0; i < nq; ++i) {
          fill(qs.rows[i], 1.0f);
          qs.ptr[i] = qs.rows[i].data();
          qs.lim[i] = std::max<int64_t>(0, nk - ((i * 5 + 1) % 3));
        }
        return qs;
      };
      // Each query's scores (out, rows ld apart) bit for bit against the
      // one-query kernel, and nothing written past the keys.
      auto check_scores = [&](const std::string& what, const Queries& qs, const std::vector<float>& out) {
        std::vector<float> ref(nk);
        for (size_t i = 0; i < qs.ptr.size(); ++i) {
          k.dots(qs.ptr[i], krev.data(), qs.lim[i], d, 0.125f, ref.data());
          if (std::memcmp(out.data() + i * ld, ref.data(), qs.lim[i] * sizeof(float)) != 0) {
            fail(where((what + " vs dots (d, query)").c_str(), d, i, out[i * ld], ref[0]));
          }
          for (int64_t j = nk; j < ld; ++j) {
            if (out[i * ld + j] != -1.0f) fail(where((what + " wrote past the keys (d, query)").c_str(), d, i, out[i * ld + j], -1));
          }
        }
      };
      if (k.dots_f32_rows) {
        // Float rows by pointer, any d.
        for (int nq : {1, 4, 11}) {
          const Queries qs = make_queries(nq);
          std::vector<float> out(nq * ld, -1.0f);
          k.dots_f32_rows(qs.ptr.data(), nq, frows.data(), qs.lim.data(), d, 0.125f, out.data(), ld);
          check_scores("dots_f32_rows", qs, out);
        }
      }
      if (k.dots_f16 && k.accumulate_f16 && d % 16 == 0) {
        // 1, 2, 5, 7, 11, 13 and 48 queries (the AVX2 set's scores run in
        // groups of 3, its value sums in groups of one to four up to 8
        // queries and in groups of 3 past that: a 16-token chunk of a
        // 3-heads-per-kv-head model is 48), F16 rows by pointer, bit for bit
        // against the float-row kernels over the converted rows.
        std::vector<const uint16_t*> rows(nk);
        for (int64_t j = 0; j < nk; ++j) rows[j] = kh.data() + (nk - 1 - j) * d;
        for (int nq : {1, 2, 5, 7, 11, 13, 48}) {
          const Queries qs = make_queries(nq);
          std::vector<float> out(nq * ld, -1.0f);
          k.dots_f16(qs.ptr.data(), nq, rows.data(), qs.lim.data(), d, 0.125f, out.data(), ld);
          check_scores("dots_f16", qs, out);
          if (k.dots_f32_rows) {
            // The float rows of the same keys: the same bits.
            std::vector<float> out32(nq * ld, -1.0f);
            k.dots_f32_rows(qs.ptr.data(), nq, frows.data(), qs.lim.data(), d, 0.125f, out32.data(), ld);
            check_scores("dots_f32_rows over F16 keys", qs, out32);
          }
          std::vector<float> p2(nq * ld);
          fill(p2, 0.5f);
          std::vector<float> a2(nq * d, 0.25f);
          k.accumulate_f16(p2.data(), ld, nq, rows.data(), qs.lim.data(), d, a2.data());
          for (int i = 0; i < nq; ++i) {
            std::vector<float> ra(d, 0.25f);
            k.accumulate(p2.data() + i * ld, krev.data(), qs.lim[i], d, ra.data());
            if (std::memcmp(a2.data() + i * d, ra.data(), d * sizeof(float)) != 0) {
              fail(where("accumulate_f16 vs accumulate (d, query)", d, i, a2[i * d], ra[0]));
            }
          }
        }
      }
      ++r.cases;
    }
  }

  // Softmax exponentials: scores up to m, a few far below (exp -> 0).
  for (int64_t n : {1, 15, 16, 100, 257}) {
    std::vector<float> sc(n);
    std::uniform_real_distribution<float> u(-30.0f, 0.0f);
    for (auto& x : sc) x = u(rng) + 2.0f;
    if (n > 3) sc[1] = -200.0f, sc[2] = 2.0f - 87.0f;
    const std::vector<float> in = sc;
    const float m = 2.0f;
    const float sum = k.softmax_exp(sc.data(), n, m);
    double want_sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double x = static_cast<double>(in[i]) - m;
      const double want = x < -87.3 ? 0.0 : std::exp(static_cast<double>(in[i] - m));
      want_sum += sc[i];
      if (std::fabs(sc[i] - want) > 4e-7 * want) fail(where("softmax_exp", n, i, sc[i], want));
    }
    if (std::fabs(sum - want_sum) > 1e-6 * want_sum) fail(where("softmax_exp sum", n, 0, sum, want_sum));
    ++r.cases;
  }

  // SwiGLU, with extremes of the gate.
  for (int64_t n : {1, 9, 64, 1000}) {
    std::vector<float> g(n), u(n), out(n);
    fill(g, 3.0f);
    fill(u, 1.0f);
    if (n >= 9) g[0] = -200.0f, g[1] = -89.0f, g[2] = -88.0f, g[3] = 88.0f, g[4] = 200.0f, g[5] = 0.0f, g[6] = -0.0f;
    k.swiglu(g.data(), u.data(), n, out.data());
    for (int64_t i = 0; i < n; ++i) {
      const double gd = g[i];
      const double want = gd / (1.0 + std::exp(-gd)) * u[i];
      if (!(std::fabs(out[i] - want) <= 1e-6 * std::fabs(want) + 1e-7)) fail(where("swiglu", n, i, out[i], want));
    }
    ++r.cases;
  }
  return r;
}

}  // namespace suanli::cpu
