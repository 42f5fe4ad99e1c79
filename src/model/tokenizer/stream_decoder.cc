// StreamDecoder: token-by-token detokenizing that never splits a character.
#include <algorithm>

#include "model/tokenizer/utf8.h"
#include "suanli/tokenizer.h"

namespace suanli {

StreamDecoder::StreamDecoder(std::shared_ptr<const Tokenizer> tokenizer, bool skip_special)
    : tokenizer_(std::move(tokenizer)), skip_special_(skip_special) {}

std::string StreamDecoder::push(int32_t id) {
  if (!tokenizer_->valid_id(id) || (skip_special_ && tokenizer_->is_special(id))) return take_complete(false);
  std::string piece = tokenizer_->token_bytes(id);
  if (at_start_ && !piece.empty()) {
    // Tokenizer::decode strips the encoder's space prefix from the start of
    // the text; a stream does the same to its first bytes.
    if (tokenizer_->strips_leading_space() && piece[0] == ' ') piece.erase(0, 1);
    at_start_ = false;
  }
  pending_ += piece;
  return take_complete(false);
}

std::string StreamDecoder::flush() {
  std::string out = take_complete(true);
  at_start_ = true;
  return out;
}

std::string StreamDecoder::take_complete(bool at_end) {
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    size_t len = tok::utf8_char_len(pending_.data() + i, pending_.size() - i);
    if (len > 0) {
      out.append(pending_, i, len);
      i += len;
      continue;
    }
    if (!at_end && tok::utf8_incomplete_prefix(pending_.data() + i, pending_.size() - i)) break;
    // Bytes that can never become a character: one U+FFFD for the maximal
    // valid-looking prefix (or the single bad byte), as utf8_sanitize does.
    size_t bad = 1;
    for (size_t k = std::min<size_t>(3, pending_.size() - i); k >= 2; --k) {
      if (tok::utf8_incomplete_prefix(pending_.data() + i, k)) {
        bad = k;
        break;
      }
    }
    out += "\xEF\xBF\xBD";
    i += bad;
  }
  pending_.erase(0, i);
  return out;
}

}  // namespace suanli
