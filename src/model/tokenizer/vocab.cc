#include "model/tokenizer/vocab.h"

#include <string>

namespace suanli::tok {
namespace {

Status bad(std::string_view key, const std::string& what) {
  return CorruptData("tokenizer metadata " + std::string(key) + ": " + what);
}

// An optional token id: absent → keep `*id`; -1 (or 0xFFFFFFFF, how some
// converters write "none") → kNoToken; anything else must be in range.
Status read_token_id(const GgufFile& f, std::string_view key, int32_t n_vocab, int32_t* id) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return Status::Ok();
  std::optional<int64_t> x = v->as_int();
  if (!x) return bad(key, "expected an integer, got " + std::string(gguf_type_name(v->type())));
  if (*x == -1 || *x == 0xFFFFFFFFll) {
    *id = Tokenizer::kNoToken;
    return Status::Ok();
  }
  if (*x < 0 || *x >= n_vocab) {
    return bad(key, "token id " + std::to_string(*x) + " is out of range [0, " + std::to_string(n_vocab) + ")");
  }
  *id = static_cast<int32_t>(*x);
  return Status::Ok();
}

Status read_flag(const GgufFile& f, std::string_view key, bool* flag) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return Status::Ok();
  std::optional<bool> b = v->as_bool();
  if (!b) return bad(key, "expected a bool, got " + std::string(gguf_type_name(v->type())));
  *flag = *b;
  return Status::Ok();
}

Status read_merges(const GgufFile& f, Vocab& v) {
  constexpr std::string_view kKey = "tokenizer.ggml.merges";
  const GgufValue* value = f.find(kKey);
  if (value == nullptr) return bad(kKey, "missing (a gpt2 tokenizer needs its merges)");
  const GgufArray* a = value->as_array();
  if (a == nullptr || a->elem_type != GgufType::kString) return bad(kKey, "expected an array of strings");
  v.merges.reserve(a->strings.size());
  std::string joined;
  for (size_t i = 0; i < a->strings.size(); ++i) {
    const std::string& m = a->strings[i];
    // The first space after the first byte separates the two sides (a side
    // can itself start with a raw space in non-byte-level vocabularies).
    size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    if (sp == std::string::npos || sp + 1 >= m.size()) {
      return bad(kKey, "merge " + std::to_string(i) + " is not of the form \"left right\"");
    }
    std::string_view left(m.data(), sp), right(m.data() + sp + 1, m.size() - sp - 1);
    int32_t l = v.find(left), r = v.find(right);
    if (l == Tokenizer::kNoToken || r == Tokenizer::kNoToken) {
      return bad(kKey, "merge " + std::to_string(i) + " names a token that is not in the vocabulary");
    }
    joined.assign(left);
    joined.append(right);
    int32_t res = v.find(joined);
    if (res == Tokenizer::kNoToken) {
      return bad(kKey, "merge " + std::to_string(i) + " makes a token that is not in the vocabulary");
    }
    v.merges.push_back({l, r, res});
  }
  return Status::Ok();
}

}  // namespace

Expected<Vocab> load_vocab(const GgufFile& f) {
  Vocab v;
  {
    Expected<std::string> model = f.get_string("tokenizer.ggml.model");
    if (!model) return model.status().with_context("tokenizer metadata");
    v.model = *model;
  }
  if (v.model != "gpt2" && v.model != "llama") {
    return Unsupported("tokenizer.ggml.model \"" + v.model +
                       "\" is not supported (supported: gpt2 = byte-level BPE, llama = SentencePiece BPE)");
  }
  if (const GgufValue* pre = f.find("tokenizer.ggml.pre")) {
    if (pre->as_string() == nullptr) return bad("tokenizer.ggml.pre", "expected a string");
    v.pre = *pre->as_string();
  }

  constexpr std::string_view kTokens = "tokenizer.ggml.tokens";
  {
    const GgufValue* t = f.find(kTokens);
    if (t == nullptr) return bad(kTokens, "missing");
    const GgufArray* a = t->as_array();
    if (a == nullptr || a->elem_type != GgufType::kString) return bad(kTokens, "expected an array of strings");
    if (a->strings.empty()) return bad(kTokens, "the vocabulary is empty");
    if (a->strings.size() > kMaxVocab) {
      return bad(kTokens, std::to_string(a->strings.size()) + " tokens is more than the limit of " +
                              std::to_string(kMaxVocab));
    }
    for (size_t i = 0; i < a->strings.size(); ++i) {
      if (a->strings[i].size() > kMaxTokenBytes) {
        return bad(kTokens, "token " + std::to_string(i) + " is " + std::to_string(a->strings[i].size()) +
                                " bytes long (limit " + std::to_string(kMaxTokenBytes) + ")");
      }
    }
    v.tokens = a->strings;
  }
  const size_t n = v.tokens.size();
  const int32_t n_vocab = static_cast<int32_t>(n);

  constexpr std::string_view kTypes = "tokenizer.ggml.token_type";
  v.types.assign(n, TokenType::kNormal);
  if (const GgufValue* t = f.find(kTypes)) {
    const GgufArray* a = t->as_array();
    if (a == nullptr || a->elem_type == GgufType::kString || a->elem_type == GgufType::kArray ||
        a->elem_type == GgufType::kFloat32 || a->elem_type == GgufType::kFloat64) {
      return bad(kTypes, "expected an array of integers");
    }
    if (a->size() != n) {
      return bad(kTypes, "has " + std::to_string(a->size()) + " entries for " + std::to_string(n) + " tokens");
    }
    for (size_t i = 0; i < n; ++i) {
      int64_t x = a->int_at(i);
      if (x < 0 || x > 6) return bad(kTypes, "token " + std::to_string(i) + " has unknown type " + std::to_string(x));
      v.types[i] = static_cast<TokenType>(x);
    }
  }

  constexpr std::string_view kScores = "tokenizer.ggml.scores";
  if (const GgufValue* s = f.find(kScores)) {
    const GgufArray* a = s->as_array();
    if (a == nullptr || (a->elem_type != GgufType::kFloat32 && a->elem_type != GgufType::kFloat64)) {
      return bad(kScores, "expected an array of floats");
    }
    if (a->size() != n) {
      return bad(kScores, "has " + std::to_string(a->size()) + " entries for " + std::to_string(n) + " tokens");
    }
    v.scores.resize(n);
    for (size_t i = 0; i < n; ++i) v.scores[i] = static_cast<float>(a->float_at(i));
  }

  v.token_to_id.reserve(n);
  for (int32_t i = 0; i < n_vocab; ++i) v.token_to_id[v.tokens[i]] = i;

  if (v.model == "llama") {
    // llama.cpp's defaults for SentencePiece vocabularies.
    v.unk = 0;
    if (n_vocab > 1) v.bos = 1;
    if (n_vocab > 2) v.eos = 2;
    v.add_bos = true;
    v.add_space_prefix = true;
  } else {
    SUANLI_RETURN_IF_ERROR(read_merges(f, v));
    // llama.cpp adds BOS by default for the Llama 3 pre-tokenizer only.
    v.add_bos = v.pre == "llama-bpe" || v.pre == "llama3";
  }
  SUANLI_RETURN_IF_ERROR(read_token_id(f, "tokenizer.ggml.bos_token_id", n_vocab, &v.bos));
  SUANLI_RETURN_IF_ERROR(read_token_id(f, "tokenizer.ggml.eos_token_id", n_vocab, &v.eos));
  SUANLI_RETURN_IF_ERROR(read_token_id(f, "tokenizer.ggml.unknown_token_id", n_vocab, &v.unk));
  SUANLI_RETURN_IF_ERROR(read_token_id(f, "tokenizer.ggml.eot_token_id", n_vocab, &v.eot));
  SUANLI_RETURN_IF_ERROR(read_token_id(f, "tokenizer.ggml.eom_token_id", n_vocab, &v.eom));
  SUANLI_RETURN_IF_ERROR(read_token_id(f, "tokenizer.ggml.padding_token_id", n_vocab, &v.pad));
  for (std::string_view key : {"tokenizer.ggml.seperator_token_id", "tokenizer.ggml.separator_token_id",
                               "tokenizer.ggml.cls_token_id", "tokenizer.ggml.mask_token_id"}) {
    int32_t unused = Tokenizer::kNoToken;
    SUANLI_RETURN_IF_ERROR(read_token_id(f, key, n_vocab, &unused));
  }
  // Defaults give way when their token is missing; explicit flags must be backed.
  if (v.bos == Tokenizer::kNoToken) v.add_bos = false;
  SUANLI_RETURN_IF_ERROR(read_flag(f, "tokenizer.ggml.add_bos_token", &v.add_bos));
  SUANLI_RETURN_IF_ERROR(read_flag(f, "tokenizer.ggml.add_eos_token", &v.add_eos));
  SUANLI_RETURN_IF_ERROR(read_flag(f, "tokenizer.ggml.add_space_prefix", &v.add_space_prefix));
  if (v.add_bos && v.bos == Tokenizer::kNoToken) {
    return bad("tokenizer.ggml.add_bos_token", "is true but the vocabulary has no BOS token");
  }
  if (v.add_eos && v.eos == Tokenizer::kNoToken) {
    return bad("tokenizer.ggml.add_eos_token", "is true but the vocabulary has no EOS token");
  }
  return v;
}

}  // namespace suanli::tok
