// SPDX-License-Identifier: Apache-2.0
//! @file Unicode character classes and mappings exactly as Hugging Face tokenizers' BertNormalizer and
//! BertPreTokenizer use them (tokenizers 0.22.2), built on utf8proc (Unicode 15) plus the few code points
//! where tokenizers' older tables disagree.
//!
//! The reference mixes Unicode versions: `is_other` / `is_punctuation` / `is_mark_nonspacing` come from the
//! unicode_categories crate (old tables), NFD from unicode-normalization-alignments, whitespace and
//! lowercase from Rust's std. tests/unit/hf_tokenizer.cpp compares every code point against
//! tests/fixtures/hf/tokenizer/unicode_sweep.json, recorded from tokenizers itself; the override lists
//! below are what that comparison required.
#pragma once

#include <nerpipe/config/macros.hpp>

#include <utf8proc.h>

#include <cstddef>
#include <cstdint>
#include <iterator>

NERPIPE_NAMESPACE_BEGIN
namespace detail::bert_unicode {

struct cp_range { char32_t lo, hi; };

template <std::size_t N>
[[nodiscard]] constexpr bool in_ranges(const cp_range (&r)[N], char32_t c) noexcept {
  std::size_t lo = 0, hi = N;  // binary search over sorted, disjoint ranges
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    if (c < r[mid].lo) hi = mid;
    else if (c > r[mid].hi) lo = mid + 1;
    else return true;
  }
  return false;
}

// The override lists below were derived from tests/fixtures/hf/tokenizer/unicode_sweep.json (every code
// point through tokenizers 0.22.2) against utf8proc 2.8.0; the sweep test fails if either side moves.

// Format (Cf) characters newer than the unicode_categories tables: tokenizers' clean_text keeps them.
inline constexpr cp_range new_format_chars[] = {
  {0x0890, 0x0891}, {0x08E2, 0x08E2}, {0x110CD, 0x110CD}, {0x13430, 0x1343F},
};
// P* characters newer than the unicode_categories tables: BertPreTokenizer does not split them.
inline constexpr cp_range new_punctuation[] = {
  {0x61D, 0x61D}, {0x9FD, 0x9FD}, {0xA76, 0xA76}, {0xC77, 0xC77}, {0xC84, 0xC84}, {0x1B7D, 0x1B7E},
  {0x2E43, 0x2E4F}, {0x2E52, 0x2E5D}, {0x10EAD, 0x10EAD}, {0x10F55, 0x10F59}, {0x10F86, 0x10F89},
  {0x1144B, 0x1144F}, {0x1145A, 0x1145B}, {0x1145D, 0x1145D}, {0x11660, 0x1166C}, {0x116B9, 0x116B9},
  {0x1183B, 0x1183B}, {0x11944, 0x11946}, {0x119E2, 0x119E2}, {0x11A3F, 0x11A46}, {0x11A9A, 0x11A9C},
  {0x11A9E, 0x11AA2}, {0x11B00, 0x11B09}, {0x11C41, 0x11C45}, {0x11C70, 0x11C71}, {0x11EF7, 0x11EF8},
  {0x11F43, 0x11F4F}, {0x11FFF, 0x11FFF}, {0x12FF1, 0x12FF2}, {0x16E97, 0x16E9A}, {0x16FE2, 0x16FE2},
  {0x1E95E, 0x1E95F},
};
// Characters that were P* in the old tables and are not any more (U+166D is So now, U+111C9 Mn).
inline constexpr cp_range old_punctuation[] = {{0x166D, 0x166D}, {0x111C9, 0x111C9}};
// Mn characters newer than the unicode_categories tables: strip_accents keeps them.
inline constexpr cp_range new_nonspacing_marks[] = {
  {0x7FD, 0x7FD}, {0x898, 0x89F}, {0x8CA, 0x8E1}, {0x9FE, 0x9FE}, {0xAFA, 0xAFF}, {0xB55, 0xB55},
  {0xC04, 0xC04}, {0xC3C, 0xC3C}, {0xD00, 0xD00}, {0xD3B, 0xD3C}, {0xD81, 0xD81}, {0xEBA, 0xEBA},
  {0xECE, 0xECE}, {0x180F, 0x180F}, {0x1885, 0x1886}, {0x1ABF, 0x1ACE}, {0x1DF6, 0x1DFB}, {0xA82C, 0xA82C},
  {0xA8C5, 0xA8C5}, {0xA8FF, 0xA8FF}, {0xA9BD, 0xA9BD}, {0x10D24, 0x10D27}, {0x10EAB, 0x10EAC},
  {0x10EFD, 0x10EFF}, {0x10F46, 0x10F50}, {0x10F82, 0x10F85}, {0x11070, 0x11070}, {0x11073, 0x11074},
  {0x110C2, 0x110C2}, {0x111C9, 0x111C9}, {0x111CF, 0x111CF}, {0x1123E, 0x1123E}, {0x11241, 0x11241},
  {0x1133B, 0x1133B}, {0x11438, 0x1143F}, {0x11442, 0x11444}, {0x11446, 0x11446}, {0x1145E, 0x1145E},
  {0x1182F, 0x11837}, {0x11839, 0x1183A}, {0x1193B, 0x1193C}, {0x1193E, 0x1193E}, {0x11943, 0x11943},
  {0x119D4, 0x119D7}, {0x119DA, 0x119DB}, {0x119E0, 0x119E0}, {0x11A01, 0x11A0A}, {0x11A33, 0x11A38},
  {0x11A3B, 0x11A3E}, {0x11A47, 0x11A47}, {0x11A51, 0x11A56}, {0x11A59, 0x11A5B}, {0x11A8A, 0x11A96},
  {0x11A98, 0x11A99}, {0x11C30, 0x11C36}, {0x11C38, 0x11C3D}, {0x11C3F, 0x11C3F}, {0x11C92, 0x11CA7},
  {0x11CAA, 0x11CB0}, {0x11CB2, 0x11CB3}, {0x11CB5, 0x11CB6}, {0x11D31, 0x11D36}, {0x11D3A, 0x11D3A},
  {0x11D3C, 0x11D3D}, {0x11D3F, 0x11D45}, {0x11D47, 0x11D47}, {0x11D90, 0x11D91}, {0x11D95, 0x11D95},
  {0x11D97, 0x11D97}, {0x11EF3, 0x11EF4}, {0x11F00, 0x11F01}, {0x11F36, 0x11F3A}, {0x11F40, 0x11F40},
  {0x11F42, 0x11F42}, {0x13440, 0x13440}, {0x13447, 0x13455}, {0x16F4F, 0x16F4F}, {0x16FE4, 0x16FE4},
  {0x1CF00, 0x1CF2D}, {0x1CF30, 0x1CF46}, {0x1E000, 0x1E006}, {0x1E008, 0x1E018}, {0x1E01B, 0x1E021},
  {0x1E023, 0x1E024}, {0x1E026, 0x1E02A}, {0x1E08F, 0x1E08F}, {0x1E130, 0x1E136}, {0x1E2AE, 0x1E2AE},
  {0x1E2EC, 0x1E2EF}, {0x1E4EC, 0x1E4EF}, {0x1E944, 0x1E94A},
};
// Characters that were Mn in the old tables (U+1734 is Mc now): strip_accents removes them.
inline constexpr cp_range old_nonspacing_marks[] = {{0x1734, 0x1734}};
// Canonical decompositions newer than unicode-normalization-alignments' tables: NFD leaves them alone.
inline constexpr cp_range new_decompositions[] = {{0x11938, 0x11938}};

struct lower_pair { char32_t from, to; };
// Lowercase mappings newer than utf8proc 2.8.0 (Unicode 15) that Rust's std (Unicode 16) has.
inline constexpr lower_pair new_lowercase[] = {
  {0x1C89, 0x1C8A}, {0xA7CB, 0x264}, {0xA7CC, 0xA7CD}, {0xA7CE, 0xA7CF}, {0xA7D2, 0xA7D3}, {0xA7D4, 0xA7D5},
  {0xA7DA, 0xA7DB}, {0xA7DC, 0x19B}, {0x10D50, 0x10D70}, {0x10D51, 0x10D71}, {0x10D52, 0x10D72},
  {0x10D53, 0x10D73}, {0x10D54, 0x10D74}, {0x10D55, 0x10D75}, {0x10D56, 0x10D76}, {0x10D57, 0x10D77},
  {0x10D58, 0x10D78}, {0x10D59, 0x10D79}, {0x10D5A, 0x10D7A}, {0x10D5B, 0x10D7B}, {0x10D5C, 0x10D7C},
  {0x10D5D, 0x10D7D}, {0x10D5E, 0x10D7E}, {0x10D5F, 0x10D7F}, {0x10D60, 0x10D80}, {0x10D61, 0x10D81},
  {0x10D62, 0x10D82}, {0x10D63, 0x10D83}, {0x10D64, 0x10D84}, {0x10D65, 0x10D85}, {0x16EA0, 0x16EBB},
  {0x16EA1, 0x16EBC}, {0x16EA2, 0x16EBD}, {0x16EA3, 0x16EBE}, {0x16EA4, 0x16EBF}, {0x16EA5, 0x16EC0},
  {0x16EA6, 0x16EC1}, {0x16EA7, 0x16EC2}, {0x16EA8, 0x16EC3}, {0x16EA9, 0x16EC4}, {0x16EAA, 0x16EC5},
  {0x16EAB, 0x16EC6}, {0x16EAC, 0x16EC7}, {0x16EAD, 0x16EC8}, {0x16EAE, 0x16EC9}, {0x16EAF, 0x16ECA},
  {0x16EB0, 0x16ECB}, {0x16EB1, 0x16ECC}, {0x16EB2, 0x16ECD}, {0x16EB3, 0x16ECE}, {0x16EB4, 0x16ECF},
  {0x16EB5, 0x16ED0}, {0x16EB6, 0x16ED1}, {0x16EB7, 0x16ED2}, {0x16EB8, 0x16ED3},
};

/// Unicode White_Space, i.e. Rust `char::is_whitespace` (stable set since Unicode 6.3).
[[nodiscard]] constexpr bool is_white_space(char32_t c) noexcept {
  if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
  if (c < 0x85) return false;
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

/// BertNormalizer's whitespace: `\t \n \r` or White_Space.
[[nodiscard]] constexpr bool is_bert_whitespace(char32_t c) noexcept { return is_white_space(c); }

/// BertNormalizer's control: categories Cc, Cf, Co (unicode_categories `is_other`), except `\t \n \r`.
[[nodiscard]] inline bool is_bert_control(char32_t c) noexcept {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CO:
      return true;
    case UTF8PROC_CATEGORY_CF:
      return !in_ranges(new_format_chars, c);
    default:
      return false;
  }
}

/// BertPreTokenizer's punctuation: any ASCII punctuation character, or Unicode category P*.
[[nodiscard]] inline bool is_bert_punctuation(char32_t c) noexcept {
  if (c < 0x80)
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
  if (in_ranges(new_punctuation, c)) return false;
  if (in_ranges(old_punctuation, c)) return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      return true;
    default:
      return false;
  }
}

/// BertNormalizer's `is_chinese_char` ranges (CJK ideographs and compatibility ideographs).
[[nodiscard]] constexpr bool is_cjk(char32_t c) noexcept {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/// Nonspacing mark (Mn), removed by strip_accents after NFD.
[[nodiscard]] inline bool is_nonspacing_mark(char32_t c) noexcept {
  if (c < 0x300) return false;
  if (utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_MN)
    return !in_ranges(new_nonspacing_marks, c);
  return in_ranges(old_nonspacing_marks, c);
}

/// Canonical decomposition (NFD of one code point; Hangul included). Writes up to 4 code points to `out`
/// and returns the count. A single code point's full decomposition is already canonically ordered.
inline int nfd(char32_t c, char32_t* out) noexcept {
  if (c < 0xC0 || in_ranges(new_decompositions, c)) {
    out[0] = c;
    return 1;
  }
  utf8proc_int32_t buf[8];
  int last_boundclass = 0;
  const utf8proc_ssize_t n =
      utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buf, 8, UTF8PROC_DECOMPOSE, &last_boundclass);
  if (n <= 0 || n > 4) {
    out[0] = c;
    return 1;
  }
  for (utf8proc_ssize_t i = 0; i < n; ++i) out[i] = static_cast<char32_t>(buf[i]);
  return static_cast<int>(n);
}

/// Rust `char::to_lowercase`: the full, context-free lowercase mapping. Writes up to 3 code points.
inline int to_lower(char32_t c, char32_t* out) noexcept {
  if (c < 0x80) {
    out[0] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
    return 1;
  }
  if (c == 0x130) {  // the one unconditional multi-char lowercase mapping (SpecialCasing.txt)
    out[0] = 'i';
    out[1] = 0x307;
    return 2;
  }
  const auto l = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
  if (l == c) {
    std::size_t lo = 0, hi = std::size(new_lowercase);
    while (lo < hi) {
      const std::size_t mid = (lo + hi) / 2;
      if (new_lowercase[mid].from < c) lo = mid + 1; else hi = mid;
    }
    if (lo < std::size(new_lowercase) && new_lowercase[lo].from == c) {
      out[0] = new_lowercase[lo].to;
      return 1;
    }
  }
  out[0] = l;
  return 1;
}

}  // namespace detail::bert_unicode
NERPIPE_NAMESPACE_END
