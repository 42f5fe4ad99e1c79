// exp(x) on Highway vectors of float, for every target a file is compiled
// for (per-target include guard, the Highway -inl.h convention). Used by the
// CPU device's softmax and SwiGLU (devices/cpu/ops_hwy.cc) and by the
// sampler's weights (engine/sampler_hwy.cc).
//
// x = n ln2 + r, a degree-6 polynomial in r, times 2^n built from exponent
// bits (two factors, so n up to 129 stays exact); 0 below -87.3, inf above
// 88.7; relative error ~2e-7. The same operations on every target; MulAdd
// is fused on targets with FMA (all but SSSE3 / SSE4 / EMU128).
#if defined(SUANLI_CORE_HWY_EXP_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef SUANLI_CORE_HWY_EXP_INL_H_
#undef SUANLI_CORE_HWY_EXP_INL_H_
#else
#define SUANLI_CORE_HWY_EXP_INL_H_
#endif

#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace suanli::HWY_NAMESPACE {

template <class D>
HWY_INLINE hwy::HWY_NAMESPACE::Vec<D> exp_v(D df, hwy::HWY_NAMESPACE::Vec<D> x) {
  namespace hn = hwy::HWY_NAMESPACE;
  const hn::RebindToSigned<D> di;
  const auto zero_below = hn::Lt(x, hn::Set(df, -87.3f));
  x = hn::Min(x, hn::Set(df, 88.8f));
  const auto n = hn::Round(hn::Mul(x, hn::Set(df, 1.44269504088896341f)));
  auto r = hn::NegMulAdd(n, hn::Set(df, 0.693359375f), x);
  r = hn::NegMulAdd(n, hn::Set(df, -2.12194440e-4f), r);
  auto p = hn::Set(df, 1.9875691500e-4f);
  p = hn::MulAdd(p, r, hn::Set(df, 1.3981999507e-3f));
  p = hn::MulAdd(p, r, hn::Set(df, 8.3334519073e-3f));
  p = hn::MulAdd(p, r, hn::Set(df, 4.1665795894e-2f));
  p = hn::MulAdd(p, r, hn::Set(df, 1.6666665459e-1f));
  p = hn::MulAdd(p, r, hn::Set(df, 5.0000001201e-1f));
  p = hn::MulAdd(hn::Mul(p, r), r, hn::Add(r, hn::Set(df, 1.0f)));
  // 2^n as 2^e1 * 2^e2, each a normal float for n in [-126, 129].
  const auto ni = hn::ConvertTo(di, hn::Max(n, hn::Set(df, -126.0f)));
  const auto e1 = hn::ShiftRight<1>(ni);
  const auto e2 = hn::Sub(ni, e1);
  const auto bias = hn::Set(di, 127);
  const auto f1 = hn::BitCast(df, hn::ShiftLeft<23>(hn::Add(e1, bias)));
  const auto f2 = hn::BitCast(df, hn::ShiftLeft<23>(hn::Add(e2, bias)));
  return hn::IfThenZeroElse(zero_below, hn::Mul(hn::Mul(p, f1), f2));
}

}  // namespace suanli::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
