#include "engine/speculative.h"

#include <algorithm>

namespace suanli {

std::vector<int32_t> propose_ngram_draft(std::span<const int32_t> tokens, int32_t max_tokens, int32_t ngram_min,
                                         int32_t ngram_max) {
  const int64_t len = static_cast<int64_t>(tokens.size());
  if (max_tokens <= 0 || ngram_min < 1) return {};
  for (int64_t n = std::min<int64_t>(ngram_max, len - 1); n >= ngram_min; --n) {
    const int32_t* suffix = tokens.data() + len - n;
    // Occurrences ending before the suffix ends, most recent first: start p
    // with p + n < len, so at least one token follows it.
    for (int64_t p = len - n - 1; p >= 0; --p) {
      if (tokens[p] != suffix[0] || !std::equal(suffix, suffix + n, tokens.data() + p)) continue;
      // The text is taken to repeat with the period `shift`: the draft
      // continues it (past the end, from its own first tokens).
      const int64_t shift = len - n - p;
      std::vector<int32_t> draft(static_cast<size_t>(max_tokens));
      for (int64_t i = 0; i < max_tokens; ++i) {
        const int64_t src = len + i - shift;
        draft[i] = src < len ? tokens[src] : draft[src - len];
      }
      return draft;
    }
  }
  return {};
}

Expected<GenerateStats> generate_tokens(Session& session, Sampler& sampler, int64_t n_predict, int32_t spec_ngram,
                                        const std::function<bool(int32_t)>& is_end,
                                        const std::function<void(int32_t)>& emit) {
  GenerateStats st;
  const int64_t V = session.model().n_vocab();
  // rows: the logits of the last step's positions; the next token is drawn
  // from row `row`. step: the last step's tokens (its first, then drafts).
  std::vector<float> rows = session.logits();
  std::vector<int32_t> step;
  size_t row = 0;
  int32_t len = spec_ngram;
  while (st.generated < n_predict) {
    // Draw until a token misses its draft (or no draft is left).
    const size_t n_draft = step.empty() ? 0 : step.size() - 1;
    int32_t last = -1;
    bool ended = false;
    for (;;) {
      float* r = rows.data() + static_cast<int64_t>(row) * V;
      if (!Sampler::all_finite(r, static_cast<int32_t>(V))) {
        return CorruptData(Sampler::kNonFiniteLogits);
      }
      const int32_t next = sampler.sample(r);
      if (next < 0) return Internal("no token could be drawn");
      if (is_end(next)) {
        ended = true;
        break;
      }
      sampler.accept(next);
      emit(next);
      last = next;
      if (++st.generated >= n_predict) break;
      if (row >= n_draft || next != step[row + 1]) break;
      ++row;
    }
    if (n_draft > 0) {
      st.drafted += static_cast<int64_t>(n_draft);
      st.kept += static_cast<int64_t>(row);
      len = next_draft_length(len, static_cast<int64_t>(n_draft), static_cast<int64_t>(row), spec_ngram);
      // Keep the step's first token and the kept drafts.
      session.truncate(static_cast<int64_t>(session.tokens().size()) - static_cast<int64_t>(n_draft - row));
    }
    if (ended || st.generated >= n_predict) break;
    // The last drawn token is not in the cache yet: append it with a draft.
    step.assign(1, last);
    if (spec_ngram > 0) {
      std::vector<int32_t> history = session.tokens();
      history.push_back(last);
      const int64_t room =
          std::min<int64_t>({len, n_predict - st.generated - 1, session.model().max_batch_tokens() - 1});
      if (room > 0) {
        const std::vector<int32_t> d = propose_ngram_draft(history, static_cast<int32_t>(room), 2, 4);
        step.insert(step.end(), d.begin(), d.end());
      }
    }
    SUANLI_RETURN_IF_ERROR(session.append_all(step, &rows));
    row = 0;
    ++st.steps;
  }
  return st;
}

}  // namespace suanli
