// SPDX-License-Identifier: Apache-2.0
//! @file spaCy 3.x's rule-based tokenizer (spacy/tokenizer.pyx), exactly: whitespace, affixes, infixes, URLs, special cases.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/tokenizer/spacy/rules.hpp>
#include <nerpipe/tokenizer/spacy/string_id.hpp>
#include <nerpipe/tokenizer/spacy/lexeme.hpp>
#include <nerpipe/tokenizer/spacy/regex.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN
namespace spacy {

/// One token as the tokenizer produced it: byte range in the text, trailing-space flag, and the
/// exception sub-token it came from (for its NORM), if any.
struct raw_token {
  std::uint32_t begin = 0, end = 0;  // bytes
  bool space = false;
  const special_token* special = nullptr;
};

/// The four hashed features of a token, plus IS_SPACE (used by the NER's validity rules).
struct lexeme_attrs {
  std::uint64_t norm = 0, prefix = 0, suffix = 0, shape = 0;
  bool is_space = false;
};

}  // namespace spacy

/// spaCy's tokenizer for one loaded pipeline. `tokenize` is const and may run on several threads at once.
class spacy_tokenizer {
 public:
  /// From a loaded pipeline (spacy_model: its `tokenizer` rules and `lexeme_norm` table).
  template <class Pipeline>
    requires requires(const Pipeline& p) { p.tokenizer; p.lexeme_norm; }
  explicit spacy_tokenizer(const Pipeline& m) : spacy_tokenizer(m.tokenizer, m.lexeme_norm) {}

  spacy_tokenizer(const spacy::tokenizer_rules& rules, const std::unordered_map<std::uint64_t, std::string>& lexeme_norm)
      : rules_(std::make_shared<spacy::tokenizer_rules>(rules)),
        lexeme_norm_(std::make_shared<const std::unordered_map<std::uint64_t, std::string>>(lexeme_norm)),
        prefix_(rules_->prefix_search, "prefix_search"),
        suffix_(rules_->suffix_search, "suffix_search"),
        infix_(rules_->infix_finditer, "infix_finditer"),
        token_match_(rules_->token_match, "token_match"),
        url_match_(rules_->url_match, "url_match") {
    for (const auto& [key, toks] : rules_->exceptions) specials_.emplace(key, &toks);
    // Keys that affixes could split are also found after tokenization by a phrase matcher over
    // their affix-only tokenization (Tokenizer.add_special_case).
    spacy::detail::match_data md;
    for (const auto& [key, toks] : rules_->exceptions) {
      std::size_t b, e;
      const bool needs = !rules_->faster_heuristics || (prefix_ && prefix_.find(key, 0, false, md.get(), b, e)) ||
                         (suffix_ && suffix_.find(key, 0, false, md.get(), b, e)) ||
                         (infix_ && infix_.find(key, 0, false, md.get(), b, e)) || key.find(' ') != std::string::npos;
      if (!needs) continue;
      std::vector<spacy::raw_token> t;
      tokenize_affixes(key, false, md, t);
      pattern p;
      p.key = key;
      for (const auto& x : t) p.orths.emplace_back(key.substr(x.begin, x.end - x.begin));
      patterns_.push_back(std::move(p));
    }
    // Index only once the vector stops moving: the keys view the patterns' strings.
    for (std::size_t i = 0; i < patterns_.size(); ++i) patterns_by_first_[patterns_[i].orths.front()].push_back(i);
  }

  /// Tokenizes `text` (valid UTF-8) into `out` (cleared first).
  void tokenize(std::string_view text, std::vector<spacy::raw_token>& out) const {
    out.clear();
    spacy::detail::match_data md;
    tokenize_affixes(text, true, md, out);
    apply_special_cases(text, out);
  }

  [[nodiscard]] std::vector<spacy::raw_token> tokenize(std::string_view text) const {
    std::vector<spacy::raw_token> out;
    tokenize(text, out);
    return out;
  }

  /// Number of phrase-matcher patterns built from the exceptions (366 for en_core_web_sm 3.8.0).
  [[nodiscard]] std::size_t special_patterns() const noexcept { return patterns_.size(); }

  /// NORM, PREFIX, SUFFIX, SHAPE ids and IS_SPACE of a lexeme (its token-level NORM aside).
  [[nodiscard]] spacy::lexeme_attrs lexeme(std::string_view orth) const {
    using namespace spacy::detail;
    spacy::lexeme_attrs a;
    a.norm = spacy::string_id(lexeme_norm(orth));
    a.prefix = spacy::string_id(first_cp(orth));
    a.suffix = spacy::string_id(last_cps(orth, 3));
    a.shape = spacy::string_id(word_shape(orth));
    bool sp = !orth.empty();
    for (std::size_t i = 0; i < orth.size() && sp;) sp = py_isspace(next_cp(orth, i));
    a.is_space = sp;
    return a;
  }

  /// The lexeme NORM string: lexeme_norm table, then BASE_NORMS, then Python lower().
  [[nodiscard]] std::string lexeme_norm(std::string_view orth) const {
    if (auto it = lexeme_norm_->find(spacy::string_id(orth)); it != lexeme_norm_->end()) return it->second;
    const auto& base = spacy::detail::base_norms();
    if (auto it = base.find(orth); it != base.end()) return std::string(it->second);
    return spacy::detail::py_lower(orth);
  }

 private:
  struct pattern {
    std::string key;
    std::vector<std::string> orths;
  };
  using tokens = std::vector<spacy::raw_token>;

  [[nodiscard]] const std::vector<spacy::special_token>* special(std::string_view s) const {
    auto it = specials_.find(s);
    return it == specials_.end() ? nullptr : it->second;
  }

  static void push(tokens& out, std::size_t b, std::size_t e, const spacy::special_token* sp = nullptr) {
    out.push_back({static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(e), false, sp});
  }
  void push_special(tokens& out, std::size_t b, const std::vector<spacy::special_token>& toks) const {
    for (const auto& t : toks) {
      push(out, b, b + t.orth.size(), &t);
      b += t.orth.size();
    }
  }

  /// Tokenizer._tokenize_affixes: split on whitespace, then each chunk.
  void tokenize_affixes(std::string_view text, bool with_specials, spacy::detail::match_data& md, tokens& out) const {
    using spacy::detail::next_cp;
    using spacy::detail::py_isspace;
    if (text.empty()) return;
    std::size_t i = 0, start = 0;
    std::size_t probe = 0;
    bool in_ws = py_isspace(next_cp(text, probe));
    while (i < text.size()) {
      const std::size_t here = i;
      const std::uint32_t cp = next_cp(text, i);
      if (py_isspace(cp) != in_ws) {
        if (start < here) chunk(text, start, here, with_specials, md, out);
        if (cp == ' ') {
          out.back().space = true;
          start = here + 1;
        } else {
          start = here;
        }
        in_ws = !in_ws;
      }
    }
    if (start < text.size()) {
      chunk(text, start, text.size(), with_specials, md, out);
      out.back().space = text.back() == ' ' && !in_ws;
    }
  }

  void chunk(std::string_view text, std::size_t b, std::size_t e, bool with_specials, spacy::detail::match_data& md,
             tokens& out) const {
    const std::string_view s = text.substr(b, e - b);
    if (with_specials) {
      if (const auto* sp = special(s)) {
        push_special(out, b, *sp);
        return;
      }
    }
    // The cache of Tokenizer._tokenize is transparent (it never stores results that involved a
    // special case), so it is not reproduced.
    std::vector<std::pair<std::size_t, std::size_t>> prefixes, suffixes;
    split_affixes(text, b, e, with_specials, md, prefixes, suffixes);
    attach_tokens(text, b, e, with_specials, md, prefixes, suffixes, out);
  }

  /// Tokenizer._split_affixes: peel one prefix and one suffix per round until nothing changes.
  void split_affixes(std::string_view text, std::size_t& b, std::size_t& e, bool with_specials, spacy::detail::match_data& md,
                     std::vector<std::pair<std::size_t, std::size_t>>& prefixes,
                     std::vector<std::pair<std::size_t, std::size_t>>& suffixes) const {
    std::size_t last_size = 0;
    while (e > b && e - b != last_size) {
      const std::string_view s = text.substr(b, e - b);
      if (token_match_ && matches_whole(token_match_, s, md)) break;
      if (with_specials && special(s)) break;
      last_size = s.size();
      std::size_t pre_len = 0, suf_len = 0, mb, me;
      if (prefix_ && prefix_.find(s, 0, false, md.get(), mb, me)) pre_len = me - mb;
      if (pre_len != 0) {
        if (pre_len < s.size() && with_specials && special(s.substr(pre_len))) {
          prefixes.emplace_back(b, b + pre_len);
          b += pre_len;
          break;
        }
      }
      if (suffix_ && suffix_.find(s.substr(pre_len), 0, false, md.get(), mb, me)) suf_len = me - mb;
      if (suf_len != 0) {
        if (suf_len < s.size() && with_specials && special(s.substr(0, s.size() - suf_len))) {
          suffixes.emplace_back(e - suf_len, e);
          e -= suf_len;
          break;
        }
      }
      if (pre_len && suf_len && pre_len + suf_len <= s.size()) {
        prefixes.emplace_back(b, b + pre_len);
        suffixes.emplace_back(e - suf_len, e);
        b += pre_len;
        e -= suf_len;
      } else if (pre_len) {
        prefixes.emplace_back(b, b + pre_len);
        b += pre_len;
      } else if (suf_len) {
        suffixes.emplace_back(e - suf_len, e);
        e -= suf_len;
      }
    }
  }

  /// re.match(pattern, s) for a pattern that ends in `$`: an anchored match at 0.
  static bool matches_whole(const spacy::detail::regex& re, std::string_view s, spacy::detail::match_data& md) {
    std::size_t mb, me;
    return re.find(s, 0, true, md.get(), mb, me);
  }

  /// Tokenizer._attach_tokens: prefixes, the remainder (special, URL, or infix-split), suffixes reversed.
  void attach_tokens(std::string_view text, std::size_t b, std::size_t e, bool with_specials, spacy::detail::match_data& md,
                     const std::vector<std::pair<std::size_t, std::size_t>>& prefixes,
                     const std::vector<std::pair<std::size_t, std::size_t>>& suffixes, tokens& out) const {
    for (const auto& [pb, pe] : prefixes) push(out, pb, pe);
    if (e > b) {
      const std::string_view s = text.substr(b, e - b);
      const auto* sp = with_specials ? special(s) : nullptr;
      if (sp) {
        push_special(out, b, *sp);
      } else if ((token_match_ && matches_whole(token_match_, s, md)) || (url_match_ && matches_whole(url_match_, s, md))) {
        push(out, b, e);
      } else if (!infix_) {
        push(out, b, e);
      } else {
        std::size_t start = 0, from = 0, mb, me;
        bool any = false;
        while (from <= s.size() && infix_.find(s, from, false, md.get(), mb, me)) {
          any = true;
          if (mb != 0) {  // an infix at position 0 is ignored
            if (mb != start) push(out, b + start, b + mb);
            if (mb != me) push(out, b + mb, b + me);
            start = me;
          }
          // finditer: the next search starts at the end of this match (one code point on if empty).
          if (me == mb) {
            if (me >= s.size()) break;
            std::size_t k = me;
            (void)spacy::detail::next_cp(s, k);
            from = k;
          } else {
            from = me;
          }
        }
        if (!any) {
          push(out, b, e);
        } else if (start < s.size()) {
          push(out, b + start, e);
        }
      }
    }
    for (auto it = suffixes.rbegin(); it != suffixes.rend(); ++it) push(out, it->first, it->second);
  }

  /// Tokenizer._apply_special_cases: phrase-match the affix-split keys, keep longest-then-leftmost
  /// non-overlapping spans, and replace those whose text is an exception key.
  void apply_special_cases(std::string_view text, tokens& toks) const {
    if (patterns_.empty() || toks.empty()) return;
    struct span { std::size_t start, end; };
    std::vector<span> matches;
    for (std::size_t i = 0; i < toks.size(); ++i) {
      const std::string_view t0 = text.substr(toks[i].begin, toks[i].end - toks[i].begin);
      auto it = patterns_by_first_.find(t0);
      if (it == patterns_by_first_.end()) continue;
      for (std::size_t pi : it->second) {
        const auto& p = patterns_[pi];
        if (i + p.orths.size() > toks.size()) continue;
        bool ok = true;
        for (std::size_t k = 1; k < p.orths.size() && ok; ++k)
          ok = text.substr(toks[i + k].begin, toks[i + k].end - toks[i + k].begin) == p.orths[k];
        if (ok) matches.push_back({i, i + p.orths.size()});
      }
    }
    if (matches.empty()) return;
    std::sort(matches.begin(), matches.end(), [](const span& a, const span& b) {
      if (a.end - a.start == b.end - b.start) return b.start < a.start;
      return a.end - a.start < b.end - b.start;
    });
    std::vector<span> kept;
    std::vector<char> seen(toks.size(), 0);
    for (auto it = matches.rbegin(); it != matches.rend(); ++it) {
      if (!seen[it->start] && !seen[it->end - 1]) kept.push_back(*it);
      for (std::size_t k = it->start; k < it->end; ++k) seen[k] = 1;
    }
    std::sort(kept.begin(), kept.end(), [](const span& a, const span& b) { return a.start < b.start; });
    tokens out;
    out.reserve(toks.size() + 8);
    std::size_t i = 0;
    for (const auto& sp : kept) {
      while (i < sp.start) out.push_back(toks[i++]);
      const std::size_t b = toks[sp.start].begin, e = toks[sp.end - 1].end;
      const auto* rule = special(text.substr(b, e - b));  // span.text: original inner whitespace kept
      if (rule == nullptr) {
        while (i < sp.end) out.push_back(toks[i++]);
        continue;
      }
      const bool final_space = toks[sp.end - 1].space;
      push_special(out, b, *rule);
      out.back().space = final_space;
      i = sp.end;
    }
    while (i < toks.size()) out.push_back(toks[i++]);
    toks.swap(out);
  }

  std::shared_ptr<const spacy::tokenizer_rules> rules_;
  std::shared_ptr<const std::unordered_map<std::uint64_t, std::string>> lexeme_norm_;
  spacy::detail::regex prefix_, suffix_, infix_, token_match_, url_match_;
  std::unordered_map<std::string_view, const std::vector<spacy::special_token>*> specials_;
  std::vector<pattern> patterns_;
  std::unordered_map<std::string_view, std::vector<std::size_t>> patterns_by_first_;
};

NERPIPE_NAMESPACE_END
