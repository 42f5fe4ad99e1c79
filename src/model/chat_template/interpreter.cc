// The interpreter: statements, expressions, operators, scopes and macros,
// with jinja2's semantics (a for loop body gets a fresh scope per
// iteration; `if` opens none; macros see the template's top-level names at
// call time; undefined values print as "" but fail when used).
#include "interpreter.h"

#include <cmath>

namespace suanli::chat_template_detail {

namespace {

Status located(const Status& s, int line, int column) {
  if (s.ok() || s.message().rfind("line ", 0) == 0) return s;
  return Status(s.code(), "line " + std::to_string(line) + ", column " + std::to_string(column) + ": " + s.message());
}

Status type_error(std::string_view op, const Value& a, const Value& b) {
  return InvalidArgument("unsupported operand type(s) for " + std::string(op) + ": '" + std::string(type_name(a)) +
                         "' and '" + std::string(type_name(b)) + "'");
}

Expected<Value> int_result(bool overflow, int64_t r) {
  if (overflow) return OutOfRange("integer overflow (Python integers are unbounded; suanli's are 64-bit)");
  return Value::integer(r);
}

double py_fmod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

}  // namespace

struct Interpreter::DepthGuard {
  explicit DepthGuard(Interpreter* in) : in(in) { ++in->depth_; }
  ~DepthGuard() { --in->depth_; }
  Status check() const {
    if (in->depth_ > kMaxEvalDepth) return ResourceExhausted("template evaluation nested too deeply");
    return Status::Ok();
  }
  Interpreter* in;
};

Value* Interpreter::Scope::find(std::string_view name) {
  for (Scope* s = this; s; s = s->parent) {
    for (auto& [k, v] : s->vars) {
      if (k == name) return &v;
    }
  }
  return nullptr;
}

void Interpreter::Scope::set(const std::string& name, Value v) {
  for (auto& [k, x] : vars) {
    if (k == name) {
      x = std::move(v);
      return;
    }
  }
  vars.emplace_back(name, std::move(v));
}

Status Interpreter::charge(uint64_t steps) {
  steps_ += steps;
  if (steps_ > limits_.max_steps) {
    return ResourceExhausted("template evaluation exceeded " + std::to_string(limits_.max_steps) + " steps");
  }
  return Status::Ok();
}

Status Interpreter::check_string_size(size_t bytes) const {
  if (bytes > limits_.max_output_bytes) {
    return ResourceExhausted("string of " + std::to_string(bytes) + " bytes exceeds the " +
                             std::to_string(limits_.max_output_bytes) + "-byte limit");
  }
  return Status::Ok();
}

Status Interpreter::check_list_size(size_t items) const {
  if (items > kMaxListItems) return ResourceExhausted("list of " + std::to_string(items) + " items is too long");
  return Status::Ok();
}

Status Interpreter::emit(std::string_view text) {
  if (out_->size() + text.size() > limits_.max_output_bytes) {
    return ResourceExhausted("template output exceeds " + std::to_string(limits_.max_output_bytes) + " bytes");
  }
  out_->append(text);
  return Status::Ok();
}

Expected<std::string> Interpreter::render(const Program& program, const nlohmann::ordered_json& context) {
  if (!context.is_object() && !context.is_null()) return InvalidArgument("template context must be a JSON object");
  Scope globals;
  add_globals(globals.vars);
  Scope root;
  root.parent = &globals;
  if (context.is_object()) {
    for (const auto& [k, v] : context.items()) {
      SUANLI_ASSIGN_OR_RETURN(Value x, from_json(v));
      root.set(k, std::move(x));
    }
  }
  std::string out;
  out_ = &out;
  scope_ = &root;
  root_ = &root;
  SUANLI_ASSIGN_OR_RETURN(Flow flow, exec_body(program.body));
  (void)flow;
  return out;
}

Expected<Interpreter::Flow> Interpreter::exec_body(const Body& body) {
  for (const StmtPtr& s : body) {
    SUANLI_ASSIGN_OR_RETURN(Flow f, exec(*s));
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

Expected<std::string> Interpreter::capture(const Body& body) {
  std::string buf;
  std::string* saved = out_;
  out_ = &buf;
  Expected<Flow> f = exec_body(body);
  out_ = saved;
  if (!f) return f.status();
  return buf;
}

Expected<Interpreter::Flow> Interpreter::exec(const Stmt& s) {
  DepthGuard guard(this);
  SUANLI_RETURN_IF_ERROR(guard.check());
  SUANLI_RETURN_IF_ERROR(charge(1));
  switch (s.type) {
    case Stmt::Type::kText:
      SUANLI_RETURN_IF_ERROR(emit(s.text));
      return Flow::kNormal;
    case Stmt::Type::kPrint: {
      SUANLI_ASSIGN_OR_RETURN(Value v, eval(*s.expr));
      if (v.kind == Kind::kString) {
        SUANLI_RETURN_IF_ERROR(emit(v.s()));
      } else {
        SUANLI_RETURN_IF_ERROR(emit(to_str(v)));
      }
      return Flow::kNormal;
    }
    case Stmt::Type::kIf:
      for (size_t i = 0; i < s.conditions.size(); ++i) {
        SUANLI_ASSIGN_OR_RETURN(Value c, eval(*s.conditions[i]));
        if (truthy(c)) return exec_body(s.bodies[i]);
      }
      return exec_body(s.else_body);
    case Stmt::Type::kFor:
      return exec_for(s);
    case Stmt::Type::kSet: {
      SUANLI_ASSIGN_OR_RETURN(Value v, eval(*s.expr));
      SUANLI_RETURN_IF_ERROR(located(exec_set(s, std::move(v)), s.line, s.column));
      return Flow::kNormal;
    }
    case Stmt::Type::kSetBlock: {
      SUANLI_ASSIGN_OR_RETURN(std::string text, capture(s.body));
      Value v = Value::string(std::move(text));
      if (s.filter) {
        SUANLI_ASSIGN_OR_RETURN(v, eval_filter(*s.filter, &v));
      }
      SUANLI_RETURN_IF_ERROR(located(exec_set(s, std::move(v)), s.line, s.column));
      return Flow::kNormal;
    }
    case Stmt::Type::kFilterBlock: {
      SUANLI_ASSIGN_OR_RETURN(std::string text, capture(s.body));
      Value v = Value::string(std::move(text));
      SUANLI_ASSIGN_OR_RETURN(v, eval_filter(*s.filter, &v));
      SUANLI_RETURN_IF_ERROR(emit(to_str(v)));
      return Flow::kNormal;
    }
    case Stmt::Type::kMacro: {
      const Stmt* macro = &s;
      scope_->set(s.text, Value::callable(s.text, [macro](Interpreter& in, CallArgs& args) {
                    return in.call_macro(*macro, args);
                  }));
      return Flow::kNormal;
    }
    case Stmt::Type::kBreak: return Flow::kBreak;
    case Stmt::Type::kContinue: return Flow::kContinue;
  }
  return Flow::kNormal;
}

Status Interpreter::exec_set(const Stmt& s, Value v) {
  if (!s.attr.empty()) {
    Value* target = scope_->find(s.targets[0]);
    if (!target || target->kind != Kind::kNamespace) {
      return InvalidArgument("can only assign attributes of a namespace object ('" + s.targets[0] + "." + s.attr + "')");
    }
    for (auto& [k, x] : target->ns->attrs) {
      if (k == s.attr) {
        x = std::move(v);
        return Status::Ok();
      }
    }
    target->ns->attrs.emplace_back(s.attr, std::move(v));
    return Status::Ok();
  }
  if (s.targets.size() == 1) {
    scope_->set(s.targets[0], std::move(v));
    return Status::Ok();
  }
  SUANLI_ASSIGN_OR_RETURN(ValueList items, iterate(v));
  if (items.size() != s.targets.size()) {
    return InvalidArgument("cannot unpack " + std::to_string(items.size()) + " values into " +
                           std::to_string(s.targets.size()) + " names");
  }
  for (size_t i = 0; i < items.size(); ++i) scope_->set(s.targets[i], std::move(items[i]));
  return Status::Ok();
}

Expected<Interpreter::Flow> Interpreter::exec_for(const Stmt& s) {
  SUANLI_ASSIGN_OR_RETURN(Value seq, eval(*s.expr));
  Expected<ValueList> listed = iterate(seq);
  if (!listed) return located(listed.status(), s.line, s.column);
  ValueList items = std::move(listed).value();
  SUANLI_RETURN_IF_ERROR(charge(items.size()));

  auto bind = [&](Scope& sc, const Value& item) -> Status {
    if (s.targets.size() == 1) {
      sc.set(s.targets[0], item);
      return Status::Ok();
    }
    SUANLI_ASSIGN_OR_RETURN(ValueList parts, iterate(item));
    if (parts.size() != s.targets.size()) {
      return located(InvalidArgument("cannot unpack " + std::to_string(parts.size()) + " values into " +
                                     std::to_string(s.targets.size()) + " loop variables"),
                     s.line, s.column);
    }
    for (size_t k = 0; k < parts.size(); ++k) sc.set(s.targets[k], parts[k]);
    return Status::Ok();
  };

  Scope* outer = scope_;
  if (s.filter) {
    ValueList kept;
    for (const Value& item : items) {
      Scope sc;
      sc.parent = outer;
      SUANLI_RETURN_IF_ERROR(bind(sc, item));
      scope_ = &sc;
      Expected<Value> c = eval(*s.filter);
      scope_ = outer;
      if (!c) return c.status();
      if (truthy(*c)) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    Scope sc;
    sc.parent = outer;
    scope_ = &sc;
    Expected<Flow> f = exec_body(s.else_body);
    scope_ = outer;
    if (!f) return f.status();
    return Flow::kNormal;
  }
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    SUANLI_RETURN_IF_ERROR(charge(1));
    Scope sc;
    sc.parent = outer;
    SUANLI_RETURN_IF_ERROR(bind(sc, items[i]));
    DictItems loop;
    loop.reserve(12);
    loop.emplace_back("index", Value::integer(i + 1));
    loop.emplace_back("index0", Value::integer(i));
    loop.emplace_back("revindex", Value::integer(n - i));
    loop.emplace_back("revindex0", Value::integer(n - i - 1));
    loop.emplace_back("first", Value::boolean(i == 0));
    loop.emplace_back("last", Value::boolean(i == n - 1));
    loop.emplace_back("length", Value::integer(n));
    loop.emplace_back("depth", Value::integer(1));
    loop.emplace_back("depth0", Value::integer(0));
    if (i > 0) loop.emplace_back("previtem", items[i - 1]);
    if (i + 1 < n) loop.emplace_back("nextitem", items[i + 1]);
    loop.emplace_back("cycle", Value::callable("cycle", [i](Interpreter&, CallArgs& args) -> Expected<Value> {
                        if (args.positional.empty()) return InvalidArgument("no items for cycling given");
                        return args.positional[static_cast<size_t>(i) % args.positional.size()];
                      }));
    SUANLI_ASSIGN_OR_RETURN(Value loop_value, Value::dict_of(std::move(loop)));
    sc.set("loop", std::move(loop_value));
    scope_ = &sc;
    Expected<Flow> f = exec_body(s.body);
    scope_ = outer;
    if (!f) return f.status();
    if (*f == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

Expected<Value> Interpreter::call_macro(const Stmt& macro, CallArgs& args) {
  if (macro_depth_ >= limits_.max_recursion) {
    return ResourceExhausted("macro recursion deeper than " + std::to_string(limits_.max_recursion) + " calls");
  }
  const size_t n_params = macro.targets.size();
  if (args.positional.size() > n_params) {
    return InvalidArgument("macro '" + macro.text + "' takes not more than " + std::to_string(n_params) +
                           " argument(s)");
  }
  Scope sc;
  sc.parent = root_;
  std::vector<bool> bound(n_params, false);
  for (size_t i = 0; i < args.positional.size(); ++i) {
    sc.set(macro.targets[i], std::move(args.positional[i]));
    bound[i] = true;
  }
  for (auto& [k, v] : args.keyword) {
    size_t idx = n_params;
    for (size_t i = 0; i < n_params; ++i) {
      if (macro.targets[i] == k) idx = i;
    }
    if (idx == n_params) return InvalidArgument("macro '" + macro.text + "' takes no keyword argument '" + k + "'");
    sc.set(k, std::move(v));
    bound[idx] = true;
  }
  Scope* saved_scope = scope_;
  scope_ = &sc;
  ++macro_depth_;
  Expected<std::string> text = [&]() -> Expected<std::string> {
    for (size_t i = 0; i < n_params; ++i) {
      if (bound[i]) continue;
      if (macro.defaults[i]) {
        SUANLI_ASSIGN_OR_RETURN(Value d, eval(*macro.defaults[i]));
        sc.set(macro.targets[i], std::move(d));
      } else {
        sc.set(macro.targets[i], Value::undefined("parameter '" + macro.targets[i] + "' was not provided"));
      }
    }
    return capture(macro.body);
  }();
  --macro_depth_;
  scope_ = saved_scope;
  if (!text) return text.status();
  return Value::string(std::move(text).value());
}

Expected<Value> Interpreter::call(const Value& callee, CallArgs& args) {
  if (callee.kind == Kind::kCallable) return callee.fn->fn(*this, args);
  if (callee.is_undefined()) return undefined_error(callee);
  return InvalidArgument("'" + std::string(type_name(callee)) + "' object is not callable");
}

Value Interpreter::lookup(const std::string& name) {
  if (Value* v = scope_->find(name)) return *v;
  return Value::undefined("'" + name + "' is undefined");
}

Status Interpreter::eval_args(const Expr& e, size_t first, CallArgs& args) {
  for (size_t i = first; i < e.args.size(); ++i) {
    SUANLI_ASSIGN_OR_RETURN(Value v, eval(*e.args[i]));
    args.positional.push_back(std::move(v));
  }
  for (const auto& [k, x] : e.kwargs) {
    SUANLI_ASSIGN_OR_RETURN(Value v, eval(*x));
    args.keyword.emplace_back(k, std::move(v));
  }
  return Status::Ok();
}

Expected<Value> Interpreter::eval_filter(const Expr& e, const Value* subject_override) {
  Value subject;
  if (e.args[0]) {
    if (e.args[0]->type == Expr::Type::kFilter) {
      SUANLI_ASSIGN_OR_RETURN(subject, eval_filter(*e.args[0], subject_override));
    } else {
      SUANLI_ASSIGN_OR_RETURN(subject, eval(*e.args[0]));
    }
  } else if (subject_override) {
    subject = *subject_override;
  }
  CallArgs args;
  SUANLI_RETURN_IF_ERROR(eval_args(e, 1, args));
  Expected<Value> r = apply_filter(*this, e.name, subject, args);
  if (!r) return located(r.status(), e.line, e.column);
  return r;
}

Expected<Value> Interpreter::eval(const Expr& e) {
  DepthGuard guard(this);
  SUANLI_RETURN_IF_ERROR(guard.check());
  SUANLI_RETURN_IF_ERROR(charge(1));
  Expected<Value> r = eval_inner(e);
  if (!r) return located(r.status(), e.line, e.column);
  return r;
}

namespace {

Expected<Value> binary(Interpreter& in, const std::string& op, const Value& a, const Value& b) {
  if (op == "~") return in.make_string(to_str(a) + to_str(b));
  if (a.is_undefined()) return undefined_error(a);
  if (b.is_undefined()) return undefined_error(b);
  const bool nums = a.is_number() && b.is_number();
  const bool ints = nums && a.kind != Kind::kFloat && b.kind != Kind::kFloat;
  int64_t r = 0;
  if (op == "+") {
    if (ints) {
      bool overflow = __builtin_add_overflow(a.as_int(), b.as_int(), &r);
      return int_result(overflow, r);
    }
    if (nums) return Value::floating(a.as_double() + b.as_double());
    if (a.is_string() && b.is_string()) return in.make_string(a.s() + b.s());
    if (a.kind == b.kind && a.is_sequence()) {
      SUANLI_RETURN_IF_ERROR(in.check_list_size(a.list->size() + b.list->size()));
      SUANLI_RETURN_IF_ERROR(in.charge(a.list->size() + b.list->size()));
      ValueList items = *a.list;
      items.insert(items.end(), b.list->begin(), b.list->end());
      return Value::list_of(std::move(items), a.kind == Kind::kTuple);
    }
    return type_error(op, a, b);
  }
  if (op == "-") {
    if (ints) {
      bool overflow = __builtin_sub_overflow(a.as_int(), b.as_int(), &r);
      return int_result(overflow, r);
    }
    if (nums) return Value::floating(a.as_double() - b.as_double());
    return type_error(op, a, b);
  }
  if (op == "*") {
    if (ints) {
      bool overflow = __builtin_mul_overflow(a.as_int(), b.as_int(), &r);
      return int_result(overflow, r);
    }
    if (nums) return Value::floating(a.as_double() * b.as_double());
    const Value* seq = (a.is_string() || a.is_sequence()) ? &a : &b;
    const Value* count = seq == &a ? &b : &a;
    if ((seq->is_string() || seq->is_sequence()) && count->is_number() && count->kind != Kind::kFloat) {
      int64_t n = std::max<int64_t>(0, count->as_int());
      if (seq->is_string()) {
        if (n > 0 && seq->s().size() > in.max_string() / static_cast<uint64_t>(n)) {
          return in.check_string_size(SIZE_MAX);
        }
        std::string out;
        out.reserve(seq->s().size() * static_cast<size_t>(n));
        for (int64_t k = 0; k < n; ++k) out += seq->s();
        return Value::string(std::move(out));
      }
      size_t len = seq->list->size();
      if (n > 0 && len > 0 && static_cast<uint64_t>(n) > kMaxListItems / len) return in.check_list_size(SIZE_MAX);
      SUANLI_RETURN_IF_ERROR(in.charge(len * static_cast<size_t>(n)));
      ValueList items;
      for (int64_t k = 0; k < n; ++k) items.insert(items.end(), seq->list->begin(), seq->list->end());
      return Value::list_of(std::move(items), seq->kind == Kind::kTuple);
    }
    return type_error(op, a, b);
  }
  if (!nums) {
    if (op == "%" && a.is_string()) return Unsupported("printf-style string formatting ('%' on a string) is not supported");
    return type_error(op, a, b);
  }
  if (op == "/") {
    if (b.as_double() == 0) return InvalidArgument("division by zero");
    return Value::floating(a.as_double() / b.as_double());
  }
  if (op == "//" || op == "%") {
    if (b.as_double() == 0) return InvalidArgument(op == "%" ? "modulo by zero" : "integer division or modulo by zero");
    if (ints) {
      int64_t x = a.as_int(), y = b.as_int();
      if (x == INT64_MIN && y == -1) return OutOfRange("integer overflow");
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        q -= 1;
        m += y;
      }
      return Value::integer(op == "//" ? q : m);
    }
    double x = a.as_double(), y = b.as_double();
    if (op == "%") return Value::floating(py_fmod(x, y));
    return Value::floating(std::floor(x / y));
  }
  if (op == "**") {
    if (ints && b.as_int() >= 0) {
      int64_t base = a.as_int(), e = b.as_int(), acc = 1;
      while (e > 0) {
        if (e & 1) {
          if (__builtin_mul_overflow(acc, base, &acc)) return int_result(true, 0);
        }
        e >>= 1;
        if (e > 0 && __builtin_mul_overflow(base, base, &base)) return int_result(true, 0);
      }
      return Value::integer(acc);
    }
    if (a.as_double() == 0 && b.as_double() < 0) return InvalidArgument("0.0 cannot be raised to a negative power");
    return Value::floating(std::pow(a.as_double(), b.as_double()));
  }
  return Internal("unknown operator " + op);
}

}  // namespace

Expected<Value> Interpreter::eval_inner(const Expr& e) {
  switch (e.type) {
    case Expr::Type::kConst: return e.value;
    case Expr::Type::kName: return lookup(e.name);
    case Expr::Type::kList: case Expr::Type::kTuple: {
      ValueList items;
      items.reserve(e.args.size());
      for (const ExprPtr& a : e.args) {
        SUANLI_ASSIGN_OR_RETURN(Value v, eval(*a));
        items.push_back(std::move(v));
      }
      return Value::list_of(std::move(items), e.type == Expr::Type::kTuple);
    }
    case Expr::Type::kDict: {
      DictItems items;
      for (size_t i = 0; i < e.args.size(); ++i) {
        SUANLI_ASSIGN_OR_RETURN(Value k, eval(*e.keys[i]));
        SUANLI_ASSIGN_OR_RETURN(Value v, eval(*e.args[i]));
        if (!k.is_string()) return Unsupported("dict keys other than strings are not supported");
        bool replaced = false;
        for (auto& [ek, ev] : items) {
          if (ek == k.s()) {
            ev = v;
            replaced = true;
          }
        }
        if (!replaced) items.emplace_back(k.s(), std::move(v));
      }
      return Value::dict_of(std::move(items));
    }
    case Expr::Type::kGetAttr: {
      SUANLI_ASSIGN_OR_RETURN(Value obj, eval(*e.args[0]));
      return get_attr(*this, obj, e.name);
    }
    case Expr::Type::kGetItem: {
      SUANLI_ASSIGN_OR_RETURN(Value obj, eval(*e.args[0]));
      SUANLI_ASSIGN_OR_RETURN(Value key, eval(*e.args[1]));
      return get_item(*this, obj, key);
    }
    case Expr::Type::kSlice: {
      SUANLI_ASSIGN_OR_RETURN(Value obj, eval(*e.args[0]));
      Value parts[3] = {Value::none(), Value::none(), Value::none()};
      for (int k = 0; k < 3; ++k) {
        if (e.args[k + 1]) {
          SUANLI_ASSIGN_OR_RETURN(parts[k], eval(*e.args[k + 1]));
        }
      }
      return slice(*this, obj, parts[0], parts[1], parts[2]);
    }
    case Expr::Type::kCall: {
      SUANLI_ASSIGN_OR_RETURN(Value callee, eval(*e.args[0]));
      CallArgs args;
      SUANLI_RETURN_IF_ERROR(eval_args(e, 1, args));
      return call(callee, args);
    }
    case Expr::Type::kFilter: return eval_filter(e, nullptr);
    case Expr::Type::kTest: {
      SUANLI_ASSIGN_OR_RETURN(Value subject, eval(*e.args[0]));
      CallArgs args;
      SUANLI_RETURN_IF_ERROR(eval_args(e, 1, args));
      SUANLI_ASSIGN_OR_RETURN(bool r, apply_test(*this, e.name, subject, args));
      return Value::boolean(r);
    }
    case Expr::Type::kNot: {
      SUANLI_ASSIGN_OR_RETURN(Value v, eval(*e.args[0]));
      return Value::boolean(!truthy(v));
    }
    case Expr::Type::kNeg: case Expr::Type::kPos: {
      SUANLI_ASSIGN_OR_RETURN(Value v, eval(*e.args[0]));
      if (v.is_undefined()) return undefined_error(v);
      if (!v.is_number()) {
        return InvalidArgument("bad operand type for unary " + std::string(e.type == Expr::Type::kNeg ? "-" : "+") +
                               ": '" + std::string(type_name(v)) + "'");
      }
      if (e.type == Expr::Type::kPos) return v.kind == Kind::kBool ? Value::integer(v.as_int()) : v;
      if (v.kind == Kind::kFloat) return Value::floating(-v.f);
      if (v.as_int() == INT64_MIN) return OutOfRange("integer overflow");
      return Value::integer(-v.as_int());
    }
    case Expr::Type::kBinary: {
      SUANLI_ASSIGN_OR_RETURN(Value a, eval(*e.args[0]));
      SUANLI_ASSIGN_OR_RETURN(Value b, eval(*e.args[1]));
      return binary(*this, e.name, a, b);
    }
    case Expr::Type::kCompare: {
      SUANLI_ASSIGN_OR_RETURN(Value left, eval(*e.args[0]));
      for (size_t i = 0; i < e.ops.size(); ++i) {
        SUANLI_ASSIGN_OR_RETURN(Value right, eval(*e.args[i + 1]));
        const std::string& op = e.ops[i];
        bool r = false;
        if (op == "==") r = values_equal(left, right);
        else if (op == "!=") r = !values_equal(left, right);
        else if (op == "in" || op == "not in") {
          SUANLI_ASSIGN_OR_RETURN(bool c, contains(right, left));
          r = op == "in" ? c : !c;
        } else {
          SUANLI_ASSIGN_OR_RETURN(int c, compare_values(left, right));
          r = op == "<" ? c < 0 : op == "<=" ? c <= 0 : op == ">" ? c > 0 : c >= 0;
        }
        if (!r) return Value::boolean(false);
        left = std::move(right);
      }
      return Value::boolean(true);
    }
    case Expr::Type::kAnd: {
      SUANLI_ASSIGN_OR_RETURN(Value a, eval(*e.args[0]));
      if (!truthy(a)) return a;
      return eval(*e.args[1]);
    }
    case Expr::Type::kOr: {
      SUANLI_ASSIGN_OR_RETURN(Value a, eval(*e.args[0]));
      if (truthy(a)) return a;
      return eval(*e.args[1]);
    }
    case Expr::Type::kCondExpr: {
      SUANLI_ASSIGN_OR_RETURN(Value c, eval(*e.args[0]));
      if (truthy(c)) return eval(*e.args[1]);
      if (e.args[2]) return eval(*e.args[2]);
      return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    }
  }
  return Internal("unknown expression type");
}

}  // namespace suanli::chat_template_detail
