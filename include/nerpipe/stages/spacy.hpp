// SPDX-License-Identifier: Apache-2.0
//! @file The stages of a spaCy 3.x NER pipeline: the rule tokenizer with the lexical attributes the hashed
//! embedding reads, MultiHashEmbed, the maxout window encoder, and the transition-based NER head with
//! spaCy's validity rules (`spacy.load(dir, exclude=[everything but "ner"])`, entities identical).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/utf8.hpp>
#include <nerpipe/embedding/multi_hash_embed.hpp>
#include <nerpipe/encoder/maxout_window_encoder.hpp>
#include <nerpipe/head/transition_ner.hpp>
#include <nerpipe/model/spacy/loader.hpp>
#include <nerpipe/pipeline/batch.hpp>
#include <nerpipe/pipeline/stage.hpp>
#include <nerpipe/policy/device_policy.hpp>
#include <nerpipe/policy/memory_space.hpp>
#include <nerpipe/tokenizer/spacy/features.hpp>
#include <nerpipe/tokenizer/spacy_tokenizer.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// The NER part of a spaCy model a stage is built from: the model itself, or the NER of a pipeline that also has
/// sentence components (stages/spacy_sentences.hpp overloads it).
inline const spacy_model& spacy_ner_model(const spacy_model& m) noexcept { return m; }
/// Static vectors of another component, for a NER without its own (none for a NER-only model).
inline const spacy::ner_weights* spacy_vectors_source(const spacy_model&) noexcept { return nullptr; }

namespace stages {

/// text -> words (spaCy's rule tokenizer) with the lexical attributes of each word (the hashed embedding's
/// NORM / PREFIX / SUFFIX / SHAPE ids, the static-vector row, IS_SPACE); one model sequence per document.
/// Keeps a lexeme cache, like spaCy's Vocab: one stage object per thread.
template <device_policy Policy>
class spacy_tokenizer {
 public:
  static constexpr stage_kind kind = stage_kind::tokenizer;
  static constexpr field_set reads = field::text;
  static constexpr field_set writes = field::words | field::word_features | field::sequences | field::tokens;
  static constexpr std::string_view name = "spacy_tokenizer";

  // document::tokens are always filled (the words, as spaCy's Doc has them); the annotator behind make_annotator
  // drops them when the output does not ask for them. Every lexical attribute a spaCy tok2vec may hash is written,
  // in spacy::token_attr order (word_features has spacy::feature_columns columns); each embedding picks its own.
  template <class Model>
  spacy_tokenizer(const Policy&, const Model& model, const pipeline_options&) : tokenizer_(spacy_ner_model(model)) {
    const spacy_model& m = spacy_ner_model(model);
    const spacy::ner_weights* with_vectors = m.ner.has_static_vectors ? &m.ner : spacy_vectors_source(model);
    if (with_vectors != nullptr) {
      key2row_ = std::make_shared<const std::unordered_map<std::uint64_t, std::int64_t>>(with_vectors->vectors.key2row);
      vector_rows_ = with_vectors->vectors.data.shape.empty() ? 0 : with_vectors->vectors.data.shape[0];
    }
  }

  [[nodiscard]] const nerpipe::spacy_tokenizer& component() const noexcept { return tokenizer_; }
  /// Longest text in characters (code points) that is processed; spaCy's nlp.max_length (1,000,000).
  [[nodiscard]] std::size_t max_length() const noexcept { return max_length_; }
  void max_length(std::size_t n) noexcept { max_length_ = n; }
  [[nodiscard]] std::size_t workspace_bytes(const batch_shape&) const noexcept { return 0; }

  void run(batch<Policy>& b) {
    b.feature_count = spacy::feature_columns;
    for (std::size_t d = 0; d < b.size(); ++d) {
      if (b.live(d)) tokenize(b, d);
      b.doc_words.close(b.word_begin.size());
      if (b.live(d)) {
        b.sequence_rows.close(b.doc_words.total());
        b.sequence_doc.push_back(static_cast<std::int32_t>(d));
      }
    }
    b.model_tokens = b.word_begin.size();
  }

 private:
  struct lex_entry {
    spacy::lexeme_attrs attrs;
    std::int64_t vec_row = -1;
  };

  void tokenize(batch<Policy>& b, std::size_t d) {
    const std::string_view text = b.doc_text_of(d);
    if (!utf8::is_valid(text)) {
      b.fail(d, record_status::invalid_utf8, "invalid_utf8: text is not valid UTF-8");
      return;
    }
    if (const auto n = utf8::length(text); n > max_length_) {
      // spaCy raises E088 for such a text; here only this record fails.
      b.fail(d, record_status::too_large, "too_large: text has " + std::to_string(n) + " characters, more than max_length " +
                                              std::to_string(max_length_) + " (spaCy's nlp.max_length)");
      return;
    }
    try {
      tokenizer_.tokenize(text, raw_);
    } catch (const std::exception& e) {  // e.g. a PCRE2 resource limit on a pathological text: only this record fails
      b.fail_current(d, e);
      return;
    }
    std::size_t byte = 0, cp = 0;
    auto advance = [&](std::size_t to) {
      for (; byte < to; ++byte) cp += (static_cast<unsigned char>(text[byte]) & 0xC0) != 0x80;
      return static_cast<std::int32_t>(cp);
    };
    document& doc = *b.docs[d];
    doc.tokens.resize(raw_.size());
    for (std::size_t i = 0; i < raw_.size(); ++i) {
      const auto& tok = raw_[i];
      b.word_begin.push_back(static_cast<std::int32_t>(tok.begin));
      b.word_end.push_back(static_cast<std::int32_t>(tok.end));
      b.word_begin_cp.push_back(advance(tok.begin));
      b.word_end_cp.push_back(advance(tok.end));
      b.word_space.push_back(tok.space);
      const lex_entry& lx = lexeme(text.substr(tok.begin, tok.end - tok.begin));
      // spacy::token_attr order: NORM (a special case's own NORM first), PREFIX, SUFFIX, SHAPE, SPACY, IS_SPACE.
      b.word_features.push_back((tok.special && tok.special->has_norm) ? spacy::string_id(tok.special->norm) : lx.attrs.norm);
      b.word_features.push_back(lx.attrs.prefix);
      b.word_features.push_back(lx.attrs.suffix);
      b.word_features.push_back(lx.attrs.shape);
      b.word_features.push_back(tok.space ? 1 : 0);
      b.word_features.push_back(lx.attrs.is_space ? 1 : 0);
      if (key2row_) b.word_vector_row.push_back(lx.vec_row);
      b.word_is_space.push_back(lx.attrs.is_space);
      token& t = doc.tokens[i];
      t.start_byte = tok.begin;
      t.end_byte = tok.end;
      t.start = static_cast<std::size_t>(b.word_begin_cp.back());
      t.end = static_cast<std::size_t>(b.word_end_cp.back());
      t.whitespace = tok.space;
    }
  }

  const lex_entry& lexeme(std::string_view orth) {
    auto it = cache_.find(orth);
    if (it != cache_.end()) return it->second;
    lex_entry e;
    e.attrs = tokenizer_.lexeme(orth);
    if (key2row_) {
      auto r = key2row_->find(spacy::string_id(orth));
      // The loader checked every row against the table; a row outside it is never used.
      if (r != key2row_->end() && r->second >= 0 && static_cast<std::uint64_t>(r->second) < vector_rows_) e.vec_row = r->second;
    }
    return cache_.emplace(std::string(orth), e).first->second;
  }

  nerpipe::spacy_tokenizer tokenizer_;
  std::size_t max_length_ = 1000000;
  std::shared_ptr<const std::unordered_map<std::uint64_t, std::int64_t>> key2row_;
  std::size_t vector_rows_ = 0;
  std::vector<spacy::raw_token> raw_;
  struct sv_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, lex_entry, sv_hash, std::equal_to<>> cache_;
};

/// The rows of a pass's words for `attrs` (columns of word_features), contiguous, in attribute order.
template <class Policy>
void select_features(const batch<Policy>& b, std::span<const spacy::token_attr> attrs, std::size_t first_word, std::size_t rows,
                     std::vector<std::uint64_t>& out) {
  const std::size_t stride = b.feature_count, na = attrs.size();
  out.resize(rows * na);
  const std::uint64_t* src = b.word_features.data() + first_word * stride;
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t a = 0; a < na; ++a) out[i * na + a] = src[i * stride + spacy::feature_column(attrs[a])];
}

/// The static-vector rows of a pass's words (empty when the model has no static vectors).
template <class Policy>
std::span<const std::int64_t> pass_vector_rows(const batch<Policy>& b, std::size_t first_word, std::size_t rows) {
  return b.word_vector_row.empty() ? std::span<const std::int64_t>() : std::span<const std::int64_t>(b.word_vector_row).subspan(first_word, rows);
}

/// The words of the pass -> hidden (tokens x width, fp32): MultiHashEmbed with its mixer.
template <device_policy Policy>
class multi_hash_embed {
 public:
  static constexpr stage_kind kind = stage_kind::embedding;
  static constexpr field_set reads = field::words | field::word_features | field::sequences;
  static constexpr field_set writes = field::hidden;
  static constexpr std::string_view name = "multi_hash_embed";
  /// Documents keep their input order (passes in order).
  static constexpr bool sort_sequences = false;

  template <class Model>
  multi_hash_embed(const Policy& p, const Model& m, const pipeline_options& o)
      : embed_(p, spacy_ner_model(m).ner), attrs_(spacy::token_attrs_of(spacy_ner_model(m).ner)),
        pass_rows_(o.batch_tokens != 0 ? o.batch_tokens : default_pass_rows) {}

  // On the host, 2048 tokens keep each layer's GEMM input and output (2048 x 288 floats, 2.4 MB each) close to
  // the core's L2 while the GEMMs stay large: measured 98 K words/s per CPU-second on one thread against 90 K with
  // 16384 (EWT, sm). A device wants large passes (launches and the per-step decode are amortised over more
  // documents); 65536 tokens take about 0.4 GB of device memory.
  static constexpr std::size_t default_pass_rows = can_access<Policy, host_space> ? 2048 : 65536;
  [[nodiscard]] std::size_t pass_rows() const noexcept { return pass_rows_; }
  [[nodiscard]] std::size_t width() const noexcept { return embed_.width(); }
  [[nodiscard]] const nerpipe::multi_hash_embed<Policy>& component() const noexcept { return embed_; }
  [[nodiscard]] std::size_t workspace_bytes(const batch_shape& s) const noexcept { return 8 * s.rows * width() * sizeof(float); }

  void run(batch<Policy>& b) {
    const std::size_t rows = b.pass.rows;
    // The pass's documents are consecutive sequences, so their words are one contiguous stretch.
    const std::size_t first_word = b.pass_first_row();
    select_features(b, attrs_, first_word, rows, feats_);
    const std::span<const std::int64_t> vec_rows = pass_vector_rows(b, first_word, rows);
    if (rows > capacity_) {
      capacity_ = rows + rows / 4;
      x_ = typename Policy::template buffer<float>(b.policy(), capacity_ * width());
    }
    b.pass.compute = dtype::f32;
    b.pass.hidden = x_.data();
    b.pass.hidden_cols = width();
    embed_.forward(b.policy(), feats_, vec_rows, b.pass.template hidden_as<float>());
  }

 private:
  nerpipe::multi_hash_embed<Policy> embed_;
  std::vector<spacy::token_attr> attrs_;  // the hash tables' attributes, in table order
  std::vector<std::uint64_t> feats_;
  std::size_t pass_rows_;
  typename Policy::template buffer<float> x_;
  std::size_t capacity_ = 0;
};

/// hidden -> hidden: the maxout window encoder (spaCy's CNN), each document apart from its neighbours.
template <device_policy Policy>
class maxout_window_encoder {
 public:
  static constexpr stage_kind kind = stage_kind::encoder;
  static constexpr field_set reads = field::hidden | field::sequences;
  static constexpr field_set writes = field::hidden;
  static constexpr std::string_view name = "maxout_window_encoder";

  template <class Model>
  maxout_window_encoder(const Policy& p, const Model& m, const pipeline_options&) : encoder_(p, spacy_ner_model(m).ner) {}

  [[nodiscard]] const nerpipe::maxout_window_encoder<Policy>& component() const noexcept { return encoder_; }
  [[nodiscard]] std::size_t workspace_bytes(const batch_shape& s) const noexcept { return 16 * s.rows * encoder_.width() * sizeof(float); }
  /// Appends every later pass's output (tokens x width floats, in document order) to `sink` (nullptr: stop).
  /// For tests that compare policies.
  void capture(std::vector<float>* sink) noexcept { sink_ = sink; }

  void run(batch<Policy>& b) {
    const std::size_t rows = b.pass.rows, W = encoder_.width();
    b.pass_lengths(lengths_);
    if (rows > capacity_) {
      capacity_ = rows + rows / 4;
      y_ = typename Policy::template buffer<float>(b.policy(), capacity_ * W);
    }
    const matrix_view<float> y(y_.data(), rows, W);
    encoder_.forward(b.policy(), matrix_view<const float>(b.pass.template hidden_as<float>()), lengths_, y);
    b.pass.hidden = y_.data();
    if (sink_ != nullptr) {
      const std::size_t at = sink_->size();
      sink_->resize(at + rows * W);
      b.policy().download(std::span<const float>(y_.data(), rows * W), std::span<float>(sink_->data() + at, rows * W));
      b.policy().synchronize();
    }
  }

 private:
  nerpipe::maxout_window_encoder<Policy> encoder_;
  std::vector<std::size_t> lengths_;
  typename Policy::template buffer<float> y_;
  std::size_t capacity_ = 0;
  std::vector<float>* sink_ = nullptr;
};

/// hidden -> entities: spaCy's transition-based NER (precomputed lower layer, maxout, upper layer, greedy BILUO
/// decoding with spaCy's validity rules), entities written into the documents with their offsets.
template <device_policy Policy>
class transition_ner {
 public:
  static constexpr stage_kind kind = stage_kind::head;
  static constexpr field_set reads = field::hidden | field::words | field::word_features | field::sequences;
  static constexpr field_set writes = field::entities;
  static constexpr std::string_view name = "transition_ner";
  // It also reads `sentence_starts` where an earlier stage wrote them (a parser or a senter); without them it is
  // spaCy's NER-only pipeline.

  template <class Model>
  transition_ner(const Policy& p, const Model& m, const pipeline_options&)
      : head_(p, spacy_ner_model(m)), labels_(spacy_ner_model(m).labels) {}

  [[nodiscard]] const std::vector<std::string>& labels() const noexcept { return labels_; }
  [[nodiscard]] const nerpipe::transition_ner<Policy>& component() const noexcept { return head_; }
  [[nodiscard]] std::size_t workspace_bytes(const batch_shape& s) const noexcept { return 64 * s.rows * sizeof(float); }

  void run(batch<Policy>& b) {
    const std::size_t rows = b.pass.rows;
    b.pass_lengths(lengths_);
    const std::size_t first_word = b.pass_first_row();
    space_.assign(b.word_is_space.begin() + static_cast<std::ptrdiff_t>(first_word),
                  b.word_is_space.begin() + static_cast<std::ptrdiff_t>(first_word + rows));
    // Sentence starts, when a parser or senter stage set them: the NER never continues an entity into one.
    const std::span<const std::uint8_t> starts =
        b.word_sent_start.empty() ? std::span<const std::uint8_t>() : std::span<const std::uint8_t>(b.word_sent_start).subspan(first_word, rows);
    head_.forward(b.policy(), matrix_view<const float>(b.pass.template hidden_as<float>()), lengths_, space_, spans_, starts);
    for (std::size_t k = b.pass.first; k < b.pass.last; ++k) {
      const auto s = static_cast<std::size_t>(b.order[k]);
      const auto d = static_cast<std::size_t>(b.sequence_doc[s]);
      const std::size_t w0 = b.doc_words.begin(d);
      document& doc = *b.docs[d];
      const std::string_view text = b.doc_text_of(d);
      doc.entities.clear();
      doc.entities.reserve(spans_[k - b.pass.first].size());
      for (const auto& sp : spans_[k - b.pass.first]) {
        const std::size_t first = w0 + sp.start, last = w0 + sp.end - 1;
        entity e;
        e.start = static_cast<std::size_t>(b.word_begin_cp[first]);
        e.end = static_cast<std::size_t>(b.word_end_cp[last]);
        e.start_byte = static_cast<std::size_t>(b.word_begin[first]);
        e.end_byte = static_cast<std::size_t>(b.word_end[last]);
        e.label = labels_[sp.label];
        e.text = std::string(text.substr(e.start_byte, e.end_byte - e.start_byte));
        doc.entities.push_back(std::move(e));
      }
    }
  }

 private:
  nerpipe::transition_ner<Policy> head_;
  std::vector<std::string> labels_;
  std::vector<std::size_t> lengths_;
  std::vector<char> space_;
  std::vector<std::vector<token_span>> spans_;
};

}  // namespace stages

/// How spaCy's tokenizer splits a phrase pattern into words (the entity_ruler's patterns are tokenized by the
/// pipeline's own tokenizer, as spaCy's EntityRuler does with nlp.pipe).
inline std::function<std::vector<std::string>(std::string_view)> pattern_words(const spacy_model& m) {
  auto tok = std::make_shared<const nerpipe::spacy_tokenizer>(m);
  return [tok](std::string_view text) {
    std::vector<std::string> out;
    for (const auto& t : tok->tokenize(text)) out.emplace_back(text.substr(t.begin, t.end - t.begin));
    return out;
  };
}

NERPIPE_NAMESPACE_END
