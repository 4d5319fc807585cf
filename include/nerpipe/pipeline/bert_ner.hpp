// SPDX-License-Identifier: Apache-2.0
//! @file The Hugging Face token-classification families as compositions of stages: sub-word tokenizer (windows)
//! -> embedding -> encoder -> classification head -> the TokenClassificationPipeline post-processing ->
//! merge_entities. See stages/hf.hpp for the long-document and precision rules.
//!   bert_ner      BERT, DistilBERT
//!   roberta_ner   RoBERTa, XLM-R, CamemBERT: BERT's stages (the position ids come from the model's settings)
//!   electra_ner   ELECTRA: embeddings projected from embedding_size, then BERT's encoder
//!   deberta_ner   DeBERTa-v2/v3: projected embeddings, disentangled relative attention
//! make_hf_annotator picks the family from config.json's model_type.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/head/hf_postprocess.hpp>
#include <nerpipe/model/hf/hf_model.hpp>
#include <nerpipe/pipeline/pipeline.hpp>
#include <nerpipe/stages/entity_ruler.hpp>
#include <nerpipe/stages/hf.hpp>
#include <nerpipe/stages/merge_entities.hpp>

#include <exception>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// Hugging Face BERT / DistilBERT NER on `Policy` (and RoBERTa / XLM-R / CamemBERT: see roberta_ner).
template <class Policy>
using bert_ner = pipeline<Policy, stages::hf_tokenizer, stages::bert_embedding, stages::transformer_encoder,
                          stages::token_classifier, stages::hf_decoder, stages::merge_entities>;

/// The same with an entity_ruler after the post-processing (pipeline_options::entity_ruler).
template <class Policy>
using bert_ner_with_rules = pipeline<Policy, stages::hf_tokenizer, stages::bert_embedding, stages::transformer_encoder,
                                     stages::token_classifier, stages::hf_decoder, stages::entity_ruler,
                                     stages::merge_entities>;

/// Hugging Face RoBERTa / XLM-R / CamemBERT NER: the BERT stages (one type with bert_ner; bert_embedding counts
/// position ids from padding_idx + 1 for these models).
template <class Policy>
using roberta_ner = pipeline<Policy, stages::hf_tokenizer, stages::bert_embedding, stages::transformer_encoder,
                             stages::token_classifier, stages::hf_decoder, stages::merge_entities>;

/// Hugging Face ELECTRA NER (ElectraForTokenClassification).
template <class Policy>
using electra_ner = pipeline<Policy, stages::hf_tokenizer, stages::projected_embedding, stages::transformer_encoder,
                             stages::token_classifier, stages::hf_decoder, stages::merge_entities>;
template <class Policy>
using electra_ner_with_rules = pipeline<Policy, stages::hf_tokenizer, stages::projected_embedding,
                                        stages::transformer_encoder, stages::token_classifier, stages::hf_decoder,
                                        stages::entity_ruler, stages::merge_entities>;

/// Hugging Face DeBERTa-v2/v3 NER (DebertaV2ForTokenClassification).
template <class Policy>
using deberta_ner = pipeline<Policy, stages::hf_tokenizer, stages::projected_embedding, stages::deberta_encoder,
                             stages::token_classifier, stages::hf_decoder, stages::merge_entities>;
template <class Policy>
using deberta_ner_with_rules = pipeline<Policy, stages::hf_tokenizer, stages::projected_embedding,
                                        stages::deberta_encoder, stages::token_classifier, stages::hf_decoder,
                                        stages::entity_ruler, stages::merge_entities>;

/// The family pipeline name of a model ("bert_ner", "roberta_ner", "electra_ner", "deberta_ner").
[[nodiscard]] inline const char* hf_family_pipeline(const hf_model& m) noexcept {
  switch (m.config.arch) {
    case hf_arch::roberta: return "roberta_ner";
    case hf_arch::electra: return "electra_ner";
    case hf_arch::deberta_v2: return "deberta_ner";
    case hf_arch::bert:
    case hf_arch::distilbert: break;
  }
  return "bert_ner";
}

/// The transformers pipeline's own output form (label, word, score, offsets) for each text, in order; throws the
/// error of the first text that could not be processed.
template <class Policy, template <class> class... Stages>
[[nodiscard]] std::vector<std::vector<hf_entity>> hf_entities(pipeline<Policy, Stages...>& p,
                                                              std::span<const std::string_view> texts) {
  const auto docs = p(texts);
  const auto& b = p.last_batch();
  for (std::size_t d = 0; d < b.size(); ++d)
    if (b.doc_exception[d]) std::rethrow_exception(b.doc_exception[d]);
  for (const auto& d : docs)  // a stage that failed a document without an exception: its status says which error
    if (!d.ok())
      NERPIPE_THROW(input_error(d.status == record_status::invalid_utf8 ? errc::input_invalid_utf8 : errc::input_too_large, d.error));
  const auto& raw = p.template stage<stages::hf_decoder>().raw();
  return {raw.begin(), raw.end()};
}

/// A type-erased annotator for `m` on policy `p`: the family pipeline of its model_type.
template <class Policy>
[[nodiscard]] std::unique_ptr<annotator> make_hf_annotator(const Policy& p, const hf_model& m, const pipeline_options& o) {
  auto keep = std::make_shared<const hf_model>(m);
  switch (m.config.arch) {
    case hf_arch::electra:
      if (o.entity_ruler) return std::make_unique<pipeline_annotator<electra_ner_with_rules<Policy>>>(p, keep, o);
      return std::make_unique<pipeline_annotator<electra_ner<Policy>>>(p, keep, o);
    case hf_arch::deberta_v2:
      if (o.entity_ruler) return std::make_unique<pipeline_annotator<deberta_ner_with_rules<Policy>>>(p, keep, o);
      return std::make_unique<pipeline_annotator<deberta_ner<Policy>>>(p, keep, o);
    case hf_arch::bert:
    case hf_arch::distilbert:
    case hf_arch::roberta: break;
  }
  if (o.entity_ruler) return std::make_unique<pipeline_annotator<bert_ner_with_rules<Policy>>>(p, keep, o);
  return std::make_unique<pipeline_annotator<bert_ner<Policy>>>(p, keep, o);
}

NERPIPE_NAMESPACE_END
