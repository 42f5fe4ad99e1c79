// The JSON Schema subset: what compiles (and what is refused rather than
// ignored), and texts the automaton must accept or refuse for a
// pydantic-style schema ($defs, Optional, enums, arrays, required and order)
// and a recursive one. Every accepted complete text is also parsed by
// nlohmann::json as an object. tests/py/test_server.py checks generated
// outputs with the jsonschema package, an independent validator.
#include "engine/json_schema.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>

namespace suanli {
namespace {

using ojson = nlohmann::ordered_json;

std::shared_ptr<const JsonSchema> compile(const char* text) {
  Expected<std::shared_ptr<const JsonSchema>> s = JsonSchema::compile(ojson::parse(text));
  EXPECT_TRUE(s.has_value()) << text << ": " << s.status().to_string();
  return s ? *s : nullptr;
}

bool accepts(const JsonSchema& s, const std::string& text) {
  SchemaAutomaton a(&s);
  if (!a.push(text) || !a.complete()) return false;
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  EXPECT_TRUE(!j.is_discarded() && j.is_object()) << "accepted but not a JSON object: " << text;
  return true;
}

constexpr const char* kPerson = R"({
  "type": "object",
  "title": "Person",
  "properties": {
    "name": {"type": "string", "description": "any text"},
    "age": {"type": "integer"},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    "pet": {"anyOf": [{"$ref": "#/$defs/Pet"}, {"type": "null"}], "default": null},
    "kind": {"enum": ["cat", "dog", 1, 12, true]},
    "score": {"type": ["number", "null"]}
  },
  "required": ["name", "age"],
  "additionalProperties": false,
  "$defs": {"Pet": {"type": "object", "properties": {"name": {"type": "string"}, "legs": {"type": "number"}},
                    "required": ["legs"]}}
})";

TEST(JsonSchema, accepts_exactly_the_valid_objects_in_schema_order) {
  auto s = compile(kPerson);
  ASSERT_TRUE(s);
  for (const char* good : {
           R"({"name":"a","age":3})",
           R"( { "name" : "\u00e9 x" ,
                 "age" : -0 } )",
           R"({"name":"a","age":3,"tags":[],"pet":null,"kind":"dog","score":null})",
           R"({"name":"a","age":3,"tags":["x","y","z"],"pet":{"legs":4.5}})",
           R"({"name":"a","age":3,"pet":{"name":"rex","legs":4}})",
           R"({"name":"a","age":3,"kind":12})",
           R"({"name":"a","age":3,"kind":1,"score":-1.5e3})",
           R"({"name":"a","age":3,"kind":true})",
       }) {
    EXPECT_TRUE(accepts(*s, good)) << good;
  }
  for (const char* bad : {
           R"({"age":3,"name":"a"})",                          // not in the schema's order
           R"({"name":"a"})",                                  // a required property missing
           R"({"name":"a","age":3.5})",                        // not an integer
           R"({"name":"a","age":3e1})",                        // nor this
           R"({"name":"a","age":3,"tags":["a","b","c","d"]})", // maxItems
           R"({"name":"a","age":3,"extra":1})",                // not a listed property
           R"({"name":"a","age":3,"kind":"cow"})",             // not an enum value
           R"({"name":"a","age":3,"kind":123})",
           R"({"name":"a","age":3,"kind":false})",
           R"({"name":"a","age":3,"pet":{"name":"x"}})",       // the Pet's required legs
           R"({"name":1,"age":3})",                            // not a string
           R"({"name":"a","age":3,"tags":[1]})",
           R"({"name":"a","age":3,"score":"1"})",
           R"({"name":"a","age":3,})",
           R"([])",
       }) {
    EXPECT_FALSE(accepts(*s, bad)) << bad;
  }
}

TEST(JsonSchema, recursive_schemas_and_free_values) {
  auto tree = compile(R"({"type":"object","properties":{"value":{"type":"integer"},
      "children":{"type":"array","items":{"$ref":"#"}}},"required":["value","children"]})");
  ASSERT_TRUE(tree);
  EXPECT_TRUE(accepts(*tree, R"({"value":1,"children":[{"value":2,"children":[]},{"value":3,"children":[]}]})"));
  EXPECT_FALSE(accepts(*tree, R"({"value":1,"children":[{"value":2}]})"));
  auto free = compile(R"({"type":"object","properties":{"meta":{},"any":true,"obj":{"type":"object"}},
      "required":["meta","any","obj"]})");
  ASSERT_TRUE(free);
  EXPECT_TRUE(accepts(*free, R"({"meta":[1,{"a":null}],"any":"x","obj":{"k":[true]}})"));
  EXPECT_FALSE(accepts(*free, R"({"meta":[1,{"a":null}],"any":"x","obj":[]})"));
  auto counts = compile(R"({"type":"object","properties":{"xs":{"type":"array","minItems":2,"maxItems":2,
      "items":{"type":"number"}}},"required":["xs"]})");
  ASSERT_TRUE(counts);
  EXPECT_TRUE(accepts(*counts, R"({"xs":[1,2.5]})"));
  EXPECT_FALSE(accepts(*counts, R"({"xs":[1]})"));
  EXPECT_FALSE(accepts(*counts, R"({"xs":[1,2,3]})"));
}

TEST(JsonSchema, refuses_what_it_could_not_enforce) {
  for (const char* text : {
           R"({"type":"string"})",                                                       // root not an object
           R"({"type":"object","properties":{"a":{"type":"string","pattern":"^x$"}}})",  // pattern
           R"({"type":"object","properties":{"a":{"type":"string","maxLength":3}}})",
           R"({"type":"object","properties":{"a":{"type":"integer","minimum":0}}})",
           R"({"type":"object","properties":{"a":{"allOf":[{"type":"string"}]}}})",
           R"({"type":"object","properties":{"a":{"anyOf":[{"type":"object"},{"type":"object","properties":{}}]}}})",
           R"({"type":"object","properties":{"a":{"$ref":"#/$defs/Missing"}}})",
           R"({"type":"object","properties":{"a":{"type":"string"}},"required":["b"]})",
           R"({"type":"object","properties":{"a":false}})",
           R"({"type":"object","properties":{"a":{"type":"date"}}})",
           R"({"type":"object","properties":{"a":{"type":[]}}})",
           R"({"type":"object","properties":{"a":{"$ref":"#/$defs/L"}},"$defs":{"L":{"$ref":"#/$defs/L"}}})",
           R"([1])",
       }) {
    Expected<std::shared_ptr<const JsonSchema>> s = JsonSchema::compile(ojson::parse(text));
    EXPECT_FALSE(s.has_value()) << text;
    if (!s) {
      EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << text;
    }
  }
}

TEST(JsonSchema, deep_values_are_refused_before_anything_recurses_over_them) {
  // const / enum values nested past the schema's 32 levels: refused, also
  // when they are deep enough that dump() would overflow the stack.
  for (const int depth : {40, 300000}) {
    for (const char* key : {"const", "enum"}) {
      ojson v = 1;
      for (int i = 0; i < depth; ++i) v = ojson::array({std::move(v)});
      ojson schema = {{"type", "object"}, {"properties", {{"a", ojson::object()}}}};
      schema["properties"]["a"][key] = std::string(key) == "enum" ? ojson::array({std::move(v)}) : std::move(v);
      Expected<std::shared_ptr<const JsonSchema>> s = JsonSchema::compile(schema);
      ASSERT_FALSE(s.has_value()) << key << " " << depth;
      EXPECT_NE(s.status().message().find("nested too deeply"), std::string::npos) << s.status().message();
    }
  }
  // A modest literal still compiles.
  EXPECT_TRUE(JsonSchema::compile(ojson::parse(R"({"type":"object","properties":{"a":{"const":[[[1]]]}}})")));
  // A non-string in required is named by its kind, not printed.
  ojson deep = 1;
  for (int i = 0; i < 300000; ++i) deep = ojson::array({std::move(deep)});
  ojson schema = ojson::parse(R"({"type":"object","properties":{"a":{"type":"string"}}})");
  schema["required"] = ojson::array({std::move(deep)});
  EXPECT_FALSE(JsonSchema::compile(schema).has_value());
}

TEST(JsonSchema, any_object_matches_the_plain_json_automaton) {
  // json_object runs through the schema automaton: on fresh random byte
  // strings over JSON's alphabet it must agree with JsonAutomaton.
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::string alphabet = "{}[]\":, \n-0123456789.eEtrufalsn";
  auto any = JsonSchema::any_object();
  for (int i = 0; i < 200000; ++i) {
    std::string text = "{";
    for (int n = static_cast<int>(rng() % 9); n > 0; --n) text += alphabet[rng() % alphabet.size()];
    if (rng() % 2) text += "}";
    JsonAutomaton plain;
    SchemaAutomaton schema(any.get());
    const bool a = plain.push(text), b = schema.push(text);
    ASSERT_EQ(a, b) << text;
    if (a) {
      ASSERT_EQ(plain.complete(), schema.complete()) << text;
    }
  }
}

}  // namespace
}  // namespace suanli
