// The sampler's full-vocabulary weights (sampler_weights.h), compiled for
// every Highway target and picked at run time. With the OpenAI API's
// default parameters (temperature 1, top_p 1) a draw needs exp of every
// logit: ~49k for the default model, ~0.2 ms per token with the C library's
// scalar expf, ~10x less vectorized.

// Re-included once per target by foreach_target.h (path from src/).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/sampler_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/hwy_exp-inl.h"
#include "engine/sampler_weights.h"

HWY_BEFORE_NAMESPACE();
namespace suanli::sampling {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

double ExpWeights(const float* l, int64_t n, float max, float inv_t, float floor, float* w, float* block_sum) {
  const hn::CappedTag<float, 16> df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const auto vmax = hn::Set(df, max), vinv = hn::Set(df, inv_t), vfloor = hn::Set(df, floor);
  const auto inf = hn::Set(df, std::numeric_limits<float>::infinity());
  auto weights = [&](hn::Vec<decltype(df)> x) HWY_ATTR {
    const auto rel = hn::Sub(x, vmax);
    const auto keep = hn::And(hn::And(hn::Lt(x, inf), hn::Gt(x, hn::Neg(inf))), hn::Ge(rel, vfloor));
    return hn::IfThenElseZero(keep, suanli::HWY_NAMESPACE::exp_v(df, hn::Mul(rel, vinv)));
  };
  double total = 0;
  for (int64_t b0 = 0; b0 < n; b0 += kWeightBlock) {
    const int64_t b1 = std::min(n, b0 + kWeightBlock);
    auto acc = hn::Zero(df);
    int64_t i = b0;
    for (; i + lanes <= b1; i += lanes) {
      const auto e = weights(hn::LoadU(df, l + i));
      hn::StoreU(e, df, w + i);
      acc = hn::Add(acc, e);
    }
    float s = hn::GetLane(hn::SumOfLanes(df, acc));
    for (; i < b1; ++i) {  // the short last block's tail, one lane at a time
      const auto e = weights(hn::Set(df, l[i]));
      w[i] = hn::GetLane(e);
      s += w[i];
    }
    block_sum[b0 / kWeightBlock] = s;
    total += s;
  }
  return total;
}

}  // namespace HWY_NAMESPACE
}  // namespace suanli::sampling
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace suanli::sampling {
HWY_EXPORT(ExpWeights);

double exp_weights(const float* l, int64_t n, float max, float inv_t, float floor, float* w, float* block_sum) {
  return HWY_DYNAMIC_DISPATCH(ExpWeights)(l, n, max, inv_t, floor, w, block_sum);
}

int64_t pick_weighted(const float* w, const float* block_sum, int64_t n, double r) {
  const int64_t nb = (n + kWeightBlock - 1) / kWeightBlock;
  double acc = 0;
  int64_t b = 0;
  for (; b < nb; ++b) {
    if (r < acc + block_sum[b]) break;
    acc += block_sum[b];
  }
  if (b == nb) {  // rounding: r at the very end
    for (int64_t i = n - 1; i >= 0; --i) {
      if (w[i] > 0) return i;
    }
    return 0;
  }
  const int64_t end = std::min(n, (b + 1) * kWeightBlock);
  int64_t last = -1;
  for (int64_t i = b * kWeightBlock; i < end; ++i) {
    if (w[i] <= 0) continue;
    acc += w[i];
    last = i;
    if (r < acc) return i;
  }
  return last;  // the block's float sum rounded above its running double sum
}

}  // namespace suanli::sampling
#endif
