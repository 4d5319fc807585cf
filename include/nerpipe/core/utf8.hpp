// SPDX-License-Identifier: Apache-2.0
//! @file The one UTF-8 module: decoding, validation, repair (U+FFFD), code-point counting and byte <-> code-point
//! offset mapping. Every stage uses these (the JSONL reader, the tokenizers, the post-processing).
//!
//! Strict UTF-8 (RFC 3629): no overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
//! This is exactly the set of byte strings a Python `str` can be encoded to, so code-point offsets
//! computed here equal Python string indices.
#pragma once

#include <nerpipe/config/macros.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

namespace utf8 {

/// Decodes one code point at `p` (`p < end`). Returns its byte length (1..4) and sets `cp`,
/// or returns 0 when the bytes at `p` are not a valid UTF-8 sequence.
[[nodiscard]] inline int decode(const char* p, const char* end, char32_t& cp) noexcept {
  const auto b0 = static_cast<unsigned char>(p[0]);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  const std::ptrdiff_t avail = end - p;
  if (b0 < 0xC2) return 0;  // continuation byte or overlong 2-byte lead
  if (b0 < 0xE0) {
    if (avail < 2) return 0;
    const auto b1 = static_cast<unsigned char>(p[1]);
    if ((b1 & 0xC0) != 0x80) return 0;
    cp = (char32_t(b0 & 0x1F) << 6) | (b1 & 0x3F);
    return 2;
  }
  if (b0 < 0xF0) {
    if (avail < 3) return 0;
    const auto b1 = static_cast<unsigned char>(p[1]);
    const auto b2 = static_cast<unsigned char>(p[2]);
    if ((b1 & 0xC0) != 0x80 || (b2 & 0xC0) != 0x80) return 0;
    if (b0 == 0xE0 && b1 < 0xA0) return 0;   // overlong
    if (b0 == 0xED && b1 >= 0xA0) return 0;  // surrogate
    cp = (char32_t(b0 & 0x0F) << 12) | (char32_t(b1 & 0x3F) << 6) | (b2 & 0x3F);
    return 3;
  }
  if (b0 < 0xF5) {
    if (avail < 4) return 0;
    const auto b1 = static_cast<unsigned char>(p[1]);
    const auto b2 = static_cast<unsigned char>(p[2]);
    const auto b3 = static_cast<unsigned char>(p[3]);
    if ((b1 & 0xC0) != 0x80 || (b2 & 0xC0) != 0x80 || (b3 & 0xC0) != 0x80) return 0;
    if (b0 == 0xF0 && b1 < 0x90) return 0;   // overlong
    if (b0 == 0xF4 && b1 >= 0x90) return 0;  // > U+10FFFF
    cp = (char32_t(b0 & 0x07) << 18) | (char32_t(b1 & 0x3F) << 12) | (char32_t(b2 & 0x3F) << 6) | (b3 & 0x3F);
    return 4;
  }
  return 0;
}

/// Appends the UTF-8 encoding of `cp` (must be a scalar value) to `out`. Returns the byte count.
inline int encode(char32_t cp, char* out) noexcept {
  if (cp < 0x80) {
    out[0] = static_cast<char>(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = static_cast<char>(0xC0 | (cp >> 6));
    out[1] = static_cast<char>(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = static_cast<char>(0xE0 | (cp >> 12));
    out[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out[2] = static_cast<char>(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = static_cast<char>(0xF0 | (cp >> 18));
  out[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
  out[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
  out[3] = static_cast<char>(0x80 | (cp & 0x3F));
  return 4;
}

/// Appends the UTF-8 encoding of `cp` (must be a scalar value) to `out`.
inline void append(std::string& out, char32_t cp) {
  char buf[4];
  out.append(buf, static_cast<std::size_t>(encode(cp, buf)));
}

/// Byte offset of the first invalid sequence in `s`, or `std::string_view::npos` when `s` is valid UTF-8.
[[nodiscard]] inline std::size_t find_invalid(std::string_view s) noexcept {
  const char* p = s.data();
  const char* const end = p + s.size();
  while (p < end) {
    // ASCII fast path: 8 bytes at a time.
    while (end - p >= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      if (w & 0x8080808080808080ull) break;
      p += 8;
    }
    if (p >= end) break;
    if (static_cast<unsigned char>(*p) < 0x80) {
      ++p;
      continue;
    }
    char32_t cp;
    const int n = decode(p, end, cp);
    if (n == 0) return static_cast<std::size_t>(p - s.data());
    p += n;
  }
  return std::string_view::npos;
}

/// Whether `s` is valid UTF-8.
[[nodiscard]] inline bool is_valid(std::string_view s) noexcept { return find_invalid(s) == std::string_view::npos; }

/// Number of code points in `s` (which must be valid UTF-8): the count of non-continuation bytes.
[[nodiscard]] inline std::size_t length(std::string_view s) noexcept {
  std::size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

/// Length of the well-formed UTF-8 sequence starting at s[i] (Unicode Table 3-7), or 0 when the bytes
/// there do not start one. `*prefix` gets the length of the maximal subpart (>= 1) for replacement.
inline std::size_t sequence_length(std::string_view s, std::size_t i, std::size_t* prefix = nullptr) noexcept {
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

/// Appends `s` to `out` with every ill-formed sequence replaced by U+FFFD, one per maximal subpart
/// (the W3C/WHATWG practice; Python's `bytes.decode("utf-8", "replace")` gives the same result).
/// Returns the number of replacements.
inline std::size_t replace_invalid(std::string_view s, std::string& out) {
  std::size_t replaced = 0, i = 0;
  out.reserve(out.size() + s.size() + 8);
  while (i < s.size()) {
    std::size_t prefix = 1;
    const std::size_t n = sequence_length(s, i, &prefix);
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

/// Byte offset where each code point of valid UTF-8 `s` starts, then s.size(): code point i is
/// [starts[i], starts[i + 1]).
[[nodiscard]] inline std::vector<std::size_t> code_point_starts(std::string_view s) {
  std::vector<std::size_t> pos;
  pos.reserve(s.size() + 1);
  for (std::size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0u) != 0x80u) pos.push_back(i);
  pos.push_back(s.size());
  return pos;
}

/// Maps byte offsets of one valid UTF-8 string to code-point offsets (Python `str` indices) and back.
/// A byte offset that is not on a code-point boundary maps to the code point containing it.
class offset_map {
 public:
  offset_map() = default;
  explicit offset_map(std::string_view s) { reset(s); }

  void reset(std::string_view s) {
    cp_starts_.clear();
    cp_starts_.reserve(s.size() + 1);
    for (std::size_t i = 0; i < s.size(); ++i)
      if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) cp_starts_.push_back(static_cast<std::uint32_t>(i));
    cp_starts_.push_back(static_cast<std::uint32_t>(s.size()));
  }

  /// Code points in the string.
  [[nodiscard]] std::size_t size() const noexcept { return cp_starts_.empty() ? 0 : cp_starts_.size() - 1; }
  /// Byte offset where code point `cp` starts (`cp == size()` gives the byte length).
  [[nodiscard]] std::size_t byte_of(std::size_t cp) const noexcept { return cp_starts_[cp]; }
  /// Code point index containing byte `b` (`b == bytes` gives size()).
  [[nodiscard]] std::size_t cp_of(std::size_t b) const noexcept {
    std::size_t lo = 0, hi = cp_starts_.size() - 1;  // largest i with cp_starts_[i] <= b
    while (lo < hi) {
      const std::size_t mid = (lo + hi + 1) / 2;
      if (cp_starts_[mid] <= b) lo = mid; else hi = mid - 1;
    }
    return lo;
  }

 private:
  std::vector<std::uint32_t> cp_starts_;
};

}  // namespace utf8

NERPIPE_NAMESPACE_END
