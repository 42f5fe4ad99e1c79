// Tokens and the syntax tree of a parsed template. The parser (parser.cc)
// builds it once; the interpreter (interpreter.cc) walks it for every render.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "suanli/status.h"
#include "value.h"

namespace suanli::chat_template_detail {

enum class TokenType { kData, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kString, kInt, kFloat, kOp, kEof };

struct Token {
  TokenType type = TokenType::kEof;
  std::string text;  // data, name, operator, or the unescaped string literal
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
  int column = 1;
};

// Tokenizes with HF's jinja2 settings: trim_blocks and lstrip_blocks on,
// newlines normalized to \n, one trailing newline dropped.
Expected<std::vector<Token>> lex(std::string_view source);

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Type {
    kConst,     // value
    kName,      // name
    kList,      // args
    kTuple,     // args
    kDict,      // kwargs-like: keys[i] : args[i]
    kGetAttr,   // args[0] . name
    kGetItem,   // args[0] [ args[1] ]
    kSlice,     // args[0] [ args[1] : args[2] : args[3] ] (null parts omitted)
    kCall,      // args[0] ( args[1..], kwargs )
    kFilter,    // args[0] (null inside filter blocks) | name ( args[1..], kwargs )
    kTest,      // args[0] is name ( args[1..], kwargs )
    kNot,       // not args[0]
    kNeg,       // - args[0]
    kPos,       // + args[0]
    kBinary,    // args[0] name args[1]: + - * / // % ** ~
    kCompare,   // args[0] ops[0] args[1] ops[1] args[2] ... (chained)
    kAnd,
    kOr,
    kCondExpr,  // args[1] if args[0] else args[2] (args[2] may be null)
  };
  Type type = Type::kConst;
  int line = 0;
  int column = 0;
  int height = 1;  // of this subtree; bounded by kMaxParseDepth
  Value value;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::string> ops;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<ExprPtr> keys;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  enum class Type {
    kText,        // text
    kPrint,       // {{ expr }}
    kIf,          // conditions[i] -> bodies[i]; else_body
    kFor,         // targets in expr [if filter] body [else else_body]
    kSet,         // targets = expr, or ns_name.attr = expr
    kSetBlock,    // targets[0] (or ns_name.attr) = rendered body, through filter when set
    kMacro,       // name(params = defaults) body
    kFilterBlock, // body rendered through filter
    kBreak,
    kContinue,
  };
  Type type = Type::kText;
  int line = 0;
  int column = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;  // kFor: the loop's `if`; kSetBlock / kFilterBlock: filter chain
  std::vector<std::string> targets;
  std::string attr;  // kSet/kSetBlock on a namespace: targets[0] is the namespace
  std::vector<ExprPtr> conditions;
  std::vector<Body> bodies;
  Body body;
  Body else_body;
  std::vector<ExprPtr> defaults;  // kMacro: one per param, null when none
};

struct Program {
  Body body;
};

// Parses a whole template; errors name line and column.
Expected<std::shared_ptr<const Program>> parse_program(std::string_view source);

// Nesting allowed in a template: blocks inside blocks plus expression depth.
inline constexpr int kMaxParseDepth = 128;

}  // namespace suanli::chat_template_detail
