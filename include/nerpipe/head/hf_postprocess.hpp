// SPDX-License-Identifier: Apache-2.0
//! @file Host-only post-processing of transformers' TokenClassificationPipeline (4.57.6), step for step:
//! fp32 softmax, gather_pre_entities (is_subword), aggregation none/simple/first/average/max,
//! group_entities (B-/I- tags), ignore_labels after grouping, and aggregate_overlapping_entities
//! across the windows of one document. The "word" of an entity is convert_tokens_to_string of its tokens: the
//! tokenizer.json decoder (WordPiece, ByteLevel or Metaspace; hf_vocab_info says which), run as tokenizers
//! 0.22.2 runs it, twice for first / average / max (once per word, then over the words), as the pipeline does.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/model/hf/types.hpp>
#include <nerpipe/core/aggregation.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// One window of a document as the model saw it. Offsets are code points into the whole document
/// (special tokens have (0, 0) and special = 1); logits are [ids.size(), num_labels], row-major.
struct hf_chunk {
  std::span<const std::int32_t> ids;
  std::span<const std::size_t> starts, ends;
  std::span<const std::uint8_t> special;
  std::span<const float> logits;
};

/// One entity as the pipeline returns it. `grouped` says which key the pipeline uses for `label`:
/// "entity_group" (true) or "entity" (aggregation none, false, where `index` is also set).
struct hf_entity {
  std::string label;
  bool grouped = true;
  float score = 0.0f;
  std::int64_t index = -1;
  std::string word;
  std::size_t start = 0, end = 0;  ///< code points
};

namespace detail {
/// Byte position of every code point of `text`, plus text.size() at the end.
inline std::vector<std::size_t> code_point_bytes(std::string_view text) {
  std::vector<std::size_t> pos;
  pos.reserve(text.size() + 1);
  for (std::size_t i = 0; i < text.size(); ++i)
    if ((static_cast<unsigned char>(text[i]) & 0xC0u) != 0x80u) pos.push_back(i);
  pos.push_back(text.size());
  return pos;
}

/// Byte position of the code points [first, first + pos.size()) of a text that has `count` code points: the whole
/// text (first 0, code_point_bytes), or the stretch a few windows of a long document need.
struct cp_index {
  std::size_t first = 0, count = 0;
  std::vector<std::size_t> pos;
  [[nodiscard]] std::size_t operator[](std::size_t k) const noexcept { return pos[k - first]; }
};

inline std::size_t code_point_count(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0u) != 0x80u;
  return n;
}

/// The byte each character of the GPT-2 byte-to-unicode table stands for (-1: none), for code points < 324.
inline const std::array<std::int16_t, 324>& gpt2_char_bytes() {
  static const std::array<std::int16_t, 324> table = [] {
    std::array<std::int16_t, 324> t{};
    t.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      t[static_cast<std::size_t>(printable ? b : 256 + extra++)] = static_cast<std::int16_t>(b);
    }
    return t;
  }();
  return table;
}

/// Decodes one UTF-8 character at s[i] (valid input: the vocabulary's strings); returns its length.
inline std::size_t utf8_char_at(std::string_view s, std::size_t i, char32_t& cp) noexcept {
  const auto b = static_cast<unsigned char>(s[i]);
  const std::size_t n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
  cp = n == 1 ? b : n == 2 ? (b & 0x1Fu) : n == 3 ? (b & 0x0Fu) : (b & 0x07u);
  for (std::size_t k = 1; k < n && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3Fu);
  return std::min(n, s.size() - i);
}

/// Rust's String::from_utf8_lossy: every maximal invalid subsequence becomes one U+FFFD.
inline std::string utf8_lossy(std::string_view b) {
  std::string out;
  out.reserve(b.size());
  auto cont = [&](std::size_t k) { return k < b.size() && (static_cast<unsigned char>(b[k]) & 0xC0u) == 0x80u; };
  std::size_t i = 0;
  while (i < b.size()) {
    const auto c = static_cast<unsigned char>(b[i]);
    std::size_t n = 0;  // length of a valid sequence at i, 0 when invalid
    std::size_t bad = 1;  // bytes the invalid sequence spans
    if (c < 0x80) {
      n = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      if (cont(i + 1)) n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      const auto d = i + 1 < b.size() ? static_cast<unsigned char>(b[i + 1]) : 0;
      const bool ok2 = (c == 0xE0 && d >= 0xA0 && d <= 0xBF) || (c >= 0xE1 && c <= 0xEC && d >= 0x80 && d <= 0xBF) ||
                       (c == 0xED && d >= 0x80 && d <= 0x9F) || (c >= 0xEE && d >= 0x80 && d <= 0xBF);
      if (ok2 && i + 1 < b.size()) {
        if (cont(i + 2)) n = 3;
        else bad = 2;
      }
    } else if (c >= 0xF0 && c <= 0xF4) {
      const auto d = i + 1 < b.size() ? static_cast<unsigned char>(b[i + 1]) : 0;
      const bool ok2 = (c == 0xF0 && d >= 0x90 && d <= 0xBF) || (c >= 0xF1 && c <= 0xF3 && d >= 0x80 && d <= 0xBF) ||
                       (c == 0xF4 && d >= 0x80 && d <= 0x8F);
      if (ok2 && i + 1 < b.size()) {
        if (!cont(i + 2)) bad = 2;
        else if (!cont(i + 3)) bad = 3;
        else n = 4;
      }
    }
    if (n != 0) {
      out.append(b.substr(i, n));
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");
      i += bad;
    }
  }
  return out;
}

inline void wp_cleanup_replace(std::string& s, std::string_view from, std::string_view to) {
  // str::replace semantics: left to right, non-overlapping, no rescanning of the replacement.
  std::string out;
  std::size_t i = 0;
  while (true) {
    const std::size_t j = s.find(from, i);
    if (j == std::string::npos) break;
    out.append(s, i, j - i);
    out.append(to);
    i = j + from.size();
  }
  if (i == 0) return;
  out.append(s, i, std::string::npos);
  s = std::move(out);
}

/// numpy's float32 sum of a contiguous row: pairwise (8 accumulators) as in its reduction loop.
inline float numpy_sum(const float* a, std::size_t n) {
  if (n < 8) {
    float r = 0.0f;
    for (std::size_t i = 0; i < n; ++i) r += a[i];
    return r;
  }
  float r[8];
  for (int j = 0; j < 8; ++j) r[j] = a[j];
  std::size_t i = 8;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) r[j] += a[i + j];
  float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
  for (; i < n; ++i) res += a[i];
  return res;
}

/// numpy argmax: the first index of the largest value (NaN wins, as in numpy).
inline std::size_t first_argmax(const float* a, std::size_t n) {
  std::size_t best = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (std::isnan(a[i])) return i;
    if (a[i] > a[best]) best = i;
  }
  return best;
}

struct pre_entity {
  std::string_view word;  // into the vocabulary, or into the text for [UNK]
  const float* scores;
  std::size_t start, end;
  std::int64_t index;
  bool is_subword;
};

struct word_entity {
  std::size_t label;  // index into id2label
  float score;
  std::int64_t index;
  std::size_t first_token, last_token;  // the pre_entities of the word: [first_token, last_token]
  std::size_t start, end;
};
}  // namespace detail

/// TokenClassificationPipeline.postprocess for one document. Not thread-safe (keeps scratch).
class hf_postprocessor {
 public:
  hf_postprocessor(std::vector<std::string> id2label, const hf_vocab_info* vocab)
      : id2label_(std::move(id2label)), vocab_(vocab) {}

  [[nodiscard]] std::size_t num_labels() const noexcept { return id2label_.size(); }

  /// convert_tokens_to_string: the tokenizer's decoder over `tokens`.
  [[nodiscard]] std::string decode(std::span<const std::string_view> tokens) const { return decode_range(tokens); }
  [[nodiscard]] std::string decode(std::span<const std::string> tokens) const { return decode_range(tokens); }

  /// The pipeline's output for `text` split into `chunks` (one chunk: no overlap resolution).
  [[nodiscard]] std::vector<hf_entity> run(std::string_view text, std::span<const hf_chunk> chunks, aggregation strategy,
                                           std::span<const std::string> ignore_labels) const {
    detail::cp_index cps;
    cps.pos = detail::code_point_bytes(text);
    cps.count = cps.pos.size() - 1;
    std::vector<hf_entity> all;
    for (const auto& c : chunks) {
      auto ents = run_chunk(text, cps, c, strategy, ignore_labels);
      for (auto& e : ents) all.push_back(std::move(e));
    }
    if (chunks.size() > 1) all = aggregate_overlapping(std::move(all));
    return all;
  }

  /// The entities of one window before the merge of overlapping windows (run() is this for every window, then
  /// aggregate_overlapping when there are several). `cps` must cover the window's offsets, one code point either side.
  [[nodiscard]] std::vector<hf_entity> run_window(std::string_view text, const detail::cp_index& cps, const hf_chunk& c,
                                                  aggregation strategy, std::span<const std::string> ignore_labels) const {
    return run_chunk(text, cps, c, strategy, ignore_labels);
  }

  /// hf_entity -> nerpipe::entity (code-point and byte offsets, label, text = word, score).
  [[nodiscard]] static std::vector<entity> to_entities(std::string_view text, const std::vector<hf_entity>& ents) {
    const auto cps = detail::code_point_bytes(text);
    const std::size_t n = cps.size() - 1;
    std::vector<entity> out;
    out.reserve(ents.size());
    for (const auto& e : ents) {
      entity x;
      x.start = e.start;
      x.end = e.end;
      x.start_byte = cps[std::min(e.start, n)];
      x.end_byte = cps[std::min(e.end, n)];
      x.label = e.label;
      x.text = e.word;
      x.score = e.score;
      out.push_back(std::move(x));
    }
    return out;
  }

 private:
  template <class Range>
  std::string decode_range(const Range& tokens) const {
    switch (vocab_->decoder) {
      case hf_decoder_kind::wordpiece: return decode_wordpiece(tokens);
      case hf_decoder_kind::byte_level: return decode_byte_level(tokens);
      case hf_decoder_kind::metaspace: return decode_metaspace(tokens);
      case hf_decoder_kind::none: break;
    }
    std::string out;  // no decoder: " ".join(tokens)
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i != 0) out += ' ';
      out += std::string_view(tokens[i]);
    }
    return out;
  }

  /// decoders/wordpiece.rs: "##" stripped or " " prepended after the first token, then the cleanup rules.
  template <class Range>
  std::string decode_wordpiece(const Range& tokens) const {
    std::string out;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      std::string t(tokens[i]);
      if (i != 0) {
        if (!vocab_->decoder_prefix.empty() && t.starts_with(vocab_->decoder_prefix))
          t.erase(0, vocab_->decoder_prefix.size());
        else
          t.insert(t.begin(), ' ');
      }
      if (vocab_->decoder_cleanup) {
        detail::wp_cleanup_replace(t, " .", ".");
        detail::wp_cleanup_replace(t, " ?", "?");
        detail::wp_cleanup_replace(t, " !", "!");
        detail::wp_cleanup_replace(t, " ,", ",");
        detail::wp_cleanup_replace(t, " ' ", "'");
        detail::wp_cleanup_replace(t, " n't", "n't");
        detail::wp_cleanup_replace(t, " 'm", "'m");
        detail::wp_cleanup_replace(t, " do not", " don't");
        detail::wp_cleanup_replace(t, " 's", "'s");
        detail::wp_cleanup_replace(t, " 've", "'ve");
        detail::wp_cleanup_replace(t, " 're", "'re");
      }
      out += t;
    }
    return out;
  }

  /// pre_tokenizers/byte_level.rs (Decoder): each token's characters back to the bytes they stand for, or the
  /// token's own UTF-8 when any character stands for none (a space, an added token, an already decoded word);
  /// then the bytes of all tokens as lossy UTF-8. So decoding a decoded word again (first / average / max group
  /// their words that way) turns "é" into byte 0xE9 and then into U+FFFD, exactly as transformers does.
  template <class Range>
  std::string decode_byte_level(const Range& tokens) const {
    const auto& table = detail::gpt2_char_bytes();
    std::string bytes;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const std::string_view t(tokens[i]);
      const std::size_t mark = bytes.size();
      bool mapped = true;
      for (std::size_t k = 0; k < t.size() && mapped;) {
        char32_t cp = 0;
        k += detail::utf8_char_at(t, k, cp);
        if (cp < table.size() && table[cp] >= 0) bytes += static_cast<char>(table[cp]);
        else mapped = false;
      }
      if (!mapped) {
        bytes.resize(mark);
        bytes.append(t);
      }
    }
    return detail::utf8_lossy(bytes);
  }

  /// decoders/metaspace.rs: every replacement character becomes " ", except in the first token, where (with
  /// prepend_scheme always / first) every one of them is dropped.
  template <class Range>
  std::string decode_metaspace(const Range& tokens) const {
    const std::string& rep = vocab_->metaspace_replacement;
    std::string out;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const std::string_view t(tokens[i]);
      const bool drop = i == 0 && vocab_->metaspace_prepend;
      for (std::size_t k = 0; k < t.size();) {
        if (!rep.empty() && t.compare(k, rep.size(), rep) == 0) {
          if (!drop) out += ' ';
          k += rep.size();
        } else {
          out += t[k++];
        }
      }
    }
    return out;
  }

  static bool is_ignored(std::string_view label, std::span<const std::string> ignore_labels) {
    return std::find(ignore_labels.begin(), ignore_labels.end(), label) != ignore_labels.end();
  }

  /// One window. Entities whose label is in `ignore_labels` are dropped (the pipeline filters after
  /// grouping); they are recognised from their labels before any of their text is built, because
  /// those are most tokens ("O") and decoding their words would be most of the work.
  std::vector<hf_entity> run_chunk(std::string_view text, const detail::cp_index& cps, const hf_chunk& c,
                                   aggregation strategy, std::span<const std::string> ignore_labels) const {
    const std::size_t L = id2label_.size(), T = c.ids.size();
    const std::size_t n_cp = cps.count;
    // scores = exp(l - max) / sum(exp(l - max)), float32 as numpy computes it.
    scores_.resize(T * L);
    for (std::size_t t = 0; t < T; ++t) {
      const float* l = c.logits.data() + t * L;
      float* s = scores_.data() + t * L;
      float mx = l[0];
      for (std::size_t j = 1; j < L; ++j) mx = std::max(mx, l[j]);
      for (std::size_t j = 0; j < L; ++j) s[j] = std::exp(l[j] - mx);
      const float sum = detail::numpy_sum(s, L);
      for (std::size_t j = 0; j < L; ++j) s[j] = s[j] / sum;
    }

    // gather_pre_entities
    std::vector<detail::pre_entity> pre;
    pre.reserve(T);
    const bool real_words = !vocab_->continuing_subword_prefix.empty();
    for (std::size_t t = 0; t < T; ++t) {
      if (c.special[t]) continue;
      const std::int32_t id = c.ids[t];
      std::string_view word = (id >= 0 && static_cast<std::size_t>(id) < vocab_->id_to_token.size())
                                  ? std::string_view(vocab_->id_to_token[static_cast<std::size_t>(id)])
                                  : std::string_view();
      const std::size_t s = c.starts[t], e = c.ends[t];
      // Python slicing: sentence[s:e] clamps both ends and is empty when e <= s.
      const std::size_t cs = std::min(s, n_cp), ce = std::max(cs, std::min(e, n_cp));
      bool is_subword;
      if (real_words) {
        is_subword = detail::code_point_count(word) != ce - cs;
      } else {
        // start > 0 and " " not in sentence[start-1 : start+1]
        bool space = false;
        if (s > 0) {
          const std::size_t a = std::min(s - 1, n_cp), b = std::min(s + 1, n_cp);
          for (std::size_t k = a; k < b; ++k) space = space || (cps[k + 1] - cps[k] == 1 && text[cps[k]] == ' ');
        }
        is_subword = s > 0 && !space;
      }
      if (id == vocab_->unk_id) {
        word = text.substr(cps[cs], cps[ce] - cps[cs]);
        is_subword = false;
      }
      pre.push_back({word, scores_.data() + t * L, s, e, static_cast<std::int64_t>(t), is_subword});
    }

    // aggregate
    std::vector<detail::word_entity> ents;
    if (strategy == aggregation::none || strategy == aggregation::simple) {
      ents.reserve(pre.size());
      for (std::size_t i = 0; i < pre.size(); ++i) {
        const auto& p = pre[i];
        const std::size_t k = detail::first_argmax(p.scores, L);
        ents.push_back({k, p.scores[k], p.index, i, i, p.start, p.end});
      }
      if (strategy == aggregation::none) {
        std::vector<hf_entity> out;
        for (const auto& e : ents) {
          if (is_ignored(id2label_[e.label], ignore_labels)) continue;
          out.push_back({id2label_[e.label], false, e.score, e.index, std::string(pre[e.first_token].word), e.start, e.end});
        }
        return out;
      }
    } else {
      std::size_t i = 0;
      while (i < pre.size()) {
        std::size_t j = i + 1;
        while (j < pre.size() && pre[j].is_subword) ++j;
        ents.push_back(aggregate_word(pre, i, j, strategy));
        i = j;
      }
    }
    return group_entities(pre, ents, strategy, ignore_labels);
  }

  /// The word made of pre[first, last) (label and score by `strategy`; its text is built later, if kept).
  detail::word_entity aggregate_word(const std::vector<detail::pre_entity>& pre, std::size_t first, std::size_t last,
                                     aggregation strategy) const {
    const std::size_t L = id2label_.size();
    const std::span<const detail::pre_entity> g(pre.data() + first, last - first);
    detail::word_entity w{0, 0.0f, -1, first, last - 1, g.front().start, g.back().end};
    if (strategy == aggregation::first) {
      const std::size_t k = detail::first_argmax(g.front().scores, L);
      w.label = k;
      w.score = g.front().scores[k];
    } else if (strategy == aggregation::max) {
      // max(entities, key=scores.max()): the first entity with the largest max score.
      std::size_t best = 0;
      float best_v = -std::numeric_limits<float>::infinity();
      for (std::size_t i = 0; i < g.size(); ++i) {
        const float v = g[i].scores[detail::first_argmax(g[i].scores, L)];
        if (i == 0 || v > best_v) {
          best = i;
          best_v = v;
        }
      }
      const std::size_t k = detail::first_argmax(g[best].scores, L);
      w.label = k;
      w.score = g[best].scores[k];
    } else {
      // np.nanmean(stack, axis=0): float32 row-by-row sum divided by the (non-NaN) count.
      avg_.assign(L, 0.0f);
      for (std::size_t j = 0; j < L; ++j) {
        float tot = 0.0f;
        std::size_t cnt = 0;
        bool first_v = true;
        for (const auto& p : g) {
          const float v = p.scores[j];
          if (std::isnan(v)) continue;
          tot = first_v ? v : tot + v;
          first_v = false;
          ++cnt;
        }
        avg_[j] = cnt ? static_cast<float>(static_cast<double>(tot) / static_cast<double>(cnt))
                      : std::numeric_limits<float>::quiet_NaN();
      }
      const std::size_t k = detail::first_argmax(avg_.data(), L);
      w.label = k;
      w.score = avg_[k];
    }
    return w;
  }

  static std::pair<char, std::string_view> get_tag(std::string_view name) {
    if (name.starts_with("B-")) return {'B', name.substr(2)};
    if (name.starts_with("I-")) return {'I', name.substr(2)};
    return {'I', name};
  }

  /// The group's label as the pipeline names it: the first word's label after its first '-'.
  [[nodiscard]] std::string_view group_label(const detail::word_entity& first) const {
    const std::string_view name = id2label_[first.label];
    const std::size_t dash = name.find('-');
    return dash == std::string_view::npos ? name : name.substr(dash + 1);
  }

  hf_entity group_sub_entities(const std::vector<detail::pre_entity>& pre, std::span<const detail::word_entity> g,
                               aggregation strategy) const {
    hf_entity e;
    e.label = std::string(group_label(g.front()));
    e.grouped = true;
    std::vector<float> sc;
    std::vector<std::string_view> toks;
    std::vector<std::string> words;
    for (const auto& w : g) {
      if (!std::isnan(w.score)) sc.push_back(w.score);
      if (strategy == aggregation::simple) {
        toks.push_back(pre[w.first_token].word);  // a word is one token
      } else {
        // The word's text as aggregate_words builds it: its tokens decoded.
        std::vector<std::string_view> pieces;
        for (std::size_t t = w.first_token; t <= w.last_token; ++t) pieces.push_back(pre[t].word);
        words.push_back(decode(pieces));
      }
    }
    e.score = sc.empty() ? std::numeric_limits<float>::quiet_NaN()
                         : static_cast<float>(static_cast<double>(detail::numpy_sum(sc.data(), sc.size())) /
                                              static_cast<double>(sc.size()));
    e.word = strategy == aggregation::simple ? decode(toks) : decode(words);
    e.start = g.front().start;
    e.end = g.back().end;
    return e;
  }

  std::vector<hf_entity> group_entities(const std::vector<detail::pre_entity>& pre,
                                        const std::vector<detail::word_entity>& ents, aggregation strategy,
                                        std::span<const std::string> ignore_labels) const {
    std::vector<hf_entity> groups;
    std::size_t begin = 0;
    for (std::size_t i = 1; i <= ents.size(); ++i) {
      if (i < ents.size()) {
        const auto [bi, tag] = get_tag(id2label_[ents[i].label]);
        const auto [last_bi, last_tag] = get_tag(id2label_[ents[i - 1].label]);
        (void)last_bi;
        if (tag == last_tag && bi != 'B') continue;
      }
      if (begin < i && !is_ignored(group_label(ents[begin]), ignore_labels))
        groups.push_back(
            group_sub_entities(pre, std::span<const detail::word_entity>(ents.data() + begin, i - begin), strategy));
      begin = i;
    }
    return groups;
  }

  static std::vector<hf_entity> aggregate_overlapping(std::vector<hf_entity> ents) {
    if (ents.empty()) return ents;
    std::stable_sort(ents.begin(), ents.end(), [](const hf_entity& a, const hf_entity& b) { return a.start < b.start; });
    std::vector<hf_entity> out;
    std::size_t prev = 0;
    for (std::size_t i = 0; i < ents.size(); ++i) {
      const auto& e = ents[i];
      const auto& p = ents[prev];
      if (p.start <= e.start && e.start < p.end) {
        const auto cur_len = static_cast<std::int64_t>(e.end) - static_cast<std::int64_t>(e.start);
        const auto prev_len = static_cast<std::int64_t>(p.end) - static_cast<std::int64_t>(p.start);
        if (cur_len > prev_len || (cur_len == prev_len && e.score > p.score)) prev = i;
      } else {
        out.push_back(ents[prev]);
        prev = i;
      }
    }
    out.push_back(ents[prev]);
    return out;
  }

  std::vector<std::string> id2label_;
  const hf_vocab_info* vocab_;
  mutable std::vector<float> scores_, avg_;
};

/// aggregate_overlapping_entities run as the windows of a document arrive (hf_postprocessor::run merges them all
/// at once; this gives the same entities). The pipeline stable-sorts every window's entities by start and keeps
/// one of each run of overlapping ones. A window's entities start at or after its first character, so once the
/// windows before `bound` (the next window's first character) are in, the entities starting before `bound` are
/// all known, sort the same as in the whole list, and go through the sweep; only the rest wait.
class overlap_merger {
 public:
  void clear() {
    pending_.clear();
    held_ = false;
  }
  /// One window's entities, windows in order.
  void add(std::vector<hf_entity>&& window) {
    for (auto& e : window) pending_.push_back(std::move(e));
  }
  /// Passes every final entity to `emit` in output order: those starting before `bound` (all with `bound` unset,
  /// after the last window).
  template <class Emit>
  void settle(std::size_t bound, Emit&& emit) {
    std::stable_sort(pending_.begin(), pending_.end(), [](const hf_entity& a, const hf_entity& b) { return a.start < b.start; });
    std::size_t n = 0;
    for (; n < pending_.size() && pending_[n].start < bound; ++n) {
      hf_entity& e = pending_[n];
      if (!held_) {  // the reference compares the first entity with itself (an empty one comes out twice)
        prev_ = e;
        held_ = true;
      }
      if (prev_.start <= e.start && e.start < prev_.end) {
        const auto cur_len = static_cast<std::int64_t>(e.end) - static_cast<std::int64_t>(e.start);
        const auto prev_len = static_cast<std::int64_t>(prev_.end) - static_cast<std::int64_t>(prev_.start);
        if (cur_len > prev_len || (cur_len == prev_len && e.score > prev_.score)) prev_ = std::move(e);
      } else {
        emit(std::move(prev_));
        prev_ = std::move(e);
      }
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
    if (bound == std::numeric_limits<std::size_t>::max() && held_) {
      emit(std::move(prev_));
      held_ = false;
    }
  }
  /// After the last window.
  template <class Emit>
  void finish(Emit&& emit) {
    settle(std::numeric_limits<std::size_t>::max(), emit);
  }

 private:
  std::vector<hf_entity> pending_;
  hf_entity prev_;
  bool held_ = false;
};

NERPIPE_NAMESPACE_END
