// JSON-constrained generation (the OpenAI API's response_format
// {"type": "json_object"}, and json_schema through json_schema.h): which
// tokens may come next so that the output stays a prefix of one JSON object,
// and ends exactly when it is complete.
//
// JsonAutomaton is a byte-level recognizer of JSON text (RFC 8259) whose top
// level value is an object (or, in any_value mode, any one value), with
// limits that keep a small model from looping inside the grammar:
// - nesting at most kMaxDepth;
// - at most kMaxWhitespace whitespace bytes in a row, with at most one
//   newline among them and no carriage return (as llama.cpp's JSON grammar:
//   a space, or a newline and indentation);
// - at most kMaxDigits digits in a number's integer or fraction part and
//   kMaxExpDigits in its exponent (so every number fits a double: parsers
//   such as nlohmann::json refuse 1e400).
// Strings must be valid UTF-8 without raw control characters (surrogate code
// points and overlong forms are refused, as strict decoders do). Its state is
// a few bytes (the container stack is a bit set), so trying a token from the
// current state is a copy and a walk over the token's bytes.
//
// JsonConstraint applies a SchemaAutomaton (json_schema.h; for json_object
// the schema "any object", which runs this automaton) to tokens: a token is
// allowed when all of its bytes are (a token with no bytes, or a control
// token, never is); an end-of-generation token is allowed exactly when the
// object is complete, and then nothing else is. The engine draws as usual
// and, only when the drawn token is not allowed, masks every token that is
// not and draws again (llama.cpp's grammar sampler does the same), so the
// constraint costs one walk per step unless the model strays.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "suanli/tokenizer.h"

namespace suanli {

// One whitespace byte between tokens: `run` counts the run's bytes and
// keeps, in its top bit, whether the run has its newline. False when c is
// not allowed there (see JsonAutomaton).
inline bool whitespace_step(uint8_t c, uint8_t* run, int max_bytes) {
  const bool nl = *run & 0x80;
  const int n = *run & 0x7f;
  if (c == '\r' || (c == '\n' && nl) || n >= max_bytes) return false;
  *run = static_cast<uint8_t>((n + 1) | (nl || c == '\n' ? 0x80 : 0));
  return true;
}

class JsonAutomaton {
 public:
  static constexpr int kMaxDepth = 64;
  static constexpr int kMaxWhitespace = 32;
  static constexpr int kMaxDigits = 20;
  static constexpr int kMaxExpDigits = 2;

  JsonAutomaton() = default;
  // any_value: one JSON value of any kind, starting at the first byte (no
  // leading whitespace); for the schema automaton (json_schema.h).
  explicit JsonAutomaton(bool any_value) : any_value_(any_value) {}

  // Feeds one byte; false (and the state unchanged) if it cannot continue a
  // JSON object text.
  bool push(uint8_t c);
  bool push(std::string_view bytes);  // all or none
  // The bytes so far are one whole JSON object (trailing whitespace aside).
  bool complete() const { return mode_ == Mode::kDone; }
  // complete(), or a top-level number that may end here (a number's end is
  // only seen at the byte after it).
  bool can_end() const;
  // Inside a top-level number (any_value mode).
  bool in_top_number() const { return mode_ == Mode::kNumber && depth_ == 0; }

 private:
  bool step(uint8_t c);
  enum class Mode : uint8_t {
    kStart,      // before the top-level object
    kValue,      // a value is expected
    kValueOrEnd, // after '[': a value or ']'
    kKeyOrEnd,   // after '{': a key or '}'
    kKey,        // after ',' in an object: a key
    kColon,      // after a key
    kAfter,      // after a value inside a container: ',' or the closer
    kString,     // inside a string (key or value)
    kNumber,
    kLiteral,    // inside true / false / null
    kDone,       // the top-level object is closed
  };
  bool value_start(uint8_t c);
  bool string_byte(uint8_t c);
  bool number_byte(uint8_t c);
  // The state after a value (string, number, literal, container) ends.
  void end_value();
  bool close(uint8_t c);
  bool is_object_top() const { return (stack_ >> (depth_ - 1)) & 1; }

  uint64_t stack_ = 0;  // bit i: container i is an object (1) or an array (0)
  uint8_t depth_ = 0;
  Mode mode_ = Mode::kStart;
  uint8_t sub_ = 0;     // string: escape / \u digits / UTF-8 state; number: part; literal: position
  uint8_t aux_ = 0;     // string: is a key; number: digits in the part; literal: which one
  uint8_t ws_ = 0;      // the whitespace run (whitespace_step)
  bool any_value_ = false;
};

// The bytes of every token of a vocabulary and which ids are control or
// end-of-generation tokens: built once per tokenizer, shared by requests.
// The ordinary tokens are also kept sorted by their bytes, with each one's
// common prefix length with the one before: mask() walks them as a trie,
// so tokens sharing a refused prefix cost one comparison each.
struct TokenTable {
  explicit TokenTable(const Tokenizer& tok);
  TokenTable(std::vector<std::string> b, std::vector<uint8_t> k);
  std::vector<std::string> bytes;
  std::vector<uint8_t> kind;  // 0 ordinary, 1 end of generation, 2 other control / unknown
  std::vector<int32_t> sorted;  // ordinary tokens with bytes, by bytes
  std::vector<int32_t> lcp;     // lcp[i]: common prefix of sorted[i - 1] and sorted[i] (0 for i = 0)
  size_t max_len = 0;

 private:
  void index();
};

class JsonSchema;
class SchemaAutomaton;

class JsonConstraint {
 public:
  // Any JSON object, or one valid under `schema` (json_schema.h).
  explicit JsonConstraint(std::shared_ptr<const TokenTable> table, std::shared_ptr<const JsonSchema> schema = nullptr);
  ~JsonConstraint();
  bool allows(int32_t token) const;
  // Sets logits[i] = -inf for every token in [0, n) not allowed now (ids
  // past the vocabulary too: a model's rows can be wider than its
  // tokenizer); returns how many stay allowed.
  int64_t mask(float* logits, int64_t n) const;
  // Advances over an allowed token (EOG tokens leave the state as it is).
  void accept(int32_t token);
  bool complete() const;

 private:
  std::shared_ptr<const TokenTable> table_;
  std::shared_ptr<const JsonSchema> schema_;
  std::unique_ptr<SchemaAutomaton> state_;
};

}  // namespace suanli
