// SPDX-License-Identifier: Apache-2.0
//! @file The stages that give spaCy's NER its sentence starts, as `spacy.load(dir)` runs a pipeline: the shared
//! tok2vec and the arc-eager dependency parser that listens to it, or the senter. In spaCy's default pipeline the
//! parser runs before the NER and sets `sent_start` on every token; the NER never continues an entity into a token
//! that starts a sentence (stages::transition_ner reads the starts these stages write).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/encoder/spacy_tok2vec.hpp>
#include <nerpipe/head/senter.hpp>
#include <nerpipe/head/transition_parser.hpp>
#include <nerpipe/model/spacy/loader.hpp>
#include <nerpipe/model/spacy/parser_loader.hpp>
#include <nerpipe/model/spacy/transformer_model.hpp>
#include <nerpipe/pipeline/batch.hpp>
#include <nerpipe/pipeline/stage.hpp>
#include <nerpipe/policy/device_policy.hpp>
#include <nerpipe/policy/memory_space.hpp>
#include <nerpipe/stages/spacy.hpp>
#include <nerpipe/tokenizer/spacy/features.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// A spaCy pipeline with its sentence components: the NER and what sets its sentence starts.
struct spacy_pipeline_model {
  std::shared_ptr<const spacy_model> ner;
  std::shared_ptr<const spacy_parser_model> sentences;
  spacy_sentences source = spacy_sentences::parser;
  /// The `transformer` component the NER listens to (spaCy transformer pipelines), or null.
  std::shared_ptr<const spacy_transformer_model> transformer;
};

inline const spacy_model& spacy_ner_model(const spacy_pipeline_model& m) noexcept { return *m.ner; }
/// The shared tok2vec's static vectors (md, lg), for a NER without its own.
inline const spacy::ner_weights* spacy_vectors_source(const spacy_pipeline_model& m) noexcept {
  if (!m.sentences) return nullptr;
  if (m.sentences->has_parser && m.sentences->tok2vec.has_static_vectors) return &m.sentences->tok2vec;
  if (m.sentences->has_senter && m.sentences->senter.tok2vec.has_static_vectors) return &m.sentences->senter.tok2vec;
  return nullptr;
}

namespace detail {
inline const spacy_parser_model& spacy_sentence_parts(const spacy_pipeline_model& m, spacy_sentences needs) {
  if (!m.sentences || (needs == spacy_sentences::parser && !m.sentences->has_parser) ||
      (needs == spacy_sentences::senter && !m.sentences->has_senter))
    NERPIPE_THROW(config_error(errc::config_invalid, std::string("the spaCy pipeline was loaded without its ") +
                                                         (needs == spacy_sentences::parser ? "parser" : "senter") +
                                                         " (load_model with the sentences it should use)"));
  return *m.sentences;
}

/// Writes per-word sentence starts of the pass (documents back to back, from `first_word`) into the batch and each
/// document's `sentences` (word indices where a sentence starts).
template <class Policy>
void store_sentence_starts(batch<Policy>& b, std::size_t first_word, std::span<const std::uint8_t> starts) {
  if (b.word_sent_start.size() != b.word_begin.size()) b.word_sent_start.assign(b.word_begin.size(), 0);
  std::copy(starts.begin(), starts.end(), b.word_sent_start.begin() + static_cast<std::ptrdiff_t>(first_word));
  for (std::size_t k = b.pass.first; k < b.pass.last; ++k) {
    const auto d = static_cast<std::size_t>(b.sequence_doc[static_cast<std::size_t>(b.order[k])]);
    auto& out = b.docs[d]->sentences;
    out.clear();
    for (std::size_t w = b.doc_words.begin(d); w < b.doc_words.end(d); ++w)
      if (b.word_sent_start[w]) out.push_back(static_cast<std::uint32_t>(w - b.doc_words.begin(d)));
  }
}
}  // namespace detail

namespace stages {

/// words -> hidden: the tok2vec component other components listen to (spacy.Tok2Vec.v2: MultiHashEmbed and the
/// maxout window encoder), with the parser's weights.
template <device_policy Policy>
class spacy_tok2vec {
 public:
  static constexpr stage_kind kind = stage_kind::embedding;
  static constexpr field_set reads = field::words | field::word_features | field::sequences;
  static constexpr field_set writes = field::hidden;
  static constexpr std::string_view name = "spacy_tok2vec";
  static constexpr bool sort_sequences = false;  // documents keep their order, as in stages::multi_hash_embed

  spacy_tok2vec(const Policy& p, const spacy_pipeline_model& m, const pipeline_options& o)
      : tok2vec_(p, detail::spacy_sentence_parts(m, spacy_sentences::parser).tok2vec),
        attrs_(spacy::token_attrs_of(m.sentences->tok2vec)),
        pass_rows_(o.batch_tokens != 0 ? o.batch_tokens : multi_hash_embed<Policy>::default_pass_rows) {}

  [[nodiscard]] std::size_t pass_rows() const noexcept { return pass_rows_; }
  [[nodiscard]] std::size_t workspace_bytes(const batch_shape& s) const noexcept { return 24 * s.rows * tok2vec_.width() * sizeof(float); }

  void run(batch<Policy>& b) {
    const std::size_t rows = b.pass.rows, W = tok2vec_.width();
    const std::size_t first_word = b.pass_first_row();
    select_features(b, attrs_, first_word, rows, feats_);
    b.pass_lengths(lengths_);
    const std::span<const std::int64_t> vec_rows = pass_vector_rows(b, first_word, rows);
    if (rows > capacity_) {
      capacity_ = rows + rows / 4;
      y_ = typename Policy::template buffer<float>(b.policy(), capacity_ * W);
    }
    tok2vec_.forward(b.policy(), feats_, vec_rows, lengths_, matrix_view<float>(y_.data(), rows, W));
    b.pass.compute = dtype::f32;
    b.pass.hidden = y_.data();
    b.pass.hidden_cols = W;
  }

 private:
  nerpipe::spacy_tok2vec<Policy> tok2vec_;
  std::vector<spacy::token_attr> attrs_;
  std::size_t pass_rows_;
  std::vector<std::uint64_t> feats_;
  std::vector<std::size_t> lengths_;
  typename Policy::template buffer<float> y_;
  std::size_t capacity_ = 0;
};

/// hidden (the shared tok2vec) -> sentence starts: spaCy's arc-eager parser, greedy (beam_width 1), then its
/// set_annotations (roots labelled ROOT, deprojectivize, sentence starts from the heads).
template <device_policy Policy>
class spacy_parser {
 public:
  static constexpr stage_kind kind = stage_kind::head;
  static constexpr field_set reads = field::hidden | field::words | field::word_features | field::sequences;
  static constexpr field_set writes = field::sentence_starts;
  static constexpr std::string_view name = "spacy_parser";

  spacy_parser(const Policy& p, const spacy_pipeline_model& m, const pipeline_options&)
      : parser_(p, detail::spacy_sentence_parts(m, spacy_sentences::parser)) {}

  [[nodiscard]] const nerpipe::transition_parser<Policy>& component() const noexcept { return parser_; }
  /// Dependency labels (index of `labels()` entries of the parse).
  [[nodiscard]] const std::vector<std::string>& dep_labels() const noexcept { return parser_.labels(); }
  /// The parse of the last batch's words (documents back to back, as the batch's words): head (document-relative
  /// word index; a root is its own head) and label index.
  [[nodiscard]] const std::vector<std::int32_t>& heads() const noexcept { return heads_; }
  [[nodiscard]] const std::vector<std::int32_t>& labels() const noexcept { return labels_; }
  [[nodiscard]] std::size_t workspace_bytes(const batch_shape& s) const noexcept { return 128 * s.rows * sizeof(float); }

  void run(batch<Policy>& b) {
    const std::size_t rows = b.pass.rows;
    const std::size_t first_word = b.pass_first_row();
    b.pass_lengths(lengths_);
    space_.resize(rows);
    for (std::size_t i = 0; i < rows; ++i)
      space_[i] = static_cast<char>(b.word_features[(first_word + i) * b.feature_count + spacy::feature_column(spacy::token_attr::is_space)] != 0);
    parser_.forward(b.policy(), matrix_view<const float>(b.pass.template hidden_as<float>()), lengths_, space_, parse_);
    if (heads_.size() != b.word_begin.size()) {
      heads_.assign(b.word_begin.size(), 0);
      labels_.assign(b.word_begin.size(), 0);
    }
    std::copy(parse_.heads.begin(), parse_.heads.end(), heads_.begin() + static_cast<std::ptrdiff_t>(first_word));
    std::copy(parse_.labels.begin(), parse_.labels.end(), labels_.begin() + static_cast<std::ptrdiff_t>(first_word));
    detail::store_sentence_starts(b, first_word, parse_.sent_starts);
  }

 private:
  nerpipe::transition_parser<Policy> parser_;
  std::vector<std::size_t> lengths_;
  std::vector<char> space_;
  dependency_parse parse_;
  std::vector<std::int32_t> heads_, labels_;
};

/// words -> sentence starts: spaCy's senter (its own tok2vec, a linear layer, argmax per token), for pipelines
/// that run it instead of the parser. A device stage that reads the words' features directly.
template <device_policy Policy>
class spacy_senter {
 public:
  static constexpr stage_kind kind = stage_kind::head;
  static constexpr field_set reads = field::words | field::word_features | field::sequences;
  static constexpr field_set writes = field::sentence_starts;
  static constexpr std::string_view name = "spacy_senter";
  static constexpr bool sort_sequences = false;

  spacy_senter(const Policy& p, const spacy_pipeline_model& m, const pipeline_options& o)
      : senter_(p, detail::spacy_sentence_parts(m, spacy_sentences::senter).senter),
        attrs_(spacy::token_attrs_of(m.sentences->senter.tok2vec)),
        pass_rows_(o.batch_tokens != 0 ? o.batch_tokens : multi_hash_embed<Policy>::default_pass_rows) {}

  [[nodiscard]] std::size_t pass_rows() const noexcept { return pass_rows_; }
  [[nodiscard]] std::size_t workspace_bytes(const batch_shape& s) const noexcept { return 24 * s.rows * senter_.tok2vec().width() * sizeof(float); }

  void run(batch<Policy>& b) {
    const std::size_t rows = b.pass.rows;
    const std::size_t first_word = b.pass_first_row();
    select_features(b, attrs_, first_word, rows, feats_);
    b.pass_lengths(lengths_);
    const std::span<const std::int64_t> vec_rows = pass_vector_rows(b, first_word, rows);
    senter_.forward(b.policy(), feats_, vec_rows, lengths_, starts_);
    detail::store_sentence_starts(b, first_word, starts_);
  }

 private:
  nerpipe::spacy_senter<Policy> senter_;
  std::vector<spacy::token_attr> attrs_;
  std::size_t pass_rows_;
  std::vector<std::uint64_t> feats_;
  std::vector<std::size_t> lengths_;
  std::vector<std::uint8_t> starts_;
};

}  // namespace stages

/// Phrase patterns are split by the pipeline's tokenizer (see stages::entity_ruler).
inline std::function<std::vector<std::string>(std::string_view)> pattern_words(const spacy_pipeline_model& m) {
  return pattern_words(*m.ner);
}

NERPIPE_NAMESPACE_END
