// SPDX-License-Identifier: Apache-2.0
//! @file spaCy's NER-only pipeline (`spacy.load(dir, exclude=[everything but "ner"])`) as a composition of
//! stages: the rule tokenizer with lexical attributes -> MultiHashEmbed -> maxout window encoder -> transition
//! NER head -> merge_entities.
//!
//!     auto model = nerpipe::load_spacy_model("models/en_core_web_sm-3.8.0");
//!     nerpipe::spacy_ner<nerpipe::cpu_policy> nlp(nerpipe::cpu_policy{}, model);
//!     for (const auto& doc : nlp(texts))                      // std::span<const std::string_view>
//!       std::cout << nerpipe::merged_text(doc.text, doc.tokens, doc.entities) << '\n';
//! One object is not meant to be called from several threads at once (it keeps a lexeme cache, like spaCy's
//! Vocab); give each thread its own.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/model/spacy/loader.hpp>
#include <nerpipe/pipeline/pipeline.hpp>
#include <nerpipe/stages/entity_ruler.hpp>
#include <nerpipe/stages/merge_entities.hpp>
#include <nerpipe/stages/spacy.hpp>
#include <nerpipe/stages/spacy_sentences.hpp>
#include <nerpipe/stages/spacy_transformer.hpp>

#include <memory>

NERPIPE_NAMESPACE_BEGIN

/// spaCy NER on `Policy`.
template <class Policy>
using spacy_ner = pipeline<Policy, stages::spacy_tokenizer, stages::multi_hash_embed, stages::maxout_window_encoder,
                           stages::transition_ner, stages::merge_entities>;

/// The same with an entity_ruler after the NER (spaCy's `nlp.add_pipe("entity_ruler", after="ner")`).
template <class Policy>
using spacy_ner_with_rules = pipeline<Policy, stages::spacy_tokenizer, stages::multi_hash_embed, stages::maxout_window_encoder,
                                      stages::transition_ner, stages::entity_ruler, stages::merge_entities>;

/// spaCy's default pipeline as `spacy.load(dir)` runs it for the NER: the shared tok2vec and the dependency parser
/// set the sentence starts the NER reads (spacy_pipeline_model: NER + parser).
template <class Policy>
using spacy_parser_ner = pipeline<Policy, stages::spacy_tokenizer, stages::spacy_tok2vec, stages::spacy_parser, stages::multi_hash_embed,
                                  stages::maxout_window_encoder, stages::transition_ner, stages::merge_entities>;
template <class Policy>
using spacy_parser_ner_with_rules =
    pipeline<Policy, stages::spacy_tokenizer, stages::spacy_tok2vec, stages::spacy_parser, stages::multi_hash_embed,
             stages::maxout_window_encoder, stages::transition_ner, stages::entity_ruler, stages::merge_entities>;

/// The same with the senter setting the sentence starts (pipelines that enable it instead of the parser).
template <class Policy>
using spacy_senter_ner = pipeline<Policy, stages::spacy_tokenizer, stages::spacy_senter, stages::multi_hash_embed,
                                  stages::maxout_window_encoder, stages::transition_ner, stages::merge_entities>;
template <class Policy>
using spacy_senter_ner_with_rules =
    pipeline<Policy, stages::spacy_tokenizer, stages::spacy_senter, stages::multi_hash_embed, stages::maxout_window_encoder,
             stages::transition_ner, stages::entity_ruler, stages::merge_entities>;

/// spaCy's transformer pipelines (spacy-transformers; en_core_web_trf's NER): the rule tokenizer and the strided
/// spans' pieces -> RoBERTa with reduce_mean pooling onto the tokens -> the transition NER head that listens to it.
template <class Policy>
using spacy_trf_ner = pipeline<Policy, stages::spacy_trf_tokenizer, stages::spacy_transformer, stages::transition_ner, stages::merge_entities>;
template <class Policy>
using spacy_trf_ner_with_rules =
    pipeline<Policy, stages::spacy_trf_tokenizer, stages::spacy_transformer, stages::transition_ner, stages::entity_ruler, stages::merge_entities>;

/// A type-erased annotator for `m` on policy `p`: NER-only, or with the parser's or the senter's sentence starts
/// (m.source), or a transformer pipeline's (m.transformer), with an entity_ruler when options.entity_ruler is set.
template <class Policy>
[[nodiscard]] std::unique_ptr<annotator> make_spacy_annotator(const Policy& p, std::shared_ptr<const spacy_pipeline_model> m,
                                                              const pipeline_options& o) {
  const bool rules = static_cast<bool>(o.entity_ruler);
  if (m->transformer) {
    if (m->source != spacy_sentences::none)
      NERPIPE_THROW(config_error(errc::config_unsupported, "a spaCy transformer pipeline runs its NER alone (sentence starts from a "
                                                           "parser or senter are not implemented for it)"));
    if (rules) return std::make_unique<pipeline_annotator<spacy_trf_ner_with_rules<Policy>>>(p, std::move(m), o);
    return std::make_unique<pipeline_annotator<spacy_trf_ner<Policy>>>(p, std::move(m), o);
  }
  switch (m->source) {
    case spacy_sentences::parser:
      if (rules) return std::make_unique<pipeline_annotator<spacy_parser_ner_with_rules<Policy>>>(p, std::move(m), o);
      return std::make_unique<pipeline_annotator<spacy_parser_ner<Policy>>>(p, std::move(m), o);
    case spacy_sentences::senter:
      if (rules) return std::make_unique<pipeline_annotator<spacy_senter_ner_with_rules<Policy>>>(p, std::move(m), o);
      return std::make_unique<pipeline_annotator<spacy_senter_ner<Policy>>>(p, std::move(m), o);
    case spacy_sentences::none:
      break;
  }
  std::shared_ptr<const spacy_model> ner(m, m->ner.get());  // shares ownership with the pipeline model
  if (rules) return std::make_unique<pipeline_annotator<spacy_ner_with_rules<Policy>>>(p, std::move(ner), o);
  return std::make_unique<pipeline_annotator<spacy_ner<Policy>>>(p, std::move(ner), o);
}

NERPIPE_NAMESPACE_END
