// SPDX-License-Identifier: Apache-2.0
//! @file spaCy's Python `re` patterns on PCRE2 (8-bit, UTF + UCP, JIT): translation and search helpers.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>

#ifndef PCRE2_CODE_UNIT_WIDTH
#  define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

NERPIPE_NAMESPACE_BEGIN
namespace spacy::detail {

/// Python `re` syntax -> PCRE2 syntax for the constructs spaCy's stored patterns use:
/// `\uXXXX` / `\UXXXXXXXX` become `\x{...}` (PCRE2 has no \U), a leading `(?u)` (a no-op on str
/// patterns) is dropped. Everything else (classes, lookaround, {m,n}) means the same in both.
[[nodiscard]] inline std::string python_re_to_pcre2(std::string_view p) {
  if (p.substr(0, 4) == "(?u)") p.remove_prefix(4);
  std::string out;
  out.reserve(p.size() + p.size() / 8);
  for (std::size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c != '\\' || i + 1 >= p.size()) {
      out += c;
      continue;
    }
    const char e = p[i + 1];
    const std::size_t digits = e == 'u' ? 4 : e == 'U' ? 8 : 0;
    if (digits != 0 && i + 2 + digits <= p.size()) {
      std::string hex(p.substr(i + 2, digits));
      while (hex.size() > 1 && hex[0] == '0') hex.erase(0, 1);  // \x{} takes at most 8 digits; keep it short
      out += "\\x{" + hex + "}";
      i += 1 + digits;
      continue;
    }
    out += c;
    out += e;
    ++i;
  }
  return out;
}

/// One compiled pattern. Matching is const and thread-safe given a per-thread match_data.
class regex {
 public:
  regex() = default;
  regex(std::string_view python_pattern, std::string_view what) {
    if (python_pattern.empty()) return;
    const std::string pat = python_re_to_pcre2(python_pattern);
    int err = 0;
    PCRE2_SIZE off = 0;
    code_.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat.data()), pat.size(), PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr));
    if (!code_) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(err, buf, sizeof buf);
      NERPIPE_THROW(model_error(errc::model_unsupported,
                                std::string("tokenizer: ") + std::string(what) + " pattern does not compile with PCRE2 (" +
                                    reinterpret_cast<const char*>(buf) + " at offset " + std::to_string(off) +
                                    "), expected a Python re pattern spaCy can load"));
    }
    jit_ = pcre2_jit_compile(code_.get(), PCRE2_JIT_COMPLETE) == 0;
  }

  [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(code_); }
  [[nodiscard]] pcre2_code* code() const noexcept { return code_.get(); }

  /// First match at or after `from` (re.search from that position; `anchored`: re.match).
  /// Returns false when none; [begin, end) are byte offsets into `s`.
  bool find(std::string_view s, std::size_t from, bool anchored, pcre2_match_data* md, std::size_t& begin,
            std::size_t& end) const {
    const auto opts = PCRE2_NO_UTF_CHECK | (anchored ? PCRE2_ANCHORED : 0u);
    const int rc = (jit_ && !anchored)
                       ? pcre2_jit_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), from,
                                         PCRE2_NO_UTF_CHECK, md, nullptr)
                       : pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), from, opts, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    if (rc < 0) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(rc, buf, sizeof buf);
      NERPIPE_THROW(input_error(errc::input_too_large, std::string("tokenizer: PCRE2 match failed: ") +
                                                          reinterpret_cast<const char*>(buf)));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    begin = ov[0];
    end = ov[1];
    return true;
  }

 private:
  struct code_free {
    void operator()(pcre2_code* c) const noexcept { pcre2_code_free(c); }
  };
  std::unique_ptr<pcre2_code, code_free> code_;
  bool jit_ = false;
};

/// Owned match data, one per tokenizing thread.
struct match_data {
  struct md_free {
    void operator()(pcre2_match_data* m) const noexcept { pcre2_match_data_free(m); }
  };
  std::unique_ptr<pcre2_match_data, md_free> md{pcre2_match_data_create(4, nullptr)};
  [[nodiscard]] pcre2_match_data* get() const noexcept { return md.get(); }
};

}  // namespace spacy::detail
NERPIPE_NAMESPACE_END
