// UTF-8 helpers and GPT-2's byte-to-unicode table, shared by the tokenizers.
//
// Validation follows RFC 3629: no overlong forms, no surrogates, nothing
// above U+10FFFF. All functions accept arbitrary bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace suanli::tok {

// Length (1..4) of the valid UTF-8 character starting at s[0], or 0 when the
// bytes there are not a complete valid character.
size_t utf8_char_len(const char* s, size_t n);

// True when s[0..n) is a proper prefix of some valid UTF-8 character (so more
// bytes could complete it).
bool utf8_incomplete_prefix(const char* s, size_t n);

// Length of the longest prefix of `s` that is valid UTF-8.
size_t utf8_valid_prefix(std::string_view s);

// `s` with each maximal invalid subsequence replaced by U+FFFD.
std::string utf8_sanitize(std::string_view s);

void utf8_append(std::string& out, uint32_t cp);

// Decodes one character (s must start with a valid one; see utf8_char_len).
uint32_t utf8_decode(const char* s, size_t len);

// GPT-2 byte-level alphabet: every byte maps to one printable code point
// (printable Latin-1 bytes to themselves, the rest to U+0100 + k).
uint32_t byte_to_codepoint(uint8_t b);
// The byte a code point stands for, or -1 when it is not in the alphabet.
int codepoint_to_byte(uint32_t cp);

}  // namespace suanli::tok
