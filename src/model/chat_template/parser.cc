// Template parser: tokens to a syntax tree, following jinja2's grammar
// (jinja2/parser.py) including its precedences: filters and tests bind
// tighter than any binary operator, `**` is left-associative, comparisons
// chain. Every recursive step counts depth against kMaxParseDepth, so a
// hostile template cannot exhaust the stack.
#include <set>

#include "ast.h"

namespace suanli::chat_template_detail {

namespace {

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Expected<std::shared_ptr<const Program>> run() {
    auto program = std::make_shared<Program>();
    std::string end;
    SUANLI_RETURN_IF_ERROR(parse_body(program->body, {}, &end));
    return std::shared_ptr<const Program>(std::move(program));
  }

 private:
  // Depth guard: one per recursive parse step.
  struct DepthGuard {
    explicit DepthGuard(Parser* p) : p(p) { ++p->depth_; }
    ~DepthGuard() { --p->depth_; }
    Parser* p;
  };

  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t k = 1) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  void next() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  bool is_op(const char* op) const { return cur().type == TokenType::kOp && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == TokenType::kName && cur().text == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    next();
    return true;
  }

  Status error_at(const Token& t, const std::string& msg) const {
    return InvalidArgument("line " + std::to_string(t.line) + ", column " + std::to_string(t.column) + ": " + msg);
  }
  Status error(const std::string& msg) const { return error_at(cur(), msg); }
  std::string describe(const Token& t) const {
    switch (t.type) {
      case TokenType::kEof: return "end of template";
      case TokenType::kVarEnd: return "'}}'";
      case TokenType::kBlockEnd: return "'%}'";
      case TokenType::kData: return "template text";
      case TokenType::kString: return "string literal";
      default: return "'" + t.text + "'";
    }
  }
  Status check_depth() const {
    if (depth_ > kMaxParseDepth) return error("template nested too deeply (more than " + std::to_string(kMaxParseDepth) + " levels)");
    return Status::Ok();
  }
  Status expect_op(const char* op) {
    if (!skip_op(op)) return error(std::string("expected '") + op + "', got " + describe(cur()));
    return Status::Ok();
  }
  Expected<std::string> expect_name() {
    if (cur().type != TokenType::kName) return error("expected a name, got " + describe(cur()));
    std::string n = cur().text;
    next();
    return n;
  }
  Status expect_block_end() {
    if (cur().type != TokenType::kBlockEnd) return error("expected '%}', got " + describe(cur()));
    next();
    return Status::Ok();
  }

  // Records the node's height; refuses trees taller than kMaxParseDepth
  // (long operator or filter chains build them without nesting brackets).
  Expected<ExprPtr> seal(ExprPtr e) const {
    int d = 0;
    for (const ExprPtr& a : e->args) d = std::max(d, a ? a->height : 0);
    for (const ExprPtr& k : e->keys) d = std::max(d, k ? k->height : 0);
    for (const auto& kv : e->kwargs) d = std::max(d, kv.second ? kv.second->height : 0);
    e->height = d + 1;
    if (e->height > kMaxParseDepth) {
      return InvalidArgument("line " + std::to_string(e->line) + ", column " + std::to_string(e->column) +
                             ": expression nested too deeply (more than " + std::to_string(kMaxParseDepth) + " levels)");
    }
    return e;
  }

  ExprPtr node(Expr::Type t, const Token& at) const {
    auto e = std::make_unique<Expr>();
    e->type = t;
    e->line = at.line;
    e->column = at.column;
    return e;
  }

  // ---- statements ----

  // Parses until a block tag whose first name is in `ends` (left unconsumed
  // after "{%"; *end gets its name) or end of template when ends is empty.
  Status parse_body(Body& body, const std::set<std::string>& ends, std::string* end) {
    DepthGuard guard(this);
    SUANLI_RETURN_IF_ERROR(check_depth());
    while (true) {
      const Token& t = cur();
      switch (t.type) {
        case TokenType::kEof:
          if (!ends.empty()) {
            std::string want;
            for (const std::string& e : ends) want += (want.empty() ? "'" : " or '") + e + "'";
            return error("unexpected end of template, expected " + want);
          }
          return Status::Ok();
        case TokenType::kData: {
          auto s = std::make_unique<Stmt>();
          s->type = Stmt::Type::kText;
          s->text = t.text;
          body.push_back(std::move(s));
          next();
          break;
        }
        case TokenType::kVarBegin: {
          auto s = std::make_unique<Stmt>();
          s->type = Stmt::Type::kPrint;
          s->line = t.line;
          s->column = t.column;
          next();
          SUANLI_ASSIGN_OR_RETURN(s->expr, parse_tuple({}));
          if (cur().type != TokenType::kVarEnd) return error("expected '}}', got " + describe(cur()));
          next();
          body.push_back(std::move(s));
          break;
        }
        case TokenType::kBlockBegin: {
          const Token& name = peek();
          if (name.type != TokenType::kName) return error_at(name, "expected a statement name, got " + describe(name));
          if (ends.count(name.text)) {
            next();
            *end = name.text;
            next();
            return Status::Ok();
          }
          next();
          SUANLI_RETURN_IF_ERROR(parse_statement(body));
          break;
        }
        default:
          return error("unexpected " + describe(t));
      }
    }
  }

  StmtPtr stmt(Stmt::Type type, const Token& at) {
    auto s = std::make_unique<Stmt>();
    s->type = type;
    s->line = at.line;
    s->column = at.column;
    return s;
  }

  // At the statement's name token, after "{%".
  Status parse_statement(Body& body) {
    const Token at = cur();
    const std::string& n = at.text;
    if (n == "if") return parse_if(body);
    if (n == "for") return parse_for(body);
    if (n == "set") return parse_set(body);
    if (n == "macro") return parse_macro(body);
    if (n == "filter") return parse_filter_block(body);
    if (n == "generation") {  // HF's AssistantTracker tag: renders its body unchanged
      next();
      SUANLI_RETURN_IF_ERROR(expect_block_end());
      std::string end;
      SUANLI_RETURN_IF_ERROR(parse_body(body, {"endgeneration"}, &end));
      return expect_block_end();
    }
    if (n == "break" || n == "continue") {
      if (loop_depth_ == 0) return error("'" + n + "' outside of a loop");
      next();
      body.push_back(stmt(n == "break" ? Stmt::Type::kBreak : Stmt::Type::kContinue, at));
      return expect_block_end();
    }
    static const std::set<std::string> kUnsupported = {"include", "import", "from", "extends", "block", "call",
                                                       "with", "do", "raw", "autoescape", "trans"};
    if (kUnsupported.count(n)) return error("unsupported statement '" + n + "'");
    return error("unknown statement '" + n + "'");
  }

  Status parse_if(Body& body) {
    StmtPtr s = stmt(Stmt::Type::kIf, cur());
    next();
    while (true) {
      SUANLI_ASSIGN_OR_RETURN(ExprPtr cond, parse_tuple({}));
      SUANLI_RETURN_IF_ERROR(expect_block_end());
      s->conditions.push_back(std::move(cond));
      s->bodies.emplace_back();
      std::string end;
      SUANLI_RETURN_IF_ERROR(parse_body(s->bodies.back(), {"elif", "else", "endif"}, &end));
      if (end == "elif") continue;
      if (end == "else") {
        SUANLI_RETURN_IF_ERROR(expect_block_end());
        SUANLI_RETURN_IF_ERROR(parse_body(s->else_body, {"endif"}, &end));
      }
      SUANLI_RETURN_IF_ERROR(expect_block_end());
      break;
    }
    body.push_back(std::move(s));
    return Status::Ok();
  }

  Status parse_targets(std::vector<std::string>& targets) {
    bool paren = skip_op("(");
    do {
      SUANLI_ASSIGN_OR_RETURN(std::string n, expect_name());
      targets.push_back(std::move(n));
    } while (skip_op(","));
    if (paren) SUANLI_RETURN_IF_ERROR(expect_op(")"));
    return Status::Ok();
  }

  Status parse_for(Body& body) {
    StmtPtr s = stmt(Stmt::Type::kFor, cur());
    next();
    SUANLI_RETURN_IF_ERROR(parse_targets(s->targets));
    if (!skip_name("in")) return error("expected 'in', got " + describe(cur()));
    SUANLI_ASSIGN_OR_RETURN(s->expr, parse_tuple({"recursive"}, /*with_condexpr=*/false));
    if (skip_name("if")) {
      SUANLI_ASSIGN_OR_RETURN(s->filter, parse_expression(true));
    }
    if (is_name("recursive")) return error("recursive loops are not supported");
    SUANLI_RETURN_IF_ERROR(expect_block_end());
    std::string end;
    ++loop_depth_;
    Status st = parse_body(s->body, {"endfor", "else"}, &end);
    --loop_depth_;
    SUANLI_RETURN_IF_ERROR(st);
    if (end == "else") {
      SUANLI_RETURN_IF_ERROR(expect_block_end());
      SUANLI_RETURN_IF_ERROR(parse_body(s->else_body, {"endfor"}, &end));
    }
    SUANLI_RETURN_IF_ERROR(expect_block_end());
    body.push_back(std::move(s));
    return Status::Ok();
  }

  Status parse_set(Body& body) {
    StmtPtr s = stmt(Stmt::Type::kSet, cur());
    next();
    if (cur().type == TokenType::kName && peek().type == TokenType::kOp && peek().text == ".") {
      s->targets.push_back(cur().text);
      next();
      next();
      SUANLI_ASSIGN_OR_RETURN(s->attr, expect_name());
    } else {
      SUANLI_RETURN_IF_ERROR(parse_targets(s->targets));
    }
    if (skip_op("=")) {
      SUANLI_ASSIGN_OR_RETURN(s->expr, parse_tuple({}));
      SUANLI_RETURN_IF_ERROR(expect_block_end());
      body.push_back(std::move(s));
      return Status::Ok();
    }
    if (s->targets.size() != 1) return error("expected '=' after the assignment targets");
    s->type = Stmt::Type::kSetBlock;
    if (is_op("|")) {
      SUANLI_ASSIGN_OR_RETURN(s->filter, parse_filter_chain(nullptr));
    }
    SUANLI_RETURN_IF_ERROR(expect_block_end());
    std::string end;
    SUANLI_RETURN_IF_ERROR(parse_body(s->body, {"endset"}, &end));
    SUANLI_RETURN_IF_ERROR(expect_block_end());
    body.push_back(std::move(s));
    return Status::Ok();
  }

  Status parse_macro(Body& body) {
    StmtPtr s = stmt(Stmt::Type::kMacro, cur());
    next();
    SUANLI_ASSIGN_OR_RETURN(s->text, expect_name());
    SUANLI_RETURN_IF_ERROR(expect_op("("));
    while (!is_op(")")) {
      if (!s->targets.empty()) SUANLI_RETURN_IF_ERROR(expect_op(","));
      if (is_op(")")) break;
      SUANLI_ASSIGN_OR_RETURN(std::string p, expect_name());
      s->targets.push_back(std::move(p));
      ExprPtr def;
      if (skip_op("=")) {
        SUANLI_ASSIGN_OR_RETURN(def, parse_expression(true));
      } else if (!s->defaults.empty() && s->defaults.back()) {
        return error("non-default argument follows default argument");
      }
      s->defaults.push_back(std::move(def));
    }
    next();
    SUANLI_RETURN_IF_ERROR(expect_block_end());
    std::string end;
    int saved = loop_depth_;
    loop_depth_ = 0;
    Status st = parse_body(s->body, {"endmacro"}, &end);
    loop_depth_ = saved;
    SUANLI_RETURN_IF_ERROR(st);
    if (cur().type == TokenType::kName && cur().text == s->text) next();
    SUANLI_RETURN_IF_ERROR(expect_block_end());
    body.push_back(std::move(s));
    return Status::Ok();
  }

  Status parse_filter_block(Body& body) {
    StmtPtr s = stmt(Stmt::Type::kFilterBlock, cur());
    next();
    // Treat "{% filter f|g %}" as the chain "|f|g" applied to the body.
    SUANLI_ASSIGN_OR_RETURN(s->filter, parse_filter_chain(nullptr));
    SUANLI_RETURN_IF_ERROR(expect_block_end());
    std::string end;
    SUANLI_RETURN_IF_ERROR(parse_body(s->body, {"endfilter"}, &end));
    SUANLI_RETURN_IF_ERROR(expect_block_end());
    body.push_back(std::move(s));
    return Status::Ok();
  }

  // ---- expressions ----

  bool at_end_rule(const std::vector<std::string>& extra_end) const {
    const Token& t = cur();
    if (t.type == TokenType::kVarEnd || t.type == TokenType::kBlockEnd || t.type == TokenType::kEof) return true;
    if (t.type == TokenType::kOp && t.text == ")") return true;
    if (t.type == TokenType::kName) {
      for (const std::string& e : extra_end) {
        if (t.text == e) return true;
      }
    }
    return false;
  }

  Expected<ExprPtr> parse_tuple(const std::vector<std::string>& extra_end, bool with_condexpr = true) {
    const Token at = cur();
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) {
        if (!skip_op(",")) break;
        is_tuple = true;
      }
      if (at_end_rule(extra_end)) break;
      SUANLI_ASSIGN_OR_RETURN(ExprPtr e, parse_expression(with_condexpr));
      items.push_back(std::move(e));
    }
    if (!is_tuple) {
      if (items.empty()) return error("expected an expression, got " + describe(cur()));
      return std::move(items[0]);
    }
    ExprPtr t = node(Expr::Type::kTuple, at);
    t->args = std::move(items);
    return seal(std::move(t));
  }

  Expected<ExprPtr> parse_expression(bool with_condexpr) {
    DepthGuard guard(this);
    SUANLI_RETURN_IF_ERROR(check_depth());
    if (with_condexpr) return parse_condexpr();
    return parse_or();
  }

  Expected<ExprPtr> parse_condexpr() {
    SUANLI_ASSIGN_OR_RETURN(ExprPtr e, parse_or());
    while (is_name("if")) {
      const Token at = cur();
      next();
      SUANLI_ASSIGN_OR_RETURN(ExprPtr cond, parse_or());
      ExprPtr other;
      if (skip_name("else")) {
        SUANLI_ASSIGN_OR_RETURN(other, parse_expression(true));
      }
      ExprPtr c = node(Expr::Type::kCondExpr, at);
      c->args.push_back(std::move(cond));
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(other));
      SUANLI_ASSIGN_OR_RETURN(e, seal(std::move(c)));
    }
    return e;
  }

  Expected<ExprPtr> binary_chain(Expr::Type type, const char* word, Expected<ExprPtr> (Parser::*sub)()) {
    SUANLI_ASSIGN_OR_RETURN(ExprPtr left, (this->*sub)());
    while (is_name(word)) {
      const Token at = cur();
      next();
      SUANLI_ASSIGN_OR_RETURN(ExprPtr right, (this->*sub)());
      ExprPtr b = node(type, at);
      b->args.push_back(std::move(left));
      b->args.push_back(std::move(right));
      SUANLI_ASSIGN_OR_RETURN(left, seal(std::move(b)));
    }
    return left;
  }
  Expected<ExprPtr> parse_or() { return binary_chain(Expr::Type::kOr, "or", &Parser::parse_and); }
  Expected<ExprPtr> parse_and() { return binary_chain(Expr::Type::kAnd, "and", &Parser::parse_not); }

  Expected<ExprPtr> parse_not() {
    if (is_name("not")) {
      DepthGuard guard(this);
      SUANLI_RETURN_IF_ERROR(check_depth());
      const Token at = cur();
      next();
      SUANLI_ASSIGN_OR_RETURN(ExprPtr inner, parse_not());
      ExprPtr n = node(Expr::Type::kNot, at);
      n->args.push_back(std::move(inner));
      return seal(std::move(n));
    }
    return parse_compare();
  }

  Expected<ExprPtr> parse_compare() {
    const Token at = cur();
    SUANLI_ASSIGN_OR_RETURN(ExprPtr first, parse_math1());
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (cur().type == TokenType::kOp &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == "<=" ||
           cur().text == ">" || cur().text == ">=")) {
        op = cur().text;
        next();
      } else if (is_name("in")) {
        op = "in";
        next();
      } else if (is_name("not") && peek().type == TokenType::kName && peek().text == "in") {
        op = "not in";
        next();
        next();
      } else {
        break;
      }
      if (!cmp) {
        cmp = node(Expr::Type::kCompare, at);
        cmp->args.push_back(std::move(first));
      }
      SUANLI_ASSIGN_OR_RETURN(ExprPtr rhs, parse_math1());
      cmp->ops.push_back(op);
      cmp->args.push_back(std::move(rhs));
    }
    if (cmp) return seal(std::move(cmp));
    return first;
  }

  Expected<ExprPtr> binary_ops(std::initializer_list<const char*> ops, Expected<ExprPtr> (Parser::*sub)()) {
    SUANLI_ASSIGN_OR_RETURN(ExprPtr left, (this->*sub)());
    while (cur().type == TokenType::kOp) {
      const char* match = nullptr;
      for (const char* o : ops) {
        if (cur().text == o) match = o;
      }
      if (!match) break;
      const Token at = cur();
      next();
      SUANLI_ASSIGN_OR_RETURN(ExprPtr right, (this->*sub)());
      ExprPtr b = node(Expr::Type::kBinary, at);
      b->name = match;
      b->args.push_back(std::move(left));
      b->args.push_back(std::move(right));
      SUANLI_ASSIGN_OR_RETURN(left, seal(std::move(b)));
    }
    return left;
  }
  Expected<ExprPtr> parse_math1() { return binary_ops({"+", "-"}, &Parser::parse_concat); }
  Expected<ExprPtr> parse_concat() { return binary_ops({"~"}, &Parser::parse_math2); }
  Expected<ExprPtr> parse_math2() { return binary_ops({"*", "/", "//", "%"}, &Parser::parse_pow); }
  Expected<ExprPtr> parse_pow() { return binary_ops({"**"}, &Parser::parse_unary_filtered); }
  Expected<ExprPtr> parse_unary_filtered() { return parse_unary(true); }

  Expected<ExprPtr> parse_unary(bool with_filter) {
    DepthGuard guard(this);
    SUANLI_RETURN_IF_ERROR(check_depth());
    const Token at = cur();
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      bool neg = is_op("-");
      next();
      SUANLI_ASSIGN_OR_RETURN(ExprPtr inner, parse_unary(false));
      e = node(neg ? Expr::Type::kNeg : Expr::Type::kPos, at);
      e->args.push_back(std::move(inner));
      SUANLI_ASSIGN_OR_RETURN(e, seal(std::move(e)));
    } else {
      SUANLI_ASSIGN_OR_RETURN(e, parse_primary());
    }
    SUANLI_ASSIGN_OR_RETURN(e, parse_postfix(std::move(e)));
    if (with_filter) {
      SUANLI_ASSIGN_OR_RETURN(e, parse_filter_expr(std::move(e)));
    }
    return e;
  }

  Expected<ExprPtr> parse_primary() {
    const Token at = cur();
    switch (at.type) {
      case TokenType::kName: {
        next();
        ExprPtr e = node(Expr::Type::kConst, at);
        if (at.text == "true" || at.text == "True") e->value = Value::boolean(true);
        else if (at.text == "false" || at.text == "False") e->value = Value::boolean(false);
        else if (at.text == "none" || at.text == "None") e->value = Value::none();
        else {
          e->type = Expr::Type::kName;
          e->name = at.text;
        }
        return e;
      }
      case TokenType::kString: {
        std::string s;
        while (cur().type == TokenType::kString) {
          s += cur().text;
          next();
        }
        ExprPtr e = node(Expr::Type::kConst, at);
        e->value = Value::string(std::move(s));
        return e;
      }
      case TokenType::kInt: case TokenType::kFloat: {
        next();
        ExprPtr e = node(Expr::Type::kConst, at);
        e->value = at.type == TokenType::kInt ? Value::integer(at.int_value) : Value::floating(at.float_value);
        return e;
      }
      case TokenType::kOp:
        if (at.text == "(") {
          next();
          if (skip_op(")")) return node(Expr::Type::kTuple, at);
          SUANLI_ASSIGN_OR_RETURN(ExprPtr e, parse_tuple({}));
          SUANLI_RETURN_IF_ERROR(expect_op(")"));
          return e;
        }
        if (at.text == "[") {
          next();
          ExprPtr e = node(Expr::Type::kList, at);
          while (!is_op("]")) {
            if (!e->args.empty()) SUANLI_RETURN_IF_ERROR(expect_op(","));
            if (is_op("]")) break;
            SUANLI_ASSIGN_OR_RETURN(ExprPtr item, parse_expression(true));
            e->args.push_back(std::move(item));
          }
          next();
          return seal(std::move(e));
        }
        if (at.text == "{") {
          next();
          ExprPtr e = node(Expr::Type::kDict, at);
          while (!is_op("}")) {
            if (!e->args.empty()) SUANLI_RETURN_IF_ERROR(expect_op(","));
            if (is_op("}")) break;
            SUANLI_ASSIGN_OR_RETURN(ExprPtr key, parse_expression(true));
            SUANLI_RETURN_IF_ERROR(expect_op(":"));
            SUANLI_ASSIGN_OR_RETURN(ExprPtr val, parse_expression(true));
            e->keys.push_back(std::move(key));
            e->args.push_back(std::move(val));
          }
          next();
          return seal(std::move(e));
        }
        break;
      default:
        break;
    }
    return error("unexpected " + describe(at));
  }

  Expected<ExprPtr> parse_postfix(ExprPtr e) {
    while (true) {
      const Token at = cur();
      if (is_op(".")) {
        next();
        if (cur().type == TokenType::kName) {
          ExprPtr g = node(Expr::Type::kGetAttr, at);
          g->name = cur().text;
          next();
          g->args.push_back(std::move(e));
          SUANLI_ASSIGN_OR_RETURN(e, seal(std::move(g)));
        } else if (cur().type == TokenType::kInt) {
          ExprPtr g = node(Expr::Type::kGetItem, at);
          ExprPtr idx = node(Expr::Type::kConst, cur());
          idx->value = Value::integer(cur().int_value);
          next();
          g->args.push_back(std::move(e));
          g->args.push_back(std::move(idx));
          SUANLI_ASSIGN_OR_RETURN(e, seal(std::move(g)));
        } else {
          return error("expected an attribute name after '.'");
        }
      } else if (is_op("[")) {
        next();
        SUANLI_ASSIGN_OR_RETURN(e, parse_subscript(std::move(e), at));
      } else if (is_op("(")) {
        SUANLI_ASSIGN_OR_RETURN(e, parse_call(std::move(e), Expr::Type::kCall, ""));
      } else {
        return e;
      }
    }
  }

  Expected<ExprPtr> parse_subscript(ExprPtr obj, const Token& at) {
    DepthGuard guard(this);
    SUANLI_RETURN_IF_ERROR(check_depth());
    ExprPtr parts[3];
    int colons = 0;
    bool any = false;
    while (!is_op("]")) {
      if (is_op(":")) {
        if (++colons > 2) return error("unexpected ':'");
        next();
        continue;
      }
      if (parts[colons]) return error("expected ']' or ':', got " + describe(cur()));
      SUANLI_ASSIGN_OR_RETURN(parts[colons], parse_expression(true));
      any = true;
    }
    next();
    if (colons == 0) {
      if (!any) return error_at(at, "empty subscript");
      ExprPtr g = node(Expr::Type::kGetItem, at);
      g->args.push_back(std::move(obj));
      g->args.push_back(std::move(parts[0]));
      return seal(std::move(g));
    }
    ExprPtr s = node(Expr::Type::kSlice, at);
    s->args.push_back(std::move(obj));
    for (auto& p : parts) s->args.push_back(std::move(p));
    return seal(std::move(s));
  }

  // At "(": parses call arguments into e->args[1..] / kwargs.
  Status parse_call_args(Expr& e) {
    SUANLI_RETURN_IF_ERROR(expect_op("("));
    bool first = true;
    while (!is_op(")")) {
      if (!first) SUANLI_RETURN_IF_ERROR(expect_op(","));
      first = false;
      if (is_op(")")) break;
      if (is_op("*") || is_op("**")) return error("*args and **kwargs in calls are not supported");
      if (cur().type == TokenType::kName && peek().type == TokenType::kOp && peek().text == "=") {
        std::string key = cur().text;
        next();
        next();
        SUANLI_ASSIGN_OR_RETURN(ExprPtr v, parse_expression(true));
        e.kwargs.emplace_back(std::move(key), std::move(v));
      } else {
        if (!e.kwargs.empty()) return error("positional argument follows keyword argument");
        SUANLI_ASSIGN_OR_RETURN(ExprPtr v, parse_expression(true));
        e.args.push_back(std::move(v));
      }
    }
    next();
    return Status::Ok();
  }

  Expected<ExprPtr> parse_call(ExprPtr callee, Expr::Type type, std::string name) {
    DepthGuard guard(this);
    SUANLI_RETURN_IF_ERROR(check_depth());
    ExprPtr c = node(type, cur());
    c->name = std::move(name);
    c->args.push_back(std::move(callee));
    SUANLI_RETURN_IF_ERROR(parse_call_args(*c));
    return seal(std::move(c));
  }

  Expected<ExprPtr> parse_filter_expr(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        SUANLI_ASSIGN_OR_RETURN(e, parse_filter_chain(std::move(e), /*single=*/true));
      } else if (is_name("is")) {
        SUANLI_ASSIGN_OR_RETURN(e, parse_test(std::move(e)));
      } else if (is_op("(")) {
        SUANLI_ASSIGN_OR_RETURN(e, parse_call(std::move(e), Expr::Type::kCall, ""));
      } else {
        return e;
      }
    }
  }

  // At "|" (or at the first filter name in a {% filter %} tag).
  Expected<ExprPtr> parse_filter_chain(ExprPtr subject, bool single = false) {
    bool first = true;
    do {
      DepthGuard guard(this);
      SUANLI_RETURN_IF_ERROR(check_depth());
      if (!(first && !subject && !is_op("|"))) SUANLI_RETURN_IF_ERROR(expect_op("|"));
      first = false;
      const Token at = cur();
      SUANLI_ASSIGN_OR_RETURN(std::string name, expect_name());
      while (skip_op(".")) {
        SUANLI_ASSIGN_OR_RETURN(std::string part, expect_name());
        name += "." + part;
      }
      ExprPtr f = node(Expr::Type::kFilter, at);
      f->name = name;
      f->args.push_back(std::move(subject));
      if (is_op("(")) SUANLI_RETURN_IF_ERROR(parse_call_args(*f));
      SUANLI_ASSIGN_OR_RETURN(subject, seal(std::move(f)));
    } while (!single && is_op("|"));
    return subject;
  }

  Expected<ExprPtr> parse_test(ExprPtr subject) {
    const Token at = cur();
    next();  // is
    bool negated = skip_name("not");
    const Token name_tok = cur();
    SUANLI_ASSIGN_OR_RETURN(std::string name, expect_name());
    while (skip_op(".")) {
      SUANLI_ASSIGN_OR_RETURN(std::string part, expect_name());
      name += "." + part;
    }
    ExprPtr t = node(Expr::Type::kTest, at);
    t->name = name;
    t->args.push_back(std::move(subject));
    const Token& c = cur();
    bool arg_start = c.type == TokenType::kString || c.type == TokenType::kInt || c.type == TokenType::kFloat ||
                     (c.type == TokenType::kName && c.text != "else" && c.text != "or" && c.text != "and") ||
                     (c.type == TokenType::kOp && (c.text == "[" || c.text == "{"));
    if (is_op("(")) {
      SUANLI_RETURN_IF_ERROR(parse_call_args(*t));
    } else if (arg_start) {
      if (is_name("is")) return error("You cannot chain multiple tests with is");
      DepthGuard guard(this);
      SUANLI_RETURN_IF_ERROR(check_depth());
      SUANLI_ASSIGN_OR_RETURN(ExprPtr arg, parse_primary());
      SUANLI_ASSIGN_OR_RETURN(arg, parse_postfix(std::move(arg)));
      t->args.push_back(std::move(arg));
    }
    if (!negated) return seal(std::move(t));
    SUANLI_ASSIGN_OR_RETURN(t, seal(std::move(t)));
    ExprPtr n = node(Expr::Type::kNot, at);
    n->args.push_back(std::move(t));
    return seal(std::move(n));
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Expected<std::shared_ptr<const Program>> parse_program(std::string_view source) {
  SUANLI_ASSIGN_OR_RETURN(std::vector<Token> tokens, lex(source));
  return Parser(std::move(tokens)).run();
}

}  // namespace suanli::chat_template_detail
