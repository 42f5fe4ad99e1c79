// Attribute and item access, slicing, iteration, membership, ordering, and
// the Python methods of str, dict and list that templates call
// (message.content.strip(), tool.items(), '{}'.format(x), ...). Access
// follows jinja2's ImmutableSandboxedEnvironment: methods that would mutate
// a list or dict are unsafe and read as undefined.
#include <utf8proc.h>

#include <algorithm>
#include <set>

#include "interpreter.h"
#include "text.h"

namespace suanli::chat_template_detail {

Status undefined_error(const Value& v) {
  return InvalidArgument(v.s().empty() ? std::string("value is undefined") : v.s());
}

Expected<ValueList> iterate(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined: return ValueList{};
    case Kind::kList: case Kind::kTuple: return *v.list;
    case Kind::kDict: {
      ValueList keys;
      keys.reserve(v.dict->size());
      for (const auto& [k, x] : *v.dict) keys.push_back(Value::string(k));
      return keys;
    }
    case Kind::kString: {
      ValueList chars;
      std::vector<uint32_t> cps = utf8_decode(v.s());
      chars.reserve(cps.size());
      for (uint32_t cp : cps) {
        std::string c;
        utf8_append(c, cp);
        chars.push_back(Value::string(std::move(c)));
      }
      return chars;
    }
    default:
      return InvalidArgument("'" + std::string(type_name(v)) + "' object is not iterable");
  }
}

Expected<bool> contains(const Value& container, const Value& item) {
  switch (container.kind) {
    case Kind::kUndefined: return false;
    case Kind::kString:
      if (item.is_undefined()) return undefined_error(item);
      if (!item.is_string()) {
        return InvalidArgument("'in <string>' requires string as left operand, not " + std::string(type_name(item)));
      }
      return container.s().find(item.s()) != std::string::npos;
    case Kind::kList: case Kind::kTuple:
      for (const Value& x : *container.list) {
        if (values_equal(x, item)) return true;
      }
      return false;
    case Kind::kDict:
      if (!item.is_string()) return false;
      return container.find(item.s()) != nullptr;
    default:
      return InvalidArgument("argument of type '" + std::string(type_name(container)) + "' is not iterable");
  }
}

Expected<int> compare_values(const Value& a, const Value& b) {
  if (a.is_undefined()) return undefined_error(a);
  if (b.is_undefined()) return undefined_error(b);
  if (a.is_number() && b.is_number()) {
    if (a.kind == Kind::kFloat || b.kind == Kind::kFloat) {
      double x = a.as_double(), y = b.as_double();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    int64_t x = a.as_int(), y = b.as_int();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    int c = a.s().compare(b.s());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.kind == b.kind && a.is_sequence()) {
    size_t n = std::min(a.list->size(), b.list->size());
    for (size_t i = 0; i < n; ++i) {
      if (values_equal((*a.list)[i], (*b.list)[i])) continue;
      return compare_values((*a.list)[i], (*b.list)[i]);
    }
    return a.list->size() < b.list->size() ? -1 : a.list->size() > b.list->size() ? 1 : 0;
  }
  return InvalidArgument("'<' not supported between instances of '" + std::string(type_name(a)) + "' and '" +
                         std::string(type_name(b)) + "'");
}

// ---- text helpers (text.h) ----

bool py_isspace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
         cp == 0x3000;
}

std::string py_strip(std::string_view s, const Value* chars, bool left, bool right) {
  std::vector<uint32_t> cps = utf8_decode(s);
  std::set<uint32_t> set;
  bool use_set = chars && chars->is_string();
  if (use_set) {
    for (uint32_t c : utf8_decode(chars->s())) set.insert(c);
  }
  auto strip = [&](uint32_t c) { return use_set ? set.count(c) > 0 : py_isspace(c); };
  size_t b = 0, e = cps.size();
  if (left) {
    while (b < e && strip(cps[b])) ++b;
  }
  if (right) {
    while (e > b && strip(cps[e - 1])) --e;
  }
  if (b == 0 && e == cps.size() && is_ascii(s)) return std::string(s);
  return utf8_encode(cps, b, e);
}

std::string py_case(std::string_view s, CaseOp op) {
  std::vector<uint32_t> cps = utf8_decode(s);
  bool prev_cased = false;
  for (size_t i = 0; i < cps.size(); ++i) {
    int32_t c = static_cast<int32_t>(cps[i]);
    bool cased = utf8proc_tolower(c) != c || utf8proc_toupper(c) != c;
    switch (op) {
      case CaseOp::kUpper: c = utf8proc_toupper(c); break;
      case CaseOp::kLower: c = utf8proc_tolower(c); break;
      case CaseOp::kCapitalize: c = i == 0 ? utf8proc_toupper(c) : utf8proc_tolower(c); break;
      case CaseOp::kTitle: c = prev_cased ? utf8proc_tolower(c) : utf8proc_toupper(c); break;
      case CaseOp::kSwap: c = utf8proc_tolower(c) != c ? utf8proc_tolower(c) : utf8proc_toupper(c); break;
    }
    prev_cased = cased;
    cps[i] = static_cast<uint32_t>(c);
  }
  return utf8_encode(cps, 0, cps.size());
}

std::string py_replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count) {
  std::string out;
  if (old.empty()) {
    std::vector<uint32_t> cps = utf8_decode(s);
    int64_t done = 0;
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) {
        out += repl;
        ++done;
      }
      if (i < cps.size()) utf8_append(out, cps[i]);
    }
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t f = s.find(old, pos);
    if (f == std::string_view::npos) break;
    out.append(s.substr(pos, f - pos));
    out.append(repl);
    pos = f + old.size();
    ++done;
  }
  out.append(s.substr(pos));
  return out;
}

Expected<ValueList> py_split(std::string_view s, const Value* sep, int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  if (!sep || sep->is_none()) {
    std::vector<uint32_t> cps = utf8_decode(s);
    std::vector<std::pair<size_t, size_t>> words;
    size_t i = 0;
    while (i < cps.size()) {
      while (i < cps.size() && py_isspace(cps[i])) ++i;
      if (i == cps.size()) break;
      size_t b = i;
      while (i < cps.size() && !py_isspace(cps[i])) ++i;
      words.emplace_back(b, i);
    }
    if (maxsplit >= 0 && static_cast<int64_t>(words.size()) > maxsplit + 1) {
      // Merge the words past maxsplit (trailing ones, or leading ones for rsplit).
      std::vector<std::pair<size_t, size_t>> merged;
      size_t keep = static_cast<size_t>(maxsplit);
      if (!from_right) {
        merged.assign(words.begin(), words.begin() + keep);
        size_t e = cps.size();
        while (e > words[keep].first && py_isspace(cps[e - 1])) --e;
        merged.emplace_back(words[keep].first, e);
      } else {
        size_t first_kept = words.size() - keep;
        size_t b = 0;
        while (b < cps.size() && py_isspace(cps[b])) ++b;
        merged.emplace_back(b, words[first_kept - 1].second);
        merged.insert(merged.end(), words.begin() + first_kept, words.end());
      }
      words = std::move(merged);
    }
    for (auto [b, e] : words) parts.push_back(utf8_encode(cps, b, e));
  } else {
    if (!sep->is_string()) return InvalidArgument("must be str or None, not " + std::string(type_name(*sep)));
    const std::string& d = sep->s();
    if (d.empty()) return InvalidArgument("empty separator");
    if (!from_right) {
      size_t pos = 0;
      int64_t n = 0;
      while (maxsplit < 0 || n < maxsplit) {
        size_t f = s.find(d, pos);
        if (f == std::string_view::npos) break;
        parts.emplace_back(s.substr(pos, f - pos));
        pos = f + d.size();
        ++n;
      }
      parts.emplace_back(s.substr(pos));
    } else {
      size_t end = s.size();
      int64_t n = 0;
      while (maxsplit < 0 || n < maxsplit) {
        if (end < d.size()) break;
        size_t f = s.rfind(d, end - d.size());
        if (f == std::string_view::npos) break;
        parts.emplace_back(s.substr(f + d.size(), end - f - d.size()));
        end = f;
        ++n;
      }
      parts.emplace_back(s.substr(0, end));
      std::reverse(parts.begin(), parts.end());
    }
  }
  ValueList out;
  out.reserve(parts.size());
  for (std::string& p : parts) out.push_back(Value::string(std::move(p)));
  return out;
}

namespace {

const Value* arg(CallArgs& a, size_t i, std::string_view name) {
  if (i < a.positional.size()) return &a.positional[i];
  for (auto& [k, v] : a.keyword) {
    if (k == name) return &v;
  }
  return nullptr;
}

Status need_string(const Value* v, std::string_view what) {
  if (!v) return InvalidArgument(std::string(what) + "() missing a required argument");
  if (v->is_undefined()) return undefined_error(*v);
  if (!v->is_string()) {
    return InvalidArgument(std::string(what) + "() argument must be str, not " + std::string(type_name(*v)));
  }
  return Status::Ok();
}

// str.format with {} / {0} / {name} fields and {{ }} escapes; no format specs.
Expected<Value> str_format(Interpreter& in, const std::string& fmt, CallArgs& a) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') ++i;
      else return InvalidArgument("Single '}' encountered in format string");
      out += '}';
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    size_t close = fmt.find('}', i);
    if (close == std::string::npos) return InvalidArgument("Single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    i = close;
    bool repr = false;
    size_t bang = field.find('!');
    if (bang != std::string::npos) {
      repr = field.substr(bang + 1) == "r";
      field.resize(bang);
    }
    if (field.find(':') != std::string::npos) return Unsupported("format specs in str.format are not supported");
    const Value* v = nullptr;
    if (field.empty()) {
      if (auto_index >= a.positional.size()) return InvalidArgument("Replacement index out of range for str.format");
      v = &a.positional[auto_index++];
    } else if (std::all_of(field.begin(), field.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      size_t idx = std::stoul(field);
      if (idx >= a.positional.size()) return InvalidArgument("Replacement index out of range for str.format");
      v = &a.positional[idx];
    } else {
      for (auto& [k, x] : a.keyword) {
        if (k == field) v = &x;
      }
      if (!v) return InvalidArgument("KeyError: '" + field + "' in str.format");
    }
    out += repr ? to_repr(*v) : to_str(*v);
    SUANLI_RETURN_IF_ERROR(in.check_string_size(out.size()));
  }
  return Value::string(std::move(out));
}

bool all_cps(const std::string& s, bool (*pred)(uint32_t)) {
  std::vector<uint32_t> cps = utf8_decode(s);
  if (cps.empty()) return false;
  return std::all_of(cps.begin(), cps.end(), pred);
}

bool cp_alpha(uint32_t c) {
  utf8proc_category_t cat = utf8proc_category(static_cast<int32_t>(c));
  return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
}
bool cp_digit(uint32_t c) { return utf8proc_category(static_cast<int32_t>(c)) == UTF8PROC_CATEGORY_ND; }
bool cp_alnum(uint32_t c) { return cp_alpha(c) || cp_digit(c); }
bool cp_space(uint32_t c) { return py_isspace(c); }

// islower/isupper: at least one cased character and none of the other case.
bool cased_test(const std::string& s, bool lower) {
  bool any = false;
  for (uint32_t cp : utf8_decode(s)) {
    int32_t c = static_cast<int32_t>(cp);
    bool is_upper = utf8proc_tolower(c) != c;
    bool is_lower = utf8proc_toupper(c) != c;
    if (lower ? is_upper : is_lower) return false;
    if (lower ? is_lower : is_upper) any = true;
  }
  return any;
}

Expected<Value> string_method(Interpreter& in, const Value& self, const std::string& name, CallArgs& a) {
  const std::string& s = self.s();
  SUANLI_RETURN_IF_ERROR(in.charge(1 + s.size() / 64));
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const Value* chars = arg(a, 0, "chars");
    return Value::string(py_strip(s, chars, name != "rstrip", name != "lstrip"));
  }
  if (name == "upper") return Value::string(py_case(s, CaseOp::kUpper));
  if (name == "lower" || name == "casefold") return Value::string(py_case(s, CaseOp::kLower));
  if (name == "title") return Value::string(py_case(s, CaseOp::kTitle));
  if (name == "capitalize") return Value::string(py_case(s, CaseOp::kCapitalize));
  if (name == "swapcase") return Value::string(py_case(s, CaseOp::kSwap));
  if (name == "split" || name == "rsplit") {
    const Value* sep = arg(a, 0, "sep");
    const Value* maxsplit = arg(a, 1, "maxsplit");
    int64_t m = maxsplit && maxsplit->is_number() ? maxsplit->as_int() : -1;
    SUANLI_ASSIGN_OR_RETURN(ValueList parts, py_split(s, sep, m, name == "rsplit"));
    return Value::list_of(std::move(parts));
  }
  if (name == "splitlines") {
    ValueList lines;
    size_t pos = 0;
    while (pos < s.size()) {
      size_t nl = s.find_first_of("\r\n", pos);
      if (nl == std::string::npos) {
        lines.push_back(Value::string(s.substr(pos)));
        break;
      }
      lines.push_back(Value::string(s.substr(pos, nl - pos)));
      pos = nl + ((s[nl] == '\r' && nl + 1 < s.size() && s[nl + 1] == '\n') ? 2 : 1);
    }
    return Value::list_of(std::move(lines));
  }
  if (name == "startswith" || name == "endswith") {
    const Value* p = arg(a, 0, "prefix");
    if (!p) return InvalidArgument(name + "() takes at least 1 argument");
    std::vector<std::string> options;
    if (p->kind == Kind::kTuple) {
      for (const Value& x : *p->list) {
        SUANLI_RETURN_IF_ERROR(need_string(&x, name));
        options.push_back(x.s());
      }
    } else {
      SUANLI_RETURN_IF_ERROR(need_string(p, name));
      options.push_back(p->s());
    }
    for (const std::string& o : options) {
      bool hit = name == "startswith" ? s.compare(0, o.size(), o) == 0
                                      : (s.size() >= o.size() && s.compare(s.size() - o.size(), o.size(), o) == 0);
      if (hit) return Value::boolean(true);
    }
    return Value::boolean(false);
  }
  if (name == "replace") {
    const Value* old = arg(a, 0, "old");
    const Value* repl = arg(a, 1, "new");
    SUANLI_RETURN_IF_ERROR(need_string(old, name));
    SUANLI_RETURN_IF_ERROR(need_string(repl, name));
    const Value* count = arg(a, 2, "count");
    int64_t n = count && count->is_number() ? count->as_int() : -1;
    if (!old->s().empty() && !repl->s().empty()) {
      size_t hits = 0;
      for (size_t f = s.find(old->s()); f != std::string::npos; f = s.find(old->s(), f + old->s().size())) ++hits;
      SUANLI_RETURN_IF_ERROR(in.check_string_size(s.size() + hits * repl->s().size()));
    } else if (old->s().empty()) {
      SUANLI_RETURN_IF_ERROR(in.check_string_size(s.size() + (s.size() + 1) * repl->s().size()));
    }
    return Value::string(py_replace(s, old->s(), repl->s(), n));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    const Value* sub = arg(a, 0, "sub");
    SUANLI_RETURN_IF_ERROR(need_string(sub, name));
    const std::string& t = sub->s();
    if (name == "count") {
      if (t.empty()) return Value::integer(static_cast<int64_t>(utf8_length(s)) + 1);
      int64_t n = 0;
      for (size_t f = s.find(t); f != std::string::npos; f = s.find(t, f + t.size())) ++n;
      return Value::integer(n);
    }
    size_t f = (name == "find" || name == "index") ? s.find(t) : s.rfind(t);
    if (f == std::string::npos) {
      if (name == "index" || name == "rindex") return InvalidArgument("substring not found");
      return Value::integer(-1);
    }
    return Value::integer(static_cast<int64_t>(utf8_length(std::string_view(s).substr(0, f))));
  }
  if (name == "join") {
    const Value* it = arg(a, 0, "iterable");
    if (!it) return InvalidArgument("join() takes exactly one argument");
    SUANLI_ASSIGN_OR_RETURN(ValueList items, iterate(*it));
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      SUANLI_RETURN_IF_ERROR(need_string(&items[i], "join"));
      if (i) out += s;
      out += items[i].s();
      SUANLI_RETURN_IF_ERROR(in.check_string_size(out.size()));
    }
    return Value::string(std::move(out));
  }
  if (name == "format") return str_format(in, s, a);
  if (name == "isdigit" || name == "isnumeric" || name == "isdecimal") return Value::boolean(all_cps(s, cp_digit));
  if (name == "isalpha") return Value::boolean(all_cps(s, cp_alpha));
  if (name == "isalnum") return Value::boolean(all_cps(s, cp_alnum));
  if (name == "isspace") return Value::boolean(all_cps(s, cp_space));
  if (name == "islower") return Value::boolean(cased_test(s, true));
  if (name == "isupper") return Value::boolean(cased_test(s, false));
  return Internal("unhandled str method " + name);
}

Expected<Value> dict_method(const Value& self, const std::string& name, CallArgs& a) {
  if (name == "get") {
    const Value* key = arg(a, 0, "key");
    if (!key) return InvalidArgument("get expected at least 1 argument, got 0");
    const Value* def = arg(a, 1, "default");
    if (key->is_string()) {
      if (const Value* v = self.find(key->s())) return *v;
    }
    return def ? *def : Value::none();
  }
  ValueList out;
  for (const auto& [k, v] : *self.dict) {
    if (name == "keys") out.push_back(Value::string(k));
    else if (name == "values") out.push_back(v);
    else {
      SUANLI_ASSIGN_OR_RETURN(Value pair, Value::list_of({Value::string(k), v}, /*tuple=*/true));
      out.push_back(std::move(pair));
    }
  }
  return Value::list_of(std::move(out));
}

Expected<Value> list_method(const Value& self, const std::string& name, CallArgs& a) {
  const Value* x = arg(a, 0, "value");
  if (!x) return InvalidArgument(name + "() takes exactly one argument");
  int64_t n = 0;
  for (size_t i = 0; i < self.list->size(); ++i) {
    if (values_equal((*self.list)[i], *x)) {
      if (name == "index") return Value::integer(static_cast<int64_t>(i));
      ++n;
    }
  }
  if (name == "index") return InvalidArgument(to_repr(*x) + " is not in list");
  return Value::integer(n);
}

const std::set<std::string>& string_methods() {
  static const std::set<std::string> k = {
      "strip", "lstrip", "rstrip", "upper", "lower", "casefold", "title", "capitalize", "swapcase", "split",
      "rsplit", "splitlines", "startswith", "endswith", "replace", "find", "rfind", "index", "rindex", "count",
      "join", "format", "isdigit", "isnumeric", "isdecimal", "isalpha", "isalnum", "isspace", "islower", "isupper"};
  return k;
}

Value bound_method(const Value& self, const std::string& name) {
  return Value::callable(name, [self, name](Interpreter& in, CallArgs& a) -> Expected<Value> {
    switch (self.kind) {
      case Kind::kString: return string_method(in, self, name, a);
      case Kind::kDict: return dict_method(self, name, a);
      default: return list_method(self, name, a);
    }
  });
}

// The object's own attribute, as Python's getattr would find it; nullopt
// when there is none. Mutating methods exist but are unsafe (undefined).
std::optional<Value> python_attr(const Value& obj, const std::string& name) {
  static const std::set<std::string> kDictSafe = {"items", "keys", "values", "get"};
  static const std::set<std::string> kDictUnsafe = {"pop", "popitem", "setdefault", "update", "clear", "copy", "fromkeys"};
  static const std::set<std::string> kListSafe = {"index", "count"};
  static const std::set<std::string> kListUnsafe = {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear", "copy"};
  auto unsafe = [&] {
    return Value::undefined("access to attribute '" + name + "' of '" + std::string(type_name(obj)) +
                            "' object is unsafe");
  };
  switch (obj.kind) {
    case Kind::kString:
      if (string_methods().count(name)) return bound_method(obj, name);
      break;
    case Kind::kDict:
      if (kDictSafe.count(name)) return bound_method(obj, name);
      if (kDictUnsafe.count(name)) return unsafe();
      break;
    case Kind::kList: case Kind::kTuple:
      if (kListSafe.count(name)) return bound_method(obj, name);
      if (obj.kind == Kind::kList && kListUnsafe.count(name)) return unsafe();
      break;
    default:
      break;
  }
  return std::nullopt;
}

Value missing(const Value& obj, const std::string& what) {
  return Value::undefined("'" + std::string(type_name(obj)) + " object' has no attribute " + what);
}

}  // namespace

Expected<Value> get_attr(Interpreter& in, const Value& obj, const std::string& name) {
  (void)in;
  if (obj.is_undefined()) return undefined_error(obj);
  if (std::optional<Value> a = python_attr(obj, name)) return *a;
  if (obj.kind == Kind::kDict || obj.kind == Kind::kNamespace) {
    if (const Value* v = obj.find(name)) return *v;
  }
  return missing(obj, "'" + name + "'");
}

Expected<Value> get_item(Interpreter& in, const Value& obj, const Value& key) {
  (void)in;
  if (obj.is_undefined()) return undefined_error(obj);
  switch (obj.kind) {
    case Kind::kList: case Kind::kTuple: case Kind::kString:
      if (key.is_number() && key.kind != Kind::kFloat) {
        int64_t i = key.as_int();
        if (obj.kind == Kind::kString) {
          std::vector<uint32_t> cps = utf8_decode(obj.s());
          int64_t n = static_cast<int64_t>(cps.size());
          if (i < 0) i += n;
          if (i < 0 || i >= n) return Value::undefined("string index out of range");
          return Value::string(utf8_encode(cps, static_cast<size_t>(i), static_cast<size_t>(i) + 1));
        }
        int64_t n = static_cast<int64_t>(obj.list->size());
        if (i < 0) i += n;
        if (i < 0 || i >= n) return Value::undefined("'" + std::string(type_name(obj)) + " object' has no element " + to_str(key));
        return (*obj.list)[static_cast<size_t>(i)];
      }
      break;
    case Kind::kDict:
      if (key.is_string()) {
        if (const Value* v = obj.find(key.s())) return *v;
      }
      break;
    default:
      break;
  }
  if (key.is_string()) {
    if (std::optional<Value> a = python_attr(obj, key.s())) return *a;
    if (obj.kind == Kind::kNamespace) {
      if (const Value* v = obj.find(key.s())) return *v;
    }
  }
  return missing(obj, to_repr(key));
}

Expected<Value> slice(Interpreter& in, const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) return undefined_error(obj);
  auto as_index = [](const Value& v, int64_t* out) -> Status {
    if (v.is_none()) return Status::Ok();
    if (!v.is_number() || v.kind == Kind::kFloat) {
      return InvalidArgument("slice indices must be integers or None");
    }
    *out = v.as_int();
    return Status::Ok();
  };
  int64_t st = 1;
  SUANLI_RETURN_IF_ERROR(as_index(step, &st));
  if (st == 0) return InvalidArgument("slice step cannot be zero");
  std::vector<uint32_t> cps;
  int64_t n = 0;
  if (obj.is_string()) {
    cps = utf8_decode(obj.s());
    n = static_cast<int64_t>(cps.size());
  } else if (obj.is_sequence()) {
    n = static_cast<int64_t>(obj.list->size());
  } else {
    return InvalidArgument("'" + std::string(type_name(obj)) + "' object is not subscriptable");
  }
  int64_t lo = st > 0 ? 0 : n - 1, hi = st > 0 ? n : -1;
  auto clamp = [&](const Value& v, int64_t* out) -> Status {
    if (v.is_none()) return Status::Ok();
    int64_t i = 0;
    SUANLI_RETURN_IF_ERROR(as_index(v, &i));
    if (i < 0) i += n;
    if (st > 0) i = std::clamp<int64_t>(i, 0, n);
    else i = std::clamp<int64_t>(i, -1, n - 1);
    *out = i;
    return Status::Ok();
  };
  SUANLI_RETURN_IF_ERROR(clamp(start, &lo));
  SUANLI_RETURN_IF_ERROR(clamp(stop, &hi));
  SUANLI_RETURN_IF_ERROR(in.charge(static_cast<uint64_t>(n)));
  std::vector<size_t> picks;
  for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st) picks.push_back(static_cast<size_t>(i));
  if (obj.is_string()) {
    std::string out;
    for (size_t i : picks) utf8_append(out, cps[i]);
    return Value::string(std::move(out));
  }
  ValueList out;
  out.reserve(picks.size());
  for (size_t i : picks) out.push_back((*obj.list)[i]);
  return Value::list_of(std::move(out), obj.kind == Kind::kTuple);
}

}  // namespace suanli::chat_template_detail
