// Token sampling: repetition / frequency / presence penalties, then top-k,
// top-p, min-p and temperature, then a draw from a seeded generator. A fixed
// seed makes a request reproducible; each request has its own Sampler, so
// what else runs in the batch never changes its draws.
// Thread safety: a Sampler belongs to one request.
#pragma once

#include <cstdint>
#include <random>
#include <unordered_map>
#include <utility>
#include <vector>

#include "suanli/status.h"

namespace suanli {

struct SamplingParams {
  float temperature = 0.8f;        // <= 0: greedy
  int32_t top_k = 40;              // <= 0: off
  float top_p = 0.95f;             // 1: off
  float min_p = 0.05f;             // 0: off (relative to the most likely token)
  float repetition_penalty = 1.0f; // 1: off (llama.cpp / CTRL style: divide positive logits)
  float frequency_penalty = 0.0f;  // OpenAI semantics: - count * f
  float presence_penalty = 0.0f;   // OpenAI semantics: - (count > 0) * p
  int32_t penalty_last_n = 64;     // tokens the penalties look back over (-1: all)
  uint64_t seed = 0;
  // Added to a token's logit before the penalties and every cut (OpenAI's
  // logit_bias: -100 in practice bans a token, +100 forces it). Token ids
  // must be below the vocabulary size (the Sampler ignores others).
  std::vector<std::pair<int32_t, float>> logit_bias;

  // Range checks with messages naming the parameter.
  Status validate() const;
  static SamplingParams greedy();
};

struct TokenLogprob {
  int32_t token;
  float logprob;
};

class Sampler {
 public:
  Sampler(const SamplingParams& params, int32_t n_vocab);

  // Tokens that count for penalties (the prompt's, then each generated one).
  void accept(int32_t token);
  // Picks the next token from raw logits [n_vocab]. The logits are
  // rewritten (logit bias and penalties applied in place) only when
  // rewrites_logits(). NaN and infinite logits are never drawn; -1 when no
  // logit is finite (nothing can be drawn). Callers check all_finite()
  // first: a model whose logits are not all finite is broken, and drawing
  // from the rest would hide it.
  int32_t sample(float* logits);
  // Whether every logit is finite (no NaN, no +-infinity).
  static bool all_finite(const float* logits, int32_t n);
  // What every caller says when all_finite() is false.
  static constexpr const char* kNonFiniteLogits =
      "the model produced non-finite logits (NaN or infinity): its weights or metadata are broken";
  bool rewrites_logits() const {
    return p_.repetition_penalty != 1.0f || p_.frequency_penalty != 0.0f || p_.presence_penalty != 0.0f ||
           !p_.logit_bias.empty();
  }
  // log-softmax of the raw logits (before penalties): the chosen token's
  // logprob and the top n alternatives, most likely first.
  static std::vector<TokenLogprob> top_logprobs(const float* logits, int32_t n_vocab, int32_t n);
  static float logprob_of(const float* logits, int32_t n_vocab, int32_t token);

 private:
  void apply_penalties(float* logits) const;
  void top_p_cut(const float* logits, float max_l);
  double weigh_candidates(float max_l, float inv_t);

  SamplingParams p_;
  int32_t n_vocab_;
  std::mt19937_64 rng_;
  std::vector<int32_t> history_;
  std::vector<std::pair<float, int32_t>> cand_;  // scratch
  std::vector<float> weights_;                    // scratch
  std::vector<float> block_sums_;                 // scratch (sampler_weights.h)
  std::vector<double> bucket_mass_;               // scratch (top_p_cut)
};

}  // namespace suanli
