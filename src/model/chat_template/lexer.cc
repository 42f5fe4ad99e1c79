// Template lexer. Follows jinja2's lexer rules (jinja2/lexer.py) for the
// settings HF uses: trim_blocks drops the first newline after a block or
// comment tag, lstrip_blocks drops spaces and tabs between a line start and
// a block or comment tag (never a {{ tag), "-" strips all whitespace on
// that side, "+" turns lstrip/trim off for that tag.
#include <cstring>

#include "ast.h"

namespace suanli::chat_template_detail {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {}

  Expected<std::vector<Token>> run() {
    bool line_starting = true;
    while (pos_ < src_.size()) {
      size_t tag = find_tag(pos_);
      std::string text = src_.substr(pos_, (tag == std::string::npos ? src_.size() : tag) - pos_);
      if (tag == std::string::npos) {
        emit_data(text, pos_);
        pos_ = src_.size();
        break;
      }
      char kind = src_[tag + 1];  // '{', '%' or '#'
      char sign = tag + 2 < src_.size() ? src_[tag + 2] : 0;
      if (sign != '-' && sign != '+') sign = 0;
      if (sign == '-') {
        size_t end = text.size();
        while (end > 0 && is_space(text[end - 1])) --end;
        text.resize(end);
      } else if (sign != '+' && kind != '{') {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if (l_pos > 0 || line_starting) {
          bool only_blank = text.find_first_not_of(" \t", l_pos) == std::string::npos;
          if (only_blank) text.resize(l_pos);
        }
      }
      emit_data(text, pos_);
      advance_to(tag);
      size_t after = tag + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        SUANLI_ASSIGN_OR_RETURN(line_starting, comment(after));
        continue;
      }
      Token begin = make(kind == '{' ? TokenType::kVarBegin : TokenType::kBlockBegin, "");
      tokens_.push_back(begin);
      advance_to(after);
      SUANLI_ASSIGN_OR_RETURN(line_starting, inside_tag(kind == '{'));
    }
    Token eof = make(TokenType::kEof, "");
    tokens_.push_back(eof);
    return std::move(tokens_);
  }

 private:
  size_t find_tag(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return std::string::npos;
  }

  // Moves pos_ forward, keeping line and column.
  void advance_to(size_t to) {
    for (; pos_ < to; ++pos_) {
      if (src_[pos_] == '\n') {
        ++line_;
        col_ = 1;
      } else {
        ++col_;
      }
    }
  }

  Token make(TokenType t, std::string text) const {
    Token tok;
    tok.type = t;
    tok.text = std::move(text);
    tok.line = line_;
    tok.column = col_;
    return tok;
  }

  void emit_data(const std::string& text, size_t at) {
    if (text.empty()) return;
    Token t = make(TokenType::kData, text);
    (void)at;
    tokens_.push_back(std::move(t));
  }

  Status error(const std::string& msg) const {
    return InvalidArgument("line " + std::to_string(line_) + ", column " + std::to_string(col_) + ": " + msg);
  }

  // After "{#": finds the end, applies trim; returns whether the match ended a line.
  Expected<bool> comment(size_t after) {
    size_t end = src_.find("#}", after);
    if (end == std::string::npos) return error("missing end of comment tag");
    size_t stop = end + 2;
    if (end > after && src_[end - 1] == '-') {
      while (stop < src_.size() && is_space(src_[stop])) ++stop;
    } else if (!(end > after && src_[end - 1] == '+')) {
      if (stop < src_.size() && src_[stop] == '\n') ++stop;
    }
    bool ends_line = stop > 0 && src_[stop - 1] == '\n';
    advance_to(stop);
    return ends_line;
  }

  // Tokens inside {{ }} or {% %}, through the end tag.
  Expected<bool> inside_tag(bool variable) {
    std::vector<char> balance;
    while (true) {
      if (pos_ >= src_.size()) return error(variable ? "unexpected end of template, expected '}}'" : "unexpected end of template, expected '%}'");
      char c = src_[pos_];
      if (is_space(c)) {
        advance_to(pos_ + 1);
        continue;
      }
      if (balance.empty()) {
        if (variable) {
          bool strip = src_.compare(pos_, 3, "-}}") == 0;
          if (strip || src_.compare(pos_, 2, "}}") == 0) {
            tokens_.push_back(make(TokenType::kVarEnd, ""));
            size_t stop = pos_ + (strip ? 3 : 2);
            if (strip) {
              while (stop < src_.size() && is_space(src_[stop])) ++stop;
            }
            advance_to(stop);
            return src_[stop - 1] == '\n';
          }
        } else {
          bool strip = src_.compare(pos_, 3, "-%}") == 0;
          bool keep = src_.compare(pos_, 3, "+%}") == 0;
          if (strip || keep || src_.compare(pos_, 2, "%}") == 0) {
            tokens_.push_back(make(TokenType::kBlockEnd, ""));
            size_t stop = pos_ + (strip || keep ? 3 : 2);
            if (strip) {
              while (stop < src_.size() && is_space(src_[stop])) ++stop;
            } else if (!keep && stop < src_.size() && src_[stop] == '\n') {
              ++stop;
            }
            advance_to(stop);
            return src_[stop - 1] == '\n';
          }
        }
      }
      if (is_digit(c)) {
        SUANLI_RETURN_IF_ERROR(number());
        continue;
      }
      if (is_name_start(c)) {
        size_t end = pos_;
        while (end < src_.size() && is_name_char(src_[end])) ++end;
        tokens_.push_back(make(TokenType::kName, src_.substr(pos_, end - pos_)));
        advance_to(end);
        continue;
      }
      if (c == '\'' || c == '"') {
        SUANLI_RETURN_IF_ERROR(string_literal(c));
        continue;
      }
      static const char* kOps2[] = {"//", "**", "==", "!=", ">=", "<="};
      std::string op;
      for (const char* o : kOps2) {
        if (src_.compare(pos_, 2, o) == 0) op = o;
      }
      if (op.empty()) {
        if (!std::strchr("+-/*%~[](){}><=.:|,;", c)) return error(std::string("unexpected character '") + c + "'");
        op = std::string(1, c);
      }
      if (op == "(" || op == "[" || op == "{") {
        if (balance.size() >= static_cast<size_t>(kMaxParseDepth)) return error("brackets nested too deeply");
        balance.push_back(op[0] == '(' ? ')' : op[0] == '[' ? ']' : '}');
      } else if (op == ")" || op == "]" || op == "}") {
        if (balance.empty() || balance.back() != op[0]) return error("unexpected '" + op + "'");
        balance.pop_back();
      }
      tokens_.push_back(make(TokenType::kOp, op));
      advance_to(pos_ + op.size());
    }
  }

  // Digits with optional underscores between them.
  size_t digits(size_t p) const {
    while (p < src_.size() && (is_digit(src_[p]) || (src_[p] == '_' && p + 1 < src_.size() && is_digit(src_[p + 1]))))
      ++p;
    return p;
  }

  Status number() {
    size_t p = digits(pos_);
    bool is_float = false;
    bool after_dot = pos_ > 0 && src_[pos_ - 1] == '.';
    if (!after_dot) {
      if (p + 1 < src_.size() && src_[p] == '.' && is_digit(src_[p + 1])) {
        p = digits(p + 1);
        is_float = true;
      }
      if (p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
        size_t q = p + 1;
        if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
        if (q < src_.size() && is_digit(src_[q])) {
          p = digits(q);
          is_float = true;
        }
      }
    }
    std::string text;
    for (size_t k = pos_; k < p; ++k) {
      if (src_[k] != '_') text += src_[k];
    }
    Token t = make(is_float ? TokenType::kFloat : TokenType::kInt, text);
    if (is_float) {
      t.float_value = std::strtod(text.c_str(), nullptr);
    } else {
      int64_t v = 0;
      for (char d : text) {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, d - '0', &v))
          return error("integer literal too large: " + text);
      }
      t.int_value = v;
    }
    tokens_.push_back(std::move(t));
    advance_to(p);
    return Status::Ok();
  }

  // Python string escapes, as jinja2 decodes them ("unicode-escape").
  Status string_literal(char quote) {
    std::string out;
    size_t p = pos_ + 1;
    while (true) {
      if (p >= src_.size()) return error("unterminated string literal");
      char c = src_[p];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        ++p;
        continue;
      }
      if (p + 1 >= src_.size()) return error("unterminated string literal");
      char e = src_[p + 1];
      p += 2;
      switch (e) {
        case '\n': break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case 'x': case 'u': case 'U': {
          int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (int k = 0; k < n; ++k) {
            int h = p < src_.size() ? hex_value(src_[p]) : -1;
            if (h < 0) return error(std::string("truncated \\") + e + " escape in string literal");
            cp = cp * 16 + static_cast<uint32_t>(h);
            ++p;
          }
          if (cp > 0x10ffff) return error("illegal Unicode character in string literal");
          if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd;
          utf8_append(out, cp);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && p < src_.size() && src_[p] >= '0' && src_[p] <= '7'; ++k) cp = cp * 8 + (src_[p++] - '0');
            utf8_append(out, cp);
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    tokens_.push_back(make(TokenType::kString, std::move(out)));
    advance_to(p + 1);
    return Status::Ok();
  }

  std::string src_;
  size_t pos_ = 0;
  int line_ = 1;
  int col_ = 1;
  std::vector<Token> tokens_;
};

}  // namespace

Expected<std::vector<Token>> lex(std::string_view source) {
  std::string s;
  s.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      s += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      s += source[i];
    }
  }
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return Lexer(std::move(s)).run();
}

}  // namespace suanli::chat_template_detail
