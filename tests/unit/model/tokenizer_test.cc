// Tokenizer tests on tiny hand-made vocabularies written with GgufWriter:
// merge order, byte fallback, special tokens, BOS/EOS, streaming, and
// hostile metadata. Comparison with HF tokenizers on real vocabularies lives
// in tests/py/test_tokenizer_vs_hf.py.
#include "suanli/tokenizer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "suanli/gguf.h"

namespace suanli {
namespace {

// GPT-2 byte-level symbol of a byte, as UTF-8.
std::string byte_symbol(unsigned char b) {
  auto printable = [](int c) { return (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE; };
  uint32_t next = 256, cp = 0;
  for (int c = 0; c < 256; ++c) {
    uint32_t here = printable(c) ? static_cast<uint32_t>(c) : next++;
    if (c == b) cp = here;
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

struct TinyVocab {
  std::string model = "gpt2";
  std::string pre = "gpt-2";
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<float> scores;
  std::vector<std::string> merges;
  std::vector<std::pair<std::string, GgufValue>> extra;

  int32_t add(const std::string& text, int32_t type = 1, float score = 0.0f) {
    tokens.push_back(text);
    types.push_back(type);
    scores.push_back(score);
    return static_cast<int32_t>(tokens.size() - 1);
  }
  int32_t id(const std::string& text) const {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i] == text) return static_cast<int32_t>(i);
    }
    return -1;
  }

  GgufWriter writer() const {
    GgufWriter w;
    w.set("general.architecture", "llama");
    w.set("tokenizer.ggml.model", model);
    if (!pre.empty()) w.set("tokenizer.ggml.pre", pre);
    GgufArray t{GgufType::kString, {}, tokens, {}};
    w.set("tokenizer.ggml.tokens", t);
    GgufArray ty{GgufType::kInt32, {}, {}, {}};
    for (int32_t x : types) {
      auto* p = reinterpret_cast<const uint8_t*>(&x);
      ty.raw.insert(ty.raw.end(), p, p + 4);
    }
    w.set("tokenizer.ggml.token_type", ty);
    if (model == "llama") {
      GgufArray sc{GgufType::kFloat32, {}, {}, {}};
      for (float x : scores) {
        auto* p = reinterpret_cast<const uint8_t*>(&x);
        sc.raw.insert(sc.raw.end(), p, p + 4);
      }
      w.set("tokenizer.ggml.scores", sc);
    } else {
      w.set("tokenizer.ggml.merges", GgufArray{GgufType::kString, {}, merges, {}});
    }
    for (const auto& [k, v] : extra) w.set(k, v);
    return w;
  }
};

Expected<std::shared_ptr<const Tokenizer>> load(const GgufWriter& w) {
  Expected<std::vector<uint8_t>> bytes = w.to_bytes();
  if (!bytes) return bytes.status();
  Expected<GgufFile> f = GgufFile::parse(*bytes);
  if (!f) return f.status();
  return Tokenizer::from_gguf(*f);  // the tokenizer copies what it needs
}

std::shared_ptr<const Tokenizer> load_ok(const TinyVocab& v) {
  auto t = load(v.writer());
  EXPECT_TRUE(t.has_value()) << t.status().to_string();
  return t.has_value() ? *t : nullptr;
}

// A byte-level vocabulary: all 256 byte symbols (ids 0..255), then extras.
TinyVocab byte_level_vocab() {
  TinyVocab v;
  for (int b = 0; b < 256; ++b) v.add(byte_symbol(static_cast<unsigned char>(b)));
  return v;
}

std::vector<int32_t> ids_of(const TinyVocab& v, std::initializer_list<const char*> texts) {
  std::vector<int32_t> out;
  for (const char* t : texts) out.push_back(v.id(t));
  return out;
}

TEST(Tokenizer, bpe_merges_apply_in_rank_order) {
  TinyVocab v = byte_level_vocab();
  v.add("ab");
  v.add("bc");
  v.merges = {"b c", "a b"};
  auto t = load_ok(v);
  EXPECT_EQ(t->encode("abc", false, false), ids_of(v, {"a", "bc"}));

  v.merges = {"a b", "b c"};
  t = load_ok(v);
  EXPECT_EQ(t->encode("abc", false, false), ids_of(v, {"ab", "c"}));
}

TEST(Tokenizer, bpe_equal_ranks_merge_leftmost_first) {
  TinyVocab v = byte_level_vocab();
  v.add("aa");
  v.merges = {"a a"};
  auto t = load_ok(v);
  EXPECT_EQ(t->encode("aaa", false, false), ids_of(v, {"aa", "a"}));
  EXPECT_EQ(t->encode("aaaa", false, false), ids_of(v, {"aa", "aa"}));
}

TEST(Tokenizer, bpe_merges_build_on_merged_symbols) {
  TinyVocab v = byte_level_vocab();
  v.add("ab");
  v.add("abc");
  v.merges = {"a b", "ab c"};
  auto t = load_ok(v);
  EXPECT_EQ(t->encode("abc", false, false), ids_of(v, {"abc"}));
}

TEST(Tokenizer, gpt2_pre_tokenizer_keeps_space_with_the_following_word) {
  TinyVocab v = byte_level_vocab();
  const std::string sp = byte_symbol(' ');  // "Ġ"
  v.add(sp + "a");
  v.add("aa");
  v.merges = {sp + " a", "a a"};
  auto t = load_ok(v);
  // "aa a": words "aa", " a" — no merge across the word boundary.
  EXPECT_EQ(t->encode("aa a", false, false), (std::vector<int32_t>{v.id("aa"), v.id(sp + "a")}));
}

TEST(Tokenizer, smollm_pre_tokenizer_splits_every_digit) {
  TinyVocab v = byte_level_vocab();
  v.pre = "smollm";
  v.add("12");
  v.merges = {"1 2"};
  auto t = load_ok(v);
  EXPECT_EQ(t->encode("12", false, false), ids_of(v, {"1", "2"}));
  v.pre = "gpt-2";
  t = load_ok(v);
  EXPECT_EQ(t->encode("12", false, false), ids_of(v, {"12"}));
}

TEST(Tokenizer, byte_level_encodes_invalid_utf8_through_byte_tokens) {
  TinyVocab v = byte_level_vocab();
  auto t = load_ok(v);
  std::string text = "a\xff\xc3 \x80z";
  std::vector<int32_t> ids = t->encode(text, false, false);
  EXPECT_EQ(ids, (std::vector<int32_t>{'a', 0xff, 0xc3, ' ', 0x80, 'z'}));
  EXPECT_EQ(t->decode(ids, true), text);
}

TEST(Tokenizer, token_bytes_undoes_the_byte_level_mapping) {
  TinyVocab v = byte_level_vocab();
  auto t = load_ok(v);
  EXPECT_EQ(t->token_bytes(' '), " ");
  EXPECT_EQ(t->token_bytes('\n'), "\n");
  EXPECT_EQ(t->token_bytes(0xE2), "\xE2");
  EXPECT_EQ(t->token_bytes(100000), "");
}

// A SentencePiece vocabulary: <unk> <s> </s>, byte tokens, then pieces.
TinyVocab spm_vocab() {
  TinyVocab v;
  v.model = "llama";
  v.pre = "";
  v.add("<unk>", 2);
  v.add("<s>", 3);
  v.add("</s>", 3);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    v.add(name, 6);
  }
  return v;
}

TEST(Tokenizer, spm_prefixes_a_space_and_merges_by_score) {
  TinyVocab v = spm_vocab();
  const std::string u = "\xE2\x96\x81";  // ▁
  v.add(u, 1, -1);
  v.add("a", 1, -1);
  v.add("b", 1, -1);
  v.add(u + "a", 1, -2);
  v.add("ab", 1, -3);
  v.add(u + "ab", 1, -4);
  auto t = load_ok(v);
  // "▁ab": "▁a" (score -2) beats "ab" (-3), then "▁ab".
  EXPECT_EQ(t->encode("ab", true, false), (std::vector<int32_t>{1, v.id(u + "ab")}));
  EXPECT_EQ(t->encode("a b", false, false), (std::vector<int32_t>{v.id(u + "a"), v.id(u), v.id("b")}));
  EXPECT_EQ(t->decode(t->encode("a b", true, false), true), "a b");
  EXPECT_EQ(t->decode(t->encode(" a", true, false), true), " a");
}

TEST(Tokenizer, spm_scores_decide_between_competing_merges) {
  TinyVocab v = spm_vocab();
  const std::string u = "\xE2\x96\x81";
  v.add(u, 1, -1);
  v.add("a", 1, -1);
  v.add("b", 1, -1);
  v.add("c", 1, -1);
  v.add("ab", 1, -5);
  v.add("bc", 1, -2);
  auto t = load_ok(v);
  EXPECT_EQ(t->encode("abc", false, false), (std::vector<int32_t>{v.id(u), v.id("a"), v.id("bc")}));
}

TEST(Tokenizer, spm_merges_across_words_when_a_piece_spans_a_space) {
  TinyVocab v = spm_vocab();
  const std::string u = "\xE2\x96\x81";
  v.add(u, 1, -1);
  v.add("a", 1, -1);
  v.add("b", 1, -1);
  v.add(u + "a", 1, -2);
  v.add("a" + u, 1, -0.5);  // a junction piece: words are not independent
  auto t = load_ok(v);
  EXPECT_EQ(t->encode("a b", false, false), (std::vector<int32_t>{v.id(u), v.id("a" + u), v.id("b")}));
}

TEST(Tokenizer, spm_falls_back_to_bytes_for_unknown_characters) {
  TinyVocab v = spm_vocab();
  const std::string u = "\xE2\x96\x81";
  v.add(u, 1, -1);
  v.add("a", 1, -1);
  auto t = load_ok(v);
  // é = C3 A9 is not a piece.
  EXPECT_EQ(t->encode("a\xC3\xA9", false, false), (std::vector<int32_t>{v.id(u), v.id("a"), 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ(t->decode(t->encode("a\xC3\xA9", false, false), true), "a\xC3\xA9");
  // Invalid UTF-8 goes through byte fallback too.
  EXPECT_EQ(t->encode("\xff", false, false), (std::vector<int32_t>{v.id(u), 3 + 0xff}));
}

TEST(Tokenizer, control_tokens_are_parsed_only_with_parse_special) {
  TinyVocab v = byte_level_vocab();
  int32_t im_start = v.add("<|im_start|>", 3);
  auto t = load_ok(v);
  std::vector<int32_t> parsed = t->encode("x<|im_start|>y", false, true);
  EXPECT_EQ(parsed, (std::vector<int32_t>{'x', im_start, 'y'}));
  std::vector<int32_t> plain = t->encode("x<|im_start|>y", false, false);
  EXPECT_EQ(plain.size(), 14u);
  EXPECT_EQ(t->decode(plain, true), "x<|im_start|>y");
  EXPECT_EQ(t->decode(parsed, true), "xy");
  EXPECT_EQ(t->decode(parsed, false), "x<|im_start|>y");
}

TEST(Tokenizer, user_defined_tokens_are_always_matched_longest_first) {
  TinyVocab v = byte_level_vocab();
  int32_t two = v.add("  ", 4);
  int32_t four = v.add("    ", 4);
  auto t = load_ok(v);
  EXPECT_EQ(t->encode("a      b", false, false), (std::vector<int32_t>{'a', four, two, 'b'}));
  EXPECT_EQ(t->decode(std::vector<int32_t>{four}, true), "    ");
}

TEST(Tokenizer, bos_eos_follow_metadata_and_defaults) {
  TinyVocab g = byte_level_vocab();
  int32_t eos = g.add("<|endoftext|>", 3);
  g.extra = {{"tokenizer.ggml.bos_token_id", uint32_t(eos)}, {"tokenizer.ggml.eos_token_id", uint32_t(eos)}};
  auto t = load_ok(g);
  EXPECT_EQ(t->encode("a", true, true), (std::vector<int32_t>{'a'}));  // gpt2: no BOS by default
  g.extra.push_back({"tokenizer.ggml.add_bos_token", true});
  g.extra.push_back({"tokenizer.ggml.add_eos_token", true});
  t = load_ok(g);
  EXPECT_EQ(t->encode("a", true, true), (std::vector<int32_t>{eos, 'a', eos}));
  EXPECT_EQ(t->encode("a", false, true), (std::vector<int32_t>{'a'}));
  EXPECT_TRUE(t->is_end_of_generation(eos));
  EXPECT_FALSE(t->is_end_of_generation('a'));

  TinyVocab s = spm_vocab();
  s.add("\xE2\x96\x81", 1, -1);
  t = load_ok(s);
  EXPECT_EQ(t->encode("", true, true), (std::vector<int32_t>{1}));  // spm: BOS by default
  s.extra = {{"tokenizer.ggml.add_bos_token", false}};
  t = load_ok(s);
  EXPECT_EQ(t->encode("", true, true), (std::vector<int32_t>{}));
}

TEST(Tokenizer, end_of_turn_control_tokens_end_generation) {
  TinyVocab v = byte_level_vocab();
  int32_t im_end = v.add("<|im_end|>", 3);
  int32_t other = v.add("<|im_start|>", 3);
  int32_t eot = v.add("<turn_end>", 3);
  v.extra = {{"tokenizer.ggml.eot_token_id", uint32_t(eot)}};
  auto t = load_ok(v);
  EXPECT_TRUE(t->is_end_of_generation(im_end));
  EXPECT_TRUE(t->is_end_of_generation(eot));
  EXPECT_FALSE(t->is_end_of_generation(other));
}

TEST(StreamDecoder, never_emits_half_a_character) {
  TinyVocab v = spm_vocab();
  v.add("\xE2\x96\x81", 1, -1);
  v.add("a", 1, -1);
  auto t = load_ok(v);
  const std::string emoji = "\xF0\x9F\x98\x80";  // 😀
  std::vector<int32_t> ids = t->encode("a" + emoji + "a", false, false);
  ASSERT_EQ(ids.size(), 7u);  // ▁ a F0 9F 98 80 a
  StreamDecoder d(t);
  std::vector<std::string> outs;
  for (int32_t id : ids) outs.push_back(d.push(id));
  EXPECT_EQ(outs, (std::vector<std::string>{"", "a", "", "", "", emoji, "a"}));
  EXPECT_EQ(d.flush(), "");
}

TEST(StreamDecoder, byte_level_tokens_split_a_zwj_sequence_safely) {
  TinyVocab v = byte_level_vocab();
  auto t = load_ok(v);
  const std::string family = "\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7";  // 👩‍👧
  StreamDecoder d(t);
  std::string all;
  for (int32_t id : t->encode(family, false, false)) {
    std::string out = d.push(id);
    // Every piece handed out is whole UTF-8.
    for (unsigned char c : out) EXPECT_TRUE(c < 0x80 || c >= 0xC0 || !out.empty());
    all += out;
  }
  all += d.flush();
  EXPECT_EQ(all, family);
}

TEST(StreamDecoder, flush_replaces_an_incomplete_tail) {
  TinyVocab v = byte_level_vocab();
  auto t = load_ok(v);
  StreamDecoder d(t);
  EXPECT_EQ(d.push(0xF0), "");
  EXPECT_EQ(d.push(0x9F), "");
  EXPECT_EQ(d.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(d.push(0x80), "\xEF\xBF\xBD");  // a lone continuation byte can never complete
  EXPECT_EQ(d.push('a'), "a");
}

// Hostile metadata: each must fail to load with a message naming the problem.
void expect_rejected(const GgufWriter& w, const std::string& needle) {
  auto t = load(w);
  ASSERT_FALSE(t.has_value()) << "expected a load error mentioning " << needle;
  EXPECT_NE(t.status().message().find(needle), std::string::npos) << t.status().to_string();
}

TEST(TokenizerLoad, rejects_token_type_count_mismatch) {
  TinyVocab v = byte_level_vocab();
  v.types.pop_back();
  expect_rejected(v.writer(), "token_type");
}

TEST(TokenizerLoad, rejects_score_count_mismatch) {
  TinyVocab v = spm_vocab();
  GgufWriter w = v.writer();
  w.set("tokenizer.ggml.scores", GgufArray{GgufType::kFloat32, {0, 0, 0, 0}, {}, {}});
  expect_rejected(w, "scores");
}

TEST(TokenizerLoad, rejects_merges_naming_unknown_tokens) {
  TinyVocab v = byte_level_vocab();
  v.merges = {"a zz"};
  expect_rejected(v.writer(), "merges");
  v.merges = {"a b"};  // "ab" is not a token
  expect_rejected(v.writer(), "not in the vocabulary");
  v.merges = {"ab"};
  expect_rejected(v.writer(), "left right");
}

TEST(TokenizerLoad, rejects_special_ids_out_of_range) {
  TinyVocab v = byte_level_vocab();
  v.extra = {{"tokenizer.ggml.eos_token_id", uint32_t(256)}};
  expect_rejected(v.writer(), "eos_token_id");
  v.extra = {{"tokenizer.ggml.bos_token_id", int32_t(-7)}};
  expect_rejected(v.writer(), "bos_token_id");
}

TEST(TokenizerLoad, rejects_empty_and_oversized_vocabularies) {
  TinyVocab v = byte_level_vocab();
  v.tokens.clear();
  v.types.clear();
  expect_rejected(v.writer(), "empty");
  v = byte_level_vocab();
  v.tokens[5] = std::string(100000, 'x');
  expect_rejected(v.writer(), "bytes long");
}

TEST(TokenizerLoad, rejects_unknown_models_types_and_pre_tokenizers) {
  TinyVocab v = byte_level_vocab();
  v.model = "bert";
  expect_rejected(v.writer(), "not supported");
  v = byte_level_vocab();
  v.pre = "no-such-pre";
  expect_rejected(v.writer(), "no-such-pre");
  v = byte_level_vocab();
  v.types[3] = 42;
  expect_rejected(v.writer(), "unknown type");
  GgufWriter w = byte_level_vocab().writer();
  w.set("tokenizer.ggml.tokens", uint32_t(5));
  expect_rejected(w, "array of strings");
  w = byte_level_vocab().writer();
  w.set("tokenizer.ggml.add_bos_token", true);
  expect_rejected(w, "no BOS");
}

// The real vocabularies in /work/shared/data/vocab, when present.
std::filesystem::path vocab_dir() {
  for (const char* p : {"/work/shared/data/vocab", "tests/data/vocab"}) {
    if (std::filesystem::is_directory(p)) return p;
  }
  return {};
}

TEST(TokenizerRealVocab, every_shared_vocab_loads_and_round_trips) {
  std::filesystem::path dir = vocab_dir();
  if (dir.empty()) GTEST_SKIP() << "no vocab directory";
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".gguf") continue;
    Expected<GgufFile> f = GgufFile::open(e.path().string());
    ASSERT_TRUE(f.has_value()) << f.status().to_string();
    auto t = Tokenizer::from_gguf(*f);
    ASSERT_TRUE(t.has_value()) << e.path() << ": " << t.status().to_string();
    const std::string text = "Hello world! 你好, мир. 12345 \t\n  x";
    EXPECT_EQ((*t)->decode((*t)->encode(text, false, false), true), text) << e.path();
  }
}

TEST(TokenizerRealVocab, gpt2_hello_world) {
  std::filesystem::path dir = vocab_dir();
  if (dir.empty()) GTEST_SKIP() << "no vocab directory";
  Expected<GgufFile> f = GgufFile::open((dir / "ggml-vocab-gpt-2.gguf").string());
  ASSERT_TRUE(f.has_value());
  auto t = Tokenizer::from_gguf(*f);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ((*t)->encode("Hello world", true, true), (std::vector<int32_t>{15496, 995}));
}

}  // namespace
}  // namespace suanli
