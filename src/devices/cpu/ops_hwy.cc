// The Highway row kernels (row_kernels.h): attention's dot products and
// weighted sums, softmax's exponentials and SwiGLU, written once and
// compiled for every target Highway knows on this architecture (x86: SSSE3
// up to AVX-512; Arm: NEON, SVE, SVE2; RISC-V: RVV where the compiler has
// it), picked at run time by HWY_DYNAMIC_DISPATCH. ops.cc uses them when
// the "hwy" kernel set is selected, which is the default off x86; on x86
// the hand-written AVX-512 ones stay first (they reduce four keys per
// shuffle tree and keep accumulators in registers across keys).
//
// Arithmetic, per kernel set fixed and independent of batch and threads:
// - dot products: lane l of 16 float lanes (16 / N vectors of N lanes)
//   takes elements e = l (mod 16) in order by fused multiply-add, then the
//   tree l += l+8, +4, +2, +1, then the scale; the F16 variant converts
//   each row exactly and does the same, so it is bit-identical to converting
//   first (attention relies on that);
// - accumulate: one multiply-add per element per key, in key order;
// - exp: core/hwy_exp-inl.h (a degree-6 polynomial times 2^n; relative
//   error ~2e-7);
// - softmax sums: 16 lane partial sums (lane = i mod 16), then the tree.
// MulAdd is fused on targets with FMA (all but SSSE3 / SSE4 / EMU128).

// Re-included once per target by foreach_target.h (path from src/).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "devices/cpu/ops_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/hwy_exp-inl.h"
#include "core/quant/quant.h"
#include "devices/cpu/row_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace suanli::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Up to 16 float lanes; 4 on NEON / SSE4 / 128-bit SVE, 8 on AVX2, 16 on
// AVX-512 and wider SVE / RVV; 1 on HWY_SCALAR.
using DF = hn::CappedTag<float, 16>;

HWY_INLINE hn::Vec<DF> load_row(DF df, const float* p) { return hn::LoadU(df, p); }
HWY_INLINE hn::Vec<DF> load_row(DF df, const uint16_t* p) {
  const hn::Rebind<hwy::float16_t, DF> dh;
  return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
}

// One element, for tails (a vector load there could read past the row).
HWY_INLINE float at(const float* p) { return *p; }
HWY_INLINE float at(const uint16_t* p) { return quant::fp16_to_fp32(*p); }

// The tree over 16 partial sums (l += l+8, +4, +2, +1).
HWY_INLINE float tree16(float* part) {
  for (int w = 8; w > 0; w /= 2) {
    for (int l = 0; l < w; ++l) part[l] += part[l + w];
  }
  return part[0];
}

// dot(q, k[0..d)) * scale with the 16-lane order above; T is float or an
// F16 bit pattern. Elements past the last multiple of 16 (float rows only)
// go to their lane by a scalar multiply-add.
template <typename T>
HWY_INLINE float dot16(const float* q, const T* k, int64_t d, float scale) {
  const DF df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  alignas(64) float part[16] = {};
  const int64_t d16 = d / 16 * 16;
  if (n >= 4) {
    // 16 / n vectors (1, 2 or 4): vector c holds lanes c n .. c n + n - 1.
    auto a0 = hn::Zero(df), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t e = 0; e < d16; e += 16) {
      a0 = hn::MulAdd(hn::LoadU(df, q + e), load_row(df, k + e), a0);
      if (n < 16) a1 = hn::MulAdd(hn::LoadU(df, q + e + n), load_row(df, k + e + n), a1);
      if (n < 8) {
        a2 = hn::MulAdd(hn::LoadU(df, q + e + 2 * n), load_row(df, k + e + 2 * n), a2);
        a3 = hn::MulAdd(hn::LoadU(df, q + e + 3 * n), load_row(df, k + e + 3 * n), a3);
      }
    }
    hn::Store(a0, df, part);
    if (n < 16) hn::Store(a1, df, part + n);
    if (n < 8) {
      hn::Store(a2, df, part + 2 * n);
      hn::Store(a3, df, part + 3 * n);
    }
  } else {
    for (int64_t e = 0; e < d16; ++e) {
      part[e % 16] = std::fma(q[e], at(k + e), part[e % 16]);
    }
  }
  for (int64_t e = d16; e < d; ++e) part[e % 16] = std::fma(q[e], at(k + e), part[e % 16]);
  return tree16(part) * scale;
}

// acc[0..d) += p * v[0..d), one multiply-add per element.
template <typename T>
HWY_INLINE void axpy(float p, const T* v, int64_t d, float* acc) {
  const DF df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  const auto vp = hn::Set(df, p);
  int64_t e = 0;
  for (; e + n <= d; e += n) hn::StoreU(hn::MulAdd(vp, load_row(df, v + e), hn::LoadU(df, acc + e)), df, acc + e);
  for (; e < d; ++e) acc[e] = std::fma(p, at(v + e), acc[e]);
}

HWY_INLINE hn::Vec<DF> exp_v(hn::Vec<DF> x) { return suanli::HWY_NAMESPACE::exp_v(DF(), x); }

void F16ToF32(const uint16_t* src, float* dst, int64_t n) {
  const DF df;
  const int64_t w = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + w <= n; i += w) hn::StoreU(load_row(df, src + i), df, dst + i);
  for (; i < n; ++i) dst[i] = at(src + i);
}

void Dots(const float* q, const float* k, int64_t nk, int64_t d, float scale, float* out) {
  for (int64_t r = 0; r < nk; ++r) out[r] = dot16(q, k + r * d, d, scale);
}

void Accumulate(const float* p, const float* v, int64_t nk, int64_t d, float* acc) {
  for (int64_t r = 0; r < nk; ++r) axpy(p[r], v + r * d, d, acc);
}

void DotsF16(const float* const* q, int nq, const uint16_t* const* k, const int64_t* lim, int64_t d, float scale,
             float* out, int64_t ldo) {
  for (int i = 0; i < nq; ++i) {
    for (int64_t r = 0; r < lim[i]; ++r) out[i * ldo + r] = dot16(q[i], k[r], d, scale);
  }
}

void AccumulateF16(const float* p, int64_t ldp, int nq, const uint16_t* const* v, const int64_t* lim, int64_t d,
                   float* acc) {
  for (int i = 0; i < nq; ++i) {
    for (int64_t r = 0; r < lim[i]; ++r) axpy(p[i * ldp + r], v[r], d, acc + i * d);
  }
}

// Runs f on whole vectors of x, then on the tail padded with `pad` (so the
// tail takes the same vector arithmetic); returns how many lanes a vector has.
template <class F>
HWY_INLINE void for_vectors(int64_t n, float pad, float* x, const float* y, float* out, F f) {
  const DF df;
  const int64_t w = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + w <= n; i += w) f(i, hn::LoadU(df, x + i), y ? hn::LoadU(df, y + i) : hn::Zero(df), out + i);
  if (i < n) {
    alignas(64) float xt[16], yt[16], ot[16];
    std::fill(xt, xt + w, pad);
    std::fill(yt, yt + w, 0.0f);
    std::copy(x + i, x + n, xt);
    if (y) std::copy(y + i, y + n, yt);
    f(i, hn::Load(df, xt), hn::Load(df, yt), ot);
    std::copy(ot, ot + (n - i), out + i);
  }
}

float SoftmaxExp(float* sc, int64_t n, float m) {
  const DF df;
  alignas(64) float part[16] = {};
  const auto vm = hn::Set(df, m);
  // Lane (i mod 16) of the partial sums: vectors at i take lanes i % 16.
  for_vectors(n, -INFINITY, sc, nullptr, sc, [&](int64_t i, hn::Vec<DF> x, hn::Vec<DF>, float* o) HWY_ATTR {
    const auto e = exp_v(hn::Sub(x, vm));
    hn::StoreU(e, df, o);
    float* ps = part + i % 16;
    hn::StoreU(hn::Add(hn::LoadU(df, ps), e), df, ps);
  });
  return tree16(part);
}

void Swiglu(const float* gate, const float* up, int64_t n, float* out) {
  const DF df;
  const auto one = hn::Set(df, 1.0f);
  for_vectors(n, 0.0f, const_cast<float*>(gate), up, out, [&](int64_t, hn::Vec<DF> g, hn::Vec<DF> u, float* o) HWY_ATTR {
    const auto e = exp_v(hn::Neg(g));
    hn::StoreU(hn::Mul(hn::Div(g, hn::Add(one, e)), u), df, o);
  });
}

const char* Target() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace suanli::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace suanli::cpu {
HWY_EXPORT(F16ToF32);
HWY_EXPORT(Dots);
HWY_EXPORT(Accumulate);
HWY_EXPORT(DotsF16);
HWY_EXPORT(AccumulateF16);
HWY_EXPORT(SoftmaxExp);
HWY_EXPORT(Swiglu);

namespace {
void f16_to_f32_hwy(const uint16_t* src, float* dst, int64_t n) { HWY_DYNAMIC_DISPATCH(F16ToF32)(src, dst, n); }
void dots_hwy(const float* q, const float* k, int64_t nk, int64_t d, float scale, float* out) {
  HWY_DYNAMIC_DISPATCH(Dots)(q, k, nk, d, scale, out);
}
void accumulate_hwy(const float* p, const float* v, int64_t nk, int64_t d, float* acc) {
  HWY_DYNAMIC_DISPATCH(Accumulate)(p, v, nk, d, acc);
}
void dots_f16_hwy(const float* const* q, int nq, const uint16_t* const* k, const int64_t* lim, int64_t d,
                  float scale, float* out, int64_t ldo) {
  HWY_DYNAMIC_DISPATCH(DotsF16)(q, nq, k, lim, d, scale, out, ldo);
}
void accumulate_f16_hwy(const float* p, int64_t ldp, int nq, const uint16_t* const* v, const int64_t* lim, int64_t d,
                        float* acc) {
  HWY_DYNAMIC_DISPATCH(AccumulateF16)(p, ldp, nq, v, lim, d, acc);
}
float softmax_exp_hwy(float* sc, int64_t n, float m) { return HWY_DYNAMIC_DISPATCH(SoftmaxExp)(sc, n, m); }
void swiglu_hwy(const float* gate, const float* up, int64_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(Swiglu)(gate, up, n, out);
}
}  // namespace

RowKernels hwy_row_kernels(void (*f32_to_f16)(const float*, uint16_t*, int64_t)) {
  return RowKernels{f16_to_f32_hwy, f32_to_f16,      dots_hwy,        accumulate_hwy,
                    dots_f16_hwy,   accumulate_f16_hwy, softmax_exp_hwy, swiglu_hwy};
}

}  // namespace suanli::cpu
#endif  // HWY_ONCE
