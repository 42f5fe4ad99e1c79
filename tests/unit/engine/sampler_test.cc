// The sampler against an independent reference: the distribution it draws
// from, computed here the plain way (every candidate sorted, probabilities
// in double), for top_k / top_p / min_p / temperature in combination, on
// fresh random logits. Frequencies over many draws must match it within a
// few standard errors, and tokens the chain cuts must never be drawn.
// Also: greedy picks the first largest finite logit; a seed reproduces a
// run; non-finite logits are never drawn.
#include "suanli/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

namespace suanli {
namespace {

// The distribution over token ids that one draw follows (0 for cut tokens).
std::vector<double> reference(const std::vector<float>& logits, const SamplingParams& p) {
  const int n = static_cast<int>(logits.size());
  std::vector<int> ids;
  for (int i = 0; i < n; ++i) {
    if (std::isfinite(logits[i])) ids.push_back(i);
  }
  std::sort(ids.begin(), ids.end(), [&](int a, int b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < ids.size()) ids.resize(p.top_k);
  const double max_l = logits[ids[0]];
  double sum = 0;
  for (int i : ids) sum += std::exp(logits[i] - max_l);
  if (p.top_p < 1) {
    double cum = 0;
    size_t keep = ids.size();
    for (size_t j = 0; j < ids.size(); ++j) {
      cum += std::exp(logits[ids[j]] - max_l) / sum;
      if (cum >= p.top_p) {
        keep = j + 1;
        break;
      }
    }
    ids.resize(keep);
  }
  if (p.min_p > 0) {
    std::vector<int> kept;
    for (int i : ids) {
      if (std::exp(logits[i] - max_l) >= p.min_p || i == ids[0]) kept.push_back(i);
    }
    ids = kept;
  }
  std::vector<double> dist(static_cast<size_t>(n), 0.0);
  double total = 0;
  for (int i : ids) total += dist[i] = std::exp((logits[i] - max_l) / p.temperature);
  for (double& d : dist) d /= total;
  return dist;
}

SamplingParams params(float temperature, int top_k, float top_p, float min_p, uint64_t seed) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  p.seed = seed;
  return p;
}

// How often each token comes out of `draws` draws of one sampler.
std::vector<int> draw_counts(const std::vector<float>& logits, const SamplingParams& p, int draws) {
  const int n = static_cast<int>(logits.size());
  Sampler s(p, n);
  std::vector<int> count(static_cast<size_t>(n), 0);
  std::vector<float> scratch;
  for (int d = 0; d < draws; ++d) {
    scratch = logits;  // sample() uses its input as scratch
    const int32_t t = s.sample(scratch.data());
    EXPECT_TRUE(t >= 0 && t < n) << t;
    if (t >= 0 && t < n) count[static_cast<size_t>(t)]++;
  }
  return count;
}

// n logits drawn from N(0, sd^2).
std::vector<float> normal_logits(std::mt19937& rng, int n, float sd) {
  std::vector<float> logits(static_cast<size_t>(n));
  std::normal_distribution<float> nd(0.0f, sd);
  for (float& l : logits) l = nd(rng);
  return logits;
}

// Draws `draws` tokens from `logits` with p and checks each token's
// frequency against `want` (within 5 standard errors); cut tokens never come.
void expect_follows(const std::vector<float>& logits, const SamplingParams& p, const std::vector<double>& want,
                    int draws) {
  const std::vector<int> count = draw_counts(logits, p, draws);
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i] == 0) {
      EXPECT_EQ(count[i], 0) << "token " << i << " was cut by the chain but drawn";
      continue;
    }
    const double f = static_cast<double>(count[i]) / draws;
    const double se = std::sqrt(want[i] * (1 - want[i]) / draws);
    EXPECT_NEAR(f, want[i], 5 * se + 1e-4) << "token " << i;
  }
}

TEST(Sampler, draws_follow_the_reference_distribution) {
  std::mt19937 rng(std::random_device{}());
  const uint32_t seed = rng();
  SCOPED_TRACE("seed " + std::to_string(seed));
  rng.seed(seed);
  struct Case {
    float temperature;
    int top_k;
    float top_p;
    float min_p;
  };
  const Case cases[] = {
      {1.0f, 0, 1.0f, 0.0f},     // the OpenAI API's defaults: no cut
      {0.8f, 40, 0.95f, 0.05f},  // suanli's defaults
      {0.7f, 0, 0.9f, 0.0f},     {1.3f, 10, 1.0f, 0.0f}, {1.0f, 0, 1.0f, 0.1f},
      {0.5f, 0, 0.5f, 0.02f},    {2.0f, 3, 0.99f, 0.0f}, {1.0f, 200, 0.8f, 0.0f},
  };
  for (const Case& c : cases) {
    const int n = 120;
    std::vector<float> logits = normal_logits(rng, n, 2.0f);
    logits[7] = logits[8];  // a tie
    if ((&c - cases) % 2 == 1) {
      // Every other case on a grid of 0.5: ties everywhere, also at the
      // top_k / top_p cuts (lower ids first) and inside top_p's buckets.
      for (float& l : logits) l = std::round(l * 2.0f) / 2.0f;
    }
    logits[11] = -std::numeric_limits<float>::infinity();
    logits[12] = std::numeric_limits<float>::quiet_NaN();
    const SamplingParams p = params(c.temperature, c.top_k, c.top_p, c.min_p, rng());
    SCOPED_TRACE("T=" + std::to_string(c.temperature) + " top_k=" + std::to_string(c.top_k) +
                 " top_p=" + std::to_string(c.top_p) + " min_p=" + std::to_string(c.min_p));
    expect_follows(logits, p, reference(logits, p), 60000);
  }
}

TEST(Sampler, a_large_vocabulary_without_cuts_matches_the_softmax) {
  // The default model's vocabulary size, the OpenAI defaults (the path that
  // used to sort every token): the most likely tokens' frequencies.
  std::mt19937 rng(std::random_device{}());
  const uint32_t seed = rng();
  SCOPED_TRACE("seed " + std::to_string(seed));
  rng.seed(seed);
  const int n = 49152;
  std::vector<float> logits = normal_logits(rng, n, 1.0f);
  for (int i = 0; i < 5; ++i) logits[static_cast<size_t>(rng() % n)] = 9.0f + static_cast<float>(i);
  // No cut (the vectorized id-order pass), min_p alone (its floor in that
  // pass), and top_p over the whole vocabulary (its vectorized sum).
  for (const SamplingParams& p : {params(1.0f, 0, 1.0f, 0.0f, rng()), params(0.9f, 0, 1.0f, 0.001f, rng()),
                                  params(1.1f, 0, 0.97f, 0.0f, rng())}) {
    SCOPED_TRACE("T=" + std::to_string(p.temperature) + " top_p=" + std::to_string(p.top_p) +
                 " min_p=" + std::to_string(p.min_p));
    const std::vector<double> want = reference(logits, p);
    const int draws = 5000;
    const std::vector<int> count = draw_counts(logits, p, draws);
    std::vector<int> top(n);
    std::iota(top.begin(), top.end(), 0);
    std::partial_sort(top.begin(), top.begin() + 5, top.end(), [&](int a, int b) { return want[a] > want[b]; });
    for (int j = 0; j < 5; ++j) {
      const int i = top[j];
      const double f = static_cast<double>(count[i]) / draws;
      EXPECT_NEAR(f, want[i], 5 * std::sqrt(want[i] * (1 - want[i]) / draws) + 1e-4) << "token " << i;
    }
    // The rest together: the tail's mass, drawn id by id.
    double tail_want = 0;
    int tail_count = draws;
    for (int i = 0; i < n; ++i) {
      if (count[i] > 0 && want[i] == 0) ADD_FAILURE() << "token " << i << " was cut but drawn";
    }
    for (int j = 5; j < n; ++j) tail_want += want[top[j]];
    for (int j = 0; j < 5; ++j) tail_count -= count[top[j]];
    const double tf = static_cast<double>(tail_count) / draws;
    EXPECT_NEAR(tf, tail_want, 5 * std::sqrt(tail_want * (1 - tail_want) / draws) + 1e-4);
  }
}

TEST(Sampler, a_temperature_too_small_to_invert_is_greedy) {
  // 1 / 1e-39 overflows float: weights would be inf * 0 = NaN. Every cut
  // must still give the argmax, as temperature -> 0 does.
  std::mt19937 rng(std::random_device{}());
  std::vector<float> logits = normal_logits(rng, 2000, 1.0f);
  logits[1000] = 10.0f;
  for (const SamplingParams& p : {params(1e-39f, 40, 1.0f, 0.0f, 1), params(1e-39f, 0, 0.9f, 0.0f, 2),
                                  params(1e-39f, 500, 0.9f, 0.0f, 3), params(1e-39f, 0, 1.0f, 0.0f, 4)}) {
    EXPECT_EQ(draw_counts(logits, p, 20)[1000], 20) << "top_k " << p.top_k << " top_p " << p.top_p;
  }
}

TEST(Sampler, min_p_cuts_the_same_tokens_with_and_without_other_cuts) {
  // p1 / p0 = exp(float(log 0.1)) = 0.099999997 < min_p = 0.1: token 1 is
  // cut by the chain's rule (logit - max >= log min_p, in double), whether
  // the draw takes the vectorized no-cut path (top_k 0) or the candidate
  // path (top_k 3).
  const std::vector<float> logits = {0.0f, static_cast<float>(std::log(0.1)), -50.0f, -50.0f};
  for (int top_k : {0, 3}) {
    const std::vector<int> count = draw_counts(logits, params(1.0f, top_k, 1.0f, 0.1f, 9), 20000);
    EXPECT_EQ(count[1], 0) << "top_k " << top_k;
    EXPECT_EQ(count[0], 20000) << "top_k " << top_k;
  }
}

TEST(Sampler, logit_bias_shifts_the_logits_before_every_cut) {
  // Fresh random logits and biases: the draws follow the reference chain
  // over logits + bias, with and without cuts; a -100 bias bans the argmax
  // under greedy and a +100 bias forces a token under sampling.
  std::mt19937 rng(std::random_device{}());
  const uint32_t seed = rng();
  SCOPED_TRACE("seed " + std::to_string(seed));
  rng.seed(seed);
  const int n = 90;
  std::vector<float> logits = normal_logits(rng, n, 2.0f);
  std::uniform_real_distribution<float> ub(-5.0f, 5.0f);
  std::vector<std::pair<int32_t, float>> bias;
  for (int i = 0; i < n; i += 7) bias.emplace_back(i, ub(rng));
  std::vector<float> biased = logits;
  for (const auto& [id, b] : bias) biased[id] += b;
  for (const SamplingParams& base : {params(1.0f, 0, 1.0f, 0.0f, 0), params(0.8f, 20, 0.9f, 0.02f, 0)}) {
    SamplingParams p = base;
    p.seed = rng();
    p.logit_bias = bias;
    ASSERT_TRUE(p.validate().ok());
    expect_follows(logits, p, reference(biased, p), 60000);
  }
  const int32_t top = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  SamplingParams g = SamplingParams::greedy();
  g.logit_bias = {{top, -100.0f}};
  std::vector<float> rest = logits;
  rest[top] = -std::numeric_limits<float>::infinity();
  const int32_t second = static_cast<int32_t>(std::max_element(rest.begin(), rest.end()) - rest.begin());
  EXPECT_EQ(draw_counts(logits, g, 1)[second], 1);
  const int32_t low = static_cast<int32_t>(std::min_element(logits.begin(), logits.end()) - logits.begin());
  SamplingParams force = params(1.0f, 40, 0.95f, 0.05f, 3);
  force.logit_bias = {{low, 100.0f}};
  EXPECT_EQ(draw_counts(logits, force, 200)[low], 200);
  // Out-of-range biases are invalid.
  SamplingParams bad = SamplingParams::greedy();
  bad.logit_bias = {{3, 101.0f}};
  EXPECT_FALSE(bad.validate().ok());
  bad.logit_bias = {{-1, 1.0f}};
  EXPECT_FALSE(bad.validate().ok());
  bad.logit_bias = {{3, std::numeric_limits<float>::quiet_NaN()}};
  EXPECT_FALSE(bad.validate().ok());
}

TEST(Sampler, greedy_takes_the_first_largest_finite_logit) {
  Sampler s(SamplingParams::greedy(), 6);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> l = {1.0f, 3.0f, nan, 3.0f, inf, -inf};
  EXPECT_EQ(s.sample(l.data()), 1);
  l = {nan, -inf, -2.0f, -2.0f, nan, -inf};
  EXPECT_EQ(s.sample(l.data()), 2);
  l = {nan, -inf, nan, -inf, nan, -inf};
  EXPECT_EQ(s.sample(l.data()), -1);  // nothing finite: nothing drawn (token 0 was drawn once)
  Sampler hot(params(0.8f, 0, 1.0f, 0.0f, 1), 6);
  EXPECT_EQ(hot.sample(l.data()), -1);
  // Longer than the vectorized lanes, the maximum in the tail.
  std::vector<float> big(37, 0.5f);
  big[35] = 2.0f;
  big[36] = 2.0f;
  Sampler s2(SamplingParams::greedy(), 37);
  EXPECT_EQ(s2.sample(big.data()), 35);
}

TEST(Sampler, a_seed_reproduces_the_draws_and_non_finite_logits_are_never_drawn) {
  const int n = 300;
  std::vector<float> logits(n);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 0.3f);
  for (float& l : logits) l = nd(rng);
  for (int i = 0; i < n; i += 3) logits[i] = i % 2 ? std::numeric_limits<float>::quiet_NaN()
                                                     : -std::numeric_limits<float>::infinity();
  for (float top_p : {1.0f, 0.9f}) {
    const SamplingParams p = params(1.0f, 0, top_p, 0.0f, 99);
    Sampler a(p, n), b(p, n);
    std::vector<float> x, y;
    for (int d = 0; d < 500; ++d) {
      x = logits;
      y = logits;
      const int32_t ta = a.sample(x.data()), tb = b.sample(y.data());
      ASSERT_EQ(ta, tb);
      ASSERT_NE(ta % 3, 0) << "a non-finite logit was drawn";
    }
  }
}

TEST(Sampler, all_finite_finds_any_nan_or_infinity) {
  std::mt19937 rng(std::random_device{}());
  for (int n : {1, 15, 16, 17, 300, 49152}) {
    std::vector<float> l(n);
    std::normal_distribution<float> nd(0.0f, 30.0f);
    for (float& x : l) x = nd(rng);
    EXPECT_TRUE(Sampler::all_finite(l.data(), n)) << n;
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                      -std::numeric_limits<float>::infinity()}) {
      const int at = static_cast<int>(rng() % n);
      const float keep = l[at];
      l[at] = bad;
      EXPECT_FALSE(Sampler::all_finite(l.data(), n)) << n << " " << at << " " << bad;
      l[at] = keep;
    }
    l[n - 1] = std::numeric_limits<float>::max();  // large but finite
    EXPECT_TRUE(Sampler::all_finite(l.data(), n));
  }
}

}  // namespace
}  // namespace suanli
