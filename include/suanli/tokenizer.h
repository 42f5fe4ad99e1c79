// Tokenizers built from a GGUF file's tokenizer.ggml.* metadata, and an
// incremental detokenizer for streaming.
//
// Contract:
// - Tokenizer::from_gguf validates every tokenizer.ggml.* key it uses (types,
//   array lengths, token ids, merges, token types, string sizes) and returns a
//   Status naming the key and index on any violation. After that, no input
//   text or token id can make a Tokenizer crash: encode accepts any bytes,
//   decode/token_bytes accept any id (out-of-range ids decode to nothing; use
//   valid_id to check first).
// - A Tokenizer is immutable after loading and safe to use from many threads
//   at once (encode keeps its scratch state per call).
// - Supported models: "gpt2" (byte-level BPE, pre-tokenizer chosen by
//   tokenizer.ggml.pre) and "llama" (SentencePiece-style BPE over scores with
//   byte fallback). See docs/tokenizer.md for the pre-tokenizer table.
// - Invalid UTF-8 in encode's input: each byte that is not part of a valid
//   UTF-8 sequence is its own pre-token and is encoded through its byte token
//   (gpt2: the byte-level symbol; llama: <0xNN> byte fallback, else unk), so
//   decode(encode(x)) == x holds for any bytes the vocabulary can represent.
// - decode returns the raw bytes the tokens stand for, which may be invalid
//   UTF-8 (a token can be half a character). StreamDecoder only ever returns
//   valid UTF-8.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "suanli/gguf.h"
#include "suanli/status.h"

namespace suanli {

// Numbering as in GGUF's tokenizer.ggml.token_type (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,      // BOS, EOS, <|im_start|>...: matched in text only with parse_special
  kUserDefined = 4,  // added tokens: always matched in text, decoded as their text
  kUnused = 5,
  kByte = 6,         // <0xNN> byte-fallback tokens
};

class Tokenizer {
 public:
  static constexpr int32_t kNoToken = -1;

  // Builds the tokenizer of a GGUF file (model files and vocab-only files).
  static Expected<std::shared_ptr<const Tokenizer>> from_gguf(const GgufFile& f);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // add_special: BOS/EOS as tokenizer.ggml.add_bos_token / add_eos_token say
  // (absent: llama adds BOS, gpt2 does not except the llama-bpe pre-tokenizer,
  // as in llama.cpp; EOS is never added by default).
  // parse_special: the text of control tokens in `text` becomes those tokens;
  // otherwise it is tokenized as plain text. User-defined tokens are matched
  // either way (leftmost-longest).
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // The raw bytes a token stands for: byte-level decoded for gpt2; "▁" → " "
  // and <0xNN> → that byte for llama; the text itself for control and
  // user-defined tokens. Empty for ids out of range.
  std::string token_bytes(int32_t id) const;

  // Concatenated token bytes. skip_special drops control and unknown tokens.
  // For llama vocabularies that add a space prefix, one leading space of the
  // result is removed (the one encode added), as HF's Llama decoder does.
  std::string decode(std::span<const int32_t> ids, bool skip_special) const;

  int32_t n_vocab() const;
  bool valid_id(int32_t id) const { return id >= 0 && id < n_vocab(); }
  int32_t bos() const;  // kNoToken when the vocabulary has none
  int32_t eos() const;
  // EOS, EOT (tokenizer.ggml.eot_token_id), EOM, and control tokens that end
  // a turn: <|im_end|>, <|eot_id|>, <|end|>, <|endoftext|>, <end_of_turn>, ...
  bool is_end_of_generation(int32_t id) const;
  bool is_special(int32_t id) const;  // control or unknown: dropped by skip_special

  const std::string& token_text(int32_t id) const;  // empty string when out of range
  TokenType token_type(int32_t id) const;            // kUndefined when out of range
  std::optional<int32_t> find_token(std::string_view text) const;

  const std::string& model() const;          // "gpt2" or "llama"
  const std::string& pre() const;            // the pre-tokenizer in use
  bool strips_leading_space() const;         // see decode

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Incremental detokenizer for streaming generated tokens. Not thread-safe;
// one per stream.
class StreamDecoder {
 public:
  explicit StreamDecoder(std::shared_ptr<const Tokenizer> tokenizer, bool skip_special = true);

  // The text that `id` completes: only whole UTF-8 characters. An incomplete
  // multi-byte tail is held back until a later token completes it; bytes that
  // can never form a character come out as U+FFFD.
  std::string push(int32_t id);
  // End of stream: the held-back tail, as U+FFFD if incomplete. The decoder
  // is then ready for a new stream.
  std::string flush();

 private:
  std::string take_complete(bool at_end);

  std::shared_ptr<const Tokenizer> tokenizer_;
  bool skip_special_;
  bool at_start_ = true;  // the leading-space strip has not happened yet
  std::string pending_;
};

}  // namespace suanli
