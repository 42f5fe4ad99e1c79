// The sampler's vectorized pass over a full row of logits (sampler_hwy.cc).
#pragma once

#include <cstdint>

namespace suanli::sampling {

constexpr int64_t kWeightBlock = 64;

// For every i < n: w[i] = exp((l[i] - max) * inv_t) when l[i] is finite
// and l[i] - max >= floor (floor = -inf keeps every finite logit), else 0.
// block_sum[b] = the float sum of w over block b (kWeightBlock elements;
// the last one may be short). Returns the sum of the block sums, in block
// order, in double. Exp to ~2e-7 relative (core/hwy_exp-inl.h); the same
// results for the same inputs on a given machine, whichever thread runs it.
double exp_weights(const float* l, int64_t n, float max, float inv_t, float floor, float* w, float* block_sum);

// The first i whose running sum of w (in double, block sums first) exceeds
// r, for 0 <= r < the total exp_weights returned; the last nonzero weight if
// rounding leaves r past the end.
int64_t pick_weighted(const float* w, const float* block_sum, int64_t n, double r);

}  // namespace suanli::sampling
