// Python str operations over UTF-8 (code points, Unicode case mapping via
// utf8proc, Python's notion of whitespace), shared by methods and filters.
#pragma once

#include <string>
#include <string_view>

#include "value.h"

namespace suanli::chat_template_detail {

enum class CaseOp { kUpper, kLower, kCapitalize, kTitle, kSwap };

bool py_isspace(uint32_t cp);
// str.strip / lstrip / rstrip; chars: a string value, or null/none for whitespace.
std::string py_strip(std::string_view s, const Value* chars, bool left, bool right);
std::string py_case(std::string_view s, CaseOp op);
std::string py_replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count);
Expected<ValueList> py_split(std::string_view s, const Value* sep, int64_t maxsplit, bool from_right);

}  // namespace suanli::chat_template_detail
