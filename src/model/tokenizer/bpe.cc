#include "model/tokenizer/bpe.h"

#include <algorithm>
#include <queue>

#include "model/tokenizer/utf8.h"

namespace suanli::tok {

BpeEncoder::BpeEncoder(const Vocab& vocab, bool ignore_merges) : vocab_(vocab), ignore_merges_(ignore_merges) {
  for (int b = 0; b < 256; ++b) {
    std::string sym;
    utf8_append(sym, byte_to_codepoint(static_cast<uint8_t>(b)));
    byte_token_[b] = vocab.find(sym);
  }
  merges_.reserve(vocab.merges.size() * 2);
  for (size_t i = 0; i < vocab.merges.size(); ++i) {
    const Merge& m = vocab.merges[i];
    // The first occurrence of a duplicated pair keeps its rank.
    merges_.try_emplace(pair_key(m.left, m.right), RankedMerge{static_cast<int32_t>(i), m.result});
  }
}

void BpeEncoder::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    std::string mapped;
    mapped.reserve(word.size() * 2);
    for (unsigned char c : word) utf8_append(mapped, byte_to_codepoint(c));
    int32_t id = vocab_.find(mapped);
    if (id != Tokenizer::kNoToken) {
      out.push_back(id);
      return;
    }
  }

  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  for (unsigned char c : word) {
    int32_t id = byte_token_[c];
    if (id == Tokenizer::kNoToken) id = vocab_.unk;
    if (id == Tokenizer::kNoToken) continue;
    int32_t idx = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, idx - 1, idx + 1, true});
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;
  if (symbols.size() == 1) {
    out.push_back(symbols[0].id);
    return;
  }

  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t result;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto consider = [&](int32_t pos) {
    int32_t next = symbols[pos].next;
    if (next < 0) return;
    if (const RankedMerge* m = find_merge(symbols[pos].id, symbols[next].id)) queue.push({m->rank, pos, m->result});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i);

  while (!queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    const RankedMerge* now = find_merge(left.id, right.id);
    if (now == nullptr || now->result != top.result) continue;  // stale entry
    left.id = top.result;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

}  // namespace suanli::tok
