#include "suanli/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

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

int32_t Sampler::sample(float* logits) {
  apply_penalties(logits);
  if (p_.temperature <= 0) {
    // Greedy: the first index of the maximum (deterministic on ties).
    return static_cast<int32_t>(std::max_element(logits, logits + n_vocab_) - logits);
  }
  cand_.clear();
  for (int32_t i = 0; i < n_vocab_; ++i) {
    if (std::isfinite(logits[i])) cand_.emplace_back(logits[i], i);
  }
  if (cand_.empty()) return 0;
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  size_t k = cand_.size();
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < k) k = p_.top_k;
  std::partial_sort(cand_.begin(), cand_.begin() + k, cand_.end(), by_logit);
  cand_.resize(k);
  // Probabilities at temperature 1 for the top-p / min-p cuts (as llama.cpp),
  // then the temperature for the draw.
  const float max_l = cand_[0].first;
  std::vector<double> prob(k);
  double sum = 0;
  for (size_t i = 0; i < k; ++i) sum += prob[i] = std::exp(static_cast<double>(cand_[i].first - max_l));
  size_t keep = k;
  if (p_.top_p < 1.0f) {
    double cum = 0;
    for (size_t i = 0; i < k; ++i) {
      cum += prob[i] / sum;
      if (cum >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (p_.min_p > 0) {
    const double floor = p_.min_p * prob[0];
    size_t i = 1;
    while (i < keep && prob[i] >= floor) ++i;
    keep = i;
  }
  double total = 0;
  for (size_t i = 0; i < keep; ++i) {
    total += prob[i] = std::exp(static_cast<double>(cand_[i].first - max_l) / p_.temperature);
  }
  const double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
  double acc = 0;
  for (size_t i = 0; i < keep; ++i) {
    acc += prob[i];
    if (r < acc) return cand_[i].second;
  }
  return cand_[keep - 1].second;
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
