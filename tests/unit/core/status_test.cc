#include "suanli/status.h"

#include <gtest/gtest.h>

namespace suanli {
namespace {

Expected<int> parse_positive(int x) {
  if (x <= 0) return InvalidArgument("x must be positive, got " + std::to_string(x));
  return x;
}

Status doubles_through_macros(int x, int* out) {
  SUANLI_ASSIGN_OR_RETURN(int v, parse_positive(x));
  *out = 2 * v;
  return Status::Ok();
}

TEST(Status, ok_by_default_and_carries_message_otherwise) {
  EXPECT_TRUE(Status().ok());
  Status s = CorruptData("at byte 8: bad");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kCorruptData);
  EXPECT_EQ(s.to_string(), "corrupt data: at byte 8: bad");
  EXPECT_EQ(s.with_context("f.gguf").message(), "f.gguf: at byte 8: bad");
}

TEST(Expected, holds_value_or_status) {
  Expected<int> good = parse_positive(3);
  ASSERT_TRUE(good.has_value());
  EXPECT_EQ(*good, 3);
  Expected<int> bad = parse_positive(-1);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.value_or(7), 7);
}

TEST(Expected, an_ok_status_never_masquerades_as_a_value) {
  Expected<int> e{Status::Ok()};
  EXPECT_FALSE(e.has_value());
  EXPECT_EQ(e.status().code(), StatusCode::kInternal);
}

TEST(StatusMacros, propagate_errors_and_values) {
  int out = 0;
  EXPECT_TRUE(doubles_through_macros(4, &out).ok());
  EXPECT_EQ(out, 8);
  Status s = doubles_through_macros(0, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace suanli
