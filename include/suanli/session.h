// One sequence on a model: the token history in the KV cache and the logits
// of its last token. Used by `suanli run`, `chat` and `bench`; the serving
// engine (many sequences per step) is built on the same Model and KvCache.
//
// set_prompt() keeps the longest common prefix of the cached tokens and only
// computes the rest (chat turns reuse the conversation's cache). Prompts are
// prefilled in chunks of the model's max_batch_tokens.
// Thread safety: one thread.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "suanli/kv_cache.h"
#include "suanli/model.h"

namespace suanli {

class Session {
 public:
  Session(Model& model, KvCache& kv);
  ~Session();

  // The cache now holds `tokens`; logits of the last one are in logits().
  Status set_prompt(std::span<const int32_t> tokens);
  // Appends one token and computes its logits.
  Status append(int32_t token);
  // Appends tokens in one forward step and computes the logits after each
  // ([tokens.size()][n_vocab] into *rows; logits() is the last row). For
  // speculative decoding: the caller keeps a verified prefix with
  // truncate(). At most the model's max_batch_tokens tokens.
  Status append_all(std::span<const int32_t> tokens, std::vector<float>* rows);
  // Keeps the first n tokens (n <= tokens().size()); K/V past them is
  // overwritten by later tokens. logits() is then stale until the next
  // append.
  void truncate(int64_t n);
  // Drops everything (blocks go back to the cache).
  void reset();

  const std::vector<int32_t>& tokens() const { return tokens_; }
  const Model& model() const { return model_; }
  const std::vector<float>& logits() const { return logits_; }
  // Tokens reused from the previous prompt by the last set_prompt.
  int64_t reused_tokens() const { return reused_; }

 private:
  Status run(std::span<const int32_t> toks, int64_t n_past);

  Model& model_;
  KvCache& kv_;
  std::vector<int32_t> tokens_;
  std::vector<int32_t> table_;
  std::vector<float> logits_;
  Batch batch_;
  int64_t reused_ = 0;
};

}  // namespace suanli
