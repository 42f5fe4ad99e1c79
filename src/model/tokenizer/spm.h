// SentencePiece-style BPE (tokenizer.ggml.model "llama"): scored merges with
// byte fallback, as Llama 2, Mistral and Phi-3 use it.
//
// Text arrives already escaped (spaces → "▁", prefix added by the caller).
// It starts as one symbol per UTF-8 character (each invalid byte its own
// symbol); the adjacent pair whose concatenation is a vocabulary piece with
// the highest score merges first, the leftmost on ties. A final symbol that
// is not a piece becomes its <0xNN> byte tokens, else the unknown token, else
// nothing. Only normal, user-defined and unused tokens take part in merging
// (never control, unknown or byte tokens), as in SentencePiece.
//
// Long texts are cut before each "▁" that follows another character when no
// piece contains such a junction (true of Llama/Mistral/Phi-3 vocabularies):
// no merge can then cross the cut, so the result is the same as merging the
// whole text at once, with a heap the size of one word.
//
// Immutable and thread-safe after construction.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "model/tokenizer/vocab.h"

namespace suanli::tok {

class SpmEncoder {
 public:
  explicit SpmEncoder(const Vocab& vocab);

  void encode(std::string_view text, std::vector<int32_t>& out) const;

 private:
  int32_t find_piece(std::string_view s) const {
    auto it = pieces_.find(s);
    return it == pieces_.end() ? Tokenizer::kNoToken : it->second;
  }
  void emit_symbol(std::string_view s, std::vector<int32_t>& out) const;
  void encode_chunk(std::string_view text, std::vector<int32_t>& out) const;

  const Vocab& vocab_;
  TokenMap pieces_;
  int32_t byte_token_[256];
  bool words_are_independent_ = true;
};

}  // namespace suanli::tok
