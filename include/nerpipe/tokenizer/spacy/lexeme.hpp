// SPDX-License-Identifier: Apache-2.0
//! @file UTF-8 helpers, Python's str predicates and lower(), and spaCy's lexical attributes (NORM, PREFIX, SUFFIX, SHAPE).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/utf8.hpp>
#include <nerpipe/tokenizer/spacy/string_id.hpp>
#include <nerpipe/tokenizer/spacy/unicode_tables.hpp>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <unordered_map>

NERPIPE_NAMESPACE_BEGIN
namespace spacy::detail {

/// Decodes one code point of valid UTF-8 at s[i], advancing i.
[[nodiscard]] inline std::uint32_t next_cp(std::string_view s, std::size_t& i) noexcept {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    ++i;
    return c;
  }
  const int n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;
  std::uint32_t cp = c & (0x3F >> n);
  for (int k = 1; k <= n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += static_cast<std::size_t>(n) + 1;
  return cp;
}


namespace pyuni {
template <std::size_t N>
[[nodiscard]] inline bool in(const code_point_range (&r)[N], std::uint32_t cp) noexcept {
  const auto* it = std::upper_bound(std::begin(r), std::end(r), cp, [](std::uint32_t v, const code_point_range& e) { return v < e.lo; });
  return it != std::begin(r) && cp <= (it - 1)->hi;
}
}  // namespace pyuni

/// Python's str.isspace() for one code point.
[[nodiscard]] inline bool py_isspace(std::uint32_t cp) noexcept {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
  return pyuni::in(pyuni::space_ranges, cp);
}
[[nodiscard]] inline bool py_isalpha(std::uint32_t cp) noexcept {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return pyuni::in(pyuni::alpha_ranges, cp);
}
[[nodiscard]] inline bool py_isupper(std::uint32_t cp) noexcept {
  if (cp < 0x80) return cp >= 'A' && cp <= 'Z';
  return pyuni::in(pyuni::upper_ranges, cp);
}
[[nodiscard]] inline bool py_isdigit(std::uint32_t cp) noexcept {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return pyuni::in(pyuni::digit_ranges, cp);
}

/// Python's str.lower(): full case mapping, including the Final_Sigma rule.
[[nodiscard]] inline std::string py_lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool ascii = true;
  for (unsigned char c : s) ascii &= c < 0x80;
  if (ascii) {
    for (char c : s) out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    return out;
  }
  std::u32string cps;
  for (std::size_t i = 0; i < s.size();) cps.push_back(next_cp(s, i));
  for (std::size_t i = 0; i < cps.size(); ++i) {
    const std::uint32_t cp = cps[i];
    if (cp == 0x3A3) {
      // Final_Sigma: cased (case-ignorable)* SIGMA !((case-ignorable)* cased)
      std::size_t j = i;
      while (j > 0 && pyuni::in(pyuni::case_ignorable_ranges, cps[j - 1])) --j;
      bool final_sigma = j > 0 && pyuni::in(pyuni::cased_ranges, cps[j - 1]);
      if (final_sigma) {
        std::size_t k = i + 1;
        while (k < cps.size() && pyuni::in(pyuni::case_ignorable_ranges, cps[k])) ++k;
        final_sigma = k == cps.size() || !pyuni::in(pyuni::cased_ranges, cps[k]);
      }
      ::nerpipe::utf8::append(out, final_sigma ? 0x3C2 : 0x3C3);
      continue;
    }
    const auto* it = std::lower_bound(std::begin(pyuni::lower_map), std::end(pyuni::lower_map), cp,
                                      [](const pyuni::lower_entry& e, std::uint32_t v) { return e.cp < v; });
    if (it != std::end(pyuni::lower_map) && it->cp == cp) {
      for (std::uint32_t t : it->to)
        if (t != 0) ::nerpipe::utf8::append(out, t);
    } else {
      ::nerpipe::utf8::append(out, cp);
    }
  }
  return out;
}

/// spaCy's `word_shape` (spacy/lang/lex_attrs.py).
[[nodiscard]] inline std::string word_shape(std::string_view s) {
  if (utf8::length(s) >= 100) return "LONG";
  std::string out;
  std::uint32_t last = 0xFFFFFFFF;
  int seq = 0;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t b = i;
    const std::uint32_t cp = next_cp(s, i);
    std::uint32_t shape;
    if (py_isalpha(cp)) shape = py_isupper(cp) ? 'X' : 'x';
    else if (py_isdigit(cp)) shape = 'd';
    else shape = cp;
    if (shape == last) {
      ++seq;
    } else {
      seq = 0;
      last = shape;
    }
    if (seq < 4) {
      if (shape == cp) out.append(s.substr(b, i - b));
      else out += static_cast<char>(shape);
    }
  }
  return out;
}

/// First code point (PREFIX) and last three code points (SUFFIX).
[[nodiscard]] inline std::string_view first_cp(std::string_view s) noexcept {
  if (s.empty()) return s;
  std::size_t i = 0;
  (void)next_cp(s, i);
  return s.substr(0, i);
}
[[nodiscard]] inline std::string_view last_cps(std::string_view s, int n) noexcept {
  std::size_t i = s.size();
  while (i > 0 && n > 0) {
    --i;
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) --n;
  }
  return s.substr(i);
}

/// spaCy 3.x BASE_NORMS (spacy/lang/norm_exceptions.py), applied after the lexeme_norm table.
inline const std::unordered_map<std::string_view, std::string_view>& base_norms() {
  static const std::unordered_map<std::string_view, std::string_view> m = {
      {"'s", "'s"}, {"'S", "'s"}, {"\u2019s", "'s"}, {"\u2019S", "'s"}, {"\u2019", "'"}, {"\u2018", "'"},
      {"\u00b4", "'"}, {"`", "'"}, {"\u201d", "\""}, {"\u201c", "\""}, {"''", "\""}, {"``", "\""},
      {"\u00b4\u00b4", "\""}, {"\u201e", "\""}, {"\u00bb", "\""}, {"\u00ab", "\""}, {"\u2018\u2018", "\""},
      {"\u2019\u2019", "\""}, {"\uff1f", "?"}, {"\uff01", "!"}, {"\uff0c", ","}, {"\uff1b", ";"}, {"\uff1a", ":"},
      {"\u3002", "."}, {"\u0964", "."}, {"\u2026", "..."}, {"\u2014", "-"}, {"\u2013", "-"}, {"--", "-"},
      {"---", "-"}, {"\u2014\u2014", "-"}, {"\u20ac", "$"}, {"\u00a3", "$"}, {"\u00a5", "$"}, {"\u0e3f", "$"},
      {"US$", "$"}, {"C$", "$"}, {"A$", "$"}, {"\u20ba", "$"}, {"\u20b9", "$"}, {"\u09f3", "$"}, {"\u20a9", "$"},
      {"Mex$", "$"}, {"\u20a3", "$"}, {"E\u00a3", "$"},
  };
  return m;
}

}  // namespace spacy::detail
NERPIPE_NAMESPACE_END
