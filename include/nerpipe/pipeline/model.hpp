// SPDX-License-Identifier: Apache-2.0
//! @file The model seam: recognise a model directory's family, load it, and make annotators from it.
//!
//! `load_model(dir)` looks at the files: config.json + model.safetensors is a Hugging Face token
//! classifier, meta.json + config.cfg a spaCy pipeline. `make_annotator(policy, model, options)` gives
//! the type-erased annotator executors run; call it once per replica (each owns its device copy).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/pipeline/annotator.hpp>
#include <nerpipe/pipeline/pipe.hpp>
#include <nerpipe/pipeline/stage.hpp>
#include <nerpipe/policy/memory_space.hpp>

#if __has_include(<nerpipe/spacy.hpp>)
#  include <nerpipe/spacy.hpp>
#  define NERPIPE_HAS_SPACY_FAMILY 1
#else
#  define NERPIPE_HAS_SPACY_FAMILY 0
#endif
#if __has_include(<nerpipe/hf.hpp>)
#  include <nerpipe/hf.hpp>
#  define NERPIPE_HAS_HF_FAMILY 1
#else
#  define NERPIPE_HAS_HF_FAMILY 0
#endif

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

enum class model_family : unsigned char { hugging_face, spacy };

inline std::string_view to_string(model_family f) noexcept {
  return f == model_family::hugging_face ? "hugging_face" : "spacy";
}

/// A loaded model of either family: host weights, shared by every annotator made from it.
struct model {
  model_family family = model_family::hugging_face;
  std::filesystem::path dir;
#if NERPIPE_HAS_HF_FAMILY
  std::shared_ptr<const hf_model> hf;
#endif
#if NERPIPE_HAS_SPACY_FAMILY
  std::shared_ptr<const spacy_model> spacy;                  ///< the NER
  std::shared_ptr<const spacy_pipeline_model> spacy_pipeline;  ///< the NER and what sets its sentence starts
#endif

  /// Entity labels the model can report (BIO prefixes removed, first-seen order).
  [[nodiscard]] std::vector<std::string> labels() const {
    std::vector<std::string> out;
    auto add = [&](std::string l) {
      if (l.size() > 2 && (l[0] == 'B' || l[0] == 'I' || l[0] == 'E' || l[0] == 'S' || l[0] == 'L' || l[0] == 'U') && l[1] == '-')
        l.erase(0, 2);
      if (l == "O") return;
      for (const auto& x : out)
        if (x == l) return;
      out.push_back(std::move(l));
    };
#if NERPIPE_HAS_HF_FAMILY
    if (hf)
      for (const auto& l : hf->config.id2label) add(l);
#endif
#if NERPIPE_HAS_SPACY_FAMILY
    if (spacy)
      for (const auto& l : spacy->labels) add(l);
#endif
    return out;
  }
};

/// Which family a directory holds, from its files; model_error (model_file_missing) when neither.
inline model_family detect_model_family(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    const bool exists = fs::exists(dir, ec);
    NERPIPE_THROW(model_error(errc::model_file_missing,
                              dir.string() + (exists ? ": is not a directory" : ": does not exist") +
                                  " (expected a Hugging Face model directory with config.json and model.safetensors, or a "
                                  "spaCy pipeline directory with meta.json and config.cfg)"));
  }
  const bool hf = fs::exists(dir / "config.json", ec);
  const bool spacy = fs::exists(dir / "meta.json", ec) && fs::exists(dir / "config.cfg", ec);
  if (spacy) return model_family::spacy;
  if (hf) return model_family::hugging_face;  // load_hf_model says what else is missing
  NERPIPE_THROW(model_error(errc::model_file_missing,
                            dir.string() + ": no config.json (Hugging Face) and no meta.json + config.cfg (spaCy); "
                                           "expected a model directory of one of these families"));
}

/// What load_model reads besides the required files.
struct model_options {
  /// spaCy: where the NER's sentence starts come from. Unset: what `spacy.load(dir)` runs (the parser for
  /// en_core_web_sm/md/lg; none for a pipeline without one); none: spaCy's NER-only pipeline (faster).
  std::optional<spacy_sentences> sentences;
};

/// Loads a model directory of either family; model_error when it cannot be used.
inline model load_model(const std::filesystem::path& dir, const model_options& options = {}) {
  model m;
  m.family = detect_model_family(dir);
  m.dir = dir;
  if (m.family == model_family::spacy) {
#if NERPIPE_HAS_SPACY_FAMILY
    m.spacy = std::make_shared<const spacy_model>(load_spacy_model(dir));
    auto p = std::make_shared<spacy_pipeline_model>();
    p->ner = m.spacy;
    p->source = options.sentences ? *options.sentences : spacy_default_sentences(dir);
    if (!m.spacy->listens_to.empty()) {  // a transformer pipeline: the NER listens to its `transformer`
      const auto cfg_path = dir / "config.cfg";
      const spacy::config_file cfg(spacy::detail::read_file(cfg_path, "config.cfg"), cfg_path.string());
      auto trf = std::make_shared<const spacy_transformer_model>(load_spacy_transformer(dir, cfg, m.spacy->listens_to));
      if (trf->hf.config.hidden != m.spacy->ner.width)
        NERPIPE_THROW(model_error(errc::model_shape_mismatch, (dir / "ner" / "model").string() + ": the projection reads " +
                                                                  std::to_string(m.spacy->ner.width) + "-wide rows, but the transformer's hidden_size is " +
                                                                  std::to_string(trf->hf.config.hidden)));
      if (p->source != spacy_sentences::none)
        NERPIPE_THROW(model_error(errc::model_unsupported, dir.string() + ": the " + std::string(p->source == spacy_sentences::parser ? "parser" : "senter") +
                                                               " of a spaCy transformer pipeline is not implemented; run its NER alone "
                                                               "(model_options::sentences = none, nerpipe --sentences none)"));
      p->transformer = std::move(trf);
    }
    if (p->source != spacy_sentences::none) {
      spacy_parser_parts parts;
      parts.parser = p->source == spacy_sentences::parser;
      parts.senter = p->source == spacy_sentences::senter;
      p->sentences = std::make_shared<const spacy_parser_model>(load_spacy_parser_model(dir, parts));
    }
    m.spacy_pipeline = std::move(p);
#else
    NERPIPE_THROW(model_error(errc::model_unsupported, dir.string() + ": a spaCy pipeline, but this build has no spaCy family"));
#endif
  } else {
#if NERPIPE_HAS_HF_FAMILY
    m.hf = std::make_shared<const hf_model>(load_hf_model(dir));
#else
    NERPIPE_THROW(model_error(errc::model_unsupported,
                              dir.string() + ": a Hugging Face model, but this build has no Hugging Face family"));
#endif
  }
  return m;
}

/// An annotator for `m` on `policy`: the model family's pipeline (with an entity_ruler stage when
/// options.entity_ruler is set), type-erased. Thread-compatible, not thread-safe: one per thread.
template <class Policy>
std::unique_ptr<annotator> make_annotator(Policy policy, const model& m, const pipeline_options& options = {}) {
  if (m.family == model_family::spacy) {
#if NERPIPE_HAS_SPACY_FAMILY
    // Every policy that provides the spaCy ops (ops/spacy.hpp): cpu_policy, and cuda_policy from a .cu file.
    if (m.spacy_pipeline) return make_spacy_annotator(policy, m.spacy_pipeline, options);
    // A model put together by hand with only its NER: spaCy's NER-only pipeline.
    if (m.spacy)
      return make_spacy_annotator(
          policy, std::make_shared<const spacy_pipeline_model>(spacy_pipeline_model{m.spacy, nullptr, spacy_sentences::none, nullptr}),
          options);
    NERPIPE_THROW(config_error(errc::config_invalid, "make_annotator: the model holds no spaCy pipeline"));
#else
    NERPIPE_THROW(model_error(errc::model_unsupported, m.dir.string() + ": this build has no spaCy family"));
#endif
  }
#if NERPIPE_HAS_HF_FAMILY
  if (!m.hf) NERPIPE_THROW(config_error(errc::config_invalid, "make_annotator: the model holds no Hugging Face model"));
  return make_hf_annotator(policy, *m.hf, options);
#else
  NERPIPE_THROW(model_error(errc::model_unsupported, m.dir.string() + ": this build has no Hugging Face family"));
#endif
}

/// The factory executors call once per replica: `rr.run(pipeline_factory(model, options), source, sink)`.
/// Keeps the model alive as long as it lives.
[[nodiscard]] inline auto pipeline_factory(const model& m, pipeline_options options = {}) {
  return [m, options = std::move(options)](auto& policy, std::size_t) { return make_annotator(policy, m, options); };
}

/// The pipeline of `m`'s family on `policy`, type-erased at this one point (the composed types, bert_ner<P> and
/// spacy_ner<P>, stay available):
///
///     auto model = nerpipe::load_model(dir);
///     auto nlp = nerpipe::make_pipeline(nerpipe::cpu_policy{}, model);
///     for (const nerpipe::document& doc : nlp.pipe(nerpipe::jsonl_reader("corpus.jsonl"))) ...
template <class Policy>
[[nodiscard]] any_pipeline make_pipeline(Policy policy, const model& m, pipeline_options options = {}) {
  auto a = make_annotator(std::move(policy), m, options);
  return any_pipeline(std::move(a), std::move(options));
}

NERPIPE_NAMESPACE_END
