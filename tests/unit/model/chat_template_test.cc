// The chat template interpreter: each construct against jinja2's output
// (expected strings were produced by jinja2 3.1 with HF's settings), syntax
// errors with line:column, and the limits that keep hostile templates from
// crashing or hanging.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "suanli/chat_template.h"
#include "suanli/gguf.h"

namespace suanli {
namespace {

using nlohmann::ordered_json;

std::string render(std::string_view src, const ordered_json& ctx = ordered_json::object(), RenderLimits limits = {}) {
  Expected<ChatTemplate> t = ChatTemplate::parse(src);
  if (!t) return "PARSE ERROR: " + t.status().message();
  TemplateClock clock;
  clock.fixed_time = 1721952000;  // 2024-07-26 00:00:00 UTC
  Expected<std::string> out = t->render(ctx, limits, clock);
  if (!out) return "RENDER ERROR: " + out.status().message();
  return *out;
}

Status render_status(std::string_view src, RenderLimits limits = {}) {
  Expected<ChatTemplate> t = ChatTemplate::parse(src);
  if (!t) return t.status();
  return t->render(ordered_json::object(), limits).status();
}

TEST(ChatTemplate, prints_text_and_expressions) {
  EXPECT_EQ(render("a{{ 1 + 2 }}b{# gone #}c"), "a3bc");
  EXPECT_EQ(render("{{ 'x' ~ 1 ~ none ~ true }}"), "x1NoneTrue");
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }}"),
            "3 -4 2 3.5 64 4");
  EXPECT_EQ(render("{{ 1.0 }} {{ 1e20 }} {{ 0.00001 }} {{ 2.5 * 2 }}"), "1.0 1e+20 1e-05 5.0");
  EXPECT_EQ(render("{{ [1, 'a', none, true] }} {{ {'k': 'it\\'s'} }} {{ (1,) }}"),
                   "[1, 'a', None, True] {'k': \"it's\"} (1,)");
  EXPECT_EQ(render("{{ 'a\\nb\\t\\u00e9\\x41' }}"), "a\nb\t\xc3\xa9" "A");
}

TEST(ChatTemplate, whitespace_control_matches_trim_and_lstrip_blocks) {
  EXPECT_EQ(render("  {% if true %}\n  x\n  {% endif %}\n  {{ 'v' }}\n  {# c #}\n  y"), "  x\n  v\n  y");
  EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  EXPECT_EQ(render("a {{- 'b' -}} \n c"), "abc");
  EXPECT_EQ(render("  {%+ if true %}x{% endif +%}\ny"), "  x\ny");
  EXPECT_EQ(render("line\n"), "line");
  EXPECT_EQ(render("a\r\nb"), "a\nb");
}

TEST(ChatTemplate, if_elif_else_and_conditional_expressions) {
  const char* t = "{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% endif %}";
  EXPECT_EQ(render(t, {{"x", 1}}), "one");
  EXPECT_EQ(render(t, {{"x", 2}}), "two");
  EXPECT_EQ(render(t, {{"x", 3}}), "many");
  EXPECT_EQ(render("{{ 'y' if x else 'n' }}|{{ 'y' if x }}|", {{"x", false}}), "n||");
  EXPECT_EQ(render("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' in 'cat' }} {{ 2 not in [1] }}"), "True False True True");
  EXPECT_EQ(render("{{ none or 'd' }} {{ 0 and 1 }} {{ not [] }}"), "d 0 True");
}

TEST(ChatTemplate, for_loops_with_loop_variables_filters_and_else) {
  EXPECT_EQ(render("{% for x in [1,2,3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
                   "{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}"),
            "103TrueFalse3;212FalseFalse3;321FalseTrue3;");
  EXPECT_EQ(render("{% for x in [1,2,3] %}{{ loop.previtem }}-{{ loop.nextitem }},{% endfor %}"), "-2,1-3,2-,");
  EXPECT_EQ(render("{% for x in range(10) if x is odd %}{{ x }}{% endfor %}"), "13579");
  EXPECT_EQ(render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for k, v in {'a': 1, 'b': 2}|items %}{{ k }}={{ v }} {% endfor %}"), "a=1 b=2 ");
  EXPECT_EQ(render("{% for x in range(5) %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 3 %}{% break %}"
                   "{% endif %}{{ x }}{% endfor %}"),
            "02");
  EXPECT_EQ(render("{% for x in undefined_thing %}x{% else %}none{% endfor %}"), "none");
}

TEST(ChatTemplate, set_scoping_follows_jinja2) {
  // A loop body starts from the outer value every iteration; nothing leaks out.
  EXPECT_EQ(render("{% set x = 0 %}{% for i in range(3) %}{{ x }}{% set x = x + 1 %}{{ x }};{% endfor %}{{ x }}"),
            "01;01;01;0");
  EXPECT_EQ(render("{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}"),
            "3");
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ b }}{{ a }}"), "21");
  EXPECT_EQ(render("{% set t %}hi {{ 1 }}{% endset %}[{{ t }}]"), "[hi 1]");
  EXPECT_EQ(render("{% set t | upper %}hi{% endset %}{{ t }}"), "HI");
  EXPECT_EQ(render("{% filter upper %}abc{% endfilter %}"), "ABC");
}

TEST(ChatTemplate, macros_with_defaults_keywords_and_recursion) {
  EXPECT_EQ(render("{% macro m(a, b='B') %}[{{ a }}{{ b }}]{% endmacro %}{{ m(1) }}{{ m(1, 2) }}{{ m(b=3, a=4) }}"),
            "[1B][12][43]");
  EXPECT_EQ(render("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}"), "321");
  EXPECT_EQ(render("{% macro m() %}{{ z }}{% endmacro %}{% set z = 1 %}{{ m() }}{% set z = 2 %}{{ m() }}"), "12");
}

TEST(ChatTemplate, undefined_values_follow_jinja2_default_undefined) {
  EXPECT_EQ(render("[{{ nope }}]{{ nope is defined }}{{ nope|length }}{{ nope|default('d') }}"), "[]False0d");
  EXPECT_EQ(render("{{ d.missing is defined }}{{ d['missing'] is undefined }}", {{"d", ordered_json::object()}}),
            "FalseTrue");
  EXPECT_EQ(render("{{ 'x' in nope }}{{ nope is iterable }}"), "FalseTrue");
  EXPECT_NE(render("{{ nope.attr }}").find("'nope' is undefined"), std::string::npos);
  EXPECT_NE(render("{{ nope + 1 }}").find("'nope' is undefined"), std::string::npos);
  EXPECT_NE(render("{{ nope() }}").find("RENDER ERROR"), std::string::npos);
}

TEST(ChatTemplate, attribute_subscript_and_slicing) {
  ordered_json ctx = {{"m", {{"role", "user"}, {"items", 5}}}, {"l", {1, 2, 3, 4}}, {"s", "h\xc3\xa9llo"}};
  EXPECT_EQ(render("{{ m.role }}{{ m['role'] }}{{ m['items'] }}{{ l[-1] }}{{ l.0 }}", ctx), "useruser541");
  EXPECT_EQ(render("{{ l[1:3] }}{{ l[::-1] }}{{ l[::2] }}{{ s[1:3] }}{{ s[-1] }}{{ s|length }}", ctx),
            "[2, 3][4, 3, 2, 1][1, 3]\xc3\xa9lo5");
}

TEST(ChatTemplate, string_dict_and_list_methods) {
  EXPECT_EQ(render("{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n\\na'.lstrip('\\n') }}|{{ 'a  '.rstrip() }}"),
            "a b|a|a|a");
  EXPECT_EQ(render("{{ 'a,b,,c'.split(',') }}{{ ' a  b '.split() }}{{ 'a</think>b</think>c'.split('</think>', 1) }}"),
            "['a', 'b', '', 'c']['a', 'b']['a', 'b</think>c']");
  EXPECT_EQ(render("{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}{{ 'hello world'.title() }}"
                   "{{ 'aBC'.capitalize() }}{{ 'ab'.upper() }}{{ 'a-a'.replace('a', 'bb') }}"),
            "TrueTrueHello WorldAbcABbb-bb");
  EXPECT_EQ(render("{{ '<{}|{}>'.format('x', 1) }}{{ ', '.join(['a', 'b']) }}{{ 'abcb'.find('b') }}"), "<x|1>a, b1");
  EXPECT_EQ(render("{{ d.get('a') }}{{ d.get('z', 'dflt') }}{{ d.keys()|list }}{{ d.values()|list }}{{ d.items()|list }}",
                   {{"d", {{"a", 1}, {"b", 2}}}}),
            "1dflt['a', 'b'][1, 2][('a', 1), ('b', 2)]");
  // HF renders in an immutable sandbox: mutating methods are unsafe.
  EXPECT_EQ(render("{{ l.append is defined }}", {{"l", {1}}}), "False");
  EXPECT_NE(render("{% set _ = l.append(2) %}", {{"l", {1}}}).find("RENDER ERROR"), std::string::npos);
}

TEST(ChatTemplate, filters) {
  EXPECT_EQ(render("{{ '  x '|trim }}|{{ 'ab'|upper }}|{{ 'it\\'s a-b'|title }}|{{ [3,1,2]|sort }}|{{ [1,2]|reverse|list }}"),
            "x|AB|It's A-B|[1, 2, 3]|[2, 1]");
  EXPECT_EQ(render("{{ [1,2,3]|join('-') }}|{{ [1,2,3]|first }}{{ [1,2,3]|last }}|{{ [1,1,2]|unique|list }}|{{ 'ab'|list }}"),
            "1-2-3|13|[1, 2]|['a', 'b']");
  EXPECT_EQ(render("{{ '3'|int + 1 }} {{ 'x'|int }} {{ '2.5'|float }} {{ -3|abs }} {{ 2.567|round(2) }} {{ 2.5|round }}"),
            "4 0 2.5 3 2.57 2.0");
  EXPECT_EQ(render("{{ ''|default('d') }}{{ ''|default('d', true) }}{{ none|d('x') }}"), "dNone");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2}|dictsort }}"), "[('a', 2), ('b', 1)]");
  ordered_json people = {{"people", {{{"n", "a"}, {"r", "user"}}, {{"n", "b"}, {"r", "bot"}}, {{"n", "c"}, {"r", "user"}}}}};
  EXPECT_EQ(render("{{ people|selectattr('r', 'equalto', 'user')|map(attribute='n')|join }}"
                   "{{ people|rejectattr('r', 'eq', 'user')|map(attribute='n')|list }}",
                   people),
            "ac['b']");
  EXPECT_EQ(render("{{ [1,2,3,4]|select('even')|list }}{{ [0,1,2]|reject|list }}{{ ['a','b']|map('upper')|list }}"),
            "[2, 4][0]['A', 'B']");
  EXPECT_EQ(render("{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'x y z'|wordcount }}|{{ '<&>'|e }}|{{ [1,2,3]|batch(2)|list }}"),
            "a\n  b\n\n  c|3|&lt;&amp;&gt;|[[1, 2], [3]]");
  EXPECT_EQ(render("{{ [3,1]|max }}{{ [3,1]|min }}{{ [1,2]|sum }}{{ [1,2]|length }}{{ {'a':1}|count }}"), "31321");
}

TEST(ChatTemplate, tojson_matches_hf) {
  ordered_json ctx = {{"v", {{"b", 1}, {"a", {1.5, "é\"\n", nullptr, true}}, {"e", ordered_json::object()}}}};
  EXPECT_EQ(render("{{ v|tojson }}", ctx), "{\"b\": 1, \"a\": [1.5, \"é\\\"\\n\", null, true], \"e\": {}}");
  EXPECT_EQ(render("{{ v|tojson(indent=2) }}", ctx),
            "{\n  \"b\": 1,\n  \"a\": [\n    1.5,\n    \"é\\\"\\n\",\n    null,\n    true\n  ],\n  \"e\": {}\n}");
  EXPECT_EQ(render("{{ v.a|tojson(ensure_ascii=true) }}", ctx), "[1.5, \"\\u00e9\\\"\\n\", null, true]");
  EXPECT_EQ(render("{{ v|tojson(sort_keys=true) }}", ctx),
            "{\"a\": [1.5, \"é\\\"\\n\", null, true], \"b\": 1, \"e\": {}}");
  EXPECT_EQ(render("{{ '<a>'|tojson }}"), "\"<a>\"");
}

TEST(ChatTemplate, tests_after_is) {
  EXPECT_EQ(render("{{ 1 is number }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is iterable }}{{ 1 is iterable }}"
                   "{{ none is none }}{{ false is false }}{{ 0 is false }}{{ 4 is even }}{{ 3 is odd }}"
                   "{{ 6 is divisibleby 3 }}{{ 'a' is equalto 'a' }}{{ 1 is not string }}{{ 2 is in [1, 2] }}"),
            "TrueTrueTrueTrueFalseTrueTrueFalseTrueTrueTrueTrueTrueTrue");
}

TEST(ChatTemplate, globals) {
  EXPECT_EQ(render("{{ range(3)|list }}{{ range(1, 7, 2)|list }}{{ dict(a=1) }}"), "[0, 1, 2][1, 3, 5]{'a': 1}");
  EXPECT_EQ(render("{{ strftime_now('%d %b %Y') }}"), "26 Jul 2024");
  Status s = render_status("{{ raise_exception('Conversation roles must alternate') }}");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("Conversation roles must alternate"), std::string::npos);
}

TEST(ChatTemplate, syntax_errors_name_line_and_column) {
  struct Case {
    const char* src;
    const char* where;
  };
  for (const Case& c : {Case{"ok\n{% if x %}\nnever closed", "unexpected end of template"},
                        Case{"a\n  {{ 1 + }}", "line 2, column 10"},
                        Case{"{% for %}", "line 1, column 8"},
                        Case{"x\n\n {% endfor %}", "line 3"},
                        Case{"{{ 'unterminated }}", "unterminated string"},
                        Case{"{# no end", "missing end of comment"},
                        Case{"{{ (1 }}", "line 1"},
                        Case{"{% include 'x' %}", "unsupported statement 'include'"},
                        Case{"{% break %}", "outside of a loop"}}) {
    Expected<ChatTemplate> t = ChatTemplate::parse(c.src);
    ASSERT_FALSE(t.has_value()) << c.src;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(t.status().message().find(c.where), std::string::npos) << c.src << " -> " << t.status().message();
  }
}

TEST(ChatTemplate, render_errors_name_line_and_column) {
  Status s = render_status("line one\n  {{ 1 + 'a' }}");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("line 2, column"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("unsupported operand"), std::string::npos) << s.message();
}

// Each hostile template must fail with a Status, quickly.
class HostileTemplate : public ::testing::TestWithParam<const char*> {};

TEST_P(HostileTemplate, fails_cleanly_and_quickly) {
  RenderLimits limits;
  limits.max_steps = 1'000'000;
  limits.max_output_bytes = 1 << 20;
  auto start = std::chrono::steady_clock::now();
  Status s = render_status(GetParam(), limits);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_FALSE(s.ok()) << GetParam();
  EXPECT_LT(secs, 5.0) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(
    ChatTemplate, HostileTemplate,
    ::testing::Values(
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",  // steps
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",                          // recursion
        "{% for i in range(100000) %}{{ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' }}{% endfor %}",  // output size
        "{{ 'a' * 10**9 }}",                                                                 // string size
        "{{ [1] * 10**9 }}",                                                                 // list size
        "{{ range(10**9)|list }}",                                                           // range size
        "{{ 10**100 }}",                                                                     // integer overflow
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
        "{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l }}"));

TEST(ChatTemplate, deep_nesting_is_a_parse_error_not_a_crash) {
  for (int depth : {200, 100000}) {
    std::string parens = "{{ " + std::string(depth, '(') + "1" + std::string(depth, ')') + " }}";
    EXPECT_FALSE(ChatTemplate::parse(parens).has_value());
    std::string chain = "{{ 1" ;
    for (int i = 0; i < depth; ++i) chain += " + 1";
    chain += " }}";
    EXPECT_FALSE(ChatTemplate::parse(chain).has_value());
    std::string filters = "{{ 'a'";
    for (int i = 0; i < depth; ++i) filters += "|trim";
    filters += " }}";
    EXPECT_FALSE(ChatTemplate::parse(filters).has_value());
    std::string blocks;
    for (int i = 0; i < depth; ++i) blocks += "{% if true %}";
    EXPECT_FALSE(ChatTemplate::parse(blocks).has_value());
    std::string nots = "{{ " ;
    for (int i = 0; i < depth; ++i) nots += "not ";
    nots += "1 }}";
    EXPECT_FALSE(ChatTemplate::parse(nots).has_value());
  }
  // Moderate nesting still works.
  EXPECT_EQ(render("{{ " + std::string(30, '(') + "1" + std::string(30, ')') + " }}"), "1");
}

TEST(ChatTemplate, deeply_nested_context_values_are_refused_not_a_crash) {
  // Built iteratively (nlohmann destroys deep values without recursion).
  for (const bool objects : {false, true}) {
    ordered_json v = 1;
    for (int i = 0; i < 200000; ++i) {
      ordered_json outer = objects ? ordered_json::object() : ordered_json::array();
      if (objects) {
        outer["a"] = std::move(v);
      } else {
        outer.push_back(std::move(v));
      }
      v = std::move(outer);
    }
    Expected<ChatTemplate> t = ChatTemplate::parse("{{ messages|length }}");
    ASSERT_TRUE(t.has_value());
    ordered_json ctx = ordered_json::object();
    ctx["messages"] = std::move(v);
    Expected<std::string> out = t->render(ctx);
    ASSERT_FALSE(out.has_value());
    EXPECT_NE(out.status().message().find("nesting deeper than"), std::string::npos) << out.status().message();
  }
  // 200 levels are fine.
  ordered_json v = 1;
  for (int i = 0; i < 200; ++i) v = ordered_json::array({std::move(v)});
  EXPECT_EQ(render("{{ messages|length }}", ordered_json{{"messages", v}}), "1");
}

TEST(ChatTemplate, chatml_fallback_renders_messages) {
  GgufWriter w;
  w.set("general.architecture", "llama");
  Expected<std::vector<uint8_t>> bytes = w.to_bytes();
  ASSERT_TRUE(bytes.has_value());
  Expected<GgufFile> f = GgufFile::parse(*bytes);
  ASSERT_TRUE(f.has_value()) << f.status().to_string();
  ordered_json messages = ordered_json::array({{{"role", "user"}, {"content", "Hi"}}});
  Expected<std::string> out = apply_chat_template(*f, messages, nullptr, true);
  ASSERT_TRUE(out.has_value()) << out.status().to_string();
  EXPECT_EQ(*out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

}  // namespace
}  // namespace suanli
