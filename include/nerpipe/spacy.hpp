// SPDX-License-Identifier: Apache-2.0
//! @file The spaCy NER family: load a spaCy 3.x pipeline directory, run tokenizer (host) + NER (on the policy) + merge_entities.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/cpu/spacy_ops.hpp>
#include <nerpipe/embedding/multi_hash_embed.hpp>
#include <nerpipe/encoder/maxout_window_encoder.hpp>
#include <nerpipe/head/transition_ner.hpp>
#include <nerpipe/merge/merge_entities.hpp>
#include <nerpipe/policy/memory_space.hpp>
#include <nerpipe/model/spacy/loader.hpp>
#include <nerpipe/tokenizer/spacy_tokenizer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// Seconds spent per stage of spacy_ner (accumulated while attached with spacy_ner::stage_times()).
/// Measuring synchronises the policy after each stage, so it costs overlap on a device.
struct spacy_stage_times {
  double tokenize = 0;  ///< tokenizer and lexeme attributes (host)
  double embed = 0;     ///< multi_hash_embed (upload of the features included)
  double encode = 0;    ///< maxout_window_encoder
  double decode = 0;    ///< transition_ner: projection, precomputed lower layer, decode, download
  std::size_t tokens = 0;
  [[nodiscard]] double total() const noexcept { return tokenize + embed + encode + decode; }
};

/// spaCy's NER-only pipeline (`spacy.load(dir, exclude=[everything but "ner"])`):
/// spacy_tokenizer -> multi_hash_embed -> maxout_window_encoder -> transition_ner, on `Policy`.
///
///     auto model = nerpipe::load_spacy_model("models/en_core_web_sm-3.8.0");
///     nerpipe::spacy_ner<nerpipe::cpu_policy> nlp(nerpipe::cpu_policy{}, model);
///     for (const auto& doc : nlp(texts))                      // std::span<const std::string_view>
///       std::cout << nerpipe::merged_text(doc.text, doc.tokens, doc.entities) << '\n';
/// One object is not meant to be called from several threads at once (it keeps a lexeme cache,
/// like spaCy's Vocab); give each thread its own.
template <class Policy>
class spacy_ner {
 public:
  spacy_ner(Policy policy, const spacy_model& model)
      : policy_(std::move(policy)),
        tokenizer_(model),
        embed_(policy_, model.ner),
        encoder_(policy_, model.ner),
        head_(policy_, model),
        labels_(model.labels),
        attrs_() {
    for (const auto& t : model.ner.embeds) {
      attrs_.push_back(t.attr);
      attr_kinds_.push_back(t.attr == "NORM" ? attr_kind::norm : t.attr == "PREFIX" ? attr_kind::prefix
                                                             : t.attr == "SUFFIX" ? attr_kind::suffix
                                                                                  : attr_kind::shape);
    }
    if (model.ner.has_static_vectors)
      key2row_copy_ = std::make_shared<const std::unordered_map<std::uint64_t, std::int64_t>>(model.ner.vectors.key2row);
  }

  [[nodiscard]] const spacy_tokenizer& tokenizer() const noexcept { return tokenizer_; }
  [[nodiscard]] const std::vector<std::string>& labels() const noexcept { return labels_; }
  [[nodiscard]] const Policy& policy() const noexcept { return policy_; }

  /// Accumulates per-stage times into `t` from now on (nullptr: stop). For benchmarks.
  void stage_times(spacy_stage_times* t) noexcept { times_ = t; }
  /// Appends every later batch's tok2vec output (tokens x width floats, in document order) to `sink`
  /// (nullptr: stop). For tests that compare policies.
  void capture_tokvecs(std::vector<float>* sink) noexcept { tokvec_sink_ = sink; }
  [[nodiscard]] std::size_t width() const noexcept { return embed_.width(); }

  /// Longest text in characters (code points) that is processed; spaCy's nlp.max_length (1,000,000).
  [[nodiscard]] std::size_t max_length() const noexcept { return max_length_; }
  void max_length(std::size_t n) noexcept { max_length_ = n; }

  /// Runs the pipeline on a batch of UTF-8 texts; one document per text, in order. A text that is
  /// not valid UTF-8 gives a document with status invalid_utf8 and no tokens.
  [[nodiscard]] std::vector<document> operator()(std::span<const std::string_view> texts) {
    std::vector<document> docs(texts.size());
    std::vector<std::vector<spacy::raw_token>> raw(texts.size());
    std::vector<std::size_t> lengths(texts.size(), 0);
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t d = 0; d < texts.size(); ++d) {
      docs[d].index = d;
      docs[d].text = std::string(texts[d]);
      if (!spacy::detail::valid_utf8(texts[d])) {
        docs[d].status = record_status::invalid_utf8;
        docs[d].error = "text is not valid UTF-8";
        continue;
      }
      if (const auto n = spacy::detail::cp_count(texts[d]); n > max_length_) {
        // spaCy raises E088 for such a text; here only this record fails.
        docs[d].status = record_status::too_large;
        docs[d].error = "text has " + std::to_string(n) + " characters, more than max_length " + std::to_string(max_length_) +
                        " (spaCy's nlp.max_length)";
        continue;
      }
      try {
        tokenizer_.tokenize(texts[d], raw[d]);
      } catch (const error& e) {  // e.g. a PCRE2 resource limit on a pathological text: only this record fails
        raw[d].clear();
        docs[d].status = record_status::failed;
        docs[d].error = e.what();
        continue;
      }
      lengths[d] = raw[d].size();
    }
    if (times_ != nullptr) times_->tokenize += seconds_since(t0);
    // Features, in batches of bounded size so memory stays flat on long inputs. On the host, 2048 tokens keep
    // each layer's GEMM input and output (2048 x 288 floats, 2.4 MB each) close to the core's L2 while the GEMMs
    // stay large: measured 98 K words/s per CPU-second on one thread against 90 K with 16384 (EWT, sm).
    // A device wants large batches (launches and the per-step decode are amortised over more documents);
    // 65536 tokens take about 0.4 GB of device memory.
    constexpr std::size_t max_tokens = can_access<Policy, host_space> ? 2048 : 65536;
    std::size_t first = 0;
    while (first < texts.size()) {
      std::size_t last = first, tokens = 0;
      while (last < texts.size() && (last == first || tokens + lengths[last] <= max_tokens)) tokens += lengths[last++];
      run_batch(texts, raw, lengths, first, last, tokens, docs);
      first = last;
    }
    return docs;
  }

  /// Convenience for one text.
  [[nodiscard]] document operator()(std::string_view text) {
    auto docs = (*this)(std::span<const std::string_view>(&text, 1));
    return std::move(docs.front());
  }

 private:
  struct lex_entry {
    spacy::lexeme_attrs attrs;
    std::int64_t vec_row = -1;
  };

  const lex_entry& lexeme(std::string_view orth) {
    auto it = lex_cache_.find(orth);
    if (it != lex_cache_.end()) return it->second;
    lex_entry e;
    e.attrs = tokenizer_.lexeme(orth);
    if (key2row_copy_) {
      auto r = key2row_copy_->find(spacy::string_id(orth));
      if (r != key2row_copy_->end()) e.vec_row = r->second;
    }
    return lex_cache_.emplace(std::string(orth), e).first->second;
  }

  void run_batch(std::span<const std::string_view> texts, const std::vector<std::vector<spacy::raw_token>>& raw,
                 std::span<const std::size_t> lengths, std::size_t first, std::size_t last, std::size_t n_tokens,
                 std::vector<document>& docs) {
    const std::size_t na = attrs_.size();
    std::vector<std::uint64_t> feats(n_tokens * na);
    std::vector<std::int64_t> vec_rows(key2row_copy_ ? n_tokens : 0);
    std::vector<char> is_space(n_tokens);
    const auto t0 = std::chrono::steady_clock::now();
    std::size_t t = 0;
    for (std::size_t d = first; d < last; ++d) {
      for (const auto& tok : raw[d]) {
        const std::string_view orth = texts[d].substr(tok.begin, tok.end - tok.begin);
        const lex_entry& lx = lexeme(orth);
        for (std::size_t a = 0; a < na; ++a) {
          std::uint64_t v;
          switch (attr_kinds_[a]) {
            case attr_kind::norm:
              v = (tok.special && tok.special->has_norm) ? spacy::string_id(tok.special->norm) : lx.attrs.norm;
              break;
            case attr_kind::prefix: v = lx.attrs.prefix; break;
            case attr_kind::suffix: v = lx.attrs.suffix; break;
            default: v = lx.attrs.shape; break;
          }
          feats[t * na + a] = v;
        }
        if (!vec_rows.empty()) vec_rows[t] = lx.vec_row;
        is_space[t] = lx.attrs.is_space;
        ++t;
      }
    }
    const std::size_t W = embed_.width();
    typename Policy::template buffer<float> X(policy_, n_tokens * W), Y(policy_, n_tokens * W);
    const std::span<const std::size_t> lens = lengths.subspan(first, last - first);
    std::vector<std::vector<token_span>> spans;
    if (times_ != nullptr) {
      times_->tokenize += seconds_since(t0);
      times_->tokens += n_tokens;
    }
    if (n_tokens != 0) {
      auto stage = [&](double spacy_stage_times::*field, auto&& run) {
        if (times_ == nullptr) return run();
        const auto s0 = std::chrono::steady_clock::now();
        run();
        policy_.synchronize();
        times_->*field += seconds_since(s0);
      };
      stage(&spacy_stage_times::embed, [&] { embed_.forward(policy_, feats, vec_rows, matrix_view<float>(X.data(), n_tokens, W)); });
      stage(&spacy_stage_times::encode, [&] {
        encoder_.forward(policy_, matrix_view<const float>(X.data(), n_tokens, W), lens, matrix_view<float>(Y.data(), n_tokens, W));
      });
      if (tokvec_sink_ != nullptr) {
        const std::size_t at = tokvec_sink_->size();
        tokvec_sink_->resize(at + n_tokens * W);
        policy_.download(std::span<const float>(Y.data(), n_tokens * W), std::span<float>(tokvec_sink_->data() + at, n_tokens * W));
      }
      stage(&spacy_stage_times::decode,
            [&] { head_.forward(policy_, matrix_view<const float>(Y.data(), n_tokens, W), lens, is_space, spans); });
    } else {
      spans.assign(last - first, {});
    }
    for (std::size_t d = first; d < last; ++d) fill_document(texts[d], raw[d], spans[d - first], docs[d]);
  }

  void fill_document(std::string_view text, const std::vector<spacy::raw_token>& raw, const std::vector<token_span>& spans,
                     document& doc) const {
    if (!doc.ok()) return;
    doc.tokens.resize(raw.size());
    std::size_t byte = 0, cp = 0;
    auto advance = [&](std::size_t to) {
      for (; byte < to; ++byte) cp += (static_cast<unsigned char>(text[byte]) & 0xC0) != 0x80;
      return cp;
    };
    for (std::size_t i = 0; i < raw.size(); ++i) {
      auto& t = doc.tokens[i];
      t.start_byte = raw[i].begin;
      t.end_byte = raw[i].end;
      t.start = advance(raw[i].begin);
      t.end = advance(raw[i].end);
      t.whitespace = raw[i].space;
    }
    doc.entities.clear();
    doc.entities.reserve(spans.size());
    for (const auto& s : spans) {
      entity e;
      e.start = doc.tokens[s.start].start;
      e.end = doc.tokens[s.end - 1].end;
      e.start_byte = doc.tokens[s.start].start_byte;
      e.end_byte = doc.tokens[s.end - 1].end_byte;
      e.label = labels_[s.label];
      e.text = std::string(text.substr(e.start_byte, e.end_byte - e.start_byte));
      doc.entities.push_back(std::move(e));
    }
  }

  static double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  Policy policy_;
  spacy_tokenizer tokenizer_;
  multi_hash_embed<Policy> embed_;
  maxout_window_encoder<Policy> encoder_;
  transition_ner<Policy> head_;
  std::vector<std::string> labels_;
  std::vector<std::string> attrs_;
  enum class attr_kind : std::uint8_t { norm, prefix, suffix, shape };
  std::vector<attr_kind> attr_kinds_;  // attrs_ decoded once, not compared per token
  std::size_t max_length_ = 1000000;
  spacy_stage_times* times_ = nullptr;
  std::vector<float>* tokvec_sink_ = nullptr;
  std::shared_ptr<const std::unordered_map<std::uint64_t, std::int64_t>> key2row_copy_;
  struct sv_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, lex_entry, sv_hash, std::equal_to<>> lex_cache_;
};

NERPIPE_NAMESPACE_END
