// Template values: what Jinja expressions evaluate to. Python's object model
// reduced to what chat templates touch: undefined, none, bool, int, float,
// str, list, tuple, dict (insertion ordered, string keys), namespace and
// callables. Lists, tuples and dicts are immutable once built (HF renders in
// an ImmutableSandboxedEnvironment) and shared by pointer, so copying a
// Value is cheap; a namespace is the one mutable object.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "suanli/status.h"

namespace suanli::chat_template_detail {

class Interpreter;
struct Value;

using ValueList = std::vector<Value>;
using DictItems = std::vector<std::pair<std::string, Value>>;

// Arguments of a call: positional, then keyword.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

struct Callable {
  std::string name;
  std::function<Expected<Value>(Interpreter&, CallArgs&)> fn;
};

struct Namespace {
  DictItems attrs;
};

enum class Kind : uint8_t {
  kUndefined,
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kList,
  kTuple,
  kDict,
  kNamespace,
  kCallable,
};

// Containers deeper than this are refused when built, so that printing,
// comparing and freeing a value never recurses without bound.
inline constexpr uint32_t kMaxValueDepth = 256;

struct Value {
  Kind kind = Kind::kUndefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  uint32_t depth = 0;  // containers: 1 + the deepest element's depth
  // kString: the text; kUndefined: why it is undefined (for errors). Shared,
  // so copying a Value never copies a (possibly huge) string.
  std::shared_ptr<const std::string> str;
  std::shared_ptr<const ValueList> list;  // kList, kTuple
  std::shared_ptr<const DictItems> dict;  // kDict
  std::shared_ptr<Namespace> ns;          // kNamespace
  std::shared_ptr<const Callable> fn;     // kCallable

  static Value undefined(std::string why = {}) {
    Value v;
    if (!why.empty()) v.str = std::make_shared<const std::string>(std::move(why));
    return v;
  }
  static Value none() { return make(Kind::kNone); }
  static Value boolean(bool x) {
    Value v = make(Kind::kBool);
    v.b = x;
    return v;
  }
  static Value integer(int64_t x) {
    Value v = make(Kind::kInt);
    v.i = x;
    return v;
  }
  static Value floating(double x) {
    Value v = make(Kind::kFloat);
    v.f = x;
    return v;
  }
  static Value string(std::string x) {
    Value v = make(Kind::kString);
    v.str = std::make_shared<const std::string>(std::move(x));
    return v;
  }
  // Containers: fail when nesting would pass kMaxValueDepth.
  static Expected<Value> list_of(ValueList items, bool tuple = false);
  static Expected<Value> dict_of(DictItems items);
  static Value callable(std::string name, std::function<Expected<Value>(Interpreter&, CallArgs&)> fn) {
    Value v = make(Kind::kCallable);
    v.fn = std::make_shared<Callable>(Callable{std::move(name), std::move(fn)});
    return v;
  }

  const std::string& s() const {
    static const std::string kEmpty;
    return str ? *str : kEmpty;
  }
  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_none() const { return kind == Kind::kNone; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_number() const { return kind == Kind::kInt || kind == Kind::kFloat || kind == Kind::kBool; }
  bool is_sequence() const { return kind == Kind::kList || kind == Kind::kTuple; }
  bool is_dict() const { return kind == Kind::kDict; }
  double as_double() const { return kind == Kind::kFloat ? f : static_cast<double>(kind == Kind::kBool ? b : i); }
  int64_t as_int() const { return kind == Kind::kBool ? b : i; }

  // Dict lookup; nullptr when absent (or not a dict).
  const Value* find(std::string_view key) const;

 private:
  static Value make(Kind k) {
    Value v;
    v.kind = k;
    return v;
  }
};

// Python's truthiness.
bool truthy(const Value& v);
// Python's == (1 == 1.0 == True; containers element-wise).
bool values_equal(const Value& a, const Value& b);
// Python's str() and repr().
std::string to_str(const Value& v);
std::string to_repr(const Value& v);
// The type name Python would print in an error ("str", "dict", ...).
std::string_view type_name(const Value& v);
// Python's repr() of a float ("1.0", "1e+20", "0.0001").
std::string format_float(double x);

// JSON in (context) and out (tojson, as Python's json.dumps).
Expected<Value> from_json(const nlohmann::ordered_json& j);
struct JsonDumpOptions {
  bool ensure_ascii = false;
  bool indent_set = false;
  std::string indent;  // used when indent_set
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};
Expected<std::string> to_json_text(const Value& v, const JsonDumpOptions& options);

// UTF-8 helpers: strings index by code point, as Python's do.
std::vector<uint32_t> utf8_decode(std::string_view s);
void utf8_append(std::string& out, uint32_t cp);
std::string utf8_encode(const std::vector<uint32_t>& cps, size_t begin, size_t end);
bool is_ascii(std::string_view s);
size_t utf8_length(std::string_view s);

}  // namespace suanli::chat_template_detail
