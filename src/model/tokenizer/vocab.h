// The vocabulary of a GGUF tokenizer: tokens, types, scores, merges, special
// ids and flags, read from tokenizer.ggml.* and validated.
//
// Contract: load_vocab either returns a Vocab whose every id and index is in
// range (so the encoders may index without checks) or a Status naming the
// offending key and index.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "suanli/gguf.h"
#include "suanli/status.h"
#include "suanli/tokenizer.h"

namespace suanli::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// Bounds for what a vocabulary may hold; past them the file is hostile or broken.
inline constexpr size_t kMaxVocab = 1u << 24;
inline constexpr size_t kMaxTokenBytes = 1u << 16;

struct Merge {
  int32_t left;
  int32_t right;
  int32_t result;
};

struct Vocab {
  std::string model;  // "gpt2" or "llama"
  std::string pre;    // tokenizer.ggml.pre, "" when absent
  std::vector<std::string> tokens;
  std::vector<TokenType> types;
  std::vector<float> scores;  // empty when the file has none
  TokenMap token_to_id;       // the last id wins for duplicate texts
  std::vector<Merge> merges;  // gpt2: in rank order

  int32_t bos = Tokenizer::kNoToken;
  int32_t eos = Tokenizer::kNoToken;
  int32_t unk = Tokenizer::kNoToken;
  int32_t eot = Tokenizer::kNoToken;
  int32_t eom = Tokenizer::kNoToken;
  int32_t pad = Tokenizer::kNoToken;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;

  int32_t size() const { return static_cast<int32_t>(tokens.size()); }
  int32_t find(std::string_view text) const {
    auto it = token_to_id.find(text);
    return it == token_to_id.end() ? Tokenizer::kNoToken : it->second;
  }
};

Expected<Vocab> load_vocab(const GgufFile& f);

}  // namespace suanli::tok
