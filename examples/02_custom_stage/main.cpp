// SPDX-License-Identifier: Apache-2.0
//! @file Writing a stage of one's own and putting it into a pipeline.
//!
//! A stage is a class template on the device policy that says what it reads from the batch and what it adds
//! (pipeline/stage.hpp). `contact_ruler` below is a rule stage: after the NER head it labels e-mail addresses and
//! web addresses the model left alone, as EMAIL and URL entities. It is composed with spaCy's stages into a new
//! pipeline type, followed by the library's own rule stage, entity_ruler (spaCy's EntityRuler with phrase
//! patterns), and merge_entities. Reading a field no earlier stage writes would be a compile-time error naming it.
//!
//!   example_02_custom_stage SPACY_MODEL_DIR CORPUS.jsonl [PATTERNS.jsonl]
//! prints, per document, its merged text (each entity replaced by its label, as spaCy's merge_entities +
//! `" ".join(t.ent_type_ or t.text for t in doc)` would).
#include <nerpipe/nerpipe.hpp>

#include <algorithm>
#include <iostream>
#include <memory>
#include <string_view>

namespace {

/// words + entities -> entities: a word that looks like an e-mail or a web address becomes an entity, unless the
/// NER already labelled it.
template <nerpipe::device_policy Policy>
class contact_ruler {
 public:
  static constexpr nerpipe::stage_kind kind = nerpipe::stage_kind::rule;
  static constexpr nerpipe::field_set reads = nerpipe::field::words | nerpipe::field::entities;
  static constexpr nerpipe::field_set writes = nerpipe::field::entities;
  static constexpr std::string_view name = "contact_ruler";

  // Every stage is built from (policy, model, options); this one needs neither weights nor options.
  template <class Model>
  contact_ruler(const Policy&, const Model&, const nerpipe::pipeline_options&) {}

  [[nodiscard]] std::size_t workspace_bytes(const nerpipe::batch_shape&) const noexcept { return 0; }

  void run(nerpipe::batch<Policy>& b) {
    for (std::size_t d = 0; d < b.size(); ++d) {
      if (!b.live(d)) continue;  // a document an earlier stage could not process
      nerpipe::document& doc = *b.docs[d];
      const std::string_view text = b.doc_text_of(d);
      for (std::size_t w = b.doc_words.begin(d); w < b.doc_words.end(d); ++w) {
        const auto begin = static_cast<std::size_t>(b.word_begin[w]), end = static_cast<std::size_t>(b.word_end[w]);
        const std::string_view word = text.substr(begin, end - begin);
        const char* label = word.find('@') != std::string_view::npos && word.find('.') != std::string_view::npos ? "EMAIL"
                            : word.starts_with("http://") || word.starts_with("https://") || word.starts_with("www.") ? "URL"
                                                                                                                         : nullptr;
        if (label == nullptr) continue;
        const bool taken = std::any_of(doc.entities.begin(), doc.entities.end(),
                                       [&](const nerpipe::entity& e) { return e.start_byte < end && e.end_byte > begin; });
        if (taken) continue;
        nerpipe::entity e;
        e.start_byte = begin;
        e.end_byte = end;
        e.start = static_cast<std::size_t>(b.word_begin_cp[w]);
        e.end = static_cast<std::size_t>(b.word_end_cp[w]);
        e.label = label;
        e.text = std::string(word);
        doc.entities.push_back(std::move(e));
      }
      std::sort(doc.entities.begin(), doc.entities.end(),
                [](const nerpipe::entity& x, const nerpipe::entity& y) { return x.start_byte < y.start_byte; });
    }
  }
};

/// spaCy's NER, then the custom stage, then spaCy's EntityRuler semantics, then merge_entities.
template <class Policy>
using my_ner = nerpipe::pipeline<Policy, nerpipe::stages::spacy_tokenizer, nerpipe::stages::multi_hash_embed,
                                 nerpipe::stages::maxout_window_encoder, nerpipe::stages::transition_ner, contact_ruler,
                                 nerpipe::stages::entity_ruler, nerpipe::stages::merge_entities>;

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 3 || argc > 4) {
    std::cerr << "usage: " << argv[0] << " SPACY_MODEL_DIR CORPUS.jsonl [PATTERNS.jsonl]\n";
    return 2;
  }
  const auto model = nerpipe::load_spacy_model(argv[1]);
  nerpipe::pipeline_options options;
  options.want_merged = true;
  if (argc == 4) {
    auto rules = std::make_shared<nerpipe::entity_ruler_config>();
    rules->patterns = nerpipe::read_entity_patterns(argv[3]);
    options.entity_ruler = rules;
  }
  my_ner<nerpipe::cpu_policy> nlp(nerpipe::cpu_policy{}, model, options);
  nerpipe::jsonl_reader corpus(argv[2]);
  std::vector<nerpipe::document> batch;
  for (nerpipe::document d; corpus.next(d);) batch.push_back(std::move(d));
  nlp.annotate(batch);  // one batch; nerpipe::round_robin or make_pipeline(...).pipe() batch large inputs
  for (const auto& doc : batch) {
    if (!doc.ok()) {
      std::cout << doc.id << "\terror: " << doc.error << '\n';
      continue;
    }
    std::cout << doc.id << '\t' << nerpipe::merged_text(doc.text, doc.merged) << '\n';
  }
  return 0;
} catch (const nerpipe::error& e) {
  std::cerr << e.what() << '\n';
  return 1;
}
