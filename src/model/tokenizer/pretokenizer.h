// Pre-tokenizers of byte-level BPE vocabularies: a chain of regexes that cut
// text into words before BPE, chosen by tokenizer.ggml.pre.
//
// Each regex of the chain is applied to every piece the previous one made and
// keeps both the matches and the text between them as pieces (HF's
// Split(behavior="isolated"); llama.cpp's unicode_regex_split). Regexes run on
// a piece alone, so lookarounds and `$` see only that piece, as in HF.
// Bytes that are not valid UTF-8 are each a piece of their own, before any
// regex runs.
//
// A PreTokenizer is immutable and thread-safe after create().
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "suanli/status.h"

namespace suanli::tok {

struct MatchScratch;

struct PreTokenizerSpec {
  std::string name;                  // canonical name
  std::vector<std::string> regexes;  // applied in order
  bool ignore_merges = false;        // a piece that is a whole vocabulary token skips BPE (Llama 3)
};

// The spec for a tokenizer.ggml.pre value; "" and "default" mean GPT-2's.
// Unsupported for names not in the table.
Expected<PreTokenizerSpec> pre_tokenizer_spec(std::string_view pre);

class PreTokenizer {
 public:
  static Expected<std::shared_ptr<const PreTokenizer>> create(const PreTokenizerSpec& spec);
  ~PreTokenizer();

  // Calls emit for each piece of `text` in order; the pieces concatenate to `text`.
  void split(std::string_view text, const std::function<void(std::string_view)>& emit) const;

  const PreTokenizerSpec& spec() const { return spec_; }

  struct Compiled;

 private:
  PreTokenizer() = default;
  void split_level(size_t level, std::string_view text, MatchScratch& scratch,
                   const std::function<void(std::string_view)>& emit) const;

  PreTokenizerSpec spec_;
  std::vector<std::unique_ptr<Compiled>> compiled_;
};

}  // namespace suanli::tok
