// Byte-level BPE (tokenizer.ggml.model "gpt2"): one word → token ids.
//
// A word's bytes start as one symbol each (the byte-level alphabet's token for
// that byte); the adjacent pair with the lowest merge rank merges first, the
// leftmost on ties, until no pair has a merge. This is exactly HF
// tokenizers' BPE::merge_word, including how it treats a stale queue entry
// (a pair is merged when the pair now at that position yields the same token).
// A byte without a token in the vocabulary becomes the unknown token, or is
// dropped when there is none (as HF does without byte fallback).
//
// Immutable and thread-safe after build().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/tokenizer/vocab.h"
#include "suanli/status.h"

namespace suanli::tok {

class BpeEncoder {
 public:
  explicit BpeEncoder(const Vocab& vocab, bool ignore_merges);

  // Appends the ids of one pre-tokenized word (raw bytes, not byte-level mapped).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

 private:
  struct RankedMerge {
    int32_t rank;
    int32_t result;
  };
  static uint64_t pair_key(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  const RankedMerge* find_merge(int32_t l, int32_t r) const {
    auto it = merges_.find(pair_key(l, r));
    return it == merges_.end() ? nullptr : &it->second;
  }

  const Vocab& vocab_;
  bool ignore_merges_;
  int32_t byte_token_[256];
  std::unordered_map<uint64_t, RankedMerge> merges_;
};

}  // namespace suanli::tok
