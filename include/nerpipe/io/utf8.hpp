// SPDX-License-Identifier: Apache-2.0
//! @file UTF-8 repair for the I/O stage: replace ill-formed sequences with U+FFFD (validation is core/utf8.hpp).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/utf8.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

NERPIPE_NAMESPACE_BEGIN

namespace detail {

/// Length of the well-formed UTF-8 sequence starting at s[i] (Unicode Table 3-7), or 0 when the bytes
/// there do not start one. `*prefix` gets the length of the maximal subpart (>= 1) for replacement.
inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i, std::size_t* prefix = nullptr) noexcept {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (prefix) *prefix = 1;
  if (c < 0x80) return 1;
  std::size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) need = 1;
  else if (c == 0xE0) { need = 2; lo = 0xA0; }
  else if (c >= 0xE1 && c <= 0xEC) need = 2;
  else if (c == 0xED) { need = 2; hi = 0x9F; }  // no surrogates
  else if (c >= 0xEE && c <= 0xEF) need = 2;
  else if (c == 0xF0) { need = 3; lo = 0x90; }
  else if (c >= 0xF1 && c <= 0xF3) need = 3;
  else if (c == 0xF4) { need = 3; hi = 0x8F; }
  else return 0;  // 80..C1, F5..FF never start a sequence
  for (std::size_t k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return 0;
    const unsigned char t = b(i + k);
    const bool in = k == 1 ? (t >= lo && t <= hi) : (t >= 0x80 && t <= 0xBF);
    if (!in) return 0;
    if (prefix) *prefix = k + 1;
  }
  return need + 1;
}

}  // namespace detail

/// Offset of the first byte that is not part of well-formed UTF-8, or npos when all of `s` is valid.
inline std::size_t utf8_first_invalid(std::string_view s) noexcept { return utf8::find_invalid(s); }

/// Appends `s` to `out` with every ill-formed sequence replaced by U+FFFD, one per maximal subpart
/// (the W3C/WHATWG practice; Python's `bytes.decode("utf-8", "replace")` gives the same result).
/// Returns the number of replacements.
inline std::size_t utf8_replace_invalid(std::string_view s, std::string& out) {
  std::size_t replaced = 0, i = 0;
  out.reserve(out.size() + s.size() + 8);
  while (i < s.size()) {
    std::size_t prefix = 1;
    const std::size_t n = detail::utf8_sequence_length(s, i, &prefix);
    if (n != 0) {
      out.append(s.data() + i, n);
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");
      ++replaced;
      i += prefix;
    }
  }
  return replaced;
}

NERPIPE_NAMESPACE_END
