#include "model/tokenizer/spm.h"

#include <cstdio>
#include <queue>
#include <string>
#include <unordered_map>

#include "model/tokenizer/utf8.h"

namespace suanli::tok {

SpmEncoder::SpmEncoder(const Vocab& vocab) : vocab_(vocab) {
  pieces_.reserve(vocab.tokens.size());
  for (int32_t i = 0; i < vocab.size(); ++i) {
    TokenType t = vocab.types[i];
    if (t == TokenType::kControl || t == TokenType::kUnknown || t == TokenType::kByte) continue;
    pieces_[vocab.tokens[i]] = i;
  }
  constexpr std::string_view kSpace = "\xE2\x96\x81";
  for (const auto& [piece, id] : pieces_) {
    for (size_t k = piece.find(kSpace, 1); k != std::string::npos; k = piece.find(kSpace, k + 1)) {
      if (k < 3 || piece.compare(k - 3, 3, kSpace) != 0) words_are_independent_ = false;
    }
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    byte_token_[b] = vocab.find(name);
  }
}

void SpmEncoder::emit_symbol(std::string_view s, std::vector<int32_t>& out) const {
  int32_t id = find_piece(s);
  if (id != Tokenizer::kNoToken) {
    out.push_back(id);
    return;
  }
  bool all_bytes = true;
  for (unsigned char c : s) all_bytes = all_bytes && byte_token_[c] != Tokenizer::kNoToken;
  if (all_bytes) {
    for (unsigned char c : s) out.push_back(byte_token_[c]);
  } else if (vocab_.unk != Tokenizer::kNoToken) {
    out.push_back(vocab_.unk);
  }
}

void SpmEncoder::encode(std::string_view text, std::vector<int32_t>& out) const {
  constexpr std::string_view kSpace = "\xE2\x96\x81";
  if (!words_are_independent_) {
    encode_chunk(text, out);
    return;
  }
  // Per-call cache of word → ids (offset and count in `cached_ids`).
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, StringHash, std::equal_to<>> cache;
  std::vector<int32_t> cached_ids;
  auto encode_word = [&](std::string_view word) {
    if (word.size() > 64) {
      encode_chunk(word, out);
      return;
    }
    if (auto it = cache.find(word); it != cache.end()) {
      auto first = cached_ids.begin() + it->second.first;
      out.insert(out.end(), first, first + it->second.second);
      return;
    }
    size_t before = out.size();
    encode_chunk(word, out);
    if (cache.size() < (1u << 16)) {
      auto at = static_cast<uint32_t>(cached_ids.size());
      cached_ids.insert(cached_ids.end(), out.begin() + before, out.end());
      cache.emplace(std::string(word), std::make_pair(at, static_cast<uint32_t>(out.size() - before)));
    }
  };
  size_t start = 0;
  for (size_t k = text.find(kSpace, 1); k != std::string_view::npos; k = text.find(kSpace, k + 3)) {
    if (k >= 3 && text.compare(k - 3, 3, kSpace) == 0) continue;  // inside a run of "▁"
    encode_word(text.substr(start, k - start));
    start = k;
  }
  encode_word(text.substr(start));
}

void SpmEncoder::encode_chunk(std::string_view text, std::vector<int32_t>& out) const {
  struct Symbol {
    uint32_t offset;
    uint32_t n;  // 0 once merged into its left neighbour
    int32_t prev;
    int32_t next;
  };
  std::vector<Symbol> symbols;
  for (size_t i = 0; i < text.size();) {
    size_t len = utf8_char_len(text.data() + i, text.size() - i);
    if (len == 0) len = 1;
    int32_t idx = static_cast<int32_t>(symbols.size());
    symbols.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(len), idx - 1, idx + 1});
    i += len;
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  struct Bigram {
    float score;
    int32_t left;
    int32_t right;
    uint32_t size;
    bool operator<(const Bigram& o) const { return score != o.score ? score < o.score : left > o.left; }
  };
  std::priority_queue<Bigram> queue;
  auto consider = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    std::string_view joined = text.substr(symbols[l].offset, symbols[l].n + symbols[r].n);
    int32_t id = find_piece(joined);
    if (id == Tokenizer::kNoToken) return;
    float score = vocab_.scores.empty() ? 0.0f : vocab_.scores[id];
    queue.push({score, l, r, static_cast<uint32_t>(joined.size())});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) consider(i - 1, i);

  while (!queue.empty()) {
    Bigram b = queue.top();
    queue.pop();
    Symbol& left = symbols[b.left];
    Symbol& right = symbols[b.right];
    if (left.n == 0 || right.n == 0 || left.n + right.n != b.size) continue;  // stale
    left.n += right.n;
    right.n = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = b.left;
    consider(left.prev, b.left);
    consider(b.left, left.next);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) emit_symbol(text.substr(symbols[i].offset, symbols[i].n), out);
}

}  // namespace suanli::tok
