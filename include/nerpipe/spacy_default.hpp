// SPDX-License-Identifier: Apache-2.0
//! @file spaCy's NER as `spacy.load(dir)` runs it: the tokenizer, then the sentence starts of the parser
//! (tok2vec -> arc-eager parser) or of the senter, then the NER, which never continues an entity into a
//! sentence start. A driver over the components, for the composed pipeline and the CLI's --sentences.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/cpu/spacy_ops.hpp>
#include <nerpipe/cpu/spacy_parser_ops.hpp>
#include <nerpipe/encoder/spacy_tok2vec.hpp>
#include <nerpipe/head/senter.hpp>
#include <nerpipe/head/transition_ner.hpp>
#include <nerpipe/head/transition_parser.hpp>
#include <nerpipe/model/spacy/loader.hpp>
#include <nerpipe/model/spacy/parser_loader.hpp>
#include <nerpipe/policy/memory_space.hpp>
#include <nerpipe/tokenizer/spacy/features.hpp>
#include <nerpipe/tokenizer/spacy_tokenizer.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// What the driver can report besides the documents, per document (token indices of the tokenizer's tokens).
struct spacy_doc_analysis {
  std::vector<std::uint32_t> sent_starts;  ///< tokens with is_sent_start true, ascending (0 first when non-empty)
  std::vector<std::int32_t> heads;         ///< parser only: each token's head (a root is its own head)
  std::vector<std::int32_t> labels;        ///< parser only: index into spacy_default_ner::dep_labels()
};

/// tokenizer -> [tok2vec -> parser | senter] -> NER tok2vec -> transition NER (with the sentence starts).
///
///     auto ner = nerpipe::load_spacy_model(dir);
///     auto source = nerpipe::spacy_default_sentences(dir);         // parser for en_core_web_sm/md/lg
///     auto sents = nerpipe::load_spacy_parser_model(dir, {source == nerpipe::spacy_sentences::parser,
///                                                         source == nerpipe::spacy_sentences::senter});
///     nerpipe::spacy_default_ner<nerpipe::cpu_policy> nlp(nerpipe::cpu_policy{}, ner, sents, source);
///     auto docs = nlp(texts);                                      // std::span<const std::string_view>
/// One object is not meant for several threads at once (lexeme cache); give each thread its own.
template <class Policy>
class spacy_default_ner {
 public:
  spacy_default_ner(Policy policy, const spacy_model& ner, const spacy_parser_model& sents, spacy_sentences source = spacy_sentences::parser)
      : policy_(std::move(policy)),
        source_(source),
        tokenizer_(std::make_unique<spacy_tokenizer>(ner)),
        features_(*tokenizer_),
        ner_tok2vec_(policy_, ner.ner),
        ner_head_(policy_, ner),
        ner_attrs_(spacy::token_attrs_of(ner.ner)),
        labels_(ner.labels) {
    // Copies of key2row, so the models need not outlive this object (as spacy_ner).
    if (ner.ner.has_static_vectors) ner_key2row_ = std::make_shared<const key2row_map>(ner.ner.vectors.key2row);
    if (source == spacy_sentences::parser) {
      if (!sents.has_parser)
        NERPIPE_THROW(config_error(errc::config_invalid, "spacy_default_ner: sentences from the parser, but the parser was not loaded"));
      tok2vec_.emplace(policy_, sents.tok2vec);
      parser_.emplace(policy_, sents);
      t2v_attrs_ = spacy::token_attrs_of(sents.tok2vec);
      if (sents.tok2vec.has_static_vectors) t2v_key2row_ = std::make_shared<const key2row_map>(sents.tok2vec.vectors.key2row);
    } else if (source == spacy_sentences::senter) {
      if (!sents.has_senter)
        NERPIPE_THROW(config_error(errc::config_invalid, "spacy_default_ner: sentences from the senter, but the senter was not loaded"));
      senter_.emplace(policy_, sents.senter);
      t2v_attrs_ = spacy::token_attrs_of(sents.senter.tok2vec);
      if (sents.senter.tok2vec.has_static_vectors) t2v_key2row_ = std::make_shared<const key2row_map>(sents.senter.tok2vec.vectors.key2row);
    }
  }

  [[nodiscard]] const spacy_tokenizer& tokenizer() const noexcept { return *tokenizer_; }
  [[nodiscard]] const std::vector<std::string>& labels() const noexcept { return labels_; }
  [[nodiscard]] spacy_sentences sentences() const noexcept { return source_; }
  /// Dependency labels (parser only; empty otherwise).
  [[nodiscard]] const std::vector<std::string>& dep_labels() const noexcept {
    static const std::vector<std::string> none;
    return parser_ ? parser_->labels() : none;
  }
  [[nodiscard]] std::size_t max_length() const noexcept { return max_length_; }
  void max_length(std::size_t n) noexcept { max_length_ = n; }

  /// Runs the pipeline on a batch of UTF-8 texts; one document per text, in order (a text that is not UTF-8 or
  /// longer than max_length() gives a document with that status). With `analysis`, also each document's
  /// sentence starts (and parse).
  [[nodiscard]] std::vector<document> operator()(std::span<const std::string_view> texts, std::vector<spacy_doc_analysis>* analysis = nullptr) {
    std::vector<document> docs(texts.size());
    std::vector<std::vector<spacy::raw_token>> raw(texts.size());
    std::vector<std::size_t> lengths(texts.size(), 0);
    if (analysis != nullptr) analysis->assign(texts.size(), {});
    for (std::size_t d = 0; d < texts.size(); ++d) {
      docs[d].index = d;
      docs[d].text = std::string(texts[d]);
      if (!spacy::detail::valid_utf8(texts[d])) {
        docs[d].status = record_status::invalid_utf8;
        docs[d].error = "text is not valid UTF-8";
        continue;
      }
      if (const auto n = spacy::detail::cp_count(texts[d]); n > max_length_) {
        docs[d].status = record_status::too_large;
        docs[d].error = "text has " + std::to_string(n) + " characters, more than max_length " + std::to_string(max_length_) +
                        " (spaCy's nlp.max_length)";
        continue;
      }
      try {
        tokenizer_->tokenize(texts[d], raw[d]);
      } catch (const error& e) {
        raw[d].clear();
        docs[d].status = record_status::failed;
        docs[d].error = e.what();
        continue;
      }
      lengths[d] = raw[d].size();
    }
    // Batches of bounded size, as spacy_ner makes them (each doc's result does not depend on its neighbours).
    constexpr std::size_t max_tokens = can_access<Policy, host_space> ? 2048 : 65536;
    std::size_t first = 0;
    while (first < texts.size()) {
      std::size_t last = first, tokens = 0;
      while (last < texts.size() && (last == first || tokens + lengths[last] <= max_tokens)) tokens += lengths[last++];
      run_batch(texts, raw, lengths, first, last, tokens, docs, analysis);
      first = last;
    }
    return docs;
  }

  /// Convenience for one text.
  [[nodiscard]] document operator()(std::string_view text, spacy_doc_analysis* analysis = nullptr) {
    std::vector<spacy_doc_analysis> a;
    auto docs = (*this)(std::span<const std::string_view>(&text, 1), analysis != nullptr ? &a : nullptr);
    if (analysis != nullptr) *analysis = std::move(a.front());
    return std::move(docs.front());
  }

 private:
  void run_batch(std::span<const std::string_view> texts, const std::vector<std::vector<spacy::raw_token>>& raw,
                 std::span<const std::size_t> all_lengths, std::size_t first, std::size_t last, std::size_t n_tokens,
                 std::vector<document>& docs, std::vector<spacy_doc_analysis>* analysis) {
    const std::span<const std::size_t> lens = all_lengths.subspan(first, last - first);
    std::vector<std::vector<token_span>> spans(last - first);
    std::vector<std::uint8_t> sent_starts;
    dependency_parse parse;
    if (n_tokens != 0) {
      feats_.clear();
      vec_rows_.clear();
      is_space_.clear();
      for (std::size_t d = first; d < last; ++d) features_.is_space(texts[d], raw[d], is_space_);
      // Sentence starts first: the parser's (or senter's) own tok2vec.
      if (source_ != spacy_sentences::none) {
        for (std::size_t d = first; d < last; ++d) features_.extract(texts[d], raw[d], t2v_attrs_, feats_, t2v_key2row_.get(), &vec_rows_);
        if (parser_) {
          const std::size_t W = tok2vec_->width();
          typename Policy::template buffer<float> tokvecs(policy_, n_tokens * W);
          tok2vec_->forward(policy_, feats_, vec_rows_, lens, matrix_view<float>(tokvecs.data(), n_tokens, W));
          parser_->forward(policy_, matrix_view<const float>(tokvecs.data(), n_tokens, W), lens, is_space_, parse);
          sent_starts = parse.sent_starts;
        } else {
          senter_->forward(policy_, feats_, vec_rows_, lens, sent_starts);
        }
        feats_.clear();
        vec_rows_.clear();
      }
      for (std::size_t d = first; d < last; ++d) features_.extract(texts[d], raw[d], ner_attrs_, feats_, ner_key2row_.get(), &vec_rows_);
      const std::size_t W = ner_tok2vec_.width();
      typename Policy::template buffer<float> tokvecs(policy_, n_tokens * W);
      ner_tok2vec_.forward(policy_, feats_, vec_rows_, lens, matrix_view<float>(tokvecs.data(), n_tokens, W));
      ner_head_.forward(policy_, matrix_view<const float>(tokvecs.data(), n_tokens, W), lens, is_space_, spans, sent_starts);
    }
    std::size_t t = 0;
    for (std::size_t d = first; d < last; ++d) {
      fill_document(texts[d], raw[d], spans[d - first], docs[d]);
      if (analysis != nullptr && docs[d].ok()) {
        auto& a = (*analysis)[d];
        for (std::size_t i = 0; i < lens[d - first]; ++i) {
          if (!sent_starts.empty() ? sent_starts[t + i] != 0 : i == 0) a.sent_starts.push_back(static_cast<std::uint32_t>(i));
          if (!parse.heads.empty()) {
            a.heads.push_back(parse.heads[t + i]);
            a.labels.push_back(parse.labels[t + i]);
          }
        }
      }
      t += lens[d - first];
    }
  }

  void fill_document(std::string_view text, const std::vector<spacy::raw_token>& raw, const std::vector<token_span>& spans, document& doc) const {
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

  Policy policy_;
  spacy_sentences source_;
  std::unique_ptr<spacy_tokenizer> tokenizer_;  // features_ keeps a pointer to it
  spacy::token_features features_;
  spacy_tok2vec<Policy> ner_tok2vec_;
  transition_ner<Policy> ner_head_;
  std::optional<spacy_tok2vec<Policy>> tok2vec_;
  std::optional<transition_parser<Policy>> parser_;
  std::optional<spacy_senter<Policy>> senter_;
  std::vector<spacy::token_attr> ner_attrs_, t2v_attrs_;
  using key2row_map = std::unordered_map<std::uint64_t, std::int64_t>;
  std::shared_ptr<const key2row_map> ner_key2row_, t2v_key2row_;
  std::vector<std::string> labels_;
  std::size_t max_length_ = 1000000;
  std::vector<std::uint64_t> feats_;
  std::vector<std::int64_t> vec_rows_;
  std::vector<char> is_space_;
};

NERPIPE_NAMESPACE_END
