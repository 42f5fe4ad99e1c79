#include "model/pull.h"

#include <gtest/gtest.h>

namespace suanli {
namespace {

TEST(FileNameFromUrl, takes_last_path_segment_without_query_or_fragment) {
  EXPECT_EQ(*file_name_from_url("https://example.com/a/b/model.gguf?download=1#x"), "model.gguf");
  EXPECT_EQ(*file_name_from_url("HTTP://example.com:8080/m.gguf"), "m.gguf");
}

TEST(FileNameFromUrl, percent_decodes_the_name) {
  EXPECT_EQ(*file_name_from_url("http://h/my%20model.gguf"), "my model.gguf");
}

TEST(FileNameFromUrl, rejects_names_that_are_empty_or_escape_the_directory) {
  EXPECT_FALSE(file_name_from_url("http://example.com"));
  EXPECT_FALSE(file_name_from_url("http://example.com/"));
  EXPECT_FALSE(file_name_from_url("http://example.com/dir/"));
  EXPECT_FALSE(file_name_from_url("http://example.com/.."));
  EXPECT_FALSE(file_name_from_url("http://example.com/%2e%2e"));
  EXPECT_FALSE(file_name_from_url("http://example.com/a%2fb"));
  EXPECT_FALSE(file_name_from_url("http://example.com/a%00b"));
}

TEST(FileNameFromUrl, rejects_non_http_schemes) {
  EXPECT_FALSE(file_name_from_url("ftp://example.com/m.gguf"));
  EXPECT_FALSE(file_name_from_url("file:///etc/passwd"));
  EXPECT_FALSE(file_name_from_url("model.gguf"));
}

TEST(Sha256Hex, accepts_only_64_lowercase_hex_digits) {
  EXPECT_TRUE(is_sha256_hex(kDefaultModelSha256));
  EXPECT_FALSE(is_sha256_hex(std::string(63, 'a')));
  EXPECT_FALSE(is_sha256_hex(std::string(64, 'A')));
  EXPECT_FALSE(is_sha256_hex(std::string(64, 'g')));
}

TEST(ContentRange, parses_ranges_and_unsatisfied_form) {
  auto r = parse_content_range("bytes 100-199/1000");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->start, 100u);
  EXPECT_EQ(r->end, 199u);
  EXPECT_EQ(r->total, 1000u);

  auto unknown_total = parse_content_range("bytes 0-9/*");
  ASSERT_TRUE(unknown_total);
  EXPECT_FALSE(unknown_total->total);

  auto unsatisfied = parse_content_range("bytes */1000");
  ASSERT_TRUE(unsatisfied);
  EXPECT_FALSE(unsatisfied->start);
  EXPECT_EQ(unsatisfied->total, 1000u);
}

TEST(ContentRange, rejects_malformed_values) {
  EXPECT_FALSE(parse_content_range("items 0-9/10"));
  EXPECT_FALSE(parse_content_range("bytes 0-9"));
  EXPECT_FALSE(parse_content_range("bytes 9-0/10"));
  EXPECT_FALSE(parse_content_range("bytes 0-10/10"));
  EXPECT_FALSE(parse_content_range("bytes a-b/10"));
}

TEST(FormatBytes, uses_binary_units) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(98362432), "93.8 MiB");
}

TEST(FormatProgress, shows_percent_rate_and_eta) {
  std::string line = format_progress(50 << 20, 100 << 20, 10 << 20);
  EXPECT_NE(line.find("50.0 MiB / 100.0 MiB"), std::string::npos) << line;
  EXPECT_NE(line.find("50.0%"), std::string::npos) << line;
  EXPECT_NE(line.find("10.0 MiB/s"), std::string::npos) << line;
  EXPECT_NE(line.find("ETA 0:05"), std::string::npos) << line;
}

TEST(FormatProgress, unknown_total_has_no_eta) {
  std::string line = format_progress(2048, 0, 0);
  EXPECT_EQ(line.find("ETA"), std::string::npos) << line;
  EXPECT_NE(line.find("2.0 KiB"), std::string::npos) << line;
}

TEST(HashStamp, matches_only_same_hash_size_and_mtime) {
  std::string stamp = format_hash_stamp(kDefaultModelSha256, 98362432, 1700000000123456789) + "\n";
  EXPECT_TRUE(hash_stamp_matches(stamp, kDefaultModelSha256, 98362432, 1700000000123456789));
  EXPECT_FALSE(hash_stamp_matches(stamp, kDefaultModelSha256, 98362431, 1700000000123456789));
  EXPECT_FALSE(hash_stamp_matches(stamp, kDefaultModelSha256, 98362432, 1700000000123456788));
  EXPECT_FALSE(hash_stamp_matches(stamp, std::string(64, '0'), 98362432, 1700000000123456789));
  EXPECT_FALSE(hash_stamp_matches("", kDefaultModelSha256, 0, 0));
}

}  // namespace
}  // namespace suanli
