// LineStream (src/devices/cpu/line_stream.h): the lines it hands out for a
// work unit are exactly those covering the unit's K rows, then its V rows,
// slot by slot, each once, in order.
#include "devices/cpu/line_stream.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace suanli::cpu {
namespace {

// Brute force: every 64-byte line touched by part_bytes at part_off of each
// slot, K pool then V pool, a line repeated only where two slots' bytes are
// not adjacent.
std::vector<uintptr_t> expected_lines(const char* k, const char* v, const std::vector<int64_t>& slots,
                                      size_t slot_bytes, size_t part_off, size_t part_bytes) {
  std::vector<uintptr_t> out;
  for (const char* base : {k, v}) {
    uintptr_t prev_end = 0;
    for (int64_t s : slots) {
      const uintptr_t a0 = reinterpret_cast<uintptr_t>(base) + static_cast<size_t>(s) * slot_bytes + part_off;
      const uintptr_t a1 = a0 + part_bytes;
      for (uintptr_t line = a0 - a0 % 64; line < a1; line += 64) {
        // Bytes that continue the previous slot's share its last line.
        if (a0 == prev_end && !out.empty() && out.back() == line) continue;
        out.push_back(line);
      }
      prev_end = a1;
    }
  }
  return out;
}

std::vector<uintptr_t> drain_lines(LineStream& ls) {
  std::vector<uintptr_t> out;
  while (const uintptr_t line = ls.next_line()) out.push_back(line);
  return out;
}

struct Pools {
  std::vector<char> mem = std::vector<char>(1 << 20);
  const char* k() const { return mem.data() + (64 - reinterpret_cast<uintptr_t>(mem.data()) % 64); }
  const char* v() const { return k() + (1 << 19); }
};

TEST(LineStream, whole_slots_merge_runs_and_cover_every_line_once) {
  Pools p;
  LineStream ls;
  ls.slots = {5, 6, 7, 9, 3, 4, 100};
  // 3 kv heads of 64 F16 elements: 384-byte slots, a unit taking all heads.
  ls.start_heads(1, 0, p.k(), p.v(), 3, 128, 0, 3);
  EXPECT_EQ(drain_lines(ls), expected_lines(p.k(), p.v(), ls.slots, 384, 0, 384));
  EXPECT_TRUE(ls.empty());
  EXPECT_EQ(ls.next_line(), 0u);
}

TEST(LineStream, one_head_of_each_slot) {
  Pools p;
  LineStream ls;
  ls.slots = {0, 1, 2, 3, 17, 16};
  for (size_t head = 0; head < 3; ++head) {
    // 3 kv heads of 128 bytes (64 F16 elements), a unit of one head.
    ls.start_heads(1, static_cast<int64_t>(head), p.k(), p.v(), 3, 128, static_cast<int64_t>(head), 1);
    const std::vector<uintptr_t> got = drain_lines(ls);
    EXPECT_EQ(got, expected_lines(p.k(), p.v(), ls.slots, 384, head * 128, 128)) << "head " << head;
    EXPECT_EQ(got.size(), 2 * ls.slots.size() * 2);  // two lines of K and two of V per slot
  }
}

TEST(LineStream, rows_not_on_line_boundaries) {
  // Head size 80 (F16: 160 bytes), 3 heads: rows start mid-line.
  Pools p;
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    LineStream ls;
    const int n = 1 + static_cast<int>(rng() % 40);
    int64_t s = rng() % 8;
    for (int i = 0; i < n; ++i) {
      ls.slots.push_back(s);
      s = rng() % 3 == 0 ? s + 2 + rng() % 5 : s + 1;  // mostly consecutive
    }
    const bool whole = trial % 2 == 0;
    const int64_t h = whole ? 0 : static_cast<int64_t>(rng() % 3);
    const size_t off = static_cast<size_t>(h) * 160, bytes = whole ? 480 : 160;
    ls.start_heads(3, trial, p.k(), p.v(), 3, 160, h, whole ? 3 : 1);
    EXPECT_EQ(drain_lines(ls), expected_lines(p.k(), p.v(), ls.slots, 480, off, bytes)) << "trial " << trial;
  }
}

TEST(LineStream, empty_unit_and_call_tags) {
  Pools p;
  LineStream ls;
  ls.start(4, 2, p.k(), p.v(), 384, 0, 384);  // no slots
  EXPECT_TRUE(ls.empty());
  EXPECT_EQ(ls.next_line(), 0u);
  EXPECT_TRUE(ls.holds(4, 2));
  EXPECT_FALSE(ls.holds(5, 2));
  EXPECT_FALSE(ls.holds(4, 3));
  ls.slots = {1};
  ls.start(4, 3, p.k(), p.v(), 384, 0, 384);
  EXPECT_FALSE(ls.empty());
  ls.clear();
  EXPECT_TRUE(ls.empty());
  EXPECT_FALSE(ls.holds(4, 3));
}

}  // namespace
}  // namespace suanli::cpu
