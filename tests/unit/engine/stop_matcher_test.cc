#include "engine/stop_matcher.h"

#include <gtest/gtest.h>

namespace suanli {
namespace {

std::string feed(StopMatcher& m, const std::vector<std::string>& pieces, bool* stopped) {
  std::string out;
  for (const std::string& p : pieces) {
    out += m.push(p, stopped);
    if (*stopped) return out;
  }
  return out + m.flush();
}

TEST(StopMatcher, passes_text_through_without_stops) {
  StopMatcher m({});
  bool stopped = false;
  EXPECT_EQ(feed(m, {"a", "bc"}, &stopped), "abc");
  EXPECT_FALSE(stopped);
}

TEST(StopMatcher, stop_string_spanning_tokens_is_never_emitted) {
  StopMatcher m({"\nUser:"});
  bool stopped = false;
  std::string out;
  out += m.push("Hello", &stopped);
  EXPECT_EQ(out, "Hello");
  out += m.push("\nUs", &stopped);
  EXPECT_EQ(out, "Hello");  // "\nUs" could start the stop string: held back
  out += m.push("er: more", &stopped);
  EXPECT_TRUE(stopped);
  EXPECT_EQ(out, "Hello");
}

TEST(StopMatcher, held_text_is_released_when_it_stops_matching) {
  StopMatcher m({"STOP"});
  bool stopped = false;
  EXPECT_EQ(m.push("ST", &stopped), "");
  EXPECT_EQ(m.push("ART", &stopped), "START");
  EXPECT_FALSE(stopped);
}

TEST(StopMatcher, earliest_of_several_stops_wins) {
  StopMatcher m({"bb", "a"});
  bool stopped = false;
  EXPECT_EQ(m.push("xxbbya", &stopped), "xx");
  EXPECT_TRUE(stopped);
}

TEST(StopMatcher, flush_releases_a_partial_match_at_the_end) {
  StopMatcher m({"</s>"});
  bool stopped = false;
  EXPECT_EQ(feed(m, {"end</"}, &stopped), "end</");
  EXPECT_FALSE(stopped);
}

TEST(StopMatcher, multibyte_stop_strings) {
  StopMatcher m({"。\n"});
  bool stopped = false;
  EXPECT_EQ(m.push("你好。", &stopped), "你好");
  EXPECT_EQ(m.push("\n", &stopped), "");
  EXPECT_TRUE(stopped);
}

}  // namespace
}  // namespace suanli
