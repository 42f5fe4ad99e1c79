#include "engine/json_constraint.h"

#include "engine/json_schema.h"

#include <algorithm>
#include <limits>

namespace suanli {
namespace {

bool is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
bool is_hex(uint8_t c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

constexpr std::string_view kLiterals[3] = {"true", "false", "null"};

// Number parts (sub_ in kNumber).
enum : uint8_t { kMinus, kZero, kInt, kDot, kFrac, kE, kESign, kExp };
bool number_can_end(uint8_t part) { return part == kZero || part == kInt || part == kFrac || part == kExp; }

// String states (sub_ in kString).
enum : uint8_t {
  kPlain = 0,
  kEscape = 1,
  kHex1 = 11,  // kHex1 + n - 1: n hex digits still to come
  kHex4 = 14,
  kHexAfterD = 16,  // "\uD": the next digit must be 0-7 (no surrogate code points)
  kCont1 = 20,      // one continuation byte 80-BF to come
  kCont2 = 21,      // two, the first 80-BF
  kCont2E0 = 22,    // two, the first A0-BF (no overlong forms)
  kCont2ED = 23,    // two, the first 80-9F (no surrogates)
  kCont3F0 = 24,    // three, the first 90-BF (no overlong forms)
  kCont3 = 25,      // three, the first 80-BF
  kCont3F4 = 26,    // three, the first 80-8F (nothing above U+10FFFF)
};

}  // namespace

bool JsonAutomaton::push(std::string_view bytes) {
  JsonAutomaton s = *this;
  for (const char ch : bytes) {
    if (!s.step(static_cast<uint8_t>(ch))) return false;
  }
  *this = s;
  return true;
}

bool JsonAutomaton::push(uint8_t c) {
  JsonAutomaton s = *this;
  if (!s.step(c)) return false;
  *this = s;
  return true;
}

// One byte; on false the state is garbage (push works on a copy).
bool JsonAutomaton::step(uint8_t c) {
  switch (mode_) {
    case Mode::kString: return string_byte(c);
    case Mode::kLiteral: {
      const std::string_view lit = kLiterals[aux_];
      if (c != static_cast<uint8_t>(lit[sub_])) return false;
      if (++sub_ == lit.size()) end_value();
      return true;
    }
    case Mode::kNumber: {
      if (number_byte(c)) return true;
      if (!number_can_end(sub_)) return false;
      // The number ends before c: c must continue what follows it.
      end_value();
      return step(c);
    }
    default: break;
  }
  if (is_ws(c)) return !(any_value_ && mode_ == Mode::kStart) && whitespace_step(c, &ws_, kMaxWhitespace);
  switch (mode_) {
    case Mode::kStart:
      if (any_value_) return value_start(c);
      if (c != '{') return false;
      ws_ = 0;
      stack_ = 1;
      depth_ = 1;
      mode_ = Mode::kKeyOrEnd;
      return true;
    case Mode::kValue: return value_start(c);
    case Mode::kValueOrEnd: return c == ']' ? close(c) : value_start(c);
    case Mode::kKeyOrEnd:
    case Mode::kKey:
      if (c == '}' && mode_ == Mode::kKeyOrEnd) return close(c);
      if (c != '"') return false;
      ws_ = 0;
      mode_ = Mode::kString;
      sub_ = kPlain;
      aux_ = 1;  // a key
      return true;
    case Mode::kColon:
      if (c != ':') return false;
      ws_ = 0;
      mode_ = Mode::kValue;
      return true;
    case Mode::kAfter:
      if (c == ',') {
        ws_ = 0;
        mode_ = is_object_top() ? Mode::kKey : Mode::kValue;
        return true;
      }
      return close(c);
    default: return false;  // kDone: only whitespace
  }
}

bool JsonAutomaton::value_start(uint8_t c) {
  ws_ = 0;
  switch (c) {
    case '{':
    case '[':
      if (depth_ >= kMaxDepth) return false;
      if (c == '{') {
        stack_ |= uint64_t{1} << depth_;
      } else {
        stack_ &= ~(uint64_t{1} << depth_);
      }
      ++depth_;
      mode_ = c == '{' ? Mode::kKeyOrEnd : Mode::kValueOrEnd;
      return true;
    case '"':
      mode_ = Mode::kString;
      sub_ = kPlain;
      aux_ = 0;
      return true;
    case 't':
    case 'f':
    case 'n':
      mode_ = Mode::kLiteral;
      aux_ = c == 't' ? 0 : c == 'f' ? 1 : 2;
      sub_ = 1;
      return true;
    default:
      if (c == '-' || is_digit(c)) {
        mode_ = Mode::kNumber;
        sub_ = c == '-' ? kMinus : c == '0' ? kZero : kInt;
        aux_ = c == '-' ? 0 : 1;
        return true;
      }
      return false;
  }
}

bool JsonAutomaton::number_byte(uint8_t c) {
  auto digit = [&](uint8_t next_part, bool first) {
    if (!first && aux_ >= (next_part == kExp ? kMaxExpDigits : kMaxDigits)) return false;
    aux_ = first ? 1 : aux_ + 1;
    sub_ = next_part;
    return true;
  };
  switch (sub_) {
    case kMinus:
      if (c == '0') return digit(kZero, true);
      return is_digit(c) && digit(kInt, true);
    case kZero:
    case kInt:
      if (sub_ == kInt && is_digit(c)) return digit(kInt, false);
      if (c == '.') return sub_ = kDot, true;
      if (c == 'e' || c == 'E') return sub_ = kE, true;
      return false;
    case kDot: return is_digit(c) && digit(kFrac, true);
    case kFrac:
      if (is_digit(c)) return digit(kFrac, false);
      if (c == 'e' || c == 'E') return sub_ = kE, true;
      return false;
    case kE:
      if (c == '+' || c == '-') return sub_ = kESign, true;
      return is_digit(c) && digit(kExp, true);
    case kESign: return is_digit(c) && digit(kExp, true);
    case kExp: return is_digit(c) && digit(kExp, false);
    default: return false;
  }
}

bool JsonAutomaton::string_byte(uint8_t c) {
  switch (sub_) {
    case kPlain:
      if (c == '"') {
        if (aux_ == 1) {
          mode_ = Mode::kColon;
        } else {
          end_value();
        }
        return true;
      }
      if (c == '\\') return sub_ = kEscape, true;
      if (c < 0x20) return false;
      if (c < 0x80) return true;
      if (c >= 0xC2 && c <= 0xDF) return sub_ = kCont1, true;
      if (c == 0xE0) return sub_ = kCont2E0, true;
      if (c == 0xED) return sub_ = kCont2ED, true;
      if (c >= 0xE1 && c <= 0xEF) return sub_ = kCont2, true;
      if (c == 0xF0) return sub_ = kCont3F0, true;
      if (c >= 0xF1 && c <= 0xF3) return sub_ = kCont3, true;
      if (c == 0xF4) return sub_ = kCont3F4, true;
      return false;
    case kEscape:
      if (c == 'u') return sub_ = kHex4, true;
      if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
        return sub_ = kPlain, true;
      }
      return false;
    case kHex4:
      if (c == 'd' || c == 'D') return sub_ = kHexAfterD, true;
      return is_hex(c) && (sub_ = kHex4 - 1, true);
    case kHexAfterD: return c >= '0' && c <= '7' && (sub_ = kHex1 + 1, true);
    case kHex1 + 2:
    case kHex1 + 1:
    case kHex1: return is_hex(c) && (sub_ = sub_ == kHex1 ? kPlain : sub_ - 1, true);
    case kCont1: return c >= 0x80 && c <= 0xBF && (sub_ = kPlain, true);
    case kCont2: return c >= 0x80 && c <= 0xBF && (sub_ = kCont1, true);
    case kCont2E0: return c >= 0xA0 && c <= 0xBF && (sub_ = kCont1, true);
    case kCont2ED: return c >= 0x80 && c <= 0x9F && (sub_ = kCont1, true);
    case kCont3F0: return c >= 0x90 && c <= 0xBF && (sub_ = kCont2, true);
    case kCont3: return c >= 0x80 && c <= 0xBF && (sub_ = kCont2, true);
    case kCont3F4: return c >= 0x80 && c <= 0x8F && (sub_ = kCont2, true);
    default: return false;
  }
}

bool JsonAutomaton::can_end() const { return complete() || (in_top_number() && number_can_end(sub_)); }

void JsonAutomaton::end_value() {
  ws_ = 0;
  mode_ = depth_ == 0 ? Mode::kDone : Mode::kAfter;
}

bool JsonAutomaton::close(uint8_t c) {
  if (depth_ == 0) return false;
  if (c != (is_object_top() ? '}' : ']')) return false;
  --depth_;
  stack_ &= ~(uint64_t{1} << depth_);
  end_value();
  return true;
}

TokenTable::TokenTable(const Tokenizer& tok) {
  const int32_t n = tok.n_vocab();
  bytes.resize(static_cast<size_t>(n));
  kind.resize(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    kind[i] = tok.is_end_of_generation(i) ? 1 : tok.is_special(i) ? 2 : 0;
    if (kind[i] == 0) bytes[i] = tok.token_bytes(i);
  }
  index();
}

TokenTable::TokenTable(std::vector<std::string> b, std::vector<uint8_t> k) : bytes(std::move(b)), kind(std::move(k)) {
  index();
}

void TokenTable::index() {
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (kind[i] == 0 && !bytes[i].empty()) sorted.push_back(static_cast<int32_t>(i));
  }
  std::sort(sorted.begin(), sorted.end(), [&](int32_t a, int32_t b) { return bytes[a] < bytes[b]; });
  lcp.assign(sorted.size(), 0);
  for (size_t i = 0; i < sorted.size(); ++i) {
    const std::string& cur = bytes[sorted[i]];
    max_len = std::max(max_len, cur.size());
    if (i == 0) continue;
    const std::string& prev = bytes[sorted[i - 1]];
    size_t l = 0;
    while (l < prev.size() && l < cur.size() && prev[l] == cur[l]) ++l;
    lcp[i] = static_cast<int32_t>(l);
  }
}

JsonConstraint::JsonConstraint(std::shared_ptr<const TokenTable> table, std::shared_ptr<const JsonSchema> schema)
    : table_(std::move(table)), schema_(schema ? std::move(schema) : JsonSchema::any_object()),
      state_(std::make_unique<SchemaAutomaton>(schema_.get())) {}

JsonConstraint::~JsonConstraint() = default;

bool JsonConstraint::complete() const { return state_->complete(); }

bool JsonConstraint::allows(int32_t token) const {
  if (token < 0 || static_cast<size_t>(token) >= table_->kind.size()) return false;
  switch (table_->kind[token]) {
    case 1: return state_->complete();
    case 2: return false;
    default: break;
  }
  const std::string& b = table_->bytes[token];
  if (b.empty() || state_->complete()) return false;
  SchemaAutomaton s = *state_;
  return s.push(b);
}

int64_t JsonConstraint::mask(float* logits, int64_t n) const {
  const float ninf = -std::numeric_limits<float>::infinity();
  const TokenTable& t = *table_;
  const int64_t vocab = std::min<int64_t>(n, static_cast<int64_t>(t.kind.size()));
  std::vector<uint8_t> ok(static_cast<size_t>(vocab), 0);
  int64_t allowed = 0;
  const bool done = state_->complete();
  // End-of-generation tokens: exactly when the object is complete, and then
  // nothing else.
  for (int64_t i = 0; i < vocab; ++i) {
    if (t.kind[i] == 1 && done) ok[i] = 1;
  }
  if (!done) {
    // The sorted tokens as a trie: states[d] is the state after the first d
    // bytes of the current token; `valid` of them are known good, and a
    // prefix of length `bad` was refused (every following token that shares
    // it is refused without a walk).
    std::vector<SchemaAutomaton> states(t.max_len + 1, *state_);
    size_t valid = 0, bad = std::numeric_limits<size_t>::max();
    for (size_t i = 0; i < t.sorted.size(); ++i) {
      const int32_t id = t.sorted[i];
      const std::string& b = t.bytes[id];
      const size_t l = static_cast<size_t>(t.lcp[i]);
      if (bad <= l) continue;  // shares the refused prefix
      bad = std::numeric_limits<size_t>::max();
      size_t d = std::min(valid, l);
      for (; d < b.size(); ++d) {
        states[d + 1] = states[d];
        if (!states[d + 1].push(static_cast<uint8_t>(b[d]))) break;
      }
      if (d < b.size()) {
        bad = d + 1;
        valid = d;
        continue;
      }
      valid = b.size();
      if (id < vocab) ok[id] = 1;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    if (i < vocab && ok[i]) {
      ++allowed;
    } else {
      logits[i] = ninf;
    }
  }
  return allowed;
}

void JsonConstraint::accept(int32_t token) {
  if (token < 0 || static_cast<size_t>(token) >= table_->kind.size() || table_->kind[token] != 0) return;
  state_->push(table_->bytes[token]);
}

}  // namespace suanli
