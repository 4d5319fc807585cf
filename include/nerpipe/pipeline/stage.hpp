// SPDX-License-Identifier: Apache-2.0
//! @file Stages: what a pipeline is composed of, and the concepts that say what each kind reads from and adds
//! to the batch (pipeline/batch.hpp).
//!
//! A stage is a class template on the device policy, `template <device_policy P> class S`, with
//!   static constexpr stage_kind kind;            // tokenizer, embedding, encoder, head, decoder, rule, merge
//!   static constexpr field_set reads, writes;    // batch fields it needs and the ones it fills
//!   static constexpr std::string_view name;      // for messages and stage timings
//!   S(const P& policy, const Model& model, const pipeline_options& options);   // for the models it accepts
//!   void run(batch<P>& b);                       // host stages: the whole batch; device stages: b.pass
//!   std::size_t workspace_bytes(const batch_shape& shape) const;  // policy memory a pass of that shape needs
//!
//! Host stages (tokenizer, decoder, rule, merge) run over the whole batch; device stages (embedding, encoder,
//! head) run once per forward pass, over the sequences of `batch::pass`. In a pipeline the device stages form
//! one contiguous group: host stages before it prepare a batch, host stages after it finish one, so the
//! pipeline can overlap them with the device work of other batches (pipeline/overlap.hpp).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/pipeline/annotator.hpp>
#include <nerpipe/pipeline/batch.hpp>
#include <nerpipe/policy/device_policy.hpp>

#include <concepts>
#include <cstddef>
#include <memory>
#include <string_view>

NERPIPE_NAMESPACE_BEGIN

enum class stage_kind : unsigned char {
  tokenizer,  ///< text -> words and/or pieces, and the sequences a forward pass runs over
  embedding,  ///< sequences -> hidden (device)
  encoder,    ///< hidden -> hidden (device)
  head,       ///< hidden -> logits (a classifier) or spans/entities (a transition decoder) (device)
  decoder,    ///< logits -> entities (host: Hugging Face aggregation)
  rule,       ///< entities + words -> entities (host: an entity ruler, a user's own rules)
  merge,      ///< entities + words -> merged tokens (host: merge_entities)
};

[[nodiscard]] constexpr bool is_device_kind(stage_kind k) noexcept {
  return k == stage_kind::embedding || k == stage_kind::encoder || k == stage_kind::head;
}

[[nodiscard]] constexpr std::string_view to_string(stage_kind k) noexcept {
  switch (k) {
    case stage_kind::tokenizer: return "tokenizer";
    case stage_kind::embedding: return "embedding";
    case stage_kind::encoder: return "encoder";
    case stage_kind::head: return "head";
    case stage_kind::decoder: return "decoder";
    case stage_kind::rule: return "rule";
    case stage_kind::merge: return "merge";
  }
  return "?";
}

struct entity_ruler_config;  // stages/entity_ruler.hpp

/// Everything a stage may be told at construction: the annotate options every family understands, plus
/// pipeline-wide settings.
struct pipeline_options : annotate_options {
  std::size_t max_length = 0;     ///< transformers: tokens per window with the special tokens (0: the model's)
  bool want_merged = false;       ///< fill document::merged (merge_entities' tokens)
  bool time_stages = false;       ///< measure each stage (pipeline::stage_seconds); synchronises the device per stage
  /// Patterns and settings of an entity_ruler stage (none: the stage passes entities through).
  std::shared_ptr<const entity_ruler_config> entity_ruler;

  pipeline_options() = default;
  pipeline_options(const annotate_options& a) : annotate_options(a) {}  // NOLINT: every annotate option carries over
};

/// The members every stage has (see the file comment).
template <class S, class P>
concept pipeline_stage = device_policy<P> && requires(S& s, const S& cs, batch<P>& b, const batch_shape& shape) {
  { S::kind } -> std::convertible_to<stage_kind>;
  { S::reads } -> std::convertible_to<field_set>;
  { S::writes } -> std::convertible_to<field_set>;
  { S::name } -> std::convertible_to<std::string_view>;
  s.run(b);
  { cs.workspace_bytes(shape) } -> std::convertible_to<std::size_t>;
};

/// text -> words and/or pieces; it must say what the forward passes run over.
template <class S, class P>
concept tokenizer_stage = pipeline_stage<S, P> && S::kind == stage_kind::tokenizer && S::reads.has(field::text) &&
                          S::writes.has(field::sequences);
/// sequences -> hidden, once per pass.
template <class S, class P>
concept embedding_stage = pipeline_stage<S, P> && S::kind == stage_kind::embedding && S::reads.has(field::sequences) &&
                          S::writes.has(field::hidden);
/// hidden -> hidden, once per pass.
template <class S, class P>
concept encoder_stage = pipeline_stage<S, P> && S::kind == stage_kind::encoder && S::reads.has(field::hidden) &&
                        S::writes.has(field::hidden);
/// hidden -> logits, or hidden -> entities (a transition decoder that finds the entities itself), or
/// sentence starts (a parser); a head with its own small encoder (spaCy's senter) reads the word features instead.
template <class S, class P>
concept head_stage = pipeline_stage<S, P> && S::kind == stage_kind::head &&
                     (S::reads.has(field::hidden) || S::reads.has(field::word_features)) &&
                     (S::writes.has(field::logits) || S::writes.has(field::entities) ||
                      S::writes.has(field::sentence_starts));
/// logits -> entities.
template <class S, class P>
concept decoder_stage = pipeline_stage<S, P> && S::kind == stage_kind::decoder && S::writes.has(field::entities);
/// entities -> entities.
template <class S, class P>
concept rule_stage = pipeline_stage<S, P> && S::kind == stage_kind::rule && S::reads.has(field::entities) &&
                     S::writes.has(field::entities);
/// entities + words -> merged tokens.
template <class S, class P>
concept merge_stage = pipeline_stage<S, P> && S::kind == stage_kind::merge && S::reads.has(field::entities) &&
                      S::writes.has(field::merged);

/// Whether S is a well-formed stage of its kind.
template <class S, class P>
inline constexpr bool is_stage_of_its_kind = tokenizer_stage<S, P> || embedding_stage<S, P> || encoder_stage<S, P> ||
                                             head_stage<S, P> || decoder_stage<S, P> || rule_stage<S, P> ||
                                             merge_stage<S, P>;

NERPIPE_NAMESPACE_END
