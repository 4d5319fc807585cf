// SPDX-License-Identifier: Apache-2.0
//! @file Hugging Face byte-level BPE (RoBERTa, GPT-2) and Unigram (XLM-R, CamemBERT, DeBERTa-v3) tokenization:
//! added tokens -> normalizers -> pre-tokenizers -> model -> post-processor, with the offsets of tokenizers
//! 0.22.2 (`encode` with char offsets, as transformers 4.57.6's fast tokenizers return them).
//!
//! Offsets follow tokenizers' `NormalizedString` exactly: every normalized byte carries the original byte
//! range of the character it came from, and each normalizer / pre-tokenizer rewrites the text through the
//! same (char, change) transformation rules (a replaced char keeps its alignment, an inserted char takes
//! the previous byte's, removed chars vanish), quirks included: Precompiled replaces a whole grapheme of
//! fewer than 6 bytes by the replacement of its *shortest* mapped prefix, and a removal at the very start
//! of a segment shifts the alignments of what follows (tokenizers attaches it to no character).
//!
//! Supported (anything else is a model_error at load, see model/hf/subword_tokenizer_json.hpp):
//!   normalizers  Precompiled, Strip, Replace (string, or the regex " {2,}" natively / any regex via PCRE2),
//!                Lowercase, Prepend, NFC / NFD / NFKC / NFKD (utf8proc), Sequence
//!   pre-tokenizers ByteLevel (GPT-2 regex without a regex engine, add_prefix_space, use_regex), Metaspace
//!                (prepend_scheme always / first / never, split), Punctuation, WhitespaceSplit, Sequence
//!   models       BPE (merges, unk / fuse_unk, byte_fallback, continuing_subword_prefix, end_of_word_suffix,
//!                ignore_merges; dropout must be null) and Unigram (Viterbi, unk, byte_fallback)
//!   post-processors RobertaProcessing / ByteLevel (trim_offsets, add_prefix_space), TemplateProcessing,
//!                BertProcessing
//!   added tokens special, lstrip, rstrip, single_word, normalized
//! Invalid UTF-8 is an input_error naming the byte (as wordpiece_tokenizer).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/utf8.hpp>
#include <nerpipe/tokenizer/precompiled_charsmap.hpp>
#include <nerpipe/tokenizer/subword_unicode.hpp>
#include <nerpipe/tokenizer/unicode.hpp>
#include <nerpipe/tokenizer/wordpiece_tokenizer.hpp>

#ifndef PCRE2_CODE_UNIT_WIDTH
#  define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

// ---- configuration (what tokenizer.json says) ------------------------------------------------------

/// One normalizer of the sequence.
struct subword_normalizer {
  enum class kind { precompiled, strip, replace, lowercase, prepend, unicode } type = kind::strip;
  enum class form { nfc, nfd, nfkc, nfkd } unicode_form = form::nfc;  ///< unicode: NFC / NFD / NFKC / NFKD
  bool left = false, right = false;          ///< strip
  bool regex = false;                        ///< replace: `pattern` is a regex (else a literal string)
  std::string pattern, content;              ///< replace pattern / content; prepend: content
  std::shared_ptr<const precompiled_charsmap> charsmap;
};

/// One pre-tokenizer of the sequence.
struct subword_pre_tokenizer {
  enum class kind { byte_level, metaspace, punctuation, whitespace_split } type = kind::byte_level;
  bool add_prefix_space = false, use_regex = true;  ///< byte_level
  std::string replacement = "\xE2\x96\x81";         ///< metaspace ("▁")
  enum class prepend { always, first, never } prepend_scheme = prepend::always;
  bool split = true;                                ///< metaspace
};

struct subword_added_token {
  std::string content;
  std::int32_t id = 0;
  bool special = false, single_word = false, lstrip = false, rstrip = false, normalized = false;
};

struct bpe_model_config {
  std::vector<std::pair<std::string, std::int32_t>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;  ///< in rank order
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix, end_of_word_suffix;
  bool fuse_unk = false, byte_fallback = false, ignore_merges = false;
};

struct unigram_model_config {
  std::vector<std::pair<std::string, double>> vocab;  ///< id = index
  std::optional<std::size_t> unk_id;
  bool byte_fallback = false;
};

/// Everything a subword_tokenizer is built from.
struct subword_config {
  enum class model_kind { bpe, unigram } model = model_kind::bpe;
  bpe_model_config bpe;
  unigram_model_config unigram;
  std::vector<subword_normalizer> normalizers;
  std::vector<subword_pre_tokenizer> pre_tokenizers;
  std::vector<subword_added_token> added_tokens;
  std::vector<template_piece> single_template;  ///< empty: no post-processor tokens
  bool trim_offsets = false;                    ///< RobertaProcessing / ByteLevel post-processor
  bool trim_add_prefix_space = false;           ///< their add_prefix_space
  std::string post_processor_type;              ///< as written ("RobertaProcessing", ...), empty when null
  bool byte_level_top = false;                  ///< the pre_tokenizer is a ByteLevel itself (not in a Sequence)
};

namespace detail::sw {

struct align {
  std::uint32_t b = 0, e = 0;  // original byte range, absolute in the text
};

/// A NormalizedString: normalized UTF-8 with one alignment per byte, and where it starts in the original.
struct segment {
  std::string s;
  std::vector<align> al;
  std::uint32_t ob = 0;  // offsets_original().0
  void clear() noexcept {
    s.clear();
    al.clear();
  }
};

/// One output char of a transformation: +1 inserted, 0 replaces one char, -n replaces one and removes n.
struct change {
  char32_t c;
  std::int32_t d;
};

[[nodiscard]] inline std::uint32_t char_len(unsigned char b) noexcept {
  return b < 0x80 ? 1u : b < 0xE0 ? 2u : b < 0xF0 ? 3u : 4u;
}

[[nodiscard]] inline char32_t decode_at(const std::string& s, std::size_t i) noexcept {
  char32_t u = 0;
  (void)utf8::decode(s.data() + i, s.data() + s.size(), u);
  return u;
}

/// tokenizers' `NormalizedString::transform` over the whole segment (initial_offset = chars removed first).
inline void transform(segment& x, const std::vector<change>& t, std::size_t initial_chars, segment& out) {
  out.s.clear();
  out.al.clear();
  out.ob = x.ob;
  std::size_t off = 0;
  for (std::size_t k = 0; k < initial_chars && off < x.s.size(); ++k) off += char_len(static_cast<unsigned char>(x.s[off]));
  char enc[4];
  for (const change& ch : t) {
    align a;
    if (ch.d > 0) {
      a = off == 0 ? align{x.ob, x.ob} : x.al[off - 1];
    } else {
      if (off >= x.s.size())
        NERPIPE_THROW(model_error(errc::model_unsupported, "subword_tokenizer: a normalizer step consumed past the end"));
      a = x.al[off];
      off += char_len(static_cast<unsigned char>(x.s[off]));
      for (std::int32_t r = 0; r < -ch.d && off < x.s.size(); ++r) off += char_len(static_cast<unsigned char>(x.s[off]));
    }
    const int n = utf8::encode(ch.c, enc);
    out.s.append(enc, static_cast<std::size_t>(n));
    for (int k = 0; k < n; ++k) out.al.push_back(a);
  }
  std::swap(x.s, out.s);
  std::swap(x.al, out.al);
}

/// A copy of bytes [b, e) of `x` as its own segment (tokenizers' `slice`).
inline void slice(const segment& x, std::size_t b, std::size_t e, segment& out) {
  out.s.assign(x.s, b, e - b);
  out.al.assign(x.al.begin() + static_cast<std::ptrdiff_t>(b), x.al.begin() + static_cast<std::ptrdiff_t>(e));
  out.ob = e > b ? x.al[b].b : x.ob;
}

/// A growable list of segments that keeps the storage of the segments it held before.
struct segment_list {
  std::vector<segment> v;
  std::size_t n = 0;
  segment& push() {
    if (n == v.size()) v.emplace_back();
    segment& s = v[n++];
    s.clear();
    return s;
  }
  void clear() noexcept { n = 0; }
};

/// Split spans: [b, e) with whether it is a match of the pattern.
struct span {
  std::uint32_t b, e;
  bool match;
};

/// Splits `spans` of `x` per SplitDelimiterBehavior (Isolated / Removed / MergedWithNext) into `out`.
enum class behavior { isolated, removed, merged_with_next };
/// MergedWithNext: a match not followed by another match joins the span after it (tokenizers' reverse fold).
inline void merge_with_next(std::vector<span>& spans) {
  std::size_t out = spans.size();
  bool prev_match = false;
  for (std::size_t k = spans.size(); k-- > 0;) {
    const span sp = spans[k];
    if (sp.match && !prev_match && out < spans.size()) spans[out].b = sp.b;
    else spans[--out] = {sp.b, sp.e, false};
    prev_match = sp.match;
  }
  spans.erase(spans.begin(), spans.begin() + static_cast<std::ptrdiff_t>(out));
}

inline void split_spans(const segment& x, std::vector<span>& spans, behavior how, segment_list& out) {
  if (how == behavior::merged_with_next) merge_with_next(spans);
  for (const span& sp : spans) {
    if (how == behavior::removed && sp.match) continue;
    if (sp.e == sp.b) continue;  // empty splits are dropped
    slice(x, sp.b, sp.e, out.push());
  }
}

/// Spans of a per-character predicate (each matching char is its own span; runs of others merge).
template <class Pred>
void char_spans(const std::string& s, Pred&& pred, std::vector<span>& out) {
  out.clear();
  std::uint32_t prev = 0;
  for (std::size_t i = 0; i < s.size();) {
    const std::uint32_t n = char_len(static_cast<unsigned char>(s[i]));
    if (pred(decode_at(s, i))) {
      if (prev != i) out.push_back({prev, static_cast<std::uint32_t>(i), false});
      out.push_back({static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(i + n), true});
      prev = static_cast<std::uint32_t>(i + n);
    }
    i += n;
  }
  if (prev != s.size()) out.push_back({prev, static_cast<std::uint32_t>(s.size()), false});
}

/// The GPT-2 regex of the ByteLevel pre-tokenizer as match spans (every byte is in some match).
inline void gpt2_spans(const std::string& s, std::vector<span>& out) {
  out.clear();
  const std::size_t n = s.size();
  auto cls_at = [&](std::size_t i) -> std::uint8_t {
    const auto c = static_cast<unsigned char>(s[i]);
    return c < 0x80 ? gpt2::ascii_classes()[c] : gpt2::classify(decode_at(s, i));
  };
  auto next = [&](std::size_t i) { return i + char_len(static_cast<unsigned char>(s[i])); };
  std::size_t i = 0;
  while (i < n) {
    const std::size_t start = i;
    const char c = s[i];
    std::size_t end = 0;
    if (c == '\'' && i + 1 < n) {
      const char a = s[i + 1], b = i + 2 < n ? s[i + 2] : '\0';
      if (a == 's' || a == 't' || a == 'm' || a == 'd') end = i + 2;
      else if ((a == 'r' || a == 'v') && b == 'e') end = i + 3;
      else if (a == 'l' && b == 'l') end = i + 3;
    }
    if (end == 0) {
      std::size_t j = i;
      if (c == ' ' && i + 1 < n && cls_at(i + 1) != gpt2::cls_space) j = i + 1;  // ` ?` before L / N / other
      const std::uint8_t k = cls_at(j);
      if (k != gpt2::cls_space) {
        end = next(j);
        while (end < n && cls_at(end) == k) end = next(end);
      } else {
        // \s+(?!\S) then \s+: a whitespace run, less its last char when a non-space follows (if that leaves any).
        std::size_t last = j;
        end = next(j);
        while (end < n && cls_at(end) == gpt2::cls_space) {
          last = end;
          end = next(end);
        }
        if (end < n && last > j) end = last;
      }
    }
    out.push_back({static_cast<std::uint32_t>(start), static_cast<std::uint32_t>(end), true});
    i = end;
  }
}

/// Open-addressing map from byte strings to a value, over one arena (no per-entry allocation).
template <class V>
class string_map {
 public:
  void reserve(std::size_t n) {
    std::size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, slot{});
    mask_ = cap - 1;
    size_ = 0;
    arena_.clear();
  }
  [[nodiscard]] const V* find(const char* p, std::size_t n) const noexcept {
    if (slots_.empty()) return nullptr;
    const std::uint64_t h = wp_hash(p, n);
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const slot& e = slots_[i];
      if (!e.used) return nullptr;
      if (e.hash == h && e.len == n && wp_equal(arena_.data() + e.off, p, n)) return &e.value;
    }
  }
  /// Inserts unless present; returns the stored value.
  V& insert(const char* p, std::size_t n, const V& v) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    const std::uint64_t h = wp_hash(p, n);
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      slot& e = slots_[i];
      if (!e.used) {
        e = slot{h, static_cast<std::uint32_t>(arena_.size()), static_cast<std::uint32_t>(n), true, v};
        arena_.append(p, n);
        ++size_;
        return e.value;
      }
      if (e.hash == h && e.len == n && wp_equal(arena_.data() + e.off, p, n)) return e.value;
    }
  }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t arena_bytes() const noexcept { return arena_.size(); }

 private:
  struct slot {
    std::uint64_t hash = 0;
    std::uint32_t off = 0, len = 0;
    bool used = false;
    V value{};
  };
  void grow() {
    std::vector<slot> old;
    old.swap(slots_);
    std::size_t cap = std::max<std::size_t>(16, old.size() * 2);
    slots_.assign(cap, slot{});
    mask_ = cap - 1;
    for (const slot& e : old) {
      if (!e.used) continue;
      for (std::size_t i = e.hash & mask_;; i = (i + 1) & mask_)
        if (!slots_[i].used) {
          slots_[i] = e;
          break;
        }
    }
  }
  std::vector<slot> slots_;
  std::size_t mask_ = 0, size_ = 0;
  std::string arena_;
};

/// One model token of a word: id and byte range within the word.
struct word_token {
  std::int32_t id;
  std::uint32_t b, e;
};

/// Per-thread word cache: word bytes -> a run of word_tokens (dropped whole when it grows large).
struct word_cache {
  std::uint64_t owner = 0;
  string_map<std::pair<std::uint32_t, std::uint32_t>> map;  // -> (first, count) in toks
  std::vector<word_token> toks;
  void reset(std::uint64_t who) {
    owner = who;
    map.reserve(4096);
    toks.clear();
  }
};

/// A raw (pre-post-processor) token: id, original byte range, word index, trim counts.
struct raw_tokens {
  std::vector<std::int32_t> ids;
  std::vector<token_offset> bytes;
  std::vector<std::int32_t> words;
  std::vector<std::uint16_t> lead, trail;  // leading / trailing whitespace chars of the token string
  void clear() noexcept {
    ids.clear();
    bytes.clear();
    words.clear();
    lead.clear();
    trail.clear();
  }
};

struct view {
  std::uint32_t seg, b, e;  // bytes [b, e) of segment `seg`
};

/// Byte -> code point and code point -> byte offsets of one text (BytesToCharOffsetConverter); empty when the
/// text is ASCII (offsets are the same).
struct cp_map {
  bool ascii = true;
  std::vector<std::uint32_t> byte_to_cp, cp_to_byte;
  void build(std::string_view text) {
    ascii = true;
    for (const char c : text)
      if (static_cast<unsigned char>(c) & 0x80) {
        ascii = false;
        break;
      }
    byte_to_cp.clear();
    cp_to_byte.clear();
    if (ascii) return;
    byte_to_cp.resize(text.size() + 1);
    std::uint32_t cp = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
        cp_to_byte.push_back(static_cast<std::uint32_t>(i));
        if (i > 0) ++cp;
      }
      byte_to_cp[i] = cp;
    }
    cp_to_byte.push_back(static_cast<std::uint32_t>(text.size()));
    byte_to_cp[text.size()] = cp + (text.empty() ? 0 : 1);
  }
};

struct scratch {
  std::vector<view> views;
  segment seg, tmp;
  segment_list a, b;
  std::vector<span> spans;
  std::vector<change> changes;
  raw_tokens raw;
  cp_map map;
  std::vector<word_token> word;
  word_cache cache;
  // BPE
  struct symbol {
    std::int32_t c;
    std::int32_t prev, next;
    std::uint32_t len;
  };
  std::vector<symbol> symbols;
  // Unigram
  std::vector<double> best_score;
  std::vector<std::int32_t> best_start, best_id;
  std::string fused;
};

/// A byte trie over vocabulary pieces with one hash probe per step (common-prefix search).
class piece_trie {
 public:
  void build(const std::vector<std::pair<std::string, double>>& vocab) {
    nodes_.assign(1, -1);
    edges_.reserve(vocab.size() * 2);
    for (std::size_t id = 0; id < vocab.size(); ++id) {
      const std::string& p = vocab[id].first;
      std::uint32_t node = 0;
      for (const char ch : p) {
        const std::uint64_t key = (std::uint64_t(node) << 8) | static_cast<unsigned char>(ch);
        const std::uint32_t* child = edges_.find(reinterpret_cast<const char*>(&key), sizeof key);
        if (child) {
          node = *child;
        } else {
          const auto fresh = static_cast<std::uint32_t>(nodes_.size());
          nodes_.push_back(-1);
          edges_.insert(reinterpret_cast<const char*>(&key), sizeof key, fresh);
          node = fresh;
        }
      }
      if (!p.empty()) nodes_[node] = static_cast<std::int32_t>(id);  // a later duplicate wins, as token_to_ids
    }
  }
  /// Calls f(length, id) for every piece that is a prefix of [p, end), shortest first.
  template <class F>
  void prefixes(const char* p, const char* end, F&& f) const {
    std::uint32_t node = 0;
    for (const char* q = p; q < end; ++q) {
      const std::uint64_t key = (std::uint64_t(node) << 8) | static_cast<unsigned char>(*q);
      const std::uint32_t* child = edges_.find(reinterpret_cast<const char*>(&key), sizeof key);
      if (!child) return;
      node = *child;
      if (nodes_[node] >= 0) f(static_cast<std::size_t>(q + 1 - p), nodes_[node]);
    }
  }

 private:
  std::vector<std::int32_t> nodes_;  // piece id ending here, or -1
  string_map<std::uint32_t> edges_;
};

/// NFC / NFD / NFKC / NFKD with the alignments of tokenizers' crate unicode-normalization-alignments:
/// every char decomposes into (first: change 0, rest: +1), marks between starters are stably sorted by
/// combining class with their changes, and a composition of k with ch gives change k + ch - 1.
// Decompositions newer than tokenizers' unicode-normalization-alignments tables (Unicode 12.0): it leaves these
// code points alone; derived from tests/fixtures/hf/tokenizer/unicode_norm_sweep.json.
inline constexpr bert_unicode::cp_range new_compat_decompositions[] = {
  {0x32FF, 0x32FF}, {0xA7F2, 0xA7F4}, {0xAB69, 0xAB69}, {0x10781, 0x10785}, {0x10787, 0x107B0}, {0x107B2, 0x107BA},
  {0x11938, 0x11938}, {0x1E030, 0x1E06D}, {0x1F16C, 0x1F16C}, {0x1FBF0, 0x1FBF9},
};
// Composition exclusions that utf8proc 2.8.0's pairwise composition does not honour.
inline constexpr bert_unicode::cp_range composition_exclusions[] = {
  {0x2ADC, 0x2ADC}, {0x1D15E, 0x1D164}, {0x1D1BB, 0x1D1C0},
};

inline void unicode_normalize(subword_normalizer::form f, segment& x, segment& tmp, std::vector<change>& ch) {
  bool ascii = true;
  for (const char c : x.s) ascii = ascii && !(static_cast<unsigned char>(c) & 0x80);
  if (ascii) return;  // ASCII is its own normal form in all four
  using F = subword_normalizer::form;
  const bool compat = f == F::nfkc || f == F::nfkd;
  const bool compose = f == F::nfc || f == F::nfkc;
  auto ccc = [](char32_t c) -> std::uint8_t {
    return static_cast<std::uint8_t>(utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class);
  };
  struct item {
    std::uint8_t cls;
    char32_t c;
    std::int32_t d;
  };
  thread_local std::vector<item> buf;
  buf.clear();
  for (std::size_t i = 0; i < x.s.size();) {
    const char32_t u = decode_at(x.s, i);
    i += char_len(static_cast<unsigned char>(x.s[i]));
    utf8proc_int32_t out[32];
    int last = 0;
    const auto opts = static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0));
    auto n = (u == 0x11938 || (compat && bert_unicode::in_ranges(new_compat_decompositions, u)))
                 ? utf8proc_ssize_t{0}
                 : utf8proc_decompose_char(static_cast<utf8proc_int32_t>(u), out, 32, opts, &last);
    if (n <= 0 || n > 32) {
      out[0] = static_cast<utf8proc_int32_t>(u);
      n = 1;
    }
    for (utf8proc_ssize_t k = 0; k < n; ++k) {
      const auto c = static_cast<char32_t>(out[k]);
      buf.push_back({ccc(c), c, k == 0 ? 0 : 1});
    }
  }
  // Canonical ordering: stable sort of each run of non-starters.
  for (std::size_t a = 0; a < buf.size();) {
    if (buf[a].cls == 0) {
      ++a;
      continue;
    }
    std::size_t b = a;
    while (b < buf.size() && buf[b].cls != 0) ++b;
    std::stable_sort(buf.begin() + static_cast<std::ptrdiff_t>(a), buf.begin() + static_cast<std::ptrdiff_t>(b),
                     [](const item& l, const item& r) { return l.cls < r.cls; });
    a = b;
  }
  ch.clear();
  if (!compose) {
    for (const item& it : buf) ch.push_back({it.c, it.d});
    transform(x, ch, 0, tmp);
    return;
  }
  auto pair = [](char32_t a, char32_t b, char32_t& r) {
    utf8proc_int32_t two[2] = {static_cast<utf8proc_int32_t>(a), static_cast<utf8proc_int32_t>(b)};
    if (utf8proc_normalize_utf32(two, 2, UTF8PROC_COMPOSE) != 1) return false;
    r = static_cast<char32_t>(two[0]);
    return !bert_unicode::in_ranges(composition_exclusions, r);
  };
  // The crate's Recompositions state machine.
  std::optional<change> composee;
  int last_ccc = -1;
  thread_local std::vector<change> pending;
  pending.clear();
  for (const item& it : buf) {
    const change cur{it.c, it.d};
    if (!composee) {
      if (it.cls != 0) {
        ch.push_back(cur);
        continue;
      }
      composee = cur;
      continue;
    }
    char32_t r = 0;
    if (last_ccc < 0) {
      if (pair(composee->c, it.c, r)) {
        composee = change{r, composee->d + it.d - 1};
        continue;
      }
      if (it.cls == 0) {
        ch.push_back(*composee);
        composee = cur;
        continue;
      }
      pending.push_back(cur);
      last_ccc = it.cls;
      continue;
    }
    if (last_ccc >= it.cls) {
      if (it.cls == 0) {
        ch.push_back(*composee);
        ch.insert(ch.end(), pending.begin(), pending.end());
        pending.clear();
        composee = cur;
        last_ccc = -1;
        continue;
      }
      pending.push_back(cur);
      last_ccc = it.cls;
      continue;
    }
    if (pair(composee->c, it.c, r)) {
      composee = change{r, composee->d + it.d - 1};
      continue;
    }
    pending.push_back(cur);
    last_ccc = it.cls;
  }
  if (composee) {
    ch.push_back(*composee);
    ch.insert(ch.end(), pending.begin(), pending.end());
  } else {
    ch.insert(ch.end(), pending.begin(), pending.end());
  }
  transform(x, ch, 0, tmp);
}

inline std::uint64_t next_tokenizer_uid() {
  static std::atomic<std::uint64_t> n{1};
  return n.fetch_add(1);
}

}  // namespace detail::sw

/// A loaded BPE or Unigram tokenizer. Immutable after construction; `encode` may be called from many threads.
class subword_tokenizer {
 public:
  explicit subword_tokenizer(subword_config cfg) : cfg_(std::move(cfg)) { build(); }
  subword_tokenizer(const subword_tokenizer& o) : cfg_(o.cfg_) { build(); }
  subword_tokenizer& operator=(const subword_tokenizer& o) {
    if (this != &o) {
      cfg_ = o.cfg_;
      build();
    }
    return *this;
  }
  subword_tokenizer(subword_tokenizer&&) noexcept = default;
  subword_tokenizer& operator=(subword_tokenizer&&) noexcept = default;
  ~subword_tokenizer() = default;

  /// `tokenizer(text)`: the whole text, post-processor tokens added, no truncation.
  [[nodiscard]] encoding encode(std::string_view text) const {
    encoding out;
    encode(text, out);
    return out;
  }
  void encode(std::string_view text, encoding& out) const {
    detail::sw::scratch& s = scratch();
    tokenize(text, s);
    s.map.build(text);
    out.clear();
    append_window(text, s.raw, s.map, 0, s.raw.ids.size(), out);
  }

  /// As wordpiece_tokenizer::encode_windows: truncation=True, max_length, stride, return_overflowing_tokens.
  [[nodiscard]] std::vector<encoding> encode_windows(std::string_view text, std::size_t max_length,
                                                     std::size_t stride) const {
    std::vector<encoding> out;
    encode_windows(text, max_length, stride, out);
    return out;
  }
  void encode_windows(std::string_view text, std::size_t max_length, std::size_t stride,
                      std::vector<encoding>& out) const {
    const std::size_t w = window_tokens(max_length, stride);
    detail::sw::scratch& s = scratch();
    tokenize(text, s);
    s.map.build(text);  // once per text, not per window
    const std::size_t n = s.raw.ids.size();
    std::size_t count = 0;
    auto next = [&]() -> encoding& {
      if (out.size() <= count) out.emplace_back();
      encoding& e = out[count++];
      e.clear();
      return e;
    };
    if (n <= w) {
      append_window(text, s.raw, s.map, 0, n, next());
    } else {
      const std::size_t step = w - stride;
      for (std::size_t start = 0; start < n; start += step) {
        const std::size_t stop = std::min(start + w, n);
        append_window(text, s.raw, s.map, start, stop, next());
        if (stop == n) break;
      }
    }
    out.resize(count);
  }

  /// The state of a text cut into windows a few at a time (start_windows, next_window).
  struct window_state {
    std::string_view text;
    std::size_t w = 0, step = 0, start = 0;
    bool done = false;
    bool ordered = true;  // token byte offsets never decrease (byte-fallback pieces can break it)
    detail::sw::raw_tokens raw;
    detail::sw::cp_map map;
  };

  /// encode_windows' windows of `text` one at a time (next_window). The text's tokens are made at once and kept
  /// (about 20 bytes a token); the windows' encodings are made as they are asked for.
  void start_windows(std::string_view text, std::size_t max_length, std::size_t stride, window_state& st,
                     std::size_t /*piece_bytes*/ = 0) const {
    st.w = window_tokens(max_length, stride);
    st.step = st.w - stride;
    st.text = text;
    st.start = 0;
    st.done = false;
    detail::sw::scratch& s = scratch();
    tokenize(text, s);
    std::swap(st.raw, s.raw);
    st.map.build(text);
    st.ordered = true;
    for (std::size_t k = 1; k < st.raw.bytes.size() && st.ordered; ++k)
      st.ordered = st.raw.bytes[k - 1].begin <= st.raw.bytes[k].begin;
  }

  /// The smallest code-point offset a token of a window after those handed out may have (its untrimmed start:
  /// trimming only moves starts right); SIZE_MAX when no window is left, 0 when tokens are out of text order.
  [[nodiscard]] std::size_t window_floor(const window_state& st) const noexcept {
    if (st.done || st.start >= st.raw.ids.size()) return std::numeric_limits<std::size_t>::max();
    if (!st.ordered) return 0;
    const std::uint32_t b = st.raw.bytes[st.start].begin;
    if (st.map.ascii || b >= st.text.size()) return b;
    return st.map.byte_to_cp[b];
  }

  /// The next window of the text start_windows was given, into `out`; false when there is none left.
  bool next_window(window_state& st, encoding& out) const {
    if (st.done) return false;
    const std::size_t n = st.raw.ids.size(), stop = std::min(st.start + st.w, n);
    out.clear();
    append_window(st.text, st.raw, st.map, st.start, stop, out);
    if (stop == n) st.done = true;
    st.start += st.step;
    return true;
  }

  [[nodiscard]] std::size_t num_special_tokens() const noexcept { return num_special_; }
  /// The id of an added token or vocabulary entry, or -1.
  [[nodiscard]] std::int32_t token_to_id(std::string_view token) const noexcept {
    for (const auto& a : cfg_.added_tokens)
      if (a.content == token) return a.id;
    const std::int32_t* id = vocab_.find(token.data(), token.size());
    return id ? *id : -1;
  }
  [[nodiscard]] std::string_view id_to_token(std::int32_t id) const noexcept {
    if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size()) return {};
    return id_to_token_[static_cast<std::size_t>(id)];
  }
  [[nodiscard]] std::int32_t unk_id() const noexcept { return unk_id_; }
  [[nodiscard]] std::size_t vocab_size() const noexcept { return id_to_token_.size(); }
  [[nodiscard]] const subword_config& config() const noexcept { return cfg_; }

 private:
  using segment = detail::sw::segment;

  /// Model tokens of one window (max_length less the special tokens), after checking max_length and stride.
  [[nodiscard]] std::size_t window_tokens(std::size_t max_length, std::size_t stride) const {
    const std::size_t added = num_special_;
    if (max_length <= added)
      NERPIPE_THROW(config_error(errc::config_invalid, "subword_tokenizer: max_length " + std::to_string(max_length) +
                                                           " leaves no room for text after the " +
                                                           std::to_string(added) + " special tokens (expected max_length > " +
                                                           std::to_string(added) + ")"));
    const std::size_t w = max_length - added;
    if (stride >= w)
      NERPIPE_THROW(config_error(errc::config_invalid, "subword_tokenizer: stride " + std::to_string(stride) +
                                                           " must be smaller than max_length minus the special tokens (" +
                                                           std::to_string(w) + ")"));
    return w;
  }

  static detail::sw::scratch& scratch() {
    thread_local detail::sw::scratch s;
    return s;
  }

  [[noreturn]] static void bad_model(const std::string& what) {
    NERPIPE_THROW(model_error(errc::model_file_malformed, "tokenizer.json: " + what));
  }

  // ---- construction ----------------------------------------------------------------------------

  void build() {
    uid_ = detail::sw::next_tokenizer_uid();
    id_to_token_.clear();
    auto set_token = [&](std::int32_t id, const std::string& s) {
      if (id < 0 || static_cast<std::size_t>(id) > (1u << 26)) bad_model("token id " + std::to_string(id) + " of '" + s + "' is out of range");
      if (static_cast<std::size_t>(id) >= id_to_token_.size()) id_to_token_.resize(static_cast<std::size_t>(id) + 1);
      id_to_token_[static_cast<std::size_t>(id)] = s;
    };
    vocab_.reserve(64);
    byte_mode_ = false;
    for (const auto& p : cfg_.pre_tokenizers) byte_mode_ = byte_mode_ || p.type == subword_pre_tokenizer::kind::byte_level;
    if (byte_mode_ && cfg_.pre_tokenizers.back().type != subword_pre_tokenizer::kind::byte_level)
      NERPIPE_THROW(model_error(errc::model_unsupported,
                                "tokenizer.json: a ByteLevel pre-tokenizer followed by others is not supported"));
    if (cfg_.model == subword_config::model_kind::bpe) {
      const auto& m = cfg_.bpe;
      vocab_.reserve(m.vocab.size());
      for (const auto& [tok, id] : m.vocab) {
        set_token(id, tok);
        vocab_.insert(tok.data(), tok.size(), id);
      }
      merges_.reserve(m.merges.size());
      const std::size_t plen = m.continuing_subword_prefix.size();
      for (std::size_t r = 0; r < m.merges.size(); ++r) {
        const auto& [a, b] = m.merges[r];
        const std::int32_t* ia = vocab_.find(a.data(), a.size());
        const std::int32_t* ib = vocab_.find(b.data(), b.size());
        if (!ia || !ib)
          bad_model("model.merges[" + std::to_string(r) + "] '" + a + " " + b + "' names '" + (!ia ? a : b) +
                    "', which is not in model.vocab");
        if (b.size() < plen) bad_model("model.merges[" + std::to_string(r) + "] is shorter than the subword prefix");
        const std::string merged = a + b.substr(plen);
        const std::int32_t* im = vocab_.find(merged.data(), merged.size());
        if (!im)
          bad_model("model.merges[" + std::to_string(r) + "] makes '" + merged + "', which is not in model.vocab");
        const std::uint64_t key = (std::uint64_t(static_cast<std::uint32_t>(*ia)) << 32) | static_cast<std::uint32_t>(*ib);
        merge_value& v = merges_.insert(reinterpret_cast<const char*>(&key), sizeof key,
                                        merge_value{static_cast<std::uint32_t>(r), *im});
        v = merge_value{static_cast<std::uint32_t>(r), *im};  // a repeated pair keeps its last rank, as a HashMap collect
      }
      unk_id_ = -1;
      if (m.unk_token) {
        const std::int32_t* u = vocab_.find(m.unk_token->data(), m.unk_token->size());
        if (u) unk_id_ = *u;
      }
      if (byte_mode_) {
        for (unsigned b = 0; b < 256; ++b) {
          std::string ch;
          utf8::append(ch, detail::gpt2::byte_to_char()[b]);
          const std::int32_t* id = vocab_.find(ch.data(), ch.size());
          byte_ids_[b] = id ? *id : -1;
        }
      }
    } else {
      const auto& m = cfg_.unigram;
      if (m.vocab.empty()) bad_model("model.vocab is empty (expected at least the unk piece)");
      if (m.unk_id && *m.unk_id >= m.vocab.size())
        bad_model("model.unk_id " + std::to_string(*m.unk_id) + " is not below the vocabulary size " +
                  std::to_string(m.vocab.size()));
      vocab_.reserve(m.vocab.size());
      min_score_ = std::numeric_limits<double>::infinity();
      for (std::size_t id = 0; id < m.vocab.size(); ++id) {
        set_token(static_cast<std::int32_t>(id), m.vocab[id].first);
        vocab_.insert(m.vocab[id].first.data(), m.vocab[id].first.size(), static_cast<std::int32_t>(id));
        min_score_ = std::min(min_score_, m.vocab[id].second);
      }
      // token_to_ids keeps the last id of a repeated piece.
      for (std::size_t id = 0; id < m.vocab.size(); ++id)
        vocab_.insert(m.vocab[id].first.data(), m.vocab[id].first.size(), 0) = static_cast<std::int32_t>(id);
      trie_.build(m.vocab);
      unk_id_ = m.unk_id ? static_cast<std::int32_t>(*m.unk_id) : -1;
    }
    // Byte-fallback pieces.
    const bool fallback = cfg_.model == subword_config::model_kind::bpe ? cfg_.bpe.byte_fallback : cfg_.unigram.byte_fallback;
    for (unsigned b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      const std::int32_t* id = fallback ? vocab_.find(name, 6) : nullptr;
      fallback_ids_[b] = id ? *id : -1;
    }
    // Trim counts of vocabulary strings (leading / trailing 'Ġ' or whitespace chars).
    trim_.assign(id_to_token_.size(), {0, 0});
    if (cfg_.trim_offsets)
      for (std::size_t id = 0; id < id_to_token_.size(); ++id) trim_[id] = trim_counts(id_to_token_[id]);

    // Per-byte answers of each charsmap for ASCII chars.
    ascii_maps_.clear();
    for (const auto& n : cfg_.normalizers)
      if (n.type == subword_normalizer::kind::precompiled) {
        ascii_map am;
        for (unsigned c = 0; c < 128; ++c) {
          const char ch = static_cast<char>(c);
          std::string_view r;
          am.has[c] = n.charsmap->transform(std::string_view(&ch, 1), r);
          am.repl[c] = std::string(r);
        }
        ascii_maps_.emplace(n.charsmap.get(), std::move(am));
      }
    // Regex Replace normalizers compile once.
    regexes_.clear();
    for (const auto& n : cfg_.normalizers)
      if (n.type == subword_normalizer::kind::replace && n.regex && n.pattern != " {2,}") regexes_.push_back(compile(n.pattern));
    // Added tokens: ids as tokenizers assigns them (the model's id when the content is in the vocabulary,
    // else the next id after the vocabulary), normalized contents, matching tables.
    std::int32_t next_id = static_cast<std::int32_t>(cfg_.model == subword_config::model_kind::bpe ? cfg_.bpe.vocab.size()
                                                                                                  : cfg_.unigram.vocab.size());
    raw_added_.clear();
    norm_added_.clear();
    std::vector<std::string> seen;
    for (auto& a : cfg_.added_tokens) {
      if (a.content.empty() || std::find(seen.begin(), seen.end(), a.content) != seen.end()) continue;
      seen.push_back(a.content);
      const std::int32_t* in_vocab = vocab_.find(a.content.data(), a.content.size());
      a.id = in_vocab ? *in_vocab : next_id++;
      set_token(a.id, a.content);
      added_entry e{a.content, a.id, a.single_word, a.lstrip, a.rstrip};
      if (a.normalized) {
        segment x;
        x.s = a.content;
        x.al.assign(x.s.size(), {0, 0});
        segment tmp;
        std::vector<detail::sw::change> ch;
        normalize(x, tmp, ch);
        e.text = x.s;
        if (!e.text.empty()) norm_added_.push_back(std::move(e));
      } else {
        raw_added_.push_back(std::move(e));
      }
    }
    if (trim_.size() < id_to_token_.size()) trim_.resize(id_to_token_.size(), {0, 0});
    raw_first_.fill(0);
    norm_first_.fill(0);
    for (const auto& a : raw_added_) raw_first_[static_cast<unsigned char>(a.text[0])] = 1;
    for (const auto& a : norm_added_) norm_first_[static_cast<unsigned char>(a.text[0])] = 1;
    num_special_ = 0;
    for (const auto& p : cfg_.single_template)
      if (!p.is_sequence) num_special_ += p.ids.size();
    ascii_identity_ = true;
  }

  [[nodiscard]] static std::array<std::uint16_t, 2> trim_counts(std::string_view t) {
    auto is_trim = [](char32_t c) { return c == 0x120 || detail::bert_unicode::is_white_space(c); };
    std::vector<char32_t> cs;
    for (std::size_t i = 0; i < t.size();) {
      char32_t u = 0;
      const int n = utf8::decode(t.data() + i, t.data() + t.size(), u);
      if (n <= 0) break;
      cs.push_back(u);
      i += static_cast<std::size_t>(n);
    }
    std::uint16_t lead = 0, trail = 0;
    while (lead < cs.size() && is_trim(cs[lead])) ++lead;
    while (trail < cs.size() && is_trim(cs[cs.size() - 1 - trail])) ++trail;
    return {lead, trail};
  }

  struct pcre_deleter {
    void operator()(pcre2_code* c) const noexcept { pcre2_code_free(c); }
  };
  static std::shared_ptr<pcre2_code> compile(const std::string& pattern) {
    int err = 0;
    PCRE2_SIZE at = 0;
    pcre2_code* c = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                                  &err, &at, nullptr);
    if (!c)
      NERPIPE_THROW(model_error(errc::model_unsupported, "tokenizer.json: Replace regex '" + pattern +
                                                             "' does not compile with PCRE2 (at " + std::to_string(at) + ")"));
    return std::shared_ptr<pcre2_code>(c, pcre_deleter{});
  }

  // ---- normalizers ------------------------------------------------------------------------------

  void normalize(segment& x, segment& tmp, std::vector<detail::sw::change>& ch) const {
    std::size_t rx = 0;
    for (const auto& n : cfg_.normalizers) {
      if (x.s.empty()) return;
      switch (n.type) {
        case subword_normalizer::kind::precompiled: precompiled(*n.charsmap, x, tmp, ch); break;
        case subword_normalizer::kind::strip: strip(n.left, n.right, x); break;
        case subword_normalizer::kind::lowercase: lowercase(x, tmp, ch); break;
        case subword_normalizer::kind::prepend: prepend(n.content, x, tmp, ch); break;
        case subword_normalizer::kind::unicode: detail::sw::unicode_normalize(n.unicode_form, x, tmp, ch); break;
        case subword_normalizer::kind::replace:
          if (n.regex && n.pattern == " {2,}") replace_space_runs(n.content, x, tmp);
          else if (n.regex) replace_regex(*regexes_[rx++], n.content, x, tmp);
          else replace_literal(n.pattern, n.content, x, tmp);
          break;
      }
    }
  }

  void precompiled(const precompiled_charsmap& map, segment& x, segment& tmp, std::vector<detail::sw::change>& ch) const {
    // Fast check: nothing to do when no character has a mapping (tokenizers then leaves the string alone).
    ch.clear();
    bool modified = false;
    const std::string& s = x.s;
    auto replace = [&](std::size_t old_chars, std::string_view repl) {
      modified = true;
      std::size_t new_chars = 0;
      for (std::size_t i = 0; i < repl.size();) {
        char32_t u = 0;
        const int k = utf8::decode(repl.data() + i, repl.data() + repl.size(), u);
        if (k <= 0) break;
        ch.push_back({u, 0});
        ++new_chars;
        i += static_cast<std::size_t>(k);
      }
      const auto diff = static_cast<std::int64_t>(new_chars) - static_cast<std::int64_t>(old_chars);
      if (diff > 0) {
        for (std::size_t k = 0; k < static_cast<std::size_t>(diff); ++k) ch[ch.size() - 1 - k].d = 1;
      } else if (diff < 0 && !ch.empty()) {
        ch.back().d += static_cast<std::int32_t>(diff);
      }
    };
    // An ASCII char followed by an ASCII char other than '\n' is a grapheme of its own (only CR LF joins
    // two ASCII chars): the per-byte table answers for it.
    const auto& amap = ascii_maps_.at(&map);
    // Nothing to do for a prefix of such chars that map to nothing.
    std::size_t i = 0;
    while (i + 1 < s.size()) {
      const auto c = static_cast<unsigned char>(s[i]), d = static_cast<unsigned char>(s[i + 1]);
      if (c >= 0x80 || d >= 0x80 || (c == '\r' && d == '\n') || amap.has[c]) break;
      ++i;
    }
    if (i + 1 >= s.size() && i < s.size() && static_cast<unsigned char>(s[i]) < 0x80 && !amap.has[static_cast<unsigned char>(s[i])])
      return;  // all ASCII, nothing mapped
    for (std::size_t k = 0; k < i; ++k) ch.push_back({static_cast<char32_t>(s[k]), 0});
    utf8proc_int32_t state = 0;
    while (i < s.size()) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x80 && (i + 1 == s.size() || (static_cast<unsigned char>(s[i + 1]) < 0x80 && !(c == '\r' && s[i + 1] == '\n')))) {
        if (amap.has[c]) replace(1, amap.repl[c]);
        else ch.push_back({c, 0});
        state = 0;
        ++i;
        continue;
      }
      // One extended grapheme cluster [i, g).
      std::size_t g = i;
      char32_t prev = detail::sw::decode_at(s, g);
      std::size_t chars = 1;
      g += detail::sw::char_len(static_cast<unsigned char>(s[g]));
      while (g < s.size()) {
        const char32_t next = detail::sw::decode_at(s, g);
        if (utf8proc_grapheme_break_stateful(static_cast<utf8proc_int32_t>(prev), static_cast<utf8proc_int32_t>(next), &state))
          break;
        prev = next;
        ++chars;
        g += detail::sw::char_len(static_cast<unsigned char>(s[g]));
      }
      std::string_view repl;
      if (g - i < 6 && map.transform(std::string_view(s).substr(i, g - i), repl)) {
        replace(chars, repl);
      } else {
        for (std::size_t j = i; j < g;) {
          const std::size_t n = detail::sw::char_len(static_cast<unsigned char>(s[j]));
          if (map.transform(std::string_view(s).substr(j, n), repl)) replace(1, repl);
          else ch.push_back({detail::sw::decode_at(s, j), 0});
          j += n;
        }
      }
      i = g;
    }
    if (modified) detail::sw::transform(x, ch, 0, tmp);
  }

  static void strip(bool left, bool right, segment& x) {
    // Kept chars keep their alignments; stripped ones vanish (tokenizers' lrstrip).
    namespace bu = detail::bert_unicode;
    std::size_t b = 0, e = x.s.size();
    if (left)
      while (b < e) {
        const std::size_t n = detail::sw::char_len(static_cast<unsigned char>(x.s[b]));
        if (!bu::is_white_space(detail::sw::decode_at(x.s, b))) break;
        b += n;
      }
    if (right)
      while (e > b) {
        std::size_t k = e - 1;
        while (k > b && (static_cast<unsigned char>(x.s[k]) & 0xC0) == 0x80) --k;
        if (!bu::is_white_space(detail::sw::decode_at(x.s, k))) break;
        e = k;
      }
    if (b == 0 && e == x.s.size()) return;
    x.s = x.s.substr(b, e - b);
    x.al.erase(x.al.begin() + static_cast<std::ptrdiff_t>(e), x.al.end());
    x.al.erase(x.al.begin(), x.al.begin() + static_cast<std::ptrdiff_t>(b));
  }

  static void lowercase(segment& x, segment& tmp, std::vector<detail::sw::change>& ch) {
    bool ascii_lower = true;
    for (const char c : x.s)
      if ((c >= 'A' && c <= 'Z') || (static_cast<unsigned char>(c) & 0x80)) ascii_lower = false;
    if (ascii_lower) return;
    ch.clear();
    for (std::size_t i = 0; i < x.s.size();) {
      const char32_t u = detail::sw::decode_at(x.s, i);
      char32_t out[3];
      const int n = detail::bert_unicode::to_lower(u, out);
      for (int k = 0; k < n; ++k) ch.push_back({out[k], k > 0 ? 1 : 0});
      i += detail::sw::char_len(static_cast<unsigned char>(x.s[i]));
    }
    detail::sw::transform(x, ch, 0, tmp);
  }

  /// NormalizedString::prepend: the new chars and the old first char all take the first char's alignment.
  static void prepend(const std::string& what, segment& x, segment& tmp, std::vector<detail::sw::change>& ch) {
    if (x.s.empty()) return;
    const std::size_t first = detail::sw::char_len(static_cast<unsigned char>(x.s[0]));
    const detail::sw::align a = x.al[0];
    std::string head = what;
    head.append(x.s, 0, first);
    (void)ch;
    (void)tmp;
    x.s.replace(0, first, head);
    x.al.erase(x.al.begin(), x.al.begin() + static_cast<std::ptrdiff_t>(first));
    x.al.insert(x.al.begin(), head.size(), a);
  }

  /// NormalizedString::replace for match ranges: the content takes the alignment of the match's last byte.
  template <class Matches>
  static void replace_ranges(const std::string& content, segment& x, segment& tmp, Matches&& next_match) {
    tmp.s.clear();
    tmp.al.clear();
    tmp.ob = x.ob;
    std::size_t last = 0, b = 0, e = 0;
    bool any = false;
    while (next_match(last, b, e)) {
      any = true;
      tmp.s.append(x.s, last, b - last);
      tmp.al.insert(tmp.al.end(), x.al.begin() + static_cast<std::ptrdiff_t>(last), x.al.begin() + static_cast<std::ptrdiff_t>(b));
      const detail::sw::align a = e > 0 ? x.al[e - 1] : detail::sw::align{x.ob, x.ob};
      tmp.s += content;
      tmp.al.insert(tmp.al.end(), content.size(), a);
      last = e;
      if (e == b) {  // an empty match: step over one char to make progress
        if (last >= x.s.size()) break;
        const std::size_t n = detail::sw::char_len(static_cast<unsigned char>(x.s[last]));
        tmp.s.append(x.s, last, n);
        tmp.al.insert(tmp.al.end(), x.al.begin() + static_cast<std::ptrdiff_t>(last),
                      x.al.begin() + static_cast<std::ptrdiff_t>(last + n));
        last += n;
      }
    }
    if (!any) return;
    tmp.s.append(x.s, last, std::string::npos);
    tmp.al.insert(tmp.al.end(), x.al.begin() + static_cast<std::ptrdiff_t>(last), x.al.end());
    std::swap(x.s, tmp.s);
    std::swap(x.al, tmp.al);
  }

  static void replace_space_runs(const std::string& content, segment& x, segment& tmp) {
    replace_ranges(content, x, tmp, [&](std::size_t from, std::size_t& b, std::size_t& e) {
      for (std::size_t i = from; i + 1 < x.s.size(); ++i)
        if (x.s[i] == ' ' && x.s[i + 1] == ' ') {
          b = i;
          e = i + 2;
          while (e < x.s.size() && x.s[e] == ' ') ++e;
          return true;
        }
      return false;
    });
  }

  static void replace_literal(const std::string& pattern, const std::string& content, segment& x, segment& tmp) {
    if (pattern.empty()) return;
    replace_ranges(content, x, tmp, [&](std::size_t from, std::size_t& b, std::size_t& e) {
      const std::size_t at = x.s.find(pattern, from);
      if (at == std::string::npos) return false;
      b = at;
      e = at + pattern.size();
      return true;
    });
  }

  static void replace_regex(pcre2_code& code, const std::string& content, segment& x, segment& tmp) {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(&code, nullptr);
    std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> guard(md, pcre2_match_data_free);
    replace_ranges(content, x, tmp, [&](std::size_t from, std::size_t& b, std::size_t& e) {
      if (from > x.s.size()) return false;
      const int rc = pcre2_match(&code, reinterpret_cast<PCRE2_SPTR>(x.s.data()), x.s.size(), from, 0, md, nullptr);
      if (rc < 0) return false;
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      b = ov[0];
      e = ov[1];
      return true;
    });
  }

  // ---- pre-tokenizers ---------------------------------------------------------------------------

  /// Metaspace's replace(' ', ▁) then prepend, in one pass: each ▁ takes its space's alignment; a prepended ▁
  /// takes the first char's (NormalizedString::prepend).
  static void metaspace_rewrite(const subword_pre_tokenizer& p, segment& x, segment& tmp) {
    const std::string& rep = p.replacement;
    bool starts = false;
    if (!x.s.empty()) starts = x.s[0] == ' ' || x.s.compare(0, rep.size(), rep) == 0;
    const bool add = !x.s.empty() && !starts &&
                     (p.prepend_scheme == subword_pre_tokenizer::prepend::always ||
                      (p.prepend_scheme == subword_pre_tokenizer::prepend::first && x.ob == 0));
    const std::size_t spaces = static_cast<std::size_t>(std::count(x.s.begin(), x.s.end(), ' '));
    if (!add && spaces == 0) return;
    // Sized once, then written through pointers: one pass over the bytes.
    const std::size_t n = x.s.size() + spaces * (rep.size() - 1) + (add ? rep.size() : 0);
    tmp.s.resize(n);
    tmp.al.resize(n);
    tmp.ob = x.ob;
    char* out = tmp.s.data();
    detail::sw::align* oal = tmp.al.data();
    if (add) {
      for (std::size_t k = 0; k < rep.size(); ++k) {
        *out++ = rep[k];
        *oal++ = x.al[0];
      }
    }
    const char* in = x.s.data();
    const detail::sw::align* ial = x.al.data();
    for (std::size_t i = 0; i < x.s.size(); ++i) {
      if (in[i] == ' ') {
        for (std::size_t k = 0; k < rep.size(); ++k) {
          *out++ = rep[k];
          *oal++ = ial[i];
        }
      } else {
        *out++ = in[i];
        *oal++ = ial[i];
      }
    }
    std::swap(x.s, tmp.s);
    std::swap(x.al, tmp.al);
  }

  /// The spans of one pre-tokenizer's split on `cur` (after its rewrite), and their behaviour.
  detail::sw::behavior split_of(const subword_pre_tokenizer& p, const segment& cur, std::vector<detail::sw::span>& spans) const {
    using K = subword_pre_tokenizer::kind;
    switch (p.type) {
      case K::byte_level:
        if (p.use_regex) detail::sw::gpt2_spans(cur.s, spans);
        else {
          spans.clear();
          spans.push_back({0, static_cast<std::uint32_t>(cur.s.size()), false});
        }
        return detail::sw::behavior::isolated;
      case K::metaspace:
        if (p.split) {
          const std::string& rep = p.replacement;
          spans.clear();
          // Each replacement char is a match; runs of other chars are not (tokenizers' char pattern).
          std::uint32_t prev = 0;
          for (std::size_t i = cur.s.find(rep); i != std::string::npos; i = cur.s.find(rep, i + rep.size())) {
            if (prev != i) spans.push_back({prev, static_cast<std::uint32_t>(i), false});
            spans.push_back({static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(i + rep.size()), true});
            prev = static_cast<std::uint32_t>(i + rep.size());
          }
          if (prev != cur.s.size()) spans.push_back({prev, static_cast<std::uint32_t>(cur.s.size()), false});
        } else {
          spans.clear();
          spans.push_back({0, static_cast<std::uint32_t>(cur.s.size()), false});
        }
        return detail::sw::behavior::merged_with_next;
      case K::punctuation:
        detail::sw::char_spans(cur.s, [](char32_t c) { return detail::bert_unicode::is_bert_punctuation(c); }, spans);
        return detail::sw::behavior::isolated;
      case K::whitespace_split:
        detail::sw::char_spans(cur.s, [](char32_t c) { return detail::bert_unicode::is_white_space(c); }, spans);
        return detail::sw::behavior::removed;
    }
    return detail::sw::behavior::isolated;
  }

  /// Runs the pre-tokenizers on `x` (consumed); the resulting non-empty splits are views into the segments
  /// of `s.a` (s.views: segment index, [b, e)).
  void pre_tokenize(segment& x, detail::sw::scratch& s) const {
    using K = subword_pre_tokenizer::kind;
    s.a.clear();
    std::swap(s.a.push(), x);
    s.views.clear();
    const std::size_t steps = cfg_.pre_tokenizers.size();
    if (steps == 0) {
      if (!s.a.v[0].s.empty()) s.views.push_back({0, 0, static_cast<std::uint32_t>(s.a.v[0].s.size())});
      return;
    }
    for (std::size_t step = 0; step < steps; ++step) {
      const auto& p = cfg_.pre_tokenizers[step];
      const bool last = step + 1 == steps;
      s.b.clear();
      for (std::size_t k = 0; k < s.a.n; ++k) {
        segment& cur = s.a.v[k];
        if (p.type == K::byte_level && p.add_prefix_space && !cur.s.empty() && cur.s[0] != ' ')
          prepend(" ", cur, s.tmp, s.changes);
        if (p.type == K::metaspace) metaspace_rewrite(p, cur, s.tmp);
        const detail::sw::behavior how = split_of(p, cur, s.spans);
        if (!last) {
          detail::sw::split_spans(cur, s.spans, how, s.b);
          continue;
        }
        if (how == detail::sw::behavior::merged_with_next) detail::sw::merge_with_next(s.spans);
        for (const auto& sp : s.spans) {
          if (how == detail::sw::behavior::removed && sp.match) continue;
          if (sp.e > sp.b) s.views.push_back({static_cast<std::uint32_t>(k), sp.b, sp.e});
        }
      }
      if (!last) std::swap(s.a, s.b);
    }
  }

  // ---- models -----------------------------------------------------------------------------------

  struct merge_value {
    std::uint32_t rank = 0;
    std::int32_t id = -1;
  };

  /// Tokens of one word (from the per-thread cache when it was seen before) into s.word.
  void model_word(const char* p, std::size_t n, detail::sw::scratch& s) const {
    s.word.clear();
    const bool cacheable = n < 256;
    if (cacheable) {
      if (s.cache.owner != uid_) s.cache.reset(uid_);
      if (const auto* hit = s.cache.map.find(p, n)) {
        s.word.assign(s.cache.toks.begin() + hit->first, s.cache.toks.begin() + hit->first + hit->second);
        return;
      }
    }
    if (cfg_.model == subword_config::model_kind::bpe) bpe_word(p, n, s);
    else unigram_word(p, n, s);
    if (cacheable) {
      if (s.cache.map.size() > 200000 || s.cache.toks.size() > (std::size_t(1) << 22)) s.cache.reset(uid_);
      const auto first = static_cast<std::uint32_t>(s.cache.toks.size());
      s.cache.toks.insert(s.cache.toks.end(), s.word.begin(), s.word.end());
      s.cache.map.insert(p, n, {first, static_cast<std::uint32_t>(s.word.size())});
    }
  }

  void bpe_word(const char* p, std::size_t n, detail::sw::scratch& s) const {
    const auto& m = cfg_.bpe;
    std::string piece;
    if (m.ignore_merges) {  // the whole word, as the model sees it (byte-level: mapped), straight from the vocabulary
      if (byte_mode_)
        for (std::size_t i = 0; i < n; ++i) utf8::append(piece, detail::gpt2::byte_to_char()[static_cast<unsigned char>(p[i])]);
      const std::int32_t* id = byte_mode_ ? vocab_.find(piece.data(), piece.size()) : vocab_.find(p, n);
      if (id) {
        s.word.push_back({*id, 0, static_cast<std::uint32_t>(n)});
        return;
      }
    }
    auto& sym = s.symbols;
    sym.clear();
    auto add = [&](std::int32_t id, std::uint32_t len) {
      const auto k = static_cast<std::int32_t>(sym.size());
      if (!sym.empty()) sym.back().next = k;
      sym.push_back({id, k - 1, -1, len});
    };
    // tokenizers' BPE::merge_word: each char (with the continuing-subword prefix unless first and the
    // end-of-word suffix when last) is looked up; a miss becomes byte-fallback pieces (one per byte of that
    // string, length 1 each, the pending unk left pending) or an unk (fused with a pending one if fuse_unk).
    std::int32_t unk = -1;
    std::uint32_t unk_len = 0;
    const bool plain = m.continuing_subword_prefix.empty() && m.end_of_word_suffix.empty();
    for (std::size_t i = 0; i < n;) {
      const std::uint32_t len = byte_mode_ ? 1u : detail::sw::char_len(static_cast<unsigned char>(p[i]));
      std::int32_t id = -1;
      if (byte_mode_ && plain) {
        id = byte_ids_[static_cast<unsigned char>(p[i])];
      } else {
        piece.clear();
        if (i > 0) piece += m.continuing_subword_prefix;
        if (byte_mode_) utf8::append(piece, detail::gpt2::byte_to_char()[static_cast<unsigned char>(p[i])]);
        else piece.append(p + i, len);
        if (i + len == n) piece += m.end_of_word_suffix;
        const std::int32_t* f = vocab_.find(piece.data(), piece.size());
        id = f ? *f : -1;
      }
      if (id >= 0) {
        if (unk >= 0) {
          add(unk, unk_len);
          unk = -1;
        }
        add(id, len);
        i += len;
        continue;
      }
      if (m.byte_fallback && !byte_mode_) {
        bool all = true;
        for (const char b : piece) all = all && fallback_ids_[static_cast<unsigned char>(b)] >= 0;
        if (all) {
          for (const char b : piece) add(fallback_ids_[static_cast<unsigned char>(b)], 1);
          i += len;
          continue;
        }
      }
      if (m.unk_token) {
        if (unk_id_ < 0)
          NERPIPE_THROW(model_error(errc::model_file_malformed, "tokenizer.json: model.unk_token '" + *m.unk_token +
                                                                    "' is not in model.vocab but the text needs it"));
        if (unk >= 0 && m.fuse_unk) {
          unk_len += len;
        } else {
          if (unk >= 0) add(unk, unk_len);
          unk = unk_id_;
          unk_len = len;
        }
      }  // no unk token: the char is dropped
      i += len;
    }
    if (unk >= 0) add(unk, unk_len);
    merge_all(s);
    std::uint32_t pos = 0;
    for (const auto& x : sym) {
      if (x.len == 0) continue;
      s.word.push_back({x.c, pos, pos + x.len});
      pos += x.len;
    }
  }

  /// tokenizers' Word::merge_all: a min-heap of (rank, position), stale entries skipped.
  void merge_all(detail::sw::scratch& s) const {
    auto& sym = s.symbols;
    struct item {
      std::uint32_t rank;
      std::uint32_t pos;
      std::int32_t id;
      bool operator>(const item& o) const noexcept { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    thread_local std::vector<item> heap;
    heap.clear();
    auto lookup = [&](std::int32_t a, std::int32_t b) -> const merge_value* {
      const std::uint64_t key = (std::uint64_t(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
      return merges_.find(reinterpret_cast<const char*>(&key), sizeof key);
    };
    auto push = [&](item it) {
      heap.push_back(it);
      std::push_heap(heap.begin(), heap.end(), std::greater<>{});
    };
    for (std::size_t k = 0; k + 1 < sym.size(); ++k)
      if (const merge_value* mv = lookup(sym[k].c, sym[k + 1].c)) push({mv->rank, static_cast<std::uint32_t>(k), mv->id});
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
      const item top = heap.back();
      heap.pop_back();
      auto& cur = sym[top.pos];
      if (cur.len == 0 || cur.next == -1) continue;
      const auto next_pos = static_cast<std::size_t>(cur.next);
      const auto right = sym[next_pos];
      const merge_value* mv = lookup(cur.c, right.c);
      if (!mv || mv->id != top.id) continue;
      cur.c = top.id;
      cur.len += right.len;
      cur.next = right.next;
      sym[next_pos].len = 0;
      if (right.next > -1 && static_cast<std::size_t>(right.next) < sym.size()) sym[static_cast<std::size_t>(right.next)].prev = static_cast<std::int32_t>(top.pos);
      if (cur.prev >= 0) {
        const auto prev = static_cast<std::size_t>(cur.prev);
        if (const merge_value* pm = lookup(sym[prev].c, cur.c)) push({pm->rank, static_cast<std::uint32_t>(prev), pm->id});
      }
      if (cur.next >= 0 && static_cast<std::size_t>(cur.next) < sym.size())
        if (const merge_value* nm = lookup(cur.c, sym[static_cast<std::size_t>(cur.next)].c))
          push({nm->rank, top.pos, nm->id});
    }
  }

  /// tokenizers' Unigram::encode_optimized + tokenize (fused unks, byte fallback).
  void unigram_word(const char* p, std::size_t n, detail::sw::scratch& s) const {
    const double unk_score = min_score_ - 10.0;
    s.best_score.assign(n + 1, 0.0);
    s.best_start.assign(n + 1, -1);
    s.best_id.assign(n + 1, 0);
    for (std::size_t at = 0; at < n;) {
      const double here = s.best_score[at];
      const std::size_t mblen = detail::sw::char_len(static_cast<unsigned char>(p[at]));
      bool single = false;
      trie_.prefixes(p + at, p + n, [&](std::size_t len, std::int32_t id) {
        const std::size_t key = at + len;
        const double cand = cfg_.unigram.vocab[static_cast<std::size_t>(id)].second + here;
        if (s.best_start[key] < 0 || cand > s.best_score[key]) {
          s.best_score[key] = cand;
          s.best_start[key] = static_cast<std::int32_t>(at);
          s.best_id[key] = id;
        }
        if (len == mblen) single = true;
      });
      if (!single) {
        const std::size_t key = at + mblen;
        const double cand = unk_score + here;
        if (s.best_start[key] < 0 || cand > s.best_score[key]) {
          if (unk_id_ < 0)
            NERPIPE_THROW(model_error(errc::model_unsupported,
                                      "tokenizer.json: the Unigram model has no unk_id but the text needs an unknown piece"));
          s.best_score[key] = cand;
          s.best_start[key] = static_cast<std::int32_t>(at);
          s.best_id[key] = unk_id_;
        }
      }
      at += mblen;
    }
    // Backtrack, fusing runs of unk pieces.
    const std::size_t first = s.word.size();
    std::size_t end = n, unk_end = 0;
    bool in_unk = false;
    auto flush_unk = [&](std::size_t b) {
      s.word.push_back({-1, static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(unk_end)});
      in_unk = false;
    };
    std::size_t unk_begin = 0;
    while (end > 0) {
      const auto start = static_cast<std::size_t>(s.best_start[end]);
      const std::int32_t id = s.best_id[end];
      if (id == unk_id_) {
        if (!in_unk) {
          in_unk = true;
          unk_end = end;
        }
        unk_begin = start;
      } else {
        if (in_unk) flush_unk(unk_begin);
        s.word.push_back({id, static_cast<std::uint32_t>(start), static_cast<std::uint32_t>(end)});
      }
      end = start;
    }
    if (in_unk) flush_unk(unk_begin);
    std::reverse(s.word.begin() + static_cast<std::ptrdiff_t>(first), s.word.end());
    // Ids of fused strings (an unk run may spell a vocabulary piece), byte fallback, else unk.
    bool any_fallback = false;
    for (std::size_t k = first; k < s.word.size(); ++k) {
      auto& t = s.word[k];
      if (t.id >= 0) continue;
      const std::int32_t* f = vocab_.find(p + t.b, t.e - t.b);
      if (f) {
        t.id = *f;
        continue;
      }
      if (cfg_.unigram.byte_fallback) {
        bool all = true;
        for (std::uint32_t b = t.b; b < t.e && all; ++b) all = fallback_ids_[static_cast<unsigned char>(p[b])] >= 0;
        if (all) {
          t.id = -2;  // expanded below
          any_fallback = true;
          continue;
        }
      }
      t.id = unk_id_;
    }
    if (any_fallback) {
      std::vector<detail::sw::word_token> out(s.word.begin(), s.word.begin() + static_cast<std::ptrdiff_t>(first));
      for (std::size_t k = first; k < s.word.size(); ++k) {
        const auto t = s.word[k];
        if (t.id != -2) {
          out.push_back(t);
          continue;
        }
        for (std::uint32_t b = t.b; b < t.e; ++b) out.push_back({fallback_ids_[static_cast<unsigned char>(p[b])], t.b, t.e});
      }
      s.word.swap(out);
    }
  }

  // ---- the pass over one text -------------------------------------------------------------------

  struct added_entry {
    std::string text;
    std::int32_t id;
    bool single_word, lstrip, rstrip;
  };

  struct match {
    std::size_t b, e;
    std::int32_t id;
  };

  /// tokenizers' AddedVocabulary::find_matches (leftmost-longest; single_word, lstrip, rstrip).
  static void find_added(std::string_view s, const std::vector<added_entry>& tokens,
                         const std::array<std::uint8_t, 256>& first_bytes, std::vector<match>& out) {
    out.clear();
    if (tokens.empty() || s.empty()) return;
    namespace bu = detail::bert_unicode;
    std::size_t start_offset = 0;
    std::size_t i = 0;
    auto is_word = [](char32_t c) {
      // Rust regex \w: alphabetic, marks, decimal numbers, connector punctuation, join controls.
      if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
      if (c == 0x200C || c == 0x200D) return true;
      const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
      return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_ME) || cat == UTF8PROC_CATEGORY_ND ||
             cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_PC;
    };
    auto char_before = [&](std::size_t at) {
      std::size_t k = at - 1;
      while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
      char32_t u = 0;
      (void)utf8::decode(s.data() + k, s.data() + s.size(), u);
      return std::pair<char32_t, std::size_t>(u, k);
    };
    while (i < s.size()) {
      if (!first_bytes[static_cast<unsigned char>(s[i])]) {
        ++i;
        continue;
      }
      const added_entry* hit = nullptr;
      for (const auto& a : tokens)
        if (a.text.size() <= s.size() - i && std::memcmp(s.data() + i, a.text.data(), a.text.size()) == 0 &&
            (!hit || a.text.size() > hit->text.size()))
          hit = &a;
      if (!hit) {
        ++i;
        continue;
      }
      std::size_t b = i, e = i + hit->text.size();
      i = e;
      if (hit->single_word) {
        const bool start_space = b == 0 || !is_word(char_before(b).first);
        char32_t after = 0;
        if (e < s.size()) (void)utf8::decode(s.data() + e, s.data() + s.size(), after);
        const bool stop_space = e == s.size() || !is_word(after);
        if (!start_space || !stop_space) continue;
      }
      if (hit->lstrip) {
        std::size_t nb = b;
        while (nb > 0) {
          const auto [u, k] = char_before(nb);
          if (!bu::is_white_space(u)) break;
          nb = k;
        }
        b = std::max(nb, start_offset);
      }
      if (hit->rstrip) {  // the search itself goes on from the token's end, as aho-corasick's find_iter does
        while (e < s.size()) {
          char32_t u = 0;
          const int k = utf8::decode(s.data() + e, s.data() + s.size(), u);
          if (k <= 0 || !bu::is_white_space(u)) break;
          e += static_cast<std::size_t>(k);
        }
      }
      out.push_back({b, e, hit->id});
      start_offset = e;
    }
  }

  void push_raw(detail::sw::raw_tokens& r, std::int32_t id, std::uint32_t b, std::uint32_t e, std::int32_t word,
                std::array<std::uint16_t, 2> trim) const {
    r.ids.push_back(id);
    r.bytes.push_back({b, e});
    r.words.push_back(word);
    r.lead.push_back(trim[0]);
    r.trail.push_back(trim[1]);
  }

  void tokenize(std::string_view text, detail::sw::scratch& s) const {
    if (text.size() >= std::numeric_limits<std::uint32_t>::max())
      NERPIPE_THROW(input_error(errc::input_too_large, "subword_tokenizer: text of " + std::to_string(text.size()) +
                                                           " bytes (expected fewer than 2^32)"));
    const std::size_t bad = utf8::find_invalid(text);
    if (bad != std::string_view::npos)
      NERPIPE_THROW(input_error(errc::input_invalid_utf8, "subword_tokenizer: the text is not valid UTF-8 at byte " +
                                                              std::to_string(bad) + " (expected valid UTF-8)"));
    s.raw.clear();
    std::int32_t word = 0;
    thread_local std::vector<match> raw_matches;
    find_added(text, raw_added_, raw_first_, raw_matches);
    std::size_t at = 0;
    for (const match& m : raw_matches) {
      if (at < m.b) text_part(text, at, m.b, word, s);
      push_raw(s.raw, m.id, static_cast<std::uint32_t>(m.b), static_cast<std::uint32_t>(m.e), word++,
               cfg_.trim_offsets ? trim_counts(text.substr(m.b, m.e - m.b)) : std::array<std::uint16_t, 2>{0, 0});
      at = m.e;
    }
    if (at < text.size()) text_part(text, at, text.size(), word, s);
  }

  /// Normalizes text[b, e), splits on normalized added tokens, pre-tokenizes and runs the model.
  void text_part(std::string_view text, std::size_t b, std::size_t e, std::int32_t& word, detail::sw::scratch& s) const {
    segment& x = s.seg;
    x.s.assign(text.data() + b, e - b);
    x.al.resize(e - b);
    x.ob = static_cast<std::uint32_t>(b);
    detail::sw::align* al = x.al.data();
    for (std::size_t i = b; i < e;) {
      const auto c = static_cast<unsigned char>(text[i]);
      if (c < 0x80) {
        al[i - b] = {static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(i + 1)};
        ++i;
        continue;
      }
      const std::uint32_t n = detail::sw::char_len(c);
      const detail::sw::align a{static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(i + n)};
      for (std::uint32_t k = 0; k < n; ++k) al[i - b + k] = a;
      i += n;
    }
    normalize(x, s.tmp, s.changes);
    if (x.s.empty()) return;
    if (norm_added_.empty()) {
      model_part(x, word, s);
      return;
    }
    thread_local std::vector<match> ms;
    find_added(x.s, norm_added_, norm_first_, ms);
    if (ms.empty()) {
      model_part(x, word, s);
      return;
    }
    segment whole = x;  // model_part reuses s.seg's neighbours; keep our own copy
    segment part;
    std::size_t at = 0;
    for (const match& m : ms) {
      if (at < m.b) {
        detail::sw::slice(whole, at, m.b, part);
        model_part(part, word, s);
      }
      push_raw(s.raw, m.id, whole.al[m.b].b, whole.al[m.e - 1].e, word++,
               cfg_.trim_offsets ? trim_counts(std::string_view(whole.s).substr(m.b, m.e - m.b))
                                 : std::array<std::uint16_t, 2>{0, 0});
      at = m.e;
    }
    if (at < whole.s.size()) {
      detail::sw::slice(whole, at, whole.s.size(), part);
      model_part(part, word, s);
    }
  }

  void model_part(segment& x, std::int32_t& word, detail::sw::scratch& s) const {
    pre_tokenize(x, s);
    for (const auto& v : s.views) {
      const segment& w = s.a.v[v.seg];
      model_word(w.s.data() + v.b, v.e - v.b, s);
      const detail::sw::align* al = w.al.data() + v.b;
      const std::uint32_t len = v.e - v.b;
      for (const auto& t : s.word) {
        const auto id = static_cast<std::size_t>(t.id);
        const auto trim = id < trim_.size() ? trim_[id] : std::array<std::uint16_t, 2>{0, 0};
        // A range past the word (byte-fallback pieces of a prefixed char) has no alignment: tokenizers then
        // keeps the model's own offsets.
        if (t.e > len) push_raw(s.raw, t.id, t.b, t.e, word, trim);
        else push_raw(s.raw, t.id, al[t.b].b, al[t.e - 1].e, word, trim);
      }
      ++word;
    }
  }

  /// Char offsets, trimming and the template for raw tokens [b, e).
  void append_window(std::string_view text, const detail::sw::raw_tokens& r, const detail::sw::cp_map& m, std::size_t b,
                     std::size_t e, encoding& out) const {
    // byte -> code point (BytesToCharOffsetConverter) and back, from the text's map (m.build(text)).
    const bool ascii = m.ascii;
    auto to_cp = [&](token_offset o) -> token_offset {
      if (ascii || o.begin >= text.size()) return o;  // a start past the text is not converted
      const std::uint32_t cb = m.byte_to_cp[o.begin];
      std::uint32_t ce;
      if (o.end < text.size()) ce = m.byte_to_cp[o.end];
      else ce = m.byte_to_cp[text.size() - 1] + 1;
      return {cb, ce};
    };
    auto to_byte = [&](std::uint32_t cp) -> std::uint32_t {
      if (ascii) return cp;
      return cp < m.cp_to_byte.size() ? m.cp_to_byte[cp] : static_cast<std::uint32_t>(text.size());
    };
    const std::size_t total = (e - b) + num_special_;
    out.ids.reserve(total);
    auto add_seq = [&](std::int32_t type_id) {
      for (std::size_t k = b; k < e; ++k) {
        token_offset o = to_cp(r.bytes[k]);
        if (cfg_.trim_offsets && (r.lead[k] > 0 || r.trail[k] > 0)) {
          std::uint32_t lead = r.lead[k];
          const std::uint32_t trail = r.trail[k];
          if (lead > 0) {
            const bool is_first = k == b || o.begin == 0;
            if (is_first && cfg_.trim_add_prefix_space && lead == 1) lead = 0;
            o.begin = std::min(o.begin + lead, o.end);
          }
          if (trail > 0 && o.end >= trail) o.end = std::max(o.end - trail, o.begin);
        }
        out.ids.push_back(r.ids[k]);
        out.type_ids.push_back(type_id);
        out.offsets.push_back(o);
        const bool converted = ascii || r.bytes[k].begin < text.size();
        out.byte_offsets.push_back(converted ? token_offset{to_byte(o.begin), to_byte(o.end)} : r.bytes[k]);
        out.word_ids.push_back(r.words[k]);
        out.special_tokens_mask.push_back(0);
      }
    };
    if (cfg_.single_template.empty()) {
      add_seq(0);
      return;
    }
    for (const auto& p : cfg_.single_template) {
      if (p.is_sequence) {
        add_seq(p.type_id);
        continue;
      }
      for (const std::int32_t id : p.ids) {
        out.ids.push_back(id);
        out.type_ids.push_back(p.type_id);
        out.offsets.push_back({0, 0});
        out.byte_offsets.push_back({0, 0});
        out.word_ids.push_back(-1);
        out.special_tokens_mask.push_back(1);
      }
    }
  }

  subword_config cfg_;
  std::uint64_t uid_ = 0;
  detail::sw::string_map<std::int32_t> vocab_;
  detail::sw::string_map<merge_value> merges_;
  std::vector<std::string> id_to_token_;
  std::vector<std::array<std::uint16_t, 2>> trim_;
  std::array<std::int32_t, 256> byte_ids_{};
  std::array<std::int32_t, 256> fallback_ids_{};
  detail::sw::piece_trie trie_;
  double min_score_ = 0;
  std::int32_t unk_id_ = -1;
  bool byte_mode_ = false;
  bool ascii_identity_ = true;
  std::size_t num_special_ = 0;
  std::vector<added_entry> raw_added_, norm_added_;
  std::array<std::uint8_t, 256> raw_first_{}, norm_first_{};
  std::vector<std::shared_ptr<pcre2_code>> regexes_;
  struct ascii_map {
    std::array<bool, 128> has{};
    std::array<std::string, 128> repl;
  };
  std::map<const precompiled_charsmap*, ascii_map> ascii_maps_;
};

NERPIPE_NAMESPACE_END
