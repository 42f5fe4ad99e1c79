// Speculative decoding by prompt lookup (n-gram drafts): the tokens that
// followed the most recent earlier occurrence of a sequence's last n tokens
// are proposed as its next tokens, and one forward step computes the
// sequence's next token and every drafted position at once. The engine
// (engine.cc) then draws each position's token exactly as plain decoding
// would, in order, and keeps drafted tokens only while the drawn token
// equals the draft; the first draw that differs is the step's last token.
//
// Why the output is identical to plain decoding, token for token and with
// any sampling parameters: a position's logits do not depend on the batch
// (batch invariance, docs/engine.md), and the draws are the same calls of
// the same per-request sampler on the same rows, in the same order. A draft
// only decides how many positions are computed per step; the accepted
// fraction decides the speed-up.
//
// Thread safety: free functions, no state.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "suanli/sampler.h"
#include "suanli/session.h"
#include "suanli/status.h"

namespace suanli {

// max_tokens tokens that followed the most recent earlier occurrence of the
// last n tokens of `tokens`, trying n = ngram_max down to ngram_min (the
// longest suffix that occurred before wins); empty when none occurs. The
// text is taken to repeat from that occurrence on: where fewer than
// max_tokens tokens follow it (a period shorter than the draft, the
// occurrence overlapping the suffix), the draft continues periodically.
// O(len(tokens) * ngram_max).
std::vector<int32_t> propose_ngram_draft(std::span<const int32_t> tokens, int32_t max_tokens, int32_t ngram_min,
                                         int32_t ngram_max);

// The next draft length cap of a sequence after a step that drafted
// `drafted` tokens and kept `kept`: a fully kept draft doubles it (up to
// max_len); a draft that missed sets it to kept + 1, so text the lookup
// guesses badly costs about one drafted position per step.
inline int32_t next_draft_length(int32_t len, int64_t drafted, int64_t kept, int32_t max_len) {
  if (kept >= drafted) return len * 2 < max_len ? len * 2 : max_len;
  return static_cast<int32_t>(kept + 1);
}

struct GenerateStats {
  int64_t generated = 0;  // tokens emitted
  int64_t drafted = 0;    // drafted tokens computed
  int64_t kept = 0;       // of those, kept
  int64_t steps = 0;      // forward steps after the prompt
};

// One sequence's generation on a Session whose logits() are those of its
// last token (after set_prompt): draws up to n_predict tokens with
// `sampler` (which must have accepted the session's tokens), passing each
// to emit(); stops before a token for which is_end() holds. With
// spec_ngram > 0, each step appends the drawn token and up to spec_ngram
// drafted ones (prompt lookup, suffixes of 4 to 2 tokens) and keeps drafts
// while the draws equal them: the same tokens as spec_ngram = 0. The last
// drawn token is not appended to the session. (`suanli run`, `chat`.)
Expected<GenerateStats> generate_tokens(Session& session, Sampler& sampler, int64_t n_predict, int32_t spec_ngram,
                                        const std::function<bool(int32_t)>& is_end,
                                        const std::function<void(int32_t)>& emit);

}  // namespace suanli
