// Template values: Python semantics for truthiness, equality, str(), repr()
// and json.dumps, plus the UTF-8 helpers that make strings index by code
// point.
#include "value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace suanli::chat_template_detail {

namespace {

uint32_t max_depth(const ValueList& items) {
  uint32_t d = 0;
  for (const Value& v : items) d = std::max(d, v.depth);
  return d;
}

Status too_deep() {
  return ResourceExhausted("value nesting deeper than " + std::to_string(kMaxValueDepth) + " levels");
}

}  // namespace

Expected<Value> Value::list_of(ValueList items, bool tuple) {
  uint32_t d = max_depth(items) + 1;
  if (d > kMaxValueDepth) return too_deep();
  Value v = make(tuple ? Kind::kTuple : Kind::kList);
  v.depth = d;
  v.list = std::make_shared<const ValueList>(std::move(items));
  return v;
}

Expected<Value> Value::dict_of(DictItems items) {
  uint32_t d = 0;
  for (const auto& [k, x] : items) d = std::max(d, x.depth);
  if (++d > kMaxValueDepth) return too_deep();
  Value v = make(Kind::kDict);
  v.depth = d;
  v.dict = std::make_shared<const DictItems>(std::move(items));
  return v;
}

const Value* Value::find(std::string_view key) const {
  if (kind == Kind::kDict) {
    for (const auto& [k, x] : *dict) {
      if (k == key) return &x;
    }
  } else if (kind == Kind::kNamespace) {
    for (const auto& [k, x] : ns->attrs) {
      if (k == key) return &x;
    }
  }
  return nullptr;
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined: case Kind::kNone: return false;
    case Kind::kBool: return v.b;
    case Kind::kInt: return v.i != 0;
    case Kind::kFloat: return v.f != 0;
    case Kind::kString: return !v.s().empty();
    case Kind::kList: case Kind::kTuple: return !v.list->empty();
    case Kind::kDict: return !v.dict->empty();
    default: return true;
  }
}

bool values_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind == Kind::kFloat || b.kind == Kind::kFloat) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::kUndefined: case Kind::kNone: return true;
    case Kind::kString: return a.s() == b.s();
    case Kind::kList: case Kind::kTuple: {
      if (a.list->size() != b.list->size()) return false;
      for (size_t i = 0; i < a.list->size(); ++i) {
        if (!values_equal((*a.list)[i], (*b.list)[i])) return false;
      }
      return true;
    }
    case Kind::kDict: {
      if (a.dict->size() != b.dict->size()) return false;
      for (const auto& [k, x] : *a.dict) {
        const Value* y = b.find(k);
        if (!y || !values_equal(x, *y)) return false;
      }
      return true;
    }
    case Kind::kNamespace: return a.ns == b.ns;
    case Kind::kCallable: return a.fn == b.fn;
    default: return false;
  }
}

std::string format_float(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  if (x == 0) return std::signbit(x) ? "-0.0" : "0.0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  // sci: [-]d[.ddd]e[+-]XX
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  int exp = std::stoi(sci.substr(e + 1));
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  std::string out = neg ? "-" : "";
  if (exp < -4 || exp >= 16) {
    out += digits[0];
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    return out + eb;
  }
  if (exp < 0) return out + "0." + std::string(-exp - 1, '0') + digits;
  size_t int_len = static_cast<size_t>(exp) + 1;
  if (digits.size() <= int_len) return out + digits + std::string(int_len - digits.size(), '0') + ".0";
  return out + digits.substr(0, int_len) + "." + digits.substr(int_len);
}

namespace {

std::string repr_string(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char q = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, q);
  for (uint32_t cp : utf8_decode(s)) {
    char buf[16];
    if (cp == '\\') out += "\\\\";
    else if (cp == static_cast<uint32_t>(q)) { out += '\\'; out += q; }
    else if (cp == '\n') out += "\\n";
    else if (cp == '\r') out += "\\r";
    else if (cp == '\t') out += "\\t";
    else if (cp < 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0xad) {
      std::snprintf(buf, sizeof buf, "\\x%02x", cp);
      out += buf;
    } else {
      utf8_append(out, cp);
    }
  }
  out += q;
  return out;
}

void repr_into(std::string& out, const Value& v) {
  switch (v.kind) {
    case Kind::kString: out += repr_string(v.s()); return;
    case Kind::kList: case Kind::kTuple: {
      bool tuple = v.kind == Kind::kTuple;
      out += tuple ? '(' : '[';
      for (size_t i = 0; i < v.list->size(); ++i) {
        if (i) out += ", ";
        repr_into(out, (*v.list)[i]);
      }
      if (tuple && v.list->size() == 1) out += ',';
      out += tuple ? ')' : ']';
      return;
    }
    case Kind::kDict: {
      out += '{';
      bool first = true;
      for (const auto& [k, x] : *v.dict) {
        if (!first) out += ", ";
        first = false;
        out += repr_string(k) + ": ";
        repr_into(out, x);
      }
      out += '}';
      return;
    }
    case Kind::kNamespace: {
      out += "<Namespace {";
      bool first = true;
      for (const auto& [k, x] : v.ns->attrs) {
        if (!first) out += ", ";
        first = false;
        out += repr_string(k) + ": ";
        repr_into(out, x);
      }
      out += "}>";
      return;
    }
    case Kind::kUndefined: out += "Undefined"; return;
    default: out += to_str(v); return;
  }
}

}  // namespace

std::string to_str(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined: return "";
    case Kind::kNone: return "None";
    case Kind::kBool: return v.b ? "True" : "False";
    case Kind::kInt: return std::to_string(v.i);
    case Kind::kFloat: return format_float(v.f);
    case Kind::kString: return v.s();
    case Kind::kCallable: return "<function " + v.fn->name + ">";
    default: return to_repr(v);
  }
}

std::string to_repr(const Value& v) {
  std::string out;
  repr_into(out, v);
  return out;
}

std::string_view type_name(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kNone: return "NoneType";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kList: return "list";
    case Kind::kTuple: return "tuple";
    case Kind::kDict: return "dict";
    case Kind::kNamespace: return "Namespace";
    case Kind::kCallable: return "function";
  }
  return "object";
}

namespace {

// `depth`: containers around j. Refused before recursing, so a deeply
// nested document fails with a message instead of overflowing the stack
// (list_of / dict_of would only see the depth on the way back up).
Expected<Value> from_json_at(const nlohmann::ordered_json& j, uint32_t depth) {
  using T = nlohmann::ordered_json::value_t;
  if (j.is_structured() && depth + 1 > kMaxValueDepth) return too_deep();
  switch (j.type()) {
    case T::null: case T::discarded: return Value::none();
    case T::boolean: return Value::boolean(j.get<bool>());
    case T::number_integer: return Value::integer(j.get<int64_t>());
    case T::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::floating(static_cast<double>(u));
      return Value::integer(static_cast<int64_t>(u));
    }
    case T::number_float: return Value::floating(j.get<double>());
    case T::string: return Value::string(j.get<std::string>());
    case T::array: {
      ValueList items;
      items.reserve(j.size());
      for (const auto& x : j) {
        SUANLI_ASSIGN_OR_RETURN(Value v, from_json_at(x, depth + 1));
        items.push_back(std::move(v));
      }
      return Value::list_of(std::move(items));
    }
    case T::object: {
      DictItems items;
      items.reserve(j.size());
      for (const auto& [k, x] : j.items()) {
        SUANLI_ASSIGN_OR_RETURN(Value v, from_json_at(x, depth + 1));
        items.emplace_back(k, std::move(v));
      }
      return Value::dict_of(std::move(items));
    }
    case T::binary: return InvalidArgument("binary JSON values are not supported in a template context");
  }
  return Value::none();
}

}  // namespace

Expected<Value> from_json(const nlohmann::ordered_json& j) { return from_json_at(j, 0); }

namespace {

void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  char buf[16];
  auto escape_cp = [&](uint32_t cp) {
    std::snprintf(buf, sizeof buf, "\\u%04x", cp);
    out += buf;
  };
  for (uint32_t cp : utf8_decode(s)) {
    switch (cp) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (cp < 0x20) {
          escape_cp(cp);
        } else if (ensure_ascii && cp > 0x7e) {
          if (cp >= 0x10000) {
            uint32_t c = cp - 0x10000;
            escape_cp(0xd800 + (c >> 10));
            escape_cp(0xdc00 + (c & 0x3ff));
          } else {
            escape_cp(cp);
          }
        } else {
          utf8_append(out, cp);
        }
    }
  }
  out += '"';
}

Status dump(std::string& out, const Value& v, const JsonDumpOptions& o, int level) {
  auto newline = [&](int lvl) {
    out += '\n';
    for (int k = 0; k < lvl; ++k) out += o.indent;
  };
  switch (v.kind) {
    case Kind::kNone: out += "null"; return Status::Ok();
    case Kind::kBool: out += v.b ? "true" : "false"; return Status::Ok();
    case Kind::kInt: out += std::to_string(v.i); return Status::Ok();
    case Kind::kFloat:
      if (std::isnan(v.f)) out += "NaN";
      else if (std::isinf(v.f)) out += v.f > 0 ? "Infinity" : "-Infinity";
      else out += format_float(v.f);
      return Status::Ok();
    case Kind::kString: json_string(out, v.s(), o.ensure_ascii); return Status::Ok();
    case Kind::kList: case Kind::kTuple: {
      if (v.list->empty()) { out += "[]"; return Status::Ok(); }
      out += '[';
      for (size_t i = 0; i < v.list->size(); ++i) {
        if (i) out += o.item_separator;
        if (o.indent_set) newline(level + 1);
        SUANLI_RETURN_IF_ERROR(dump(out, (*v.list)[i], o, level + 1));
      }
      if (o.indent_set) newline(level);
      out += ']';
      return Status::Ok();
    }
    case Kind::kDict: {
      if (v.dict->empty()) { out += "{}"; return Status::Ok(); }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : *v.dict) items.push_back(&kv);
      if (o.sort_keys) {
        std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
      }
      out += '{';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += o.item_separator;
        if (o.indent_set) newline(level + 1);
        json_string(out, items[i]->first, o.ensure_ascii);
        out += o.key_separator;
        SUANLI_RETURN_IF_ERROR(dump(out, items[i]->second, o, level + 1));
      }
      if (o.indent_set) newline(level);
      out += '}';
      return Status::Ok();
    }
    default:
      return InvalidArgument("tojson: Object of type " + std::string(type_name(v)) + " is not JSON serializable");
  }
}

}  // namespace

Expected<std::string> to_json_text(const Value& v, const JsonDumpOptions& options) {
  std::string out;
  SUANLI_RETURN_IF_ERROR(dump(out, v, options, 0));
  return out;
}

std::vector<uint32_t> utf8_decode(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    uint32_t cp = c;
    size_t n = 1;
    if (c >= 0xf0 && c < 0xf8) { cp = c & 0x07; n = 4; }
    else if (c >= 0xe0) { cp = c & 0x0f; n = 3; }
    else if (c >= 0xc0) { cp = c & 0x1f; n = 2; }
    else if (c >= 0x80) n = 0;  // stray continuation byte
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (!ok) {
      out.push_back(0xfffd);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += n;
  }
  return out;
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

std::string utf8_encode(const std::vector<uint32_t>& cps, size_t begin, size_t end) {
  std::string out;
  for (size_t k = begin; k < end; ++k) utf8_append(out, cps[k]);
  return out;
}

bool is_ascii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

size_t utf8_length(std::string_view s) {
  if (is_ascii(s)) return s.size();
  return utf8_decode(s).size();
}

}  // namespace suanli::chat_template_detail
