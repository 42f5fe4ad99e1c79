// How deeply JSON text nests arrays and objects, counted over the bytes
// without parsing. A guard for untrusted JSON before anything recursive
// touches it: nlohmann::json's dump() and comparisons recurse once per
// level (a ~100 KB body of brackets overflows the stack), and
// ordered_json's parser slows down faster than quadratically with depth
// (3,000 levels took 4 s). Strings (and their escapes) are skipped;
// counting stops once it passes `limit`. Text that is not JSON gives some
// number; its parser refuses it later.
#pragma once

#include <cstddef>
#include <string_view>

namespace suanli {

inline int json_nesting_depth(std::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest && (deepest = depth) > limit) return deepest;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

}  // namespace suanli
