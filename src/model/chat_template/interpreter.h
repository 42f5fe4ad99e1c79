// The tree-walking interpreter behind ChatTemplate::render, and the entry
// points of the builtins (builtins.cc) it dispatches to. One Interpreter
// lives for one render; it owns the budgets (steps, output and string
// sizes, call depth) that keep hostile templates bounded.
#pragma once

#include <string>
#include <vector>

#include "ast.h"
#include "suanli/chat_template.h"
#include "value.h"

namespace suanli::chat_template_detail {

// Longest list a template may build (repetition, concatenation, range...).
inline constexpr size_t kMaxListItems = size_t{1} << 20;
// jinja2's sandbox refuses larger ranges (MAX_RANGE); so do we.
inline constexpr int64_t kMaxRange = 100000;
// Interpreter recursion (statements + expressions + macro calls) that is
// safe on a default 8 MiB stack.
inline constexpr int kMaxEvalDepth = 1500;

class Interpreter {
 public:
  Interpreter(const RenderLimits& limits, const TemplateClock& clock) : limits_(limits), clock_(clock) {}

  Expected<std::string> render(const Program& program, const nlohmann::ordered_json& context);

  // Budgets. Builtins charge what they do in proportion to their input.
  Status charge(uint64_t steps);
  Status check_string_size(size_t bytes) const;
  Status check_list_size(size_t items) const;
  Expected<Value> make_string(std::string s) const {
    SUANLI_RETURN_IF_ERROR(check_string_size(s.size()));
    return Value::string(std::move(s));
  }

  // Calls a macro, global function or bound method.
  Expected<Value> call(const Value& callee, CallArgs& args);
  const TemplateClock& clock() const { return clock_; }
  size_t max_string() const { return limits_.max_output_bytes; }

 private:
  struct Scope {
    Scope* parent = nullptr;
    DictItems vars;
    Value* find(std::string_view name);
    void set(const std::string& name, Value v);
  };
  enum class Flow { kNormal, kBreak, kContinue };
  struct DepthGuard;

  Expected<Flow> exec_body(const Body& body);
  Expected<Flow> exec(const Stmt& s);
  Expected<Flow> exec_for(const Stmt& s);
  Status exec_set(const Stmt& s, Value v);
  Status emit(std::string_view text);
  Expected<std::string> capture(const Body& body);

  Expected<Value> eval(const Expr& e);
  Expected<Value> eval_inner(const Expr& e);
  Expected<Value> eval_filter(const Expr& e, const Value* subject_override);
  Status eval_args(const Expr& e, size_t first, CallArgs& args);
  Expected<Value> call_macro(const Stmt& macro, CallArgs& args);
  Value lookup(const std::string& name);

  const RenderLimits& limits_;
  const TemplateClock& clock_;
  uint64_t steps_ = 0;
  int depth_ = 0;
  int macro_depth_ = 0;
  std::string* out_ = nullptr;
  Scope* scope_ = nullptr;
  Scope* root_ = nullptr;
};

// builtins.cc
Expected<Value> apply_filter(Interpreter& in, const std::string& name, const Value& subject, CallArgs& args);
Expected<bool> apply_test(Interpreter& in, const std::string& name, const Value& subject, CallArgs& args);
// Attribute access as jinja2's sandbox does it: methods of str/dict/list
// first (mutating ones are unsafe: undefined), then dict keys.
Expected<Value> get_attr(Interpreter& in, const Value& obj, const std::string& name);
Expected<Value> get_item(Interpreter& in, const Value& obj, const Value& key);
Expected<Value> slice(Interpreter& in, const Value& obj, const Value& start, const Value& stop, const Value& step);
// Global functions: range, dict, namespace, raise_exception, strftime_now.
void add_globals(DictItems& globals);
// Python's iter(): the items a for loop or filter walks.
Expected<ValueList> iterate(const Value& v);
// Errors for misuse of an undefined value.
Status undefined_error(const Value& v);
// a in b, a < b
Expected<bool> contains(const Value& container, const Value& item);
Expected<int> compare_values(const Value& a, const Value& b);  // -1, 0, 1; error for unorderable

}  // namespace suanli::chat_template_detail
