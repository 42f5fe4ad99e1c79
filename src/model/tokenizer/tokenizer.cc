// Tokenizer: special-token partitioning, BOS/EOS, and dispatch to the
// byte-level BPE or SentencePiece encoders; token bytes and decoding.
#include "suanli/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include "model/tokenizer/bpe.h"
#include "model/tokenizer/pretokenizer.h"
#include "model/tokenizer/spm.h"
#include "model/tokenizer/utf8.h"
#include "model/tokenizer/vocab.h"

namespace suanli {

namespace {

// Texts of control tokens that end a turn in the chat formats we know.
constexpr std::string_view kEndOfTurnTexts[] = {
    "<|im_end|>", "<|eot_id|>",     "<|end|>",       "<|endoftext|>", "<end_of_turn>", "<|end_of_text|>",
    "<|eom_id|>", "<EOT>",          "<｜end▁of▁sentence｜>", "<end_of_utterance>", "<|return|>", "<|call|>"};

// Words longer than this are encoded without the per-call cache: long words
// are rare and seldom repeat.
constexpr size_t kMaxCachedWord = 64;
constexpr size_t kMaxCacheEntries = 1u << 16;

std::string parse_byte_token(const std::string& text) {
  // "<0xNN>" → that byte; anything else stays as it is.
  unsigned v = 0;
  char tail = 0;
  if (text.size() == 6 && std::sscanf(text.c_str(), "<0x%2X%c", &v, &tail) == 2 && tail == '>') {
    return std::string(1, static_cast<char>(v));
  }
  return text;
}

std::string byte_level_decode(const std::string& text) {
  // As HF's ByteLevel decoder: a token with any character outside the
  // byte-level alphabet is taken as its own UTF-8 text.
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t len = tok::utf8_char_len(text.data() + i, text.size() - i);
    if (len == 0) return text;
    int b = tok::codepoint_to_byte(tok::utf8_decode(text.data() + i, len));
    if (b < 0) return text;
    out += static_cast<char>(b);
    i += len;
  }
  return out;
}

std::string unescape_spaces(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 3, "\xE2\x96\x81") == 0) {
      out += ' ';
      i += 3;
    } else {
      out += text[i++];
    }
  }
  return out;
}

}  // namespace

struct Tokenizer::Impl {
  tok::Vocab vocab;
  std::shared_ptr<const tok::PreTokenizer> pre;
  std::unique_ptr<tok::BpeEncoder> bpe;
  std::unique_ptr<tok::SpmEncoder> spm;
  std::string pre_name;
  bool strip_leading_space = false;

  struct Special {
    std::string_view text;  // into vocab.tokens
    int32_t id;
    bool needs_parse_special;  // control/unknown; user-defined are always matched
  };
  // Grouped by first byte, longest first within a group (leftmost-longest).
  std::vector<Special> specials;
  std::array<uint32_t, 257> special_start{};

  std::vector<std::string> bytes;  // token_bytes per id
  std::vector<uint8_t> eog;

  void build_specials();
  void encode_text(std::string_view text, bool first_or_after_special, std::vector<int32_t>& out) const;
};

void Tokenizer::Impl::build_specials() {
  for (int32_t i = 0; i < vocab.size(); ++i) {
    TokenType t = vocab.types[i];
    if (vocab.tokens[i].empty()) continue;
    if (t == TokenType::kControl || t == TokenType::kUnknown) specials.push_back({vocab.tokens[i], i, true});
    else if (t == TokenType::kUserDefined) specials.push_back({vocab.tokens[i], i, false});
  }
  std::stable_sort(specials.begin(), specials.end(), [](const Special& a, const Special& b) {
    auto fa = static_cast<unsigned char>(a.text[0]), fb = static_cast<unsigned char>(b.text[0]);
    return fa != fb ? fa < fb : a.text.size() > b.text.size();
  });
  size_t k = 0;
  for (int b = 0; b <= 256; ++b) {
    while (k < specials.size() && static_cast<unsigned char>(specials[k].text[0]) < b) ++k;
    special_start[b] = static_cast<uint32_t>(k);
  }
}

void Tokenizer::Impl::encode_text(std::string_view text, bool first_or_after_special,
                                  std::vector<int32_t>& out) const {
  if (text.empty()) return;
  if (spm) {
    // SentencePiece escaping: "▁" prefix at the start of each text fragment
    // (as HF's Prepend normalizer and llama.cpp do), spaces → "▁".
    std::string escaped;
    escaped.reserve(text.size() + text.size() / 4 + 3);
    if (vocab.add_space_prefix && first_or_after_special) escaped += "\xE2\x96\x81";
    for (char c : text) {
      if (c == ' ') escaped += "\xE2\x96\x81";
      else escaped += c;
    }
    spm->encode(escaped, out);
    return;
  }
  // Per-call cache of word → ids (in `cached_ids`), so the Tokenizer stays
  // immutable and lock-free.
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, tok::StringHash, std::equal_to<>> cache;
  std::vector<int32_t> cached_ids;
  pre->split(text, [&](std::string_view word) {
    if (word.size() > kMaxCachedWord) {
      bpe->encode_word(word, out);
      return;
    }
    auto it = cache.find(word);
    if (it != cache.end()) {
      out.insert(out.end(), cached_ids.begin() + it->second.first,
                 cached_ids.begin() + it->second.first + it->second.second);
      return;
    }
    size_t before = out.size();
    bpe->encode_word(word, out);
    if (cache.size() < kMaxCacheEntries) {
      auto start = static_cast<uint32_t>(cached_ids.size());
      cached_ids.insert(cached_ids.end(), out.begin() + before, out.end());
      cache.emplace(std::string(word), std::make_pair(start, static_cast<uint32_t>(out.size() - before)));
    }
  });
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

Expected<std::shared_ptr<const Tokenizer>> Tokenizer::from_gguf(const GgufFile& f) {
  auto impl = std::make_unique<Impl>();
  SUANLI_ASSIGN_OR_RETURN(impl->vocab, tok::load_vocab(f));
  tok::Vocab& v = impl->vocab;
  if (v.model == "gpt2") {
    SUANLI_ASSIGN_OR_RETURN(tok::PreTokenizerSpec spec, tok::pre_tokenizer_spec(v.pre));
    SUANLI_ASSIGN_OR_RETURN(impl->pre, tok::PreTokenizer::create(spec));
    impl->pre_name = spec.name;
    impl->bpe = std::make_unique<tok::BpeEncoder>(v, spec.ignore_merges);
  } else {
    impl->pre_name = "default";
    impl->spm = std::make_unique<tok::SpmEncoder>(v);
    impl->strip_leading_space = v.add_space_prefix;
  }
  impl->build_specials();

  impl->bytes.resize(v.tokens.size());
  impl->eog.assign(v.tokens.size(), 0);
  for (int32_t i = 0; i < v.size(); ++i) {
    const std::string& text = v.tokens[i];
    switch (v.types[i]) {
      case TokenType::kControl:
      case TokenType::kUnknown:
        impl->bytes[i] = text;
        break;
      case TokenType::kByte:
        impl->bytes[i] = parse_byte_token(text);
        break;
      case TokenType::kUserDefined:
        impl->bytes[i] = impl->spm ? unescape_spaces(text) : text;
        break;
      default:
        impl->bytes[i] = impl->spm ? unescape_spaces(text) : byte_level_decode(text);
        break;
    }
    if (v.types[i] == TokenType::kControl) {
      for (std::string_view eot : kEndOfTurnTexts) {
        if (text == eot) impl->eog[i] = 1;
      }
    }
  }
  for (int32_t id : {v.eos, v.eot, v.eom}) {
    if (id != kNoToken) impl->eog[id] = 1;
  }
  return std::shared_ptr<const Tokenizer>(new Tokenizer(std::move(impl)));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const Impl& m = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && m.vocab.add_bos) out.push_back(m.vocab.bos);

  size_t seg_start = 0;
  bool after_special = true;
  size_t i = 0;
  while (i < text.size()) {
    auto b = static_cast<unsigned char>(text[i]);
    uint32_t lo = m.special_start[b], hi = m.special_start[b + 1];
    const Impl::Special* hit = nullptr;
    for (uint32_t k = lo; k < hi; ++k) {
      const Impl::Special& s = m.specials[k];
      if (s.needs_parse_special && !parse_special) continue;
      if (text.size() - i >= s.text.size() && text.compare(i, s.text.size(), s.text) == 0) {
        hit = &s;
        break;
      }
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    m.encode_text(text.substr(seg_start, i - seg_start), after_special, out);
    out.push_back(hit->id);
    after_special = true;
    i += hit->text.size();
    seg_start = i;
  }
  if (seg_start < text.size()) m.encode_text(text.substr(seg_start), after_special, out);

  if (add_special && m.vocab.add_eos) out.push_back(m.vocab.eos);
  return out;
}

std::string Tokenizer::token_bytes(int32_t id) const { return valid_id(id) ? impl_->bytes[id] : std::string(); }

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string out;
  for (int32_t id : ids) {
    if (!valid_id(id) || (skip_special && is_special(id))) continue;
    out += impl_->bytes[id];
  }
  if (impl_->strip_leading_space && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

int32_t Tokenizer::n_vocab() const { return impl_->vocab.size(); }
int32_t Tokenizer::bos() const { return impl_->vocab.bos; }
int32_t Tokenizer::eos() const { return impl_->vocab.eos; }
bool Tokenizer::is_end_of_generation(int32_t id) const { return valid_id(id) && impl_->eog[id] != 0; }

bool Tokenizer::is_special(int32_t id) const {
  if (!valid_id(id)) return false;
  TokenType t = impl_->vocab.types[id];
  return t == TokenType::kControl || t == TokenType::kUnknown;
}

const std::string& Tokenizer::token_text(int32_t id) const {
  static const std::string kEmpty;
  return valid_id(id) ? impl_->vocab.tokens[id] : kEmpty;
}

TokenType Tokenizer::token_type(int32_t id) const {
  return valid_id(id) ? impl_->vocab.types[id] : TokenType::kUndefined;
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  int32_t id = impl_->vocab.find(text);
  if (id == kNoToken) return std::nullopt;
  return id;
}

const std::string& Tokenizer::model() const { return impl_->vocab.model; }
const std::string& Tokenizer::pre() const { return impl_->pre_name; }
bool Tokenizer::strips_leading_space() const { return impl_->strip_leading_space; }

}  // namespace suanli
