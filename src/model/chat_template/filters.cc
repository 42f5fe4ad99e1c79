// Jinja filters, tests and global functions, with jinja2's semantics
// (jinja2/filters.py, tests.py, defaults.py) and HF's overrides: tojson is
// json.dumps(ensure_ascii=False, indent, separators, sort_keys) without
// HTML escaping; raise_exception and strftime_now are globals.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>

#include "interpreter.h"
#include "text.h"

namespace suanli::chat_template_detail {
namespace {

const Value* arg(CallArgs& a, size_t i, std::string_view name) {
  if (i < a.positional.size()) return &a.positional[i];
  for (auto& [k, v] : a.keyword) {
    if (k == name) return &v;
  }
  return nullptr;
}

bool arg_true(CallArgs& a, size_t i, std::string_view name) {
  const Value* v = arg(a, i, name);
  return v && truthy(*v);
}

std::string soft_str(const Value& v) { return to_str(v); }

// jinja2's make_attrgetter: "a.b.0" walks items by key or index.
Expected<Value> attr_path(Interpreter& in, const Value& item, const Value& path) {
  if (path.is_number() && path.kind != Kind::kFloat) return get_item(in, item, path);
  if (!path.is_string()) return get_item(in, item, path);
  Value cur = item;
  size_t pos = 0;
  const std::string& p = path.s();
  while (true) {
    size_t dot = p.find('.', pos);
    std::string part = p.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    Value key = Value::string(part);
    if (!part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      key = Value::integer(std::strtoll(part.c_str(), nullptr, 10));
    }
    SUANLI_ASSIGN_OR_RETURN(cur, get_item(in, cur, key));
    if (dot == std::string::npos) return cur;
    pos = dot + 1;
  }
}

Value lower_if_string(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::string(py_case(v.s(), CaseOp::kLower));
  return v;
}

Status sort_values(Interpreter& in, std::vector<std::pair<Value, Value>>& keyed, bool reverse) {
  SUANLI_RETURN_IF_ERROR(in.charge(keyed.size() * 8));
  Status err;
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    if (!err.ok()) return false;
    Expected<int> c = compare_values(x.first, y.first);
    if (!c) {
      err = c.status();
      return false;
    }
    return reverse ? *c > 0 : *c < 0;
  });
  return err;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// jinja2's title filter: capitalizes after runs of - whitespace ( { [ <.
std::string jinja_title(const std::string& s) {
  std::vector<uint32_t> cps = utf8_decode(s);
  std::string out;
  bool word_start = true;
  std::vector<uint32_t> word;
  auto flush = [&] {
    if (word.empty()) return;
    std::string w = utf8_encode(word, 0, word.size());
    std::vector<uint32_t> first = {word[0]};
    out += py_case(utf8_encode(first, 0, 1), CaseOp::kUpper);
    out += py_case(utf8_encode(word, 1, word.size()), CaseOp::kLower);
    word.clear();
  };
  for (uint32_t c : cps) {
    bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py_isspace(c);
    if (sep) {
      flush();
      utf8_append(out, c);
      word_start = true;
    } else {
      word.push_back(c);
      word_start = false;
    }
  }
  (void)word_start;
  flush();
  return out;
}

Expected<Value> to_int(const Value& v, const Value* def) {
  Value fallback = def ? *def : Value::integer(0);
  switch (v.kind) {
    case Kind::kInt: return v;
    case Kind::kBool: return Value::integer(v.as_int());
    case Kind::kFloat:
      if (!std::isfinite(v.f) || std::fabs(v.f) > 9.2e18) return fallback;
      return Value::integer(static_cast<int64_t>(v.f));
    case Kind::kString: {
      std::string t = py_strip(v.s(), nullptr, true, true);
      char* end = nullptr;
      errno = 0;
      long long x = std::strtoll(t.c_str(), &end, 10);
      if (!t.empty() && end && *end == 0 && errno == 0) return Value::integer(x);
      double d = std::strtod(t.c_str(), &end);
      if (!t.empty() && end && *end == 0 && std::isfinite(d) && std::fabs(d) < 9.2e18) {
        return Value::integer(static_cast<int64_t>(d));
      }
      return fallback;
    }
    default: return fallback;
  }
}

Expected<Value> to_float(const Value& v, const Value* def) {
  Value fallback = def ? *def : Value::floating(0.0);
  if (v.is_number()) return Value::floating(v.as_double());
  if (v.is_string()) {
    std::string t = py_strip(v.s(), nullptr, true, true);
    char* end = nullptr;
    double d = std::strtod(t.c_str(), &end);
    if (!t.empty() && end && *end == 0) return Value::floating(d);
  }
  return fallback;
}

double py_round(double x, int64_t digits) {
  double scale = std::pow(10.0, static_cast<double>(digits));
  double y = x * scale;
  double r = std::nearbyint(y);  // round half to even, as Python's round()
  return r / scale;
}

Expected<Value> indent_filter(Interpreter& in, const Value& v, CallArgs& a) {
  const Value* w = arg(a, 0, "width");
  std::string ind = w && w->is_string() ? w->s() : std::string(static_cast<size_t>(std::clamp<int64_t>(w ? w->as_int() : 4, 0, 1 << 16)), ' ');
  bool first = arg_true(a, 1, "first");
  bool blank = arg_true(a, 2, "blank");
  std::string s = soft_str(v) + "\n";
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t nl = s.find_first_of("\r\n", pos);
    lines.push_back(s.substr(pos, nl - pos));
    pos = nl + ((s[nl] == '\r' && nl + 1 < s.size() && s[nl + 1] == '\n') ? 2 : 1);
  }
  SUANLI_RETURN_IF_ERROR(in.check_string_size(s.size() + lines.size() * ind.size()));
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) rv += "\n" + ind;
      rv += lines[i];
    }
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) rv += "\n" + (lines[i].empty() ? "" : ind) + lines[i];
  }
  if (first) rv = ind + rv;
  return Value::string(std::move(rv));
}

Expected<Value> tojson_filter(Interpreter& in, const Value& v, CallArgs& a) {
  JsonDumpOptions o;
  o.ensure_ascii = arg_true(a, 0, "ensure_ascii");
  const Value* indent = arg(a, 1, "indent");
  if (indent && !indent->is_none() && !indent->is_undefined()) {
    o.indent_set = true;
    if (indent->is_string()) o.indent = indent->s();
    else if (indent->is_number()) o.indent = std::string(static_cast<size_t>(std::clamp<int64_t>(indent->as_int(), 0, 1 << 16)), ' ');
    else return InvalidArgument("tojson: indent must be an integer or a string");
    o.item_separator = ",";
  }
  const Value* seps = arg(a, 2, "separators");
  if (seps && !seps->is_none()) {
    if (!seps->is_sequence() || seps->list->size() != 2 || !(*seps->list)[0].is_string() || !(*seps->list)[1].is_string()) {
      return InvalidArgument("tojson: separators must be a pair of strings");
    }
    o.item_separator = (*seps->list)[0].s();
    o.key_separator = (*seps->list)[1].s();
  }
  o.sort_keys = arg_true(a, 3, "sort_keys");
  SUANLI_ASSIGN_OR_RETURN(std::string text, to_json_text(v, o));
  return in.make_string(std::move(text));
}

// select / reject / selectattr / rejectattr.
Expected<Value> select_filter(Interpreter& in, const Value& v, CallArgs& a, bool by_attr, bool keep_if) {
  SUANLI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
  SUANLI_RETURN_IF_ERROR(in.charge(items.size()));
  size_t next = 0;
  Value attr;
  if (by_attr) {
    if (a.positional.empty()) return InvalidArgument("selectattr/rejectattr need an attribute name");
    attr = a.positional[next++];
  }
  std::string test;
  if (next < a.positional.size()) {
    if (!a.positional[next].is_string()) return InvalidArgument("test name must be a string");
    test = a.positional[next++].s();
  }
  CallArgs test_args;
  test_args.positional.assign(a.positional.begin() + static_cast<long>(next), a.positional.end());
  test_args.keyword = a.keyword;
  ValueList out;
  for (const Value& item : items) {
    Value subject = item;
    if (by_attr) {
      SUANLI_ASSIGN_OR_RETURN(subject, attr_path(in, item, attr));
    }
    bool r = false;
    if (test.empty()) {
      r = truthy(subject);
    } else {
      CallArgs ta = test_args;
      SUANLI_ASSIGN_OR_RETURN(r, apply_test(in, test, subject, ta));
    }
    if (r == keep_if) out.push_back(item);
  }
  return Value::list_of(std::move(out));
}

Expected<Value> map_filter(Interpreter& in, const Value& v, CallArgs& a) {
  SUANLI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
  SUANLI_RETURN_IF_ERROR(in.charge(items.size()));
  ValueList out;
  if (a.positional.empty()) {
    const Value* attr = arg(a, 99, "attribute");
    if (!attr) return InvalidArgument("map requires a filter name or attribute=");
    const Value* def = arg(a, 99, "default");
    for (const Value& item : items) {
      SUANLI_ASSIGN_OR_RETURN(Value x, attr_path(in, item, *attr));
      if (x.is_undefined() && def) x = *def;
      out.push_back(std::move(x));
    }
    return Value::list_of(std::move(out));
  }
  if (!a.positional[0].is_string()) return InvalidArgument("map: filter name must be a string");
  std::string name = a.positional[0].s();
  CallArgs rest;
  rest.positional.assign(a.positional.begin() + 1, a.positional.end());
  rest.keyword = a.keyword;
  for (const Value& item : items) {
    CallArgs fa = rest;
    SUANLI_ASSIGN_OR_RETURN(Value x, apply_filter(in, name, item, fa));
    out.push_back(std::move(x));
  }
  return Value::list_of(std::move(out));
}

Expected<Value> minmax(Interpreter& in, const Value& v, CallArgs& a, bool want_max) {
  SUANLI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
  bool cs = arg_true(a, 0, "case_sensitive");
  const Value* attr = arg(a, 1, "attribute");
  std::vector<std::pair<Value, Value>> keyed;
  for (const Value& item : items) {
    Value k = item;
    if (attr && !attr->is_none()) {
      SUANLI_ASSIGN_OR_RETURN(k, attr_path(in, item, *attr));
    }
    keyed.emplace_back(lower_if_string(k, cs), item);
  }
  if (keyed.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  for (size_t i = 1; i < keyed.size(); ++i) {
    SUANLI_ASSIGN_OR_RETURN(int c, compare_values(keyed[i].first, keyed[best].first));
    if (want_max ? c > 0 : c < 0) best = i;
  }
  return keyed[best].second;
}

}  // namespace

Expected<Value> apply_filter(Interpreter& in, const std::string& name, const Value& v, CallArgs& a) {
  SUANLI_RETURN_IF_ERROR(in.charge(1));
  if (name == "tojson") return tojson_filter(in, v, a);
  if (name == "trim") return Value::string(py_strip(soft_str(v), arg(a, 0, "chars"), true, true));
  if (name == "upper") return Value::string(py_case(soft_str(v), CaseOp::kUpper));
  if (name == "lower") return Value::string(py_case(soft_str(v), CaseOp::kLower));
  if (name == "capitalize") return Value::string(py_case(soft_str(v), CaseOp::kCapitalize));
  if (name == "title") return Value::string(jinja_title(soft_str(v)));
  if (name == "string") return v.is_string() ? v : Value::string(soft_str(v));
  if (name == "safe") return v.is_string() ? v : Value::string(soft_str(v));
  if (name == "escape" || name == "e" || name == "forceescape") return Value::string(html_escape(soft_str(v)));
  if (name == "default" || name == "d") {
    const Value* def = arg(a, 0, "default_value");
    bool boolean = arg_true(a, 1, "boolean");
    if (v.is_undefined() || (boolean && !truthy(v))) return def ? *def : Value::string("");
    return v;
  }
  if (name == "length" || name == "count") {
    switch (v.kind) {
      case Kind::kUndefined: return Value::integer(0);
      case Kind::kString: return Value::integer(static_cast<int64_t>(utf8_length(v.s())));
      case Kind::kList: case Kind::kTuple: return Value::integer(static_cast<int64_t>(v.list->size()));
      case Kind::kDict: return Value::integer(static_cast<int64_t>(v.dict->size()));
      default: return InvalidArgument("object of type '" + std::string(type_name(v)) + "' has no len()");
    }
  }
  if (name == "replace") {
    const Value* old = arg(a, 0, "old");
    const Value* repl = arg(a, 1, "new");
    if (!old || !repl) return InvalidArgument("replace needs old and new strings");
    const Value* count = arg(a, 2, "count");
    std::string s = soft_str(v), o = soft_str(*old), r = soft_str(*repl);
    if (!o.empty()) {
      size_t hits = 0;
      for (size_t f = s.find(o); f != std::string::npos; f = s.find(o, f + o.size())) ++hits;
      SUANLI_RETURN_IF_ERROR(in.check_string_size(s.size() + hits * r.size()));
    } else {
      SUANLI_RETURN_IF_ERROR(in.check_string_size(s.size() + (s.size() + 1) * r.size()));
    }
    return Value::string(py_replace(s, o, r, count && count->is_number() ? count->as_int() : -1));
  }
  if (name == "join") {
    SUANLI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
    const Value* d = arg(a, 0, "d");
    const Value* attr = arg(a, 1, "attribute");
    std::string sep = d ? soft_str(*d) : "";
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      Value x = items[i];
      if (attr && !attr->is_none()) {
        SUANLI_ASSIGN_OR_RETURN(x, attr_path(in, x, *attr));
      }
      if (i) out += sep;
      out += soft_str(x);
      SUANLI_RETURN_IF_ERROR(in.check_string_size(out.size()));
    }
    SUANLI_RETURN_IF_ERROR(in.charge(items.size()));
    return Value::string(std::move(out));
  }
  if (name == "first" || name == "last") {
    if (v.is_undefined()) return Value::undefined("No first item, sequence was empty.");
    SUANLI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
    if (items.empty()) return Value::undefined("No " + name + " item, sequence was empty.");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") {
    SUANLI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
    return Value::list_of(std::move(items));
  }
  if (name == "unique") {
    SUANLI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
    SUANLI_RETURN_IF_ERROR(in.charge(items.size() * items.size() / 16 + items.size()));
    bool cs = arg_true(a, 0, "case_sensitive");
    const Value* attr = arg(a, 1, "attribute");
    ValueList out, seen;
    for (const Value& item : items) {
      Value k = item;
      if (attr && !attr->is_none()) {
        SUANLI_ASSIGN_OR_RETURN(k, attr_path(in, item, *attr));
      }
      k = lower_if_string(k, cs);
      bool dup = std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return values_equal(s, k); });
      if (dup) continue;
      seen.push_back(k);
      out.push_back(item);
    }
    return Value::list_of(std::move(out));
  }
  if (name == "reverse") {
    if (v.is_string()) {
      std::vector<uint32_t> cps = utf8_decode(v.s());
      std::reverse(cps.begin(), cps.end());
      return Value::string(utf8_encode(cps, 0, cps.size()));
    }
    SUANLI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
    std::reverse(items.begin(), items.end());
    return Value::list_of(std::move(items));
  }
  if (name == "sort") {
    SUANLI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
    bool reverse = arg_true(a, 0, "reverse");
    bool cs = arg_true(a, 1, "case_sensitive");
    const Value* attr = arg(a, 2, "attribute");
    std::vector<std::pair<Value, Value>> keyed;
    for (const Value& item : items) {
      Value k = item;
      if (attr && !attr->is_none()) {
        SUANLI_ASSIGN_OR_RETURN(k, attr_path(in, item, *attr));
      }
      keyed.emplace_back(lower_if_string(k, cs), item);
    }
    SUANLI_RETURN_IF_ERROR(sort_values(in, keyed, reverse));
    ValueList out;
    for (auto& kv : keyed) out.push_back(std::move(kv.second));
    return Value::list_of(std::move(out));
  }
  if (name == "items" || name == "dictsort") {
    if (v.is_undefined()) return Value::list_of({});
    if (!v.is_dict()) return InvalidArgument("Can only get item pairs from a mapping.");
    std::vector<std::pair<Value, Value>> keyed;
    bool by_value = false, cs = false, reverse = false;
    if (name == "dictsort") {
      cs = arg_true(a, 0, "case_sensitive");
      const Value* by = arg(a, 1, "by");
      by_value = by && by->is_string() && by->s() == "value";
      reverse = arg_true(a, 2, "reverse");
    }
    for (const auto& [k, x] : *v.dict) {
      SUANLI_ASSIGN_OR_RETURN(Value pair, Value::list_of({Value::string(k), x}, /*tuple=*/true));
      keyed.emplace_back(lower_if_string(by_value ? x : Value::string(k), cs), std::move(pair));
    }
    if (name == "dictsort") SUANLI_RETURN_IF_ERROR(sort_values(in, keyed, reverse));
    ValueList out;
    for (auto& kv : keyed) out.push_back(std::move(kv.second));
    return Value::list_of(std::move(out));
  }
  if (name == "select") return select_filter(in, v, a, false, true);
  if (name == "reject") return select_filter(in, v, a, false, false);
  if (name == "selectattr") return select_filter(in, v, a, true, true);
  if (name == "rejectattr") return select_filter(in, v, a, true, false);
  if (name == "map") return map_filter(in, v, a);
  if (name == "int") return to_int(v, arg(a, 0, "default"));
  if (name == "float") return to_float(v, arg(a, 0, "default"));
  if (name == "abs") {
    if (v.kind == Kind::kFloat) return Value::floating(std::fabs(v.f));
    if (v.is_number()) {
      if (v.as_int() == INT64_MIN) return OutOfRange("integer overflow");
      return Value::integer(std::llabs(v.as_int()));
    }
    return InvalidArgument("bad operand type for abs(): '" + std::string(type_name(v)) + "'");
  }
  if (name == "round") {
    if (!v.is_number()) return InvalidArgument("type " + std::string(type_name(v)) + " doesn't define __round__ method");
    const Value* p = arg(a, 0, "precision");
    const Value* m = arg(a, 1, "method");
    int64_t digits = p && p->is_number() ? std::clamp<int64_t>(p->as_int(), -300, 300) : 0;
    std::string method = m && m->is_string() ? m->s() : "common";
    double scale = std::pow(10.0, static_cast<double>(digits));
    if (method == "ceil") return Value::floating(std::ceil(v.as_double() * scale) / scale);
    if (method == "floor") return Value::floating(std::floor(v.as_double() * scale) / scale);
    if (method != "common") return InvalidArgument("method must be common, ceil or floor");
    return Value::floating(py_round(v.as_double(), digits));
  }
  if (name == "indent") return indent_filter(in, v, a);
  if (name == "wordcount") {
    int64_t n = 0;
    bool in_word = false;
    for (uint32_t c : utf8_decode(soft_str(v))) {
      bool w = c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
      if (w && !in_word) ++n;
      in_word = w;
    }
    return Value::integer(n);
  }
  if (name == "batch") {
    const Value* n = arg(a, 0, "linecount");
    if (!n || !n->is_number() || n->as_int() <= 0) return InvalidArgument("batch needs a positive line count");
    const Value* fill = arg(a, 1, "fill_with");
    SUANLI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
    size_t size = static_cast<size_t>(std::min<int64_t>(n->as_int(), kMaxListItems));
    ValueList out, cur;
    for (const Value& item : items) {
      cur.push_back(item);
      if (cur.size() == size) {
        SUANLI_ASSIGN_OR_RETURN(Value b, Value::list_of(std::move(cur)));
        out.push_back(std::move(b));
        cur.clear();
      }
    }
    if (!cur.empty()) {
      if (fill && !fill->is_none()) {
        while (cur.size() < size) cur.push_back(*fill);
      }
      SUANLI_ASSIGN_OR_RETURN(Value b, Value::list_of(std::move(cur)));
      out.push_back(std::move(b));
    }
    return Value::list_of(std::move(out));
  }
  if (name == "min") return minmax(in, v, a, false);
  if (name == "max") return minmax(in, v, a, true);
  if (name == "sum") {
    SUANLI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
    const Value* attr = arg(a, 0, "attribute");
    const Value* start = arg(a, 1, "start");
    Value acc = start ? *start : Value::integer(0);
    for (const Value& item : items) {
      Value x = item;
      if (attr && !attr->is_none()) {
        SUANLI_ASSIGN_OR_RETURN(x, attr_path(in, item, *attr));
      }
      if (!acc.is_number() || !x.is_number()) return InvalidArgument("sum: items must be numbers");
      if (acc.kind == Kind::kFloat || x.kind == Kind::kFloat) {
        acc = Value::floating(acc.as_double() + x.as_double());
      } else {
        int64_t r = 0;
        if (__builtin_add_overflow(acc.as_int(), x.as_int(), &r)) return OutOfRange("integer overflow");
        acc = Value::integer(r);
      }
    }
    return acc;
  }
  if (name == "attr") {
    const Value* n = arg(a, 0, "name");
    if (!n || !n->is_string()) return InvalidArgument("attr needs an attribute name");
    return get_attr(in, v, n->s());
  }
  if (name == "pprint") return Value::string(to_repr(v));
  if (name == "center") {
    const Value* w = arg(a, 0, "width");
    std::string s = soft_str(v);
    int64_t width = w && w->is_number() ? std::min<int64_t>(w->as_int(), static_cast<int64_t>(in.max_string())) : 80;
    int64_t len = static_cast<int64_t>(utf8_length(s));
    if (width <= len) return Value::string(s);
    int64_t total = width - len, left = total / 2 + (total & width & 1);
    return Value::string(std::string(static_cast<size_t>(left), ' ') + s + std::string(static_cast<size_t>(total - left), ' '));
  }
  return InvalidArgument("no filter named '" + name + "'");
}

Expected<bool> apply_test(Interpreter& in, const std::string& name, const Value& v, CallArgs& a) {
  SUANLI_RETURN_IF_ERROR(in.charge(1));
  const Value* x = arg(a, 0, "other");
  auto need_arg = [&]() -> Status {
    if (!x) return InvalidArgument("test '" + name + "' needs an argument");
    return Status::Ok();
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.kind == Kind::kBool;
  if (name == "true") return v.kind == Kind::kBool && v.b;
  if (name == "false") return v.kind == Kind::kBool && !v.b;
  if (name == "integer") return v.kind == Kind::kInt;
  if (name == "float") return v.kind == Kind::kFloat;
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") {
    return v.is_undefined() || v.is_string() || v.is_sequence() || v.is_dict();
  }
  if (name == "sequence") return v.is_undefined() || v.is_string() || v.is_sequence() || v.is_dict();
  if (name == "callable") return v.kind == Kind::kCallable || v.is_undefined();
  if (name == "escaped") return false;
  if (name == "lower" || name == "upper") {
    std::string s = to_str(v);
    return s == py_case(s, name == "lower" ? CaseOp::kLower : CaseOp::kUpper);
  }
  if (name == "even" || name == "odd" || name == "divisibleby") {
    if (v.is_undefined()) return undefined_error(v);
    if (!v.is_number() || v.kind == Kind::kFloat) return InvalidArgument("test '" + name + "' needs an integer");
    int64_t d = 2;
    if (name == "divisibleby") {
      SUANLI_RETURN_IF_ERROR(need_arg());
      if (!x->is_number() || x->as_int() == 0) return InvalidArgument("divisibleby needs a non-zero integer");
      d = x->as_int();
      if (d == -1) return true;
    }
    int64_t m = v.as_int() % d;
    return name == "odd" ? m != 0 : m == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") {
    SUANLI_RETURN_IF_ERROR(need_arg());
    return values_equal(v, *x);
  }
  if (name == "ne" || name == "!=") {
    SUANLI_RETURN_IF_ERROR(need_arg());
    return !values_equal(v, *x);
  }
  if (name == "lt" || name == "lessthan" || name == "<" || name == "le" || name == "<=" || name == "gt" ||
      name == "greaterthan" || name == ">" || name == "ge" || name == ">=") {
    SUANLI_RETURN_IF_ERROR(need_arg());
    SUANLI_ASSIGN_OR_RETURN(int c, compare_values(v, *x));
    if (name == "lt" || name == "lessthan" || name == "<") return c < 0;
    if (name == "le" || name == "<=") return c <= 0;
    if (name == "gt" || name == "greaterthan" || name == ">") return c > 0;
    return c >= 0;
  }
  if (name == "in") {
    SUANLI_RETURN_IF_ERROR(need_arg());
    return contains(*x, v);
  }
  if (name == "sameas") {
    SUANLI_RETURN_IF_ERROR(need_arg());
    if (v.kind != x->kind) return false;
    if (v.is_none() || v.is_undefined()) return true;
    if (v.kind == Kind::kBool) return v.b == x->b;
    if (v.kind == Kind::kNamespace) return v.ns == x->ns;
    return v.kind == Kind::kInt ? v.i == x->i : false;
  }
  return InvalidArgument("no test named '" + name + "'");
}

void add_globals(DictItems& g) {
  g.emplace_back("range", Value::callable("range", [](Interpreter& in, CallArgs& a) -> Expected<Value> {
    if (a.positional.empty() || a.positional.size() > 3) return InvalidArgument("range expected 1 to 3 arguments");
    int64_t p[3] = {0, 0, 1};
    for (size_t i = 0; i < a.positional.size(); ++i) {
      const Value& x = a.positional[i];
      if (x.is_undefined()) return undefined_error(x);
      if (!x.is_number() || x.kind == Kind::kFloat) {
        return InvalidArgument("'" + std::string(type_name(x)) + "' object cannot be interpreted as an integer");
      }
    }
    if (a.positional.size() == 1) {
      p[1] = a.positional[0].as_int();
    } else {
      p[0] = a.positional[0].as_int();
      p[1] = a.positional[1].as_int();
      if (a.positional.size() == 3) p[2] = a.positional[2].as_int();
    }
    if (p[2] == 0) return InvalidArgument("range() arg 3 must not be zero");
    long double span = (static_cast<long double>(p[1]) - p[0]) / p[2];
    int64_t n = span <= 0 ? 0 : static_cast<int64_t>(std::ceil(span));
    if (n > kMaxRange) {
      return ResourceExhausted("Range too big. The sandbox blocks ranges larger than MAX_RANGE (" +
                               std::to_string(kMaxRange) + ").");
    }
    SUANLI_RETURN_IF_ERROR(in.charge(static_cast<uint64_t>(n)));
    ValueList items;
    items.reserve(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) items.push_back(Value::integer(p[0] + k * p[2]));
    return Value::list_of(std::move(items));
  }));
  auto kwargs_dict = [](CallArgs& a, std::string_view what) -> Expected<DictItems> {
    DictItems items;
    for (const Value& p : a.positional) {
      if (!p.is_dict()) return InvalidArgument(std::string(what) + "() positional argument must be a mapping");
      for (const auto& kv : *p.dict) items.push_back(kv);
    }
    for (auto& [k, v] : a.keyword) {
      bool replaced = false;
      for (auto& [ek, ev] : items) {
        if (ek == k) {
          ev = v;
          replaced = true;
        }
      }
      if (!replaced) items.emplace_back(k, v);
    }
    return items;
  };
  g.emplace_back("dict", Value::callable("dict", [kwargs_dict](Interpreter&, CallArgs& a) -> Expected<Value> {
    SUANLI_ASSIGN_OR_RETURN(DictItems items, kwargs_dict(a, "dict"));
    return Value::dict_of(std::move(items));
  }));
  g.emplace_back("namespace", Value::callable("namespace", [kwargs_dict](Interpreter&, CallArgs& a) -> Expected<Value> {
    SUANLI_ASSIGN_OR_RETURN(DictItems items, kwargs_dict(a, "namespace"));
    Value v = Value::none();
    v.kind = Kind::kNamespace;
    v.ns = std::make_shared<Namespace>();
    v.ns->attrs = std::move(items);
    return v;
  }));
  g.emplace_back("raise_exception", Value::callable("raise_exception", [](Interpreter&, CallArgs& a) -> Expected<Value> {
    std::string msg = a.positional.empty() ? "" : to_str(a.positional[0]);
    return InvalidArgument("raise_exception: " + msg);
  }));
  g.emplace_back("strftime_now", Value::callable("strftime_now", [](Interpreter& in, CallArgs& a) -> Expected<Value> {
    if (a.positional.empty() || !a.positional[0].is_string()) return InvalidArgument("strftime_now needs a format string");
    std::time_t t = in.clock().fixed_time ? *in.clock().fixed_time : std::time(nullptr);
    std::tm tm{};
    if (in.clock().fixed_time) gmtime_r(&t, &tm);
    else localtime_r(&t, &tm);
    const std::string& fmt = a.positional[0].s();
    if (fmt.empty()) return Value::string("");
    for (size_t cap = 256; cap <= (size_t{1} << 16); cap *= 4) {
      std::string buf(cap, '\0');
      size_t n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
      if (n > 0) {
        buf.resize(n);
        return Value::string(std::move(buf));
      }
    }
    return Value::string("");
  }));
}

}  // namespace suanli::chat_template_detail
