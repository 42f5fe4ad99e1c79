#include "suanli/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/sampler_weights.h"

namespace suanli {

Status SamplingParams::validate() const {
  auto bad = [](const std::string& m) { return InvalidArgument(m); };
  if (!std::isfinite(temperature) || temperature < 0 || temperature > 100) return bad("temperature must be in [0, 100]");
  if (top_k < 0) return bad("top_k must be >= 0");
  if (!(top_p > 0 && top_p <= 1)) return bad("top_p must be in (0, 1]");
  if (!(min_p >= 0 && min_p <= 1)) return bad("min_p must be in [0, 1]");
  if (!(repetition_penalty > 0 && repetition_penalty <= 10)) return bad("repetition_penalty must be in (0, 10]");
  if (!(frequency_penalty >= -2 && frequency_penalty <= 2)) return bad("frequency_penalty must be in [-2, 2]");
  if (!(presence_penalty >= -2 && presence_penalty <= 2)) return bad("presence_penalty must be in [-2, 2]");
  if (penalty_last_n < -1) return bad("penalty_last_n must be >= -1");
  for (const auto& [tok, bias] : logit_bias) {
    if (tok < 0) return bad("logit_bias token ids must be >= 0");
    if (!(bias >= -100 && bias <= 100)) return bad("logit_bias values must be in [-100, 100]");
  }
  return Status::Ok();
}

SamplingParams SamplingParams::greedy() {
  SamplingParams p;
  p.temperature = 0;
  p.top_k = 0;
  p.top_p = 1;
  p.min_p = 0;
  return p;
}

Sampler::Sampler(const SamplingParams& params, int32_t n_vocab) : p_(params), n_vocab_(n_vocab), rng_(params.seed) {}

void Sampler::accept(int32_t token) { history_.push_back(token); }

void Sampler::apply_penalties(float* logits) const {
  // The bias first, as OpenAI, vLLM and llama.cpp apply it: a penalty then
  // acts on the biased logit.
  for (const auto& [tok, bias] : p_.logit_bias) {
    if (tok >= 0 && tok < n_vocab_) logits[tok] += bias;
  }
  if (p_.repetition_penalty == 1.0f && p_.frequency_penalty == 0.0f && p_.presence_penalty == 0.0f) return;
  size_t start = 0;
  if (p_.penalty_last_n >= 0 && history_.size() > static_cast<size_t>(p_.penalty_last_n)) {
    start = history_.size() - p_.penalty_last_n;
  }
  std::unordered_map<int32_t, int32_t> counts;
  for (size_t i = start; i < history_.size(); ++i) counts[history_[i]]++;
  for (const auto& [tok, n] : counts) {
    if (tok < 0 || tok >= n_vocab_) continue;
    float& l = logits[tok];
    if (p_.repetition_penalty != 1.0f) l = l > 0 ? l / p_.repetition_penalty : l * p_.repetition_penalty;
    l -= static_cast<float>(n) * p_.frequency_penalty + p_.presence_penalty;
  }
}

// sample() never sorts the whole vocabulary (49,152 tokens for the default
// model: a full sort cost 5.5 ms per token, twice a forward pass, with the
// OpenAI API's default parameters). Semantics, as llama.cpp's chain:
// candidates are the finite logits; top_k keeps the k largest (ties: lower
// id first); top_p keeps the shortest most-likely-first prefix whose
// probability (at temperature 1) reaches top_p; min_p keeps tokens at least
// min_p times as likely as the most likely one; then the temperature, and
// one draw. Candidates are ordered (logit descending) only as far as top_k /
// top_p need it; the draw walks them in that order, or by id where nothing
// needed an order.
namespace {

// x * 0 is 0 for every finite x and NaN for NaN and infinities; 16 lanes of
// sums keep the loop vectorizable.
bool finite_row(const float* l, int32_t n) {
  float lane[16] = {};
  int32_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int k = 0; k < 16; ++k) lane[k] += l[i + k] * 0.0f;
  }
  for (; i < n; ++i) lane[0] += l[i] * 0.0f;
  float s = 0.0f;
  for (int k = 0; k < 16; ++k) s += lane[k];
  return s == 0.0f;
}

float max_finite(const float* l, int32_t n) {
  // 16 independent lanes: vectorizable, and max is exact in any order.
  float lane[16];
  std::fill(lane, lane + 16, -std::numeric_limits<float>::infinity());
  int32_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int k = 0; k < 16; ++k) {
      const float x = l[i + k];
      lane[k] = (x > lane[k] && x < std::numeric_limits<float>::infinity()) ? x : lane[k];
    }
  }
  for (; i < n; ++i) {
    if (l[i] > lane[0] && l[i] < std::numeric_limits<float>::infinity()) lane[0] = l[i];
  }
  float m = lane[0];
  for (int k = 1; k < 16; ++k) m = std::max(m, lane[k]);
  return m;
}

using Cand = std::pair<float, int32_t>;
constexpr int32_t kSmallTopK = 256;          // top_k up to this: a heap over one scan
constexpr size_t kVectorizedCands = 1024;    // more candidates than this: weighed vectorized

// Most likely first; ties: lower id first.
bool by_logit(const Cand& a, const Cand& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); }

// The k best finite logits into `out`, sorted by_logit, for small k: one
// scan keeping a heap of the k best so far (its top the worst of them).
// Blocks of 16 whose largest logit is not above the heap's worst are
// skipped whole (nearly all of them once the heap fills); a later id with
// a logit equal to the worst loses the tie, so `>` is exact.
void top_k_small(const float* l, int32_t n, int32_t k, std::vector<Cand>* out) {
  const float inf = std::numeric_limits<float>::infinity();
  out->clear();
  float worst = -inf;  // of the heap once full; -inf before
  auto push = [&](int32_t i) {
    const float x = l[i];
    if (!(x > worst && x < inf)) return;
    if (static_cast<int32_t>(out->size()) < k) {
      out->emplace_back(x, i);
      std::push_heap(out->begin(), out->end(), by_logit);
      if (static_cast<int32_t>(out->size()) == k) worst = out->front().first;
      return;
    }
    std::pop_heap(out->begin(), out->end(), by_logit);
    out->back() = {x, i};
    std::push_heap(out->begin(), out->end(), by_logit);
    worst = out->front().first;
  };
  int32_t i = 0;
  for (; i + 16 <= n; i += 16) {
    float m = -inf;
    for (int j = 0; j < 16; ++j) m = l[i + j] > m ? l[i + j] : m;  // NaN never wins; +inf is checked in push
    if (m > worst) {
      for (int j = 0; j < 16; ++j) push(i + j);
    }
  }
  for (; i < n; ++i) push(i);
  std::sort_heap(out->begin(), out->end(), by_logit);
}

}  // namespace

// top_p without top_k, without sorting the vocabulary: weigh every logit
// at temperature 1 (vectorized), add the weights into buckets of 1/8 nat
// below the maximum (monotone in the logit), find the bucket where the
// most-likely-first mass reaches top_p, and sort only that bucket's tokens
// to find the last one kept. cand_ = the finite logits up to that one in
// by_logit order, in id order. Sums in double over float weights; the
// reference's chain compares cum / sum >= top_p, this cum >= top_p * sum.
void Sampler::top_p_cut(const float* l, float max_l) {
  const float inf = std::numeric_limits<float>::infinity();
  const int32_t n = n_vocab_;
  weights_.resize(n);
  block_sums_.resize((n + sampling::kWeightBlock - 1) / sampling::kWeightBlock);
  const double total = sampling::exp_weights(l, n, max_l, 1.0f, -inf, weights_.data(), block_sums_.data());
  const double target = static_cast<double>(p_.top_p) * total;
  constexpr int kBuckets = 1024, kCopies = 4;  // copies: no chain of adds into one popular bucket
  auto bucket = [&](float x) {
    const float d = (max_l - x) * 8.0f;
    return d < static_cast<float>(kBuckets - 1) ? static_cast<int>(d) : kBuckets - 1;
  };
  auto finite = [&](float x) { return x > -inf && x < inf; };
  bucket_mass_.assign(kBuckets * kCopies, 0.0);
  for (int32_t i = 0; i < n; ++i) {
    if (finite(l[i])) bucket_mass_[(i % kCopies) * kBuckets + bucket(l[i])] += weights_[i];
  }
  double acc = 0;
  int bc = 0;
  for (; bc < kBuckets; ++bc) {
    double m = 0;
    for (int c = 0; c < kCopies; ++c) m += bucket_mass_[c * kBuckets + bc];
    if (acc + m >= target) break;
    acc += m;
  }
  Cand cut{-inf, n};  // rounding left the target unreached: keep every finite logit
  if (bc < kBuckets) {
    cand_.clear();
    for (int32_t i = 0; i < n; ++i) {
      if (finite(l[i]) && bucket(l[i]) == bc) cand_.emplace_back(l[i], i);
    }
    std::sort(cand_.begin(), cand_.end(), by_logit);
    cut = cand_.back();
    for (const Cand& c : cand_) {
      acc += weights_[c.second];
      if (acc >= target) {
        cut = c;
        break;
      }
    }
  }
  cand_.clear();
  for (int32_t i = 0; i < n; ++i) {
    if (finite(l[i]) && (l[i] > cut.first || (l[i] == cut.first && i <= cut.second))) cand_.emplace_back(l[i], i);
  }
}

// weights_[i] = exp((cand_[i] - max_l) * inv_t) in one vectorized pass
// (with block_sums_ for pick_weighted); returns their sum.
double Sampler::weigh_candidates(float max_l, float inv_t) {
  const int64_t n = static_cast<int64_t>(cand_.size());
  weights_.resize(cand_.size());
  block_sums_.resize((cand_.size() + sampling::kWeightBlock - 1) / sampling::kWeightBlock);
  for (size_t i = 0; i < cand_.size(); ++i) weights_[i] = cand_[i].first;  // the logits, weighed in place
  return sampling::exp_weights(weights_.data(), n, max_l, inv_t, -std::numeric_limits<float>::infinity(),
                               weights_.data(), block_sums_.data());
}

bool Sampler::all_finite(const float* logits, int32_t n) { return finite_row(logits, n); }

int32_t Sampler::sample(float* logits) {
  apply_penalties(logits);
  const float inf = std::numeric_limits<float>::infinity();
  const float max_l = max_finite(logits, n_vocab_);
  // Greedy also for temperatures whose inverse overflows (below ~3e-39):
  // the weights would be inf * 0 = NaN.
  if (p_.temperature <= 0 || !std::isfinite(1.0f / p_.temperature)) {
    // Greedy: the first index of the largest finite logit (-1 if none).
    if (max_l == -inf) return -1;
    return static_cast<int32_t>(std::find(logits, logits + n_vocab_, max_l) - logits);
  }
  if (max_l == -inf) return -1;
  const bool cuts_by_rank = (p_.top_k > 0 && p_.top_k < n_vocab_) || p_.top_p < 1.0f;
  if (!cuts_by_rank) {
    // No cut needs an order (the OpenAI API's defaults: temperature 1,
    // top_p 1): one vectorized pass weighs every logit in id order, min_p
    // as a floor, and the draw walks per-64 block sums, then one block.
    // The slow path keeps (double)(l - max) >= log(min_p); l - max is a
    // float, so the same set is rel >= the smallest float not below
    // log(min_p): round the floor up, never down.
    float floor = -inf;
    if (p_.min_p > 0) {
      const double lf = std::log(static_cast<double>(p_.min_p));
      floor = static_cast<float>(lf);
      if (static_cast<double>(floor) < lf) floor = std::nextafter(floor, inf);
    }
    weights_.resize(n_vocab_);
    block_sums_.resize((n_vocab_ + sampling::kWeightBlock - 1) / sampling::kWeightBlock);
    const double total =
        sampling::exp_weights(logits, n_vocab_, max_l, 1.0f / p_.temperature, floor, weights_.data(), block_sums_.data());
    const double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
    return static_cast<int32_t>(sampling::pick_weighted(weights_.data(), block_sums_.data(), n_vocab_, r));
  }
  // cand_[0, sorted) holds the `sorted` best candidates in order.
  size_t sorted = 0;
  cand_.clear();
  if (p_.top_k > 0 && p_.top_k <= kSmallTopK && p_.top_k < n_vocab_) {
    top_k_small(logits, n_vocab_, p_.top_k, &cand_);
    sorted = cand_.size();
  } else if (p_.top_k <= 0 && p_.top_p < 1.0f) {
    top_p_cut(logits, max_l);
    if (cand_.empty()) return 0;  // (cannot happen: the top token is always kept)
  } else {
    for (int32_t i = 0; i < n_vocab_; ++i) {
      if (logits[i] > -inf && logits[i] < inf) cand_.emplace_back(logits[i], i);
    }
  }
  auto sort_prefix = [&](size_t m) {
    m = std::min(m, cand_.size());
    if (m <= sorted) return;
    if (m - sorted <= 256) {
      std::partial_sort(cand_.begin() + sorted, cand_.begin() + m, cand_.end(), by_logit);
    } else {
      if (m < cand_.size()) std::nth_element(cand_.begin() + sorted, cand_.begin() + m, cand_.end(), by_logit);
      std::sort(cand_.begin() + sorted, cand_.begin() + m, by_logit);
    }
    sorted = m;
  };
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < cand_.size()) {
    sort_prefix(p_.top_k);
    cand_.resize(p_.top_k);
  }
  if (p_.top_p < 1.0f && p_.top_k > 0) {
    // Probabilities at temperature 1, relative to the most likely token
    // (exp in float, sums in double).
    double sum = 0;
    if (cand_.size() > kVectorizedCands) {  // a large top_k
      sum = weigh_candidates(max_l, 1.0f);
    } else {
      for (const auto& c : cand_) sum += std::exp(c.first - max_l);
    }
    double cum = 0;
    size_t keep = cand_.size();
    for (size_t i = 0, chunk = 64; i < cand_.size(); ++i) {
      if (i == sorted) {
        sort_prefix(sorted + chunk);
        chunk *= 4;
      }
      cum += std::exp(cand_[i].first - max_l) / sum;
      if (cum >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
    cand_.resize(keep);
    sorted = std::min(sorted, keep);
  }
  if (p_.min_p > 0) {
    // At least min_p times the top token's probability: logit >= max + log(min_p).
    const double floor = std::log(static_cast<double>(p_.min_p));
    size_t out = 0;
    for (size_t i = 0; i < cand_.size(); ++i) {
      // The most likely token always stays (it is first when sorted, and has
      // the maximum logit otherwise).
      if (static_cast<double>(cand_[i].first - max_l) >= floor || cand_[i].first == max_l) cand_[out++] = cand_[i];
    }
    cand_.resize(out);
  }
  // The draw, at the temperature. exp in float (relative error ~1e-7 per
  // weight), sums in double.
  const float inv_t = 1.0f / p_.temperature;
  if (cand_.size() > kVectorizedCands) {  // many candidates (a wide top_p)
    const double total = weigh_candidates(max_l, inv_t);
    const double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
    return cand_[sampling::pick_weighted(weights_.data(), block_sums_.data(), static_cast<int64_t>(cand_.size()), r)]
        .second;
  }
  weights_.resize(cand_.size());
  double total = 0;
  for (size_t i = 0; i < cand_.size(); ++i) total += weights_[i] = std::exp((cand_[i].first - max_l) * inv_t);
  const double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
  double acc = 0;
  for (size_t i = 0; i < cand_.size(); ++i) {
    acc += weights_[i];
    if (r < acc) return cand_[i].second;
  }
  return cand_.back().second;
}

std::vector<TokenLogprob> Sampler::top_logprobs(const float* logits, int32_t n_vocab, int32_t n) {
  float max_l = -std::numeric_limits<float>::infinity();
  for (int32_t i = 0; i < n_vocab; ++i) max_l = std::max(max_l, logits[i]);
  double sum = 0;
  for (int32_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i] - max_l));
  const double log_z = max_l + std::log(sum);
  std::vector<TokenLogprob> all;
  n = std::clamp(n, 0, n_vocab);
  std::vector<int32_t> idx(n_vocab);
  for (int32_t i = 0; i < n_vocab; ++i) idx[i] = i;
  std::partial_sort(idx.begin(), idx.begin() + n, idx.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  for (int32_t i = 0; i < n; ++i) all.push_back({idx[i], static_cast<float>(logits[idx[i]] - log_z)});
  return all;
}

float Sampler::logprob_of(const float* logits, int32_t n_vocab, int32_t token) {
  float max_l = -std::numeric_limits<float>::infinity();
  for (int32_t i = 0; i < n_vocab; ++i) max_l = std::max(max_l, logits[i]);
  double sum = 0;
  for (int32_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i] - max_l));
  return static_cast<float>(logits[token] - max_l - std::log(sum));
}

}  // namespace suanli
