// The JSON automaton against an independent parser (nlohmann::json): fresh
// random JSON objects are accepted byte by byte and end complete; random
// one-byte mutations of them are complete for the automaton exactly when
// nlohmann accepts them as an object. Then the token-level constraint on a
// small hand-made vocabulary.
#include "engine/json_constraint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <string>

namespace suanli {
namespace {

// Random JSON text within the automaton's limits (depth, whitespace runs
// and digits well below them), with escapes and multi-byte UTF-8 in strings.
class Gen {
 public:
  explicit Gen(uint32_t seed) : rng_(seed) {}

  std::string object(int depth = 0) {
    std::string s = "{" + ws();
    const int n = pick(0, depth > 3 ? 1 : 4);
    for (int i = 0; i < n; ++i) {
      if (i) s += "," + ws();
      s += string() + ws() + ":" + ws() + value(depth + 1) + ws();
    }
    return s + "}";
  }

 private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  // Whitespace runs as the automaton takes them: spaces and tabs, at most
  // one newline.
  std::string ws() {
    std::string s;
    switch (pick(0, 5)) {
      case 0: s = "\n"; break;
      case 1: s = " "; break;
      case 2: s = "\t"; break;
      default: return s;
    }
    for (int n = pick(0, 8); n > 0; --n) s += pick(0, 3) ? ' ' : '\t';
    if (pick(0, 3) == 0 && s[0] != '\n') s += "\n";
    return s;
  }
  std::string digits(int n, bool lead_nonzero) {
    std::string s;
    for (int i = 0; i < n; ++i) s += static_cast<char>('0' + pick(i == 0 && lead_nonzero ? 1 : 0, 9));
    return s;
  }
  std::string number() {
    std::string s = pick(0, 1) ? "-" : "";
    s += pick(0, 3) == 0 ? "0" : digits(pick(1, 10), true);
    if (pick(0, 1)) s += "." + digits(pick(1, 10), false);
    if (pick(0, 2) == 0) s += std::string(pick(0, 1) ? "e" : "E") + (pick(0, 1) ? "+" : pick(0, 1) ? "-" : "") +
                              digits(pick(1, 2), false);
    return s;
  }
  std::string string() {
    static const char* kPieces[] = {"a", "Z", " ", "0", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t",
                                    "\\u00e9", "\\u4E2d", "\\uABCD", "\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80",
                                    "\xed\x9f\xbf", "\xf4\x8f\xbf\xbf", "{", "]", ":", ","};
    std::string s = "\"";
    for (int n = pick(0, 6); n > 0; --n) s += kPieces[pick(0, static_cast<int>(std::size(kPieces)) - 1)];
    return s + "\"";
  }
  std::string value(int depth) {
    switch (pick(0, depth > 4 ? 5 : 7)) {
      case 0: return string();
      case 1: return number();
      case 2: return "true";
      case 3: return "false";
      case 4: return "null";
      case 5: return number();
      case 6: return object(depth);
      default: {
        std::string s = "[" + ws();
        const int n = pick(0, 3);
        for (int i = 0; i < n; ++i) s += (i ? "," + ws() : "") + value(depth + 1) + ws();
        return s + "]";
      }
    }
  }
  std::mt19937 rng_;
};

bool automaton_complete(const std::string& text) {
  JsonAutomaton a;
  return a.push(text) && a.complete();
}

bool nlohmann_object(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  return !j.is_discarded() && j.is_object();
}

TEST(JsonAutomaton, accepts_random_objects_byte_by_byte) {
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Gen gen(seed);
  for (int i = 0; i < 2000; ++i) {
    const std::string text = gen.object();
    ASSERT_TRUE(nlohmann_object(text)) << text;  // the generator is right
    JsonAutomaton a;
    for (size_t k = 0; k < text.size(); ++k) {
      ASSERT_FALSE(a.complete()) << text.substr(0, k);
      ASSERT_TRUE(a.push(static_cast<uint8_t>(text[k]))) << "refused byte " << k << " of " << text;
    }
    EXPECT_TRUE(a.complete()) << text;
    EXPECT_TRUE(a.push(" \n")) << "trailing whitespace";
    EXPECT_FALSE(a.push("x")) << "anything after the object";
  }
}

TEST(JsonAutomaton, agrees_with_nlohmann_on_mutated_objects) {
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  Gen gen(seed);
  std::mt19937 rng(seed ^ 0x5bd1e995u);
  const std::string alphabet = "{}[]\":,\\ \n\t-+.0123456789eEtrufalsn\x01\x7f\xc3\xa9\xed\xa0\xf5\xc0\x80";
  int complete = 0;
  const std::regex long_exponent("[0-9][eE][-+]?[0-9]{3}");
  const std::regex two_newlines("\n[ \t]*\n");  // a second newline in a whitespace run
  const std::regex long_digits("[0-9]{" + std::to_string(JsonAutomaton::kMaxDigits + 1) + "}");
  for (int i = 0; i < 20000; ++i) {
    std::string text = gen.object();
    const size_t pos = std::uniform_int_distribution<size_t>(0, text.size())(rng);
    const char c = alphabet[std::uniform_int_distribution<size_t>(0, alphabet.size() - 1)(rng)];
    switch (rng() % 3) {
      case 0: text.insert(text.begin() + static_cast<std::ptrdiff_t>(pos), c); break;
      case 1:
        if (pos < text.size()) text.erase(pos, 1);
        break;
      default:
        if (pos < text.size()) text[pos] = c;
        break;
    }
    // The differences by design: one newline per whitespace run, no \u escape of a surrogate, at most
    // kMaxExpDigits exponent digits and kMaxDigits integer or fraction
    // digits (the generator writes none of these; a mutation may: 12345 ->
    // 12e345, or 1234567890.1234567890 -> 12345678901234567890).
    if (text.find("\\ud") != std::string::npos || text.find("\\uD") != std::string::npos) continue;
    if (std::regex_search(text, long_exponent) || std::regex_search(text, long_digits) ||
        std::regex_search(text, two_newlines)) {
      continue;
    }
    const bool want = nlohmann_object(text);
    EXPECT_EQ(automaton_complete(text), want) << text;
    complete += want;
  }
  EXPECT_GT(complete, 1000);  // the comparison covered both outcomes
}

TEST(JsonAutomaton, refuses_what_strict_parsers_refuse_and_holds_its_limits) {
  for (const char* bad : {"[]", "\"a\"", "1", "{,}", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":01}", "{\"a\":1.}",
                          "{\"a\":.5}", "{\"a\":-}", "{\"a\":1e}", "{\"a\":tru}", "{\"a\":True}", "{'a':1}",
                          "{\"a\":\"\x01\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12g4\"}", "{\"a\":\"\xc0\x80\"}",
                          "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\\ud800\"}",
                          "{\"a\":[1 2]}", "{\"a\":[1,]}", "{\"a\":{]}", "{}}"}) {
    EXPECT_FALSE(automaton_complete(bad)) << bad;
  }
  for (const char* good : {"{}", " {} ", "{\"a\":-0.5e+3}", "{\"\":[[],{},null,true,false,\"\\u00e9\\n\"]}",
                           "{\"a\":\"\xf0\x9f\x98\x80\xe2\x82\xac\"}", "{\"a\":\"\\uD7FF\"}"}) {
    EXPECT_TRUE(automaton_complete(good)) << good;
  }
  // Limits: depth, whitespace runs, digits per part.
  std::string deep = "{\"a\":";
  for (int i = 1; i < JsonAutomaton::kMaxDepth; ++i) deep += "[";
  JsonAutomaton a;
  ASSERT_TRUE(a.push(deep));
  EXPECT_FALSE(a.push("[")) << "nesting past the limit";
  EXPECT_TRUE(a.push("1"));
  JsonAutomaton w;
  EXPECT_TRUE(w.push("{" + std::string(JsonAutomaton::kMaxWhitespace, ' ')));
  EXPECT_FALSE(w.push(" "));
  EXPECT_FALSE(JsonAutomaton().push("{\n \n")) << "one newline per whitespace run";
  EXPECT_FALSE(JsonAutomaton().push("{\r\n")) << "no carriage return";
  EXPECT_TRUE(JsonAutomaton().push("{\n\t  \"a\":\n  1 ,\n  \"b\" : [ 1,\n 2 ]\n}"));
  EXPECT_TRUE(w.push("\"k\":\"" + std::string(200, ' ') + "\"}")) << "spaces inside strings are text";
  JsonAutomaton n;
  EXPECT_TRUE(n.push("{\"a\":" + std::string(JsonAutomaton::kMaxDigits, '9')));
  EXPECT_FALSE(n.push("9"));
  EXPECT_TRUE(n.push(".5e-"));
  EXPECT_TRUE(n.push(std::string(JsonAutomaton::kMaxExpDigits, '9')));
  EXPECT_FALSE(n.push("9"));
  EXPECT_TRUE(n.push("}"));
  EXPECT_TRUE(n.complete());
}

TEST(JsonConstraint, allows_tokens_that_continue_an_object_and_then_only_the_end) {
  // 0 "{", 1 "}", 2 "\"a\"", 3 ":", 4 "1", 5 " ", 6 "}{", 7 "" (no bytes),
  // 8 end of generation, 9 another control token, 10 "{\"a\"", 11 "1}".
  auto table = std::make_shared<const TokenTable>(
      std::vector<std::string>{"{", "}", "\"a\"", ":", "1", " ", "}{", "", "", "", "{\"a\"", "1}"},
      std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0});
  JsonConstraint c(table);
  auto allowed = [&] {
    std::vector<int32_t> ids;
    for (int32_t t = 0; t < 12; ++t) {
      if (c.allows(t)) ids.push_back(t);
    }
    return ids;
  };
  EXPECT_EQ(allowed(), (std::vector<int32_t>{0, 5, 10}));
  c.accept(10);  // {"a"
  EXPECT_EQ(allowed(), (std::vector<int32_t>{3, 5}));
  c.accept(3);
  EXPECT_EQ(allowed(), (std::vector<int32_t>{0, 2, 4, 5, 10, 11}));
  c.accept(11);  // 1}
  EXPECT_TRUE(c.complete());
  EXPECT_EQ(allowed(), (std::vector<int32_t>{8}));
  std::vector<float> logits(14, 1.0f);  // 2 padding ids past the vocabulary
  EXPECT_EQ(c.mask(logits.data(), 14), 1);
  for (int t = 0; t < 14; ++t) EXPECT_EQ(std::isinf(logits[t]), t != 8) << t;
  EXPECT_FALSE(c.allows(-1));
  EXPECT_FALSE(c.allows(12));
}

TEST(JsonConstraint, the_trie_mask_refuses_exactly_what_allows_refuses) {
  // A random vocabulary with shared prefixes and duplicates, random states
  // (prefixes of random objects): mask() must keep exactly the tokens that
  // allows() accepts one by one, and mask every padding id.
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::string alphabet = "{}[]\":,\\ \n-.0123456789eEtrufalsnab\xc3\xa9\xed\x9f";
  std::vector<std::string> bytes;
  std::vector<uint8_t> kind;
  for (int i = 0; i < 3000; ++i) {
    std::string b;
    if (!bytes.empty() && rng() % 3 == 0) b = bytes[rng() % bytes.size()].substr(0, rng() % 4);  // shared prefix
    for (int n = static_cast<int>(rng() % 5); n > 0; --n) b += alphabet[rng() % alphabet.size()];
    bytes.push_back(b);
    kind.push_back(i % 97 == 0 ? 1 : i % 89 == 0 ? 2 : 0);
  }
  for (int c = 0; c < 256; ++c) {  // every byte as a token: any prefix can be spelled
    bytes.push_back(std::string(1, static_cast<char>(c)));
    kind.push_back(0);
  }
  auto table = std::make_shared<const TokenTable>(bytes, kind);
  Gen gen(seed);
  const int64_t n = static_cast<int64_t>(bytes.size()) + 5;
  for (int round = 0; round < 200; ++round) {
    const std::string doc = gen.object();
    const size_t cut = round % 10 == 0 ? doc.size() : rng() % (doc.size() + 1);
    JsonConstraint c(table);
    // The prefix, fed through a one-byte token per byte where the vocabulary has one.
    JsonAutomaton check;
    ASSERT_TRUE(check.push(doc.substr(0, cut)));
    std::vector<int32_t> id_of(256, -1);
    for (size_t i = 0; i < bytes.size(); ++i) {
      if (kind[i] == 0 && bytes[i].size() == 1) id_of[static_cast<uint8_t>(bytes[i][0])] = static_cast<int32_t>(i);
    }
    bool fed = true;
    for (size_t k = 0; k < cut && fed; ++k) {
      const int32_t id = id_of[static_cast<uint8_t>(doc[k])];
      if (id < 0) {
        fed = false;
      } else {
        ASSERT_TRUE(c.allows(id));
        c.accept(id);
      }
    }
    ASSERT_TRUE(fed);
    std::vector<float> logits(static_cast<size_t>(n), 0.5f);
    const int64_t kept = c.mask(logits.data(), n);
    int64_t want = 0;
    for (int64_t i = 0; i < n; ++i) {
      const bool allowed = i < static_cast<int64_t>(bytes.size()) && c.allows(static_cast<int32_t>(i));
      want += allowed;
      EXPECT_EQ(std::isinf(logits[i]), !allowed)
          << "token " << i << " '" << (i < static_cast<int64_t>(bytes.size()) ? bytes[i] : "") << "'";
    }
    EXPECT_EQ(kept, want);
  }
}

}  // namespace
}  // namespace suanli
