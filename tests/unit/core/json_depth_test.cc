// json_nesting_depth: the byte-level guard run before untrusted JSON is
// parsed. Its answers are checked against nlohmann's parse of the same text.
#include "core/json_depth.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>

namespace suanli {
namespace {

// The nesting of a parsed value, by walking it (the test's values are
// shallow enough to recurse over).
int parsed_depth(const nlohmann::json& j) {
  if (!j.is_structured()) return 0;
  int d = 0;
  for (const auto& c : j) d = std::max(d, parsed_depth(c));
  return d + 1;
}

TEST(JsonDepth, counts_arrays_and_objects_not_brackets_in_strings) {
  EXPECT_EQ(json_nesting_depth("", 10), 0);
  EXPECT_EQ(json_nesting_depth("1", 10), 0);
  EXPECT_EQ(json_nesting_depth("{}", 10), 1);
  EXPECT_EQ(json_nesting_depth(R"({"a":[1,{"b":[]}],"c":{}})", 10), 4);
  EXPECT_EQ(json_nesting_depth(R"({"a":"[[[{{{"})", 10), 1);
  EXPECT_EQ(json_nesting_depth(R"({"a":"\"[[[\\", "b":[[]]})", 10), 3);  // escaped quote, escaped backslash
  EXPECT_EQ(json_nesting_depth(R"(["\\\"{"])", 10), 1);
}

TEST(JsonDepth, stops_counting_past_the_limit) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(json_nesting_depth(deep, 128), 129);
  EXPECT_EQ(json_nesting_depth(deep, 1000000), 100000);
}

TEST(JsonDepth, agrees_with_the_parser_on_random_documents) {
  std::mt19937 rng(std::random_device{}());
  const char* atoms[] = {"1", "\"x\"", "\"[{\\\"\"", "\"\\\\\"", "null", "\"]}\""};
  for (int doc = 0; doc < 500; ++doc) {
    // A random document built as text: containers opened and closed at
    // random, atoms between.
    std::string text;
    std::vector<char> open;
    std::vector<bool> first;
    auto value_sep = [&] {
      if (!open.empty()) {
        if (!first.back()) text += ',';
        first.back() = false;
        if (open.back() == '}') text += "\"k" + std::to_string(text.size()) + "\":";
      }
    };
    const int steps = 1 + static_cast<int>(rng() % 60);
    for (int s = 0; s < steps || !open.empty(); ++s) {
      const unsigned r = rng() % 4;
      if (s < steps && r == 0) {
        value_sep();
        const bool obj = rng() % 2;
        text += obj ? '{' : '[';
        open.push_back(obj ? '}' : ']');
        first.push_back(true);
      } else if (!open.empty() && (r == 1 || s >= steps)) {
        text += open.back();
        open.pop_back();
        first.pop_back();
      } else if (!open.empty()) {
        value_sep();
        text += atoms[rng() % (sizeof atoms / sizeof atoms[0])];
      } else {
        text += '[';
        open.push_back(']');
        first.push_back(true);
      }
      if (open.empty()) break;
    }
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << text;
    EXPECT_EQ(json_nesting_depth(text, 1000), parsed_depth(j)) << text;
  }
}

}  // namespace
}  // namespace suanli
