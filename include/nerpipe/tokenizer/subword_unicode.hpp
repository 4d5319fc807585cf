// SPDX-License-Identifier: Apache-2.0
//! @file Character classes of the byte-level BPE pre-tokenizer (the GPT-2 regex `'s|'t|'re|'ve|'m|'ll|'d|
//! ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` as tokenizers 0.22.2 runs it with Oniguruma) and GPT-2's
//! byte -> character table, built on utf8proc. tests/unit/hf_tokenizer_bpe.cpp compares every code point
//! with tests/fixtures/hf/tokenizer/gpt2_regex_sweep.json, recorded from tokenizers itself.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/tokenizer/unicode.hpp>

#include <utf8proc.h>

#include <array>
#include <cstdint>

NERPIPE_NAMESPACE_BEGIN
namespace detail::gpt2 {

enum : std::uint8_t { cls_other = 0, cls_letter = 1, cls_number = 2, cls_space = 3 };

// Letters and numbers of Unicode 16 (Oniguruma's tables in tokenizers 0.22.2) that utf8proc 2.8.0 (Unicode 15)
// leaves unassigned; derived from tests/fixtures/hf/tokenizer/gpt2_regex_sweep.json.
inline constexpr bert_unicode::cp_range new_letters[] = {
  {0x1C89, 0x1C8A},
  {0xA7CB, 0xA7CD},
  {0xA7DA, 0xA7DC},
  {0x105C0, 0x105F3},
  {0x10D4A, 0x10D65},
  {0x10D6F, 0x10D85},
  {0x10EC2, 0x10EC4},
  {0x11380, 0x11389},
  {0x1138B, 0x1138B},
  {0x1138E, 0x1138E},
  {0x11390, 0x113B5},
  {0x113B7, 0x113B7},
  {0x113D1, 0x113D1},
  {0x113D3, 0x113D3},
  {0x11BC0, 0x11BE0},
  {0x13460, 0x143FA},
  {0x16100, 0x1611D},
  {0x16D40, 0x16D6C},
  {0x18CFF, 0x18CFF},
  {0x1E5D0, 0x1E5ED},
  {0x1E5F0, 0x1E5F0},
  {0x2EBF0, 0x2EE5D},
};
inline constexpr bert_unicode::cp_range new_numbers[] = {
  {0x10D40, 0x10D49},
  {0x116D0, 0x116E3},
  {0x11BF0, 0x11BF9},
  {0x16130, 0x16139},
  {0x16D70, 0x16D79},
  {0x1CCF0, 0x1CCF9},
  {0x1E5F1, 0x1E5FA},
};

[[nodiscard]] inline std::uint8_t classify_slow(char32_t c) noexcept {
  if (bert_unicode::is_white_space(c)) return cls_space;
  if (c >= 0x1C89 && bert_unicode::in_ranges(new_letters, c)) return cls_letter;
  if (c >= 0x10D40 && bert_unicode::in_ranges(new_numbers, c)) return cls_number;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return cls_letter;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return cls_number;
    default:
      return cls_other;
  }
}

inline const std::array<std::uint8_t, 128>& ascii_classes() noexcept {
  static const std::array<std::uint8_t, 128> t = [] {
    std::array<std::uint8_t, 128> a{};
    for (unsigned c = 0; c < 128; ++c) a[c] = classify_slow(c);
    return a;
  }();
  return t;
}

/// The regex class of a code point.
[[nodiscard]] inline std::uint8_t classify(char32_t c) noexcept {
  return c < 128 ? ascii_classes()[c] : classify_slow(c);
}

/// GPT-2's `bytes_to_unicode`: printable bytes map to themselves, the 68 others to U+0100 + n in byte order.
inline const std::array<char32_t, 256>& byte_to_char() noexcept {
  static const std::array<char32_t, 256> t = [] {
    std::array<char32_t, 256> a{};
    unsigned n = 0;
    for (unsigned b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      a[b] = printable ? char32_t(b) : char32_t(0x100 + n++);
    }
    return a;
  }();
  return t;
}

}  // namespace detail::gpt2
NERPIPE_NAMESPACE_END
