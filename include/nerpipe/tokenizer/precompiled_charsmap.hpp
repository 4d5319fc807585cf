// SPDX-License-Identifier: Apache-2.0
//! @file SentencePiece's precompiled normalization map (tokenizer.json `Precompiled.precompiled_charsmap`):
//! base64 of [u32 LE trie size in bytes][darts-clone double-array units, u32 LE][NUL-terminated UTF-8
//! replacement strings], read exactly as tokenizers 0.22.2 (crate spm_precompiled) reads it.
//!
//! The blob is untrusted: the size header, every trie index and every replacement offset are bounds-checked;
//! a unit that points outside the array, or a replacement outside the string pool or not on a UTF-8
//! boundary, is a model_error naming the charsmap and the offset.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/utf8.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

namespace detail {

/// Standard base64 (RFC 4648, '=' padding, no line breaks), as Rust's BASE64_STANDARD decodes it.
[[nodiscard]] inline bool base64_decode(std::string_view in, std::string& out) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  out.clear();
  if (in.size() % 4 != 0) return false;
  out.reserve(in.size() / 4 * 3);
  for (std::size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + static_cast<std::size_t>(k)];
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        v[k] = 0;
        ++pad;
      } else {
        if (pad != 0) return false;
        v[k] = val(c);
        if (v[k] < 0) return false;
      }
    }
    const std::uint32_t w = (std::uint32_t(v[0]) << 18) | (std::uint32_t(v[1]) << 12) | (std::uint32_t(v[2]) << 6) |
                            std::uint32_t(v[3]);
    out += static_cast<char>((w >> 16) & 0xFF);
    if (pad < 2) out += static_cast<char>((w >> 8) & 0xFF);
    if (pad < 1) out += static_cast<char>(w & 0xFF);
  }
  return true;
}

}  // namespace detail

/// The decoded charsmap: a double-array trie over UTF-8 bytes whose leaves index replacement strings.
class precompiled_charsmap {
 public:
  precompiled_charsmap() = default;

  /// `base64` is the JSON string; `where` names it in errors (e.g. "tokenizer.json: normalizer...").
  precompiled_charsmap(std::string_view base64, const std::string& where) {
    std::string raw;
    if (!detail::base64_decode(base64, raw))
      fail(where, "is not valid base64 (expected the base64 of SentencePiece's precompiled_charsmap)");
    if (raw.size() < 4) fail(where, "decodes to " + std::to_string(raw.size()) + " bytes (expected at least the 4-byte trie size)");
    const std::uint32_t trie_bytes = read_u32(raw, 0);
    if (trie_bytes % 4 != 0 || trie_bytes == 0 || trie_bytes > raw.size() - 4)
      fail(where, "declares a trie of " + std::to_string(trie_bytes) + " bytes in a blob of " +
                      std::to_string(raw.size()) + " (expected a non-zero multiple of 4 that fits)");
    units_.resize(trie_bytes / 4);
    for (std::size_t k = 0; k < units_.size(); ++k) units_[k] = read_u32(raw, 4 + 4 * k);
    pool_ = raw.substr(4 + trie_bytes);
    if (!utf8::is_valid(pool_)) fail(where, "has replacement strings that are not valid UTF-8");
    where_ = where;
  }

  [[nodiscard]] bool empty() const noexcept { return units_.empty(); }

  /// tokenizers' `Precompiled::transform`: the replacement of the *shortest* key that is a prefix of
  /// `chunk` (stopping at a NUL byte), or false when none is.
  [[nodiscard]] bool transform(std::string_view chunk, std::string_view& out) const {
    if (units_.empty()) return false;
    std::size_t pos = offset(units_[0]);
    for (const char ch : chunk) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == 0) return false;
      pos ^= c;
      if (pos >= units_.size()) return false;  // no unit there: no key continues with this byte
      const std::uint32_t u = units_[pos];
      if (label(u) != c) return false;
      pos ^= offset(u);
      if (pos >= units_.size()) bad("a trie unit points past the array");
      if (has_leaf(u)) {
        const std::size_t at = value(units_[pos]);
        if (at > pool_.size() || (at < pool_.size() && (static_cast<unsigned char>(pool_[at]) & 0xC0) == 0x80))
          bad("a replacement offset " + std::to_string(at) + " is outside the string pool of " +
              std::to_string(pool_.size()) + " bytes or not at a character boundary");
        std::size_t end = at;
        while (end < pool_.size() && pool_[end] != '\0') ++end;
        out = std::string_view(pool_).substr(at, end - at);
        return true;
      }
    }
    return false;
  }

 private:
  static std::uint32_t read_u32(const std::string& s, std::size_t at) {
    return std::uint32_t(static_cast<unsigned char>(s[at])) | (std::uint32_t(static_cast<unsigned char>(s[at + 1])) << 8) |
           (std::uint32_t(static_cast<unsigned char>(s[at + 2])) << 16) |
           (std::uint32_t(static_cast<unsigned char>(s[at + 3])) << 24);
  }
  static bool has_leaf(std::uint32_t u) noexcept { return ((u >> 8) & 1) == 1; }
  static std::size_t value(std::uint32_t u) noexcept { return u & 0x7FFFFFFFu; }
  static std::uint32_t label(std::uint32_t u) noexcept { return u & (0x80000000u | 0xFFu); }
  static std::size_t offset(std::uint32_t u) noexcept { return std::size_t(u >> 10) << ((u & (1u << 9)) >> 6); }

  [[noreturn]] static void fail(const std::string& where, const std::string& what) {
    NERPIPE_THROW(model_error(errc::model_file_malformed, where + ": precompiled_charsmap " + what));
  }
  [[noreturn]] void bad(const std::string& what) const { fail(where_, "is malformed: " + what); }

  std::vector<std::uint32_t> units_;
  std::string pool_;
  std::string where_;
};

NERPIPE_NAMESPACE_END
