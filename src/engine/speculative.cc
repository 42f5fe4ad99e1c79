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

}  // namespace suanli
