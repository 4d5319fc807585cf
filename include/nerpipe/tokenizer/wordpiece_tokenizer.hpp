// SPDX-License-Identifier: Apache-2.0
//! @file Hugging Face WordPiece tokenization (BertNormalizer + BertPreTokenizer + WordPiece + template
//! post-processing), token for token and offset for offset identical to tokenizers 0.22.2 as
//! transformers 4.57.6 uses it, in one pass over the text.
//!
//! Invalid UTF-8 rule: Python cannot even build a `str` that is not valid UTF-8, so there is no
//! reference behaviour to copy. The caller is expected to validate (or repair) text first; `encode`
//! checks every multi-byte sequence anyway and throws `input_error(errc::input_invalid_utf8)` naming the
//! byte offset of the first ill-formed sequence. Texts of 2^32 bytes or more throw `input_too_large`.
//!
//! Known divergence (not seen in any fixture): with strip_accents, tokenizers runs NFD over the whole
//! string, which also sorts runs of combining marks into canonical order; nerpipe decomposes one code
//! point at a time and drops the Mn marks, so only the relative order of *surviving* combining marks can
//! differ: the 25 non-Mn code points with a non-zero combining class (e.g. U+1D165..U+1D172, U+302E,
//! some Mc viramas) when two of them follow each other out of canonical order.
//! Not supported (model_error at load): added tokens with normalized / lstrip / rstrip / single_word.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/utf8.hpp>
#include <nerpipe/tokenizer/unicode.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// A half-open [begin, end) range.
struct token_offset {
  std::uint32_t begin = 0, end = 0;
  friend bool operator==(const token_offset&, const token_offset&) = default;
};

/// What a tokenizer gives for one sequence, as `transformers` returns it (one row of a batch).
struct encoding {
  std::vector<std::int32_t> ids;
  std::vector<std::int32_t> type_ids;
  std::vector<token_offset> offsets;        ///< code points of the original text (Python str indices); (0,0) for specials
  std::vector<token_offset> byte_offsets;   ///< bytes of the original UTF-8 text; (0,0) for specials
  std::vector<std::int32_t> word_ids;       ///< pre-token index, -1 for tokens the post-processor added
  std::vector<std::uint8_t> special_tokens_mask;  ///< 1 for tokens the post-processor added

  [[nodiscard]] std::size_t size() const noexcept { return ids.size(); }
  void clear() noexcept {
    ids.clear();
    type_ids.clear();
    offsets.clear();
    byte_offsets.clear();
    word_ids.clear();
    special_tokens_mask.clear();
  }
};

/// BertNormalizer settings (tokenizer.json `normalizer`).
struct bert_normalizer_options {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  std::optional<bool> strip_accents;  ///< unset (JSON null) = follow `lowercase`
  bool lowercase = true;
};

/// A token of tokenizer.json `added_tokens` matched in the raw text before normalization.
struct added_token {
  std::string content;
  std::int32_t id = 0;
  bool special = false;
};

/// One element of the post-processor template for a single sequence.
struct template_piece {
  bool is_sequence = false;         ///< `$A`; otherwise a special token with `ids`
  std::vector<std::int32_t> ids;
  std::int32_t type_id = 0;
};

/// Everything a wordpiece_tokenizer is built from (what tokenizer.json says).
struct wordpiece_config {
  std::vector<std::pair<std::string, std::int32_t>> vocab;
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
  std::size_t max_input_chars_per_word = 100;
  std::optional<bert_normalizer_options> normalizer;  ///< unset: no normalizer
  bool bert_pre_tokenizer = true;                     ///< false: no pre-tokenizer (the whole text is one word)
  std::vector<added_token> added_tokens;              ///< only `normalized: false` tokens
  std::vector<template_piece> single_template;        ///< empty: no post-processor
};

namespace detail {

/// Loads 1..8 bytes as a little-endian word without reading past `p + n` (overlapping loads, no loop).
[[nodiscard]] inline std::uint64_t wp_load_tail(const char* p, std::size_t n) noexcept {
  std::uint64_t w = 0;
  if (n >= 4) {
    std::uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + n - 4, 4);
    w = lo | (std::uint64_t(hi) << (8 * (n - 4)));
  } else if (n > 0) {
    w = std::uint64_t(static_cast<unsigned char>(p[0])) | (std::uint64_t(static_cast<unsigned char>(p[n / 2])) << 8) |
        (std::uint64_t(static_cast<unsigned char>(p[n - 1])) << 16);
  }
  return w;
}

[[nodiscard]] inline std::uint64_t wp_hash(const char* p, std::size_t n) noexcept {
  std::uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
  while (n > 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  h = (h ^ wp_load_tail(p, n)) * 0x94D049BB133111EBull;
  h ^= h >> 32;
  h *= 0xD6E8FEB86659FD93ull;
  h ^= h >> 32;
  return h;
}

/// Byte equality of two strings of length `n`, inlined for the short strings vocabularies hold.
[[nodiscard]] inline bool wp_equal(const char* a, const char* b, std::size_t n) noexcept {
  while (n > 8) {
    std::uint64_t x, y;
    std::memcpy(&x, a, 8);
    std::memcpy(&y, b, 8);
    if (x != y) return false;
    a += 8;
    b += 8;
    n -= 8;
  }
  return wp_load_tail(a, n) == wp_load_tail(b, n);
}

/// Open-addressing string -> id table over one shared arena.
class piece_table {
 public:
  void build(const std::vector<std::pair<std::string_view, std::int32_t>>& entries, const std::string& arena_owner) {
    arena_ = arena_owner.data();
    std::size_t cap = 16;
    while (cap < entries.size() * 2) cap <<= 1;
    slots_.assign(cap, slot{});
    mask_ = cap - 1;
    for (const auto& [s, id] : entries) {
      const std::uint64_t h = wp_hash(s.data(), s.size());
      std::size_t i = h & mask_;
      while (slots_[i].id >= 0) {
        const slot& e = slots_[i];
        if (e.hash == h && e.len == s.size() && std::memcmp(arena_ + e.off, s.data(), s.size()) == 0) break;
        i = (i + 1) & mask_;
      }
      if (slots_[i].id < 0)  // a duplicate string keeps its first id
        slots_[i] = slot{h, static_cast<std::uint32_t>(s.data() - arena_), static_cast<std::uint32_t>(s.size()), id};
      max_len_ = std::max(max_len_, s.size());
    }
  }
  [[nodiscard]] std::int32_t find(const char* p, std::size_t n) const noexcept {
    const std::uint64_t h = wp_hash(p, n);
    std::size_t i = h & mask_;
    for (;;) {
      const slot& e = slots_[i];
      if (e.id < 0) return -1;
      if (e.hash == h && e.len == n && wp_equal(arena_ + e.off, p, n)) return e.id;
      i = (i + 1) & mask_;
    }
  }
  [[nodiscard]] std::size_t max_len() const noexcept { return max_len_; }

 private:
  struct slot {
    std::uint64_t hash = 0;
    std::uint32_t off = 0, len = 0;
    std::int32_t id = -1;
  };
  std::vector<slot> slots_;
  std::size_t mask_ = 0;
  std::size_t max_len_ = 0;
  const char* arena_ = nullptr;
};

/// The raw model tokens of one text (no post-processor tokens), struct of arrays.
struct wp_tokens {
  std::vector<std::int32_t> ids;
  std::vector<token_offset> cps, bytes;
  std::vector<std::int32_t> words;
  void clear() noexcept {
    ids.clear();
    cps.clear();
    bytes.clear();
    words.clear();
  }
};

/// Per-call scratch: the normalized bytes of the current word and, per normalized byte, the original
/// byte offset and code-point index of the character it came from.
struct wp_scratch {
  std::vector<char> buf;
  std::vector<std::uint32_t> src_byte, src_cp;
  std::size_t n = 0;       // bytes in the current word
  std::size_t chars = 0;   // characters in the current word
  wp_tokens raw;
};

/// Byte length of the UTF-8 sequence whose lead byte is `b` (valid input assumed).
[[nodiscard]] inline std::uint32_t lead_len(unsigned char b) noexcept {
  return b < 0x80 ? 1u : b < 0xE0 ? 2u : b < 0xF0 ? 3u : 4u;
}

[[nodiscard]] inline bool ascii_alnum(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/// The first byte at or after `from` where a long text may be cut for tokenizing in pieces: a space between two
/// ASCII letters or digits (no normalizer or pre-tokenizer nerpipe runs joins characters across it), or the end.
[[nodiscard]] inline std::size_t piece_cut(std::string_view text, std::size_t from) noexcept {
  for (std::size_t c = std::max<std::size_t>(from, 1); c + 1 < text.size(); ++c) {
    c = text.find(' ', c);
    if (c == std::string_view::npos || c + 1 >= text.size()) break;
    if (ascii_alnum(text[c - 1]) && ascii_alnum(text[c + 1])) return c;
  }
  return text.size();
}

}  // namespace detail

/// A loaded WordPiece tokenizer. Immutable after construction; `encode` may be called from many threads.
class wordpiece_tokenizer {
 public:
  explicit wordpiece_tokenizer(wordpiece_config cfg) : cfg_(std::move(cfg)) { build(); }

  wordpiece_tokenizer(const wordpiece_tokenizer& o) : cfg_(o.cfg_) { build(); }
  wordpiece_tokenizer& operator=(const wordpiece_tokenizer& o) {
    if (this != &o) {
      cfg_ = o.cfg_;
      build();
    }
    return *this;
  }
  wordpiece_tokenizer(wordpiece_tokenizer&&) noexcept = default;  // the tables point into *arena_, which does not move
  wordpiece_tokenizer& operator=(wordpiece_tokenizer&&) = default;

  /// `tokenizer(text)`: the whole text, post-processor tokens added, no truncation.
  [[nodiscard]] encoding encode(std::string_view text) const {
    encoding out;
    encode(text, out);
    return out;
  }

  /// As above, reusing `out`'s storage.
  void encode(std::string_view text, encoding& out) const {
    detail::wp_scratch& s = scratch();
    tokenize(text, s);
    out.clear();
    append_window(s.raw, 0, s.raw.ids.size(), out);
  }

  /// `tokenizer(text, truncation=True, max_length=max_length, stride=stride, return_overflowing_tokens=True)`:
  /// the first window and then the overflowing ones, in order. Each window holds at most
  /// `max_length - num_special_tokens()` model tokens; consecutive windows overlap by `stride` tokens.
  [[nodiscard]] std::vector<encoding> encode_windows(std::string_view text, std::size_t max_length,
                                                     std::size_t stride) const {
    std::vector<encoding> out;
    encode_windows(text, max_length, stride, out);
    return out;
  }

  void encode_windows(std::string_view text, std::size_t max_length, std::size_t stride,
                      std::vector<encoding>& out) const {
    const std::size_t w = window_tokens(max_length, stride);
    detail::wp_scratch& s = scratch();
    tokenize(text, s);
    const std::size_t n = s.raw.ids.size();
    std::size_t count = 0;
    auto next = [&]() -> encoding& {
      if (out.size() <= count) out.emplace_back();
      encoding& e = out[count++];
      e.clear();
      return e;
    };
    if (n <= w) {
      append_window(s.raw, 0, n, next());
    } else {
      // tokenizers' Encoding::truncate, direction right: starts 0, step, 2*step...; stop after the window reaching n.
      const std::size_t step = w - stride;
      for (std::size_t start = 0; start < n; start += step) {
        const std::size_t stop = std::min(start + w, n);
        append_window(s.raw, start, stop, next());
        if (stop == n) break;
      }
    }
    out.resize(count);
  }

  /// The state of a text cut into windows a few at a time (start_windows, next_window).
  struct window_state {
    std::string_view text;
    std::size_t w = 0, step = 0;  // model tokens of a window; distance between window starts
    std::size_t start = 0;        // raw index (whole text) of the next window
    std::size_t base = 0;         // raw index of raw.ids[0]
    std::size_t pos = 0;          // bytes of the text tokenized so far
    std::size_t piece_bytes = 0;
    std::uint32_t cp = 0;         // code points before `pos`
    std::int32_t words = 0;       // words before `pos`
    bool done = false;
    detail::wp_tokens raw;        // the tokens from `base` on
  };

  /// encode_windows' windows of `text` one at a time (next_window): the same windows, made as they are asked for.
  /// The text is tokenized in pieces of about `piece_bytes` (detail::piece_cut: the pieces' tokens are the whole
  /// text's), so only the tokens of a few windows are held however long the text is.
  void start_windows(std::string_view text, std::size_t max_length, std::size_t stride, window_state& st,
                     std::size_t piece_bytes = std::size_t{1} << 16) const {
    st.w = window_tokens(max_length, stride);
    st.step = st.w - stride;
    st.text = text;
    st.start = st.base = st.pos = 0;
    st.piece_bytes = std::max<std::size_t>(piece_bytes, 1);
    st.cp = 0;
    st.words = 0;
    st.done = false;
    st.raw.clear();
  }

  /// The next window of the text start_windows was given, into `out`; false when there is none left.
  bool next_window(window_state& st, encoding& out) const {
    if (st.done) return false;
    // One token past the window says whether it is the last.
    while (st.pos < st.text.size() && st.base + st.raw.ids.size() <= st.start + st.w) tokenize_piece(st);
    const std::size_t have = st.base + st.raw.ids.size();
    const std::size_t stop = std::min(st.start + st.w, have);
    out.clear();
    append_window(st.raw, st.start - st.base, stop - st.base, out);
    if (stop == have && st.pos >= st.text.size()) {
      st.done = true;
      return true;
    }
    st.start += st.step;
    // Drop the tokens no later window reaches (in bulk, so the buffer is not moved for every window).
    if (const std::size_t drop = st.start - st.base; drop > st.raw.ids.size() / 2) {
      const auto cut = [drop](auto& v) { v.erase(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(drop)); };
      cut(st.raw.ids), cut(st.raw.cps), cut(st.raw.bytes), cut(st.raw.words);
      st.base += drop;
    }
    return true;
  }

  /// The smallest code-point offset a token of a window after those handed out may have (tokens come in text
  /// order); SIZE_MAX when no window is left.
  [[nodiscard]] std::size_t window_floor(const window_state& st) const noexcept {
    if (st.done || st.start - st.base >= st.raw.ids.size()) return std::numeric_limits<std::size_t>::max();
    return st.raw.cps[st.start - st.base].begin;
  }

  /// Tokens the post-processor adds to one sequence (2 for BERT's [CLS] $A [SEP]).
  [[nodiscard]] std::size_t num_special_tokens() const noexcept { return num_special_; }
  /// The id of a vocabulary entry or added token, or -1.
  [[nodiscard]] std::int32_t token_to_id(std::string_view token) const noexcept {
    for (const auto& a : cfg_.added_tokens)
      if (a.content == token) return a.id;
    return start_.find(token.data(), token.size());
  }
  /// The string of an id (`convert_ids_to_tokens`), empty when unknown.
  [[nodiscard]] std::string_view id_to_token(std::int32_t id) const noexcept {
    if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size()) return {};
    return id_to_token_[static_cast<std::size_t>(id)];
  }
  [[nodiscard]] std::int32_t unk_id() const noexcept { return unk_id_; }
  [[nodiscard]] std::size_t vocab_size() const noexcept { return id_to_token_.size(); }
  [[nodiscard]] const wordpiece_config& config() const noexcept { return cfg_; }

 private:
  enum : std::uint8_t { act_keep = 0, act_drop = 1, act_split = 2, act_isolate = 3 };

  /// Model tokens of one window (max_length less the special tokens), after checking max_length and stride.
  [[nodiscard]] std::size_t window_tokens(std::size_t max_length, std::size_t stride) const {
    const std::size_t added = num_special_tokens();
    if (max_length <= added)
      NERPIPE_THROW(config_error(errc::config_invalid,
                                 "wordpiece_tokenizer: max_length " + std::to_string(max_length) +
                                     " leaves no room for text after the " + std::to_string(added) +
                                     " special tokens (expected max_length > " + std::to_string(added) + ")"));
    const std::size_t w = max_length - added;
    if (stride >= w)
      NERPIPE_THROW(config_error(errc::config_invalid,
                                 "wordpiece_tokenizer: stride " + std::to_string(stride) +
                                     " must be smaller than max_length minus the special tokens (" +
                                     std::to_string(w) + ")"));
    return w;
  }

  /// Tokenizes the next piece of st.text and appends its tokens with whole-text offsets and word indices.
  void tokenize_piece(window_state& st) const {
    // A piece can be cut only where no pre-token or added token spans the cut (see detail::piece_cut).
    const std::size_t end = pieces_ok_ ? detail::piece_cut(st.text, st.pos + st.piece_bytes) : st.text.size();
    const std::string_view piece = st.text.substr(st.pos, end - st.pos);
    detail::wp_scratch& s = scratch();
    tokenize(piece, s);
    const auto pos = static_cast<std::uint32_t>(st.pos);
    for (std::size_t k = 0; k < s.raw.ids.size(); ++k) {
      st.raw.ids.push_back(s.raw.ids[k]);
      st.raw.cps.push_back({s.raw.cps[k].begin + st.cp, s.raw.cps[k].end + st.cp});
      st.raw.bytes.push_back({s.raw.bytes[k].begin + pos, s.raw.bytes[k].end + pos});
      st.raw.words.push_back(s.raw.words[k] + st.words);
    }
    if (!s.raw.words.empty()) st.words += s.raw.words.back() + 1;
    st.cp += static_cast<std::uint32_t>(utf8::length(piece));
    st.pos = end;
  }

  static detail::wp_scratch& scratch() {
    thread_local detail::wp_scratch s;
    return s;
  }

  void build() {
    // One arena for every string; tables keep offsets into it.
    std::size_t total = 0;
    for (const auto& [tok, id] : cfg_.vocab) total += tok.size();
    for (const auto& a : cfg_.added_tokens) total += a.content.size();
    arena_ = std::make_unique<std::string>();
    std::string& arena = *arena_;
    arena.reserve(total);
    std::vector<std::pair<std::size_t, std::size_t>> spans;
    spans.reserve(cfg_.vocab.size());
    std::int32_t max_id = -1;
    for (const auto& [tok, id] : cfg_.vocab) {
      spans.emplace_back(arena.size(), tok.size());
      arena += tok;
      max_id = std::max(max_id, id);
    }
    std::vector<std::pair<std::size_t, std::size_t>> added_spans;
    for (const auto& a : cfg_.added_tokens) {
      added_spans.emplace_back(arena.size(), a.content.size());
      arena += a.content;
      max_id = std::max(max_id, a.id);
    }
    const std::size_t count = cfg_.vocab.size() + cfg_.added_tokens.size();
    bool negative = false;
    for (const auto& [tok, id] : cfg_.vocab) negative = negative || id < 0;
    for (const auto& a : cfg_.added_tokens) negative = negative || a.id < 0;
    if (negative || static_cast<std::size_t>(max_id) >= 2 * count + 1024)
      NERPIPE_THROW(model_error(errc::model_file_malformed,
                                "tokenizer.json: token ids range up to " + std::to_string(max_id) + " for " +
                                    std::to_string(count) + " tokens (expected ids in [0, about the token count))"));
    const std::string_view prefix = cfg_.continuing_subword_prefix;
    std::vector<std::pair<std::string_view, std::int32_t>> starts, conts;
    starts.reserve(cfg_.vocab.size());
    id_to_token_.assign(static_cast<std::size_t>(max_id + 1), std::string_view{});
    for (std::size_t k = 0; k < cfg_.vocab.size(); ++k) {
      const std::string_view sv(arena.data() + spans[k].first, spans[k].second);
      const std::int32_t id = cfg_.vocab[k].second;
      starts.emplace_back(sv, id);
      if (sv.size() >= prefix.size() && sv.substr(0, prefix.size()) == prefix && sv.size() > prefix.size())
        conts.emplace_back(sv.substr(prefix.size()), id);
      if (id >= 0) id_to_token_[static_cast<std::size_t>(id)] = sv;
    }
    for (std::size_t k = 0; k < cfg_.added_tokens.size(); ++k) {
      const std::string_view sv(arena.data() + added_spans[k].first, added_spans[k].second);
      if (cfg_.added_tokens[k].id >= 0) id_to_token_[static_cast<std::size_t>(cfg_.added_tokens[k].id)] = sv;
    }
    start_.build(starts, arena);
    cont_.build(conts, arena);
    unk_id_ = start_.find(cfg_.unk_token.data(), cfg_.unk_token.size());
    if (unk_id_ < 0)
      NERPIPE_THROW(model_error(errc::model_key_missing, "tokenizer.json: model.unk_token '" + cfg_.unk_token +
                                                             "' is not in model.vocab (expected a vocabulary entry)"));

    // Pieces cut at a space keep the whole text's tokens unless an added token holds a space or there is no
    // pre-tokenizer (the whole text one word).
    pieces_ok_ = cfg_.bert_pre_tokenizer;
    for (const auto& a : cfg_.added_tokens)
      if (a.content.find_first_of(" \t\n\r\f\v") != std::string::npos) pieces_ok_ = false;

    num_special_ = 0;
    for (const auto& p : cfg_.single_template)
      if (!p.is_sequence) num_special_ += p.ids.size();

    // Added tokens matched on the raw text: a first-byte filter, then leftmost-longest.
    added_first_.fill(0);
    added_.clear();
    for (std::size_t k = 0; k < cfg_.added_tokens.size(); ++k) {
      if (added_spans[k].second == 0) continue;
      added_.push_back({std::string_view(arena.data() + added_spans[k].first, added_spans[k].second),
                        cfg_.added_tokens[k].id});
      added_first_[static_cast<unsigned char>(arena[added_spans[k].first])] = 1;
    }
    std::sort(added_.begin(), added_.end(), [](const auto& a, const auto& b) { return a.text.size() > b.text.size(); });

    // Normalizer flags, and the per-byte action table of the ASCII fast path.
    const bool has_norm = cfg_.normalizer.has_value();
    clean_ = has_norm && cfg_.normalizer->clean_text;
    chinese_ = has_norm && cfg_.normalizer->handle_chinese_chars;
    lower_ = has_norm && cfg_.normalizer->lowercase;
    strip_ = has_norm && cfg_.normalizer->strip_accents.value_or(cfg_.normalizer->lowercase);
    for (unsigned c = 0; c < 128; ++c) {
      std::uint8_t act = act_keep;
      char mapped = static_cast<char>(c);
      if (clean_ && (c == 0 || detail::bert_unicode::is_bert_control(c))) {
        act = act_drop;
      } else {
        char32_t ch = c;
        if (clean_ && detail::bert_unicode::is_bert_whitespace(ch)) ch = ' ';
        if (lower_ && ch >= 'A' && ch <= 'Z') ch += 32;
        mapped = static_cast<char>(ch);
        if (cfg_.bert_pre_tokenizer) {
          if (detail::bert_unicode::is_white_space(ch)) act = act_split;
          else if (detail::bert_unicode::is_bert_punctuation(ch)) act = act_isolate;
        }
      }
      ascii_act_[c] = act;
      ascii_map_[c] = mapped;
    }
  }

  // ---- the single pass -------------------------------------------------------------------------

  void tokenize(std::string_view text, detail::wp_scratch& s) const {
    if (text.size() >= std::numeric_limits<std::uint32_t>::max())
      NERPIPE_THROW(input_error(errc::input_too_large, "wordpiece_tokenizer: text of " + std::to_string(text.size()) +
                                                           " bytes (expected fewer than 2^32)"));
    s.raw.clear();
    if (s.buf.size() < 64) {
      s.buf.resize(64);
      s.src_byte.resize(64);
      s.src_cp.resize(64);
    }
    s.n = 0;
    s.chars = 0;
    std::int32_t word = 0;
    const char* const base = text.data();
    const std::size_t n = text.size();
    std::size_t i = 0;
    std::uint32_t cp = 0;
    const bool has_added = !added_.empty();
    while (i < n) {
      const auto c = static_cast<unsigned char>(base[i]);
      if (has_added && added_first_[c]) {
        std::size_t len = 0;
        std::int32_t id = -1;
        for (const auto& a : added_) {  // longest first: the first hit at this position is the longest
          if (a.text.size() <= n - i && std::memcmp(base + i, a.text.data(), a.text.size()) == 0) {
            len = a.text.size();
            id = a.id;
            break;
          }
        }
        if (id >= 0) {
          flush(s, base, word);
          const auto cps = static_cast<std::uint32_t>(utf8::length(std::string_view(base + i, len)));
          push_token(s.raw, id, cp, cp + cps, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(i + len),
                     word++);
          i += len;
          cp += cps;
          continue;
        }
      }
      if (c < 0x80) {
        switch (ascii_act_[c]) {
          case act_keep:
            push_byte(s, ascii_map_[c], static_cast<std::uint32_t>(i), cp);
            ++s.chars;
            break;
          case act_drop:
            break;
          case act_split:
            flush(s, base, word);
            break;
          default:  // act_isolate
            flush(s, base, word);
            push_byte(s, ascii_map_[c], static_cast<std::uint32_t>(i), cp);
            ++s.chars;
            flush(s, base, word);
            break;
        }
        ++i;
        ++cp;
        continue;
      }
      char32_t u;
      const int len = utf8::decode(base + i, base + n, u);
      if (len == 0)
        NERPIPE_THROW(input_error(errc::input_invalid_utf8, "wordpiece_tokenizer: the text is not valid UTF-8 at byte " +
                                                                std::to_string(i) + " (expected valid UTF-8)"));
      non_ascii(s, base, word, u, static_cast<std::uint32_t>(i), cp);
      i += static_cast<std::size_t>(len);
      ++cp;
    }
    flush(s, base, word);
  }

  /// BertNormalizer then BertPreTokenizer on one non-ASCII code point of the original text.
  void non_ascii(detail::wp_scratch& s, const char* base, std::int32_t& word, char32_t u, std::uint32_t at,
                 std::uint32_t cp) const {
    namespace bu = detail::bert_unicode;
    char32_t chars[12];
    int m = 1;
    chars[0] = u;
    if (clean_) {
      if (u == 0xFFFD || bu::is_bert_control(u)) return;
      if (bu::is_bert_whitespace(u)) chars[0] = ' ';
    }
    const bool cjk = chinese_ && bu::is_cjk(u);
    if (strip_ && chars[0] != ' ') {
      char32_t d[4];
      const int k = bu::nfd(chars[0], d);
      m = 0;
      for (int j = 0; j < k; ++j)
        if (!bu::is_nonspacing_mark(d[j])) chars[m++] = d[j];
    }
    if (lower_) {
      char32_t tmp[12];
      int t = 0;
      for (int j = 0; j < m; ++j) t += bu::to_lower(chars[j], tmp + t);
      std::copy(tmp, tmp + t, chars);
      m = t;
    }
    if (cjk) flush(s, base, word);  // the spaces handle_chinese_chars puts around it
    for (int j = 0; j < m; ++j) {
      const char32_t ch = chars[j];
      if (cfg_.bert_pre_tokenizer && bu::is_white_space(ch)) {
        flush(s, base, word);
      } else if (cfg_.bert_pre_tokenizer && bu::is_bert_punctuation(ch)) {
        flush(s, base, word);
        push_char(s, ch, at, cp);
        flush(s, base, word);
      } else {
        push_char(s, ch, at, cp);
      }
    }
    if (cjk) flush(s, base, word);
  }

  static void grow(detail::wp_scratch& s, std::size_t need) {
    if (need <= s.buf.size()) return;
    const std::size_t cap = std::max(need, s.buf.size() * 2);
    s.buf.resize(cap);
    s.src_byte.resize(cap);
    s.src_cp.resize(cap);
  }
  static void push_byte(detail::wp_scratch& s, char b, std::uint32_t at, std::uint32_t cp) {
    grow(s, s.n + 1);
    s.buf[s.n] = b;
    s.src_byte[s.n] = at;
    s.src_cp[s.n] = cp;
    ++s.n;
  }
  static void push_char(detail::wp_scratch& s, char32_t ch, std::uint32_t at, std::uint32_t cp) {
    char enc[4];
    const int k = utf8::encode(ch, enc);
    grow(s, s.n + 4);
    for (int j = 0; j < k; ++j) {
      s.buf[s.n] = enc[j];
      s.src_byte[s.n] = at;
      s.src_cp[s.n] = cp;
      ++s.n;
    }
    ++s.chars;
  }

  static void push_token(detail::wp_tokens& t, std::int32_t id, std::uint32_t cb, std::uint32_t ce, std::uint32_t bb,
                         std::uint32_t be, std::int32_t word) {
    t.ids.push_back(id);
    t.cps.push_back({cb, ce});
    t.bytes.push_back({bb, be});
    t.words.push_back(word);
  }

  /// Emits the token for normalized bytes [b, e) of the current word.
  static void emit(detail::wp_scratch& s, const char* base, std::int32_t id, std::size_t b, std::size_t e,
                   std::int32_t word) {
    const std::uint32_t last = s.src_byte[e - 1];
    push_token(s.raw, id, s.src_cp[b], s.src_cp[e - 1] + 1, s.src_byte[b],
               last + detail::lead_len(static_cast<unsigned char>(base[last])), word);
  }

  /// WordPiece on the current word (greedy longest-match-first), then starts a new word.
  void flush(detail::wp_scratch& s, const char* base, std::int32_t& word) const {
    const std::size_t n = s.n;
    if (n == 0) return;
    const char* w = s.buf.data();
    const std::size_t first = s.raw.ids.size();
    bool ok = s.chars <= cfg_.max_input_chars_per_word;
    std::size_t start = 0;
    while (ok && start < n) {
      const detail::piece_table& table = start == 0 ? start_ : cont_;
      std::size_t end = std::min(n, start + table.max_len());
      while (end > start && end < n && (static_cast<unsigned char>(w[end]) & 0xC0) == 0x80) --end;
      std::int32_t id = -1;
      while (end > start) {
        id = table.find(w + start, end - start);
        if (id >= 0) break;
        --end;
        while (end > start && (static_cast<unsigned char>(w[end]) & 0xC0) == 0x80) --end;
      }
      if (id < 0) {
        ok = false;
        break;
      }
      emit(s, base, id, start, end, word);
      start = end;
    }
    if (!ok) {
      s.raw.ids.resize(first);
      s.raw.cps.resize(first);
      s.raw.bytes.resize(first);
      s.raw.words.resize(first);
      emit(s, base, unk_id_, 0, n, word);
    }
    ++word;
    s.n = 0;
    s.chars = 0;
  }

  /// Post-processes raw tokens [b, e) into `out` with the single-sequence template.
  void append_window(const detail::wp_tokens& t, std::size_t b, std::size_t e, encoding& out) const {
    const std::size_t total = (e - b) + num_special_;
    out.ids.reserve(total);
    out.type_ids.reserve(total);
    out.offsets.reserve(total);
    out.byte_offsets.reserve(total);
    out.word_ids.reserve(total);
    out.special_tokens_mask.reserve(total);
    auto add_seq = [&](std::int32_t type_id) {
      out.ids.insert(out.ids.end(), t.ids.begin() + b, t.ids.begin() + e);
      out.offsets.insert(out.offsets.end(), t.cps.begin() + b, t.cps.begin() + e);
      out.byte_offsets.insert(out.byte_offsets.end(), t.bytes.begin() + b, t.bytes.begin() + e);
      out.word_ids.insert(out.word_ids.end(), t.words.begin() + b, t.words.begin() + e);
      out.type_ids.insert(out.type_ids.end(), e - b, type_id);
      out.special_tokens_mask.insert(out.special_tokens_mask.end(), e - b, std::uint8_t{0});
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

  struct added_entry {
    std::string_view text;
    std::int32_t id;
  };

  wordpiece_config cfg_;
  std::unique_ptr<std::string> arena_;  // every vocabulary string; the tables and views point into it
  std::vector<std::string_view> id_to_token_;
  detail::piece_table start_, cont_;
  std::int32_t unk_id_ = -1;
  std::size_t num_special_ = 0;
  std::vector<added_entry> added_;
  std::array<std::uint8_t, 256> added_first_{};
  std::array<std::uint8_t, 128> ascii_act_{};
  std::array<char, 128> ascii_map_{};
  bool clean_ = false, chinese_ = false, lower_ = false, strip_ = false;
  bool pieces_ok_ = true;  // start_windows may tokenize a long text in pieces
};

NERPIPE_NAMESPACE_END
