// SPDX-License-Identifier: Apache-2.0
//! @file The stages of a Hugging Face token classifier: tokenizer (windows of sub-word pieces), embedding,
//! encoder, classification head, and the TokenClassificationPipeline post-processing. The families compose them
//! (pipeline/bert_ner.hpp):
//!   BERT, DistilBERT, RoBERTa / XLM-R / CamemBERT  bert_embedding -> transformer_encoder
//!   ELECTRA                                        projected_embedding -> transformer_encoder
//!   DeBERTa-v2/v3                                  projected_embedding -> deberta_encoder
//! each followed by token_classifier and hf_decoder. Position ids follow the model (hf_config::position_ids:
//! RoBERTa counts them from padding_idx + 1).
//!
//! Long documents. transformers 4.57.6 truncates at model_max_length when `stride` is not given (the rest of
//! the text gets no entities). nerpipe never drops text: with `stride` unset (0) a document longer than one
//! window is cut into windows that overlap by a quarter of a window (127 tokens for a 512-token model) and
//! merged as the reference merges stride windows (aggregate_overlapping_entities). Documents that fit in one
//! window give exactly the reference output; with `stride` set, the windows and the merge are the reference's.
//! A document of more than about group_windows windows (annotate_options::group_windows, 64) runs a group of
//! windows at a time (pipeline::annotate_long): the tokenizer streams its windows (any_tokenizer::start_windows),
//! the decoder merges each window's entities into the earlier ones as they become final (overlap_merger) and
//! appends them to the document, so memory stays that of a group; the entities are the same as all at once.
//!
//! Precision: the policy's compute_dtype() at construction. f32 (cpu_policy always, cuda_policy's exact mode):
//! fp32 throughout. bf16 (cuda_policy's fast mode): weights and activations bf16, fp32 accumulation, LayerNorm
//! and softmax math in fp32, fp32 logits; the post-processing is the same either way.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/embedding/bert_embedding.hpp>
#include <nerpipe/embedding/projected_embedding.hpp>
#include <nerpipe/encoder/deberta_encoder.hpp>
#include <nerpipe/encoder/precision.hpp>
#include <nerpipe/encoder/transformer_encoder.hpp>
#include <nerpipe/head/hf_postprocess.hpp>
#include <nerpipe/head/token_classifier.hpp>
#include <nerpipe/model/hf/hf_model.hpp>
#include <nerpipe/pipeline/batch.hpp>
#include <nerpipe/pipeline/stage.hpp>
#include <nerpipe/policy/device_policy.hpp>
#include <nerpipe/policy/staging.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

NERPIPE_NAMESPACE_BEGIN
namespace stages {

/// text -> windows of sub-word pieces (ids, type ids, offsets, special mask, piece->word) and the words of
/// the tokenizer's pre-tokenization; one model sequence per window.
template <device_policy Policy>
class hf_tokenizer {
 public:
  static constexpr stage_kind kind = stage_kind::tokenizer;
  static constexpr field_set reads = field::text;
  static constexpr field_set writes = field::words | field::pieces | field::windows | field::sequences;
  static constexpr std::string_view name = "hf_tokenizer";

  hf_tokenizer(const Policy&, const hf_model& m, const pipeline_options& o) : model_(m) {
    max_length_ = o.max_length != 0 ? o.max_length : m.max_length;
    if (max_length_ > m.config.max_window())
      NERPIPE_THROW(config_error(errc::config_invalid,
                                 "max_length " + std::to_string(max_length_) + " exceeds the model's longest window " +
                                     std::to_string(m.config.max_window()) + " (max_position_embeddings " +
                                     std::to_string(m.config.max_position) +
                                     (m.config.position_ids == hf_position_ids::roberta
                                          ? ", less the padding_idx + 1 positions RoBERTa skips)"
                                          : ")")));
    const std::size_t specials = m.tokenizer->num_special_tokens();
    if (max_length_ <= specials + 1)
      NERPIPE_THROW(config_error(errc::config_invalid, "max_length " + std::to_string(max_length_) +
                                                           " leaves no room for text after the special tokens"));
    window_ = max_length_ - specials;
    if (o.stride >= window_)
      NERPIPE_THROW(config_error(errc::config_invalid, "stride " + std::to_string(o.stride) +
                                                           " must be smaller than max_length (" + std::to_string(max_length_) +
                                                           ") minus the special tokens (" + std::to_string(specials) + ")"));
    stride_ = o.stride != 0 ? o.stride : window_ / 4;
    group_windows_ = o.group_windows != 0 ? o.group_windows : 64;
  }

  /// Documents longer than this (bytes) run window group by window group (batch::reset_group; about
  /// group_windows windows at 4 bytes a token).
  [[nodiscard]] std::size_t group_bytes() const noexcept { return group_windows_ * window_ * 4; }
  /// Makes a group whole forward passes of `pass_rows` rows (a multiple of the full windows one pass takes), so
  /// each window runs in the same pass as all at once and its scores are the same to the bit.
  void align_groups(std::size_t pass_rows) noexcept {
    const std::size_t k = std::max<std::size_t>(1, pass_rows / max_length_);
    group_windows_ = (group_windows_ + k - 1) / k * k;
  }

  /// Tokens per window, the special tokens included.
  [[nodiscard]] std::size_t max_length() const noexcept { return max_length_; }
  /// Overlap of consecutive windows (annotate_options::stride, else a quarter of a window).
  [[nodiscard]] std::size_t stride() const noexcept { return stride_; }
  [[nodiscard]] std::size_t workspace_bytes(const batch_shape&) const noexcept { return 0; }

  void run(batch<Policy>& b) {
    if (b.group.active) {
      run_group(b);
      return;
    }
    const auto& tok = *model_.tokenizer;
    const std::size_t vocab = model_.config.vocab_size, types = model_.config.type_vocab_size;
    for (std::size_t d = 0; d < b.size(); ++d) {
      const std::size_t first_window = b.window_doc.size();
      if (b.live(d)) {
        const std::string_view text = b.doc_text_of(d);
        try {
          tok.encode_windows(text, max_length_, stride_, encs_);
          check_ids(vocab, types);
          append(b, d, text);
        } catch (const std::exception& e) {
          b.fail_current(d, e);
          drop_windows(b, first_window);
        }
      }
      b.doc_windows.close(b.window_doc.size());
      b.doc_words.close(b.word_begin.size());
    }
    b.model_tokens = b.piece_id.size();
  }

 private:
  /// The next group of windows of the batch's one long document (the stream goes on from the last group), and
  /// where entities of later groups may start (batch::group_state).
  void run_group(batch<Policy>& b) {
    const auto& tok = *model_.tokenizer;
    document& doc = *b.docs[0];
    try {
      if (b.group.first) tok.start_windows(doc.text, max_length_, stride_, stream_);
      encs_.resize(group_windows_);
      std::size_t n = 0;
      while (n < group_windows_ && tok.next_window(stream_, encs_[n])) ++n;
      encs_.resize(n);
      b.group.bound = tok.window_floor(stream_);
      b.group.last = b.group.bound == std::numeric_limits<std::size_t>::max();
      check_ids(model_.config.vocab_size, model_.config.type_vocab_size);
      // Word indices count from the group's first word, so the batch's word arrays hold the group's words only.
      std::int32_t first_word = std::numeric_limits<std::int32_t>::max();
      for (const auto& e : encs_)
        for (const auto w : e.word_ids)
          if (w >= 0) first_word = std::min(first_word, w);
      append(b, 0, doc.text, first_word == std::numeric_limits<std::int32_t>::max() ? 0 : first_word);
    } catch (const std::exception& e) {
      b.fail_current(0, e);
      drop_windows(b, 0);
      b.group.last = true;
    }
    b.doc_windows.close(b.window_doc.size());
    b.doc_words.close(b.word_begin.size());
    b.model_tokens = b.piece_id.size();
  }

  void check_ids(std::size_t vocab, std::size_t types) const {
    for (const auto& e : encs_) {
      for (const auto id : e.ids)
        if (id < 0 || static_cast<std::size_t>(id) >= vocab)
          NERPIPE_THROW(model_error(errc::model_shape_mismatch, "token id " + std::to_string(id) +
                                                                    " is outside the model's vocabulary of " +
                                                                    std::to_string(vocab) + " (tokenizer and model disagree)"));
      if (types != 0)
        for (const auto t : e.type_ids)
          if (t < 0 || static_cast<std::size_t>(t) >= types)
            NERPIPE_THROW(model_error(errc::model_shape_mismatch, "token type id " + std::to_string(t) +
                                                                      " is outside type_vocab_size " + std::to_string(types)));
    }
  }

  /// The windows of document d, and its words (pieces grouped by pre-token, across overlapping windows).
  void append(batch<Policy>& b, std::size_t d, std::string_view text, std::int32_t first_word = 0) {
    std::int32_t words = 0;
    for (const auto& e : encs_)
      for (const auto w : e.word_ids) words = std::max(words, w + 1 - first_word);
    const std::size_t w0 = b.word_begin.size();
    b.word_begin.resize(w0 + static_cast<std::size_t>(words), -1);
    b.word_end.resize(w0 + static_cast<std::size_t>(words), -1);
    b.word_begin_cp.resize(w0 + static_cast<std::size_t>(words), -1);
    b.word_end_cp.resize(w0 + static_cast<std::size_t>(words), -1);
    for (const auto& e : encs_) {
      for (std::size_t k = 0; k < e.size(); ++k) {
        b.piece_id.push_back(e.ids[k]);
        b.piece_type.push_back(e.type_ids.size() == e.ids.size() ? e.type_ids[k] : 0);
        b.piece_word.push_back(e.word_ids[k] >= 0 ? e.word_ids[k] - first_word : e.word_ids[k]);
        b.piece_begin.push_back(static_cast<std::int32_t>(e.offsets[k].begin));
        b.piece_end.push_back(static_cast<std::int32_t>(e.offsets[k].end));
        b.piece_begin_byte.push_back(static_cast<std::int32_t>(e.byte_offsets[k].begin));
        b.piece_end_byte.push_back(static_cast<std::int32_t>(e.byte_offsets[k].end));
        b.piece_special.push_back(e.special_tokens_mask[k]);
        if (const std::int32_t w = e.word_ids[k] - first_word; e.word_ids[k] >= 0 && !e.special_tokens_mask[k]) {
          const std::size_t i = w0 + static_cast<std::size_t>(w);
          if (b.word_begin[i] < 0 || static_cast<std::int32_t>(e.byte_offsets[k].begin) < b.word_begin[i]) {
            b.word_begin[i] = static_cast<std::int32_t>(e.byte_offsets[k].begin);
            b.word_begin_cp[i] = static_cast<std::int32_t>(e.offsets[k].begin);
          }
          if (static_cast<std::int32_t>(e.byte_offsets[k].end) > b.word_end[i]) {
            b.word_end[i] = static_cast<std::int32_t>(e.byte_offsets[k].end);
            b.word_end_cp[i] = static_cast<std::int32_t>(e.offsets[k].end);
          }
        }
      }
      b.window_pieces.close(b.piece_id.size());
      b.window_doc.push_back(static_cast<std::int32_t>(d));
      b.sequence_rows.close(b.window_pieces.total());
      b.sequence_doc.push_back(static_cast<std::int32_t>(d));
    }
    for (std::size_t i = w0; i < b.word_begin.size(); ++i) {
      const auto end = static_cast<std::size_t>(std::max(0, b.word_end[i]));
      b.word_space.push_back(end < text.size() && text[end] == ' ');
    }
  }

  static void drop_windows(batch<Policy>& b, std::size_t first_window) {
    const std::size_t pieces = b.window_pieces.begin(std::min(first_window, b.window_pieces.size()));
    b.window_pieces.offsets.resize(first_window + 1);
    b.window_doc.resize(first_window);
    b.sequence_rows.offsets.resize(first_window + 1);
    b.sequence_doc.resize(first_window);
    for (auto* v : {&b.piece_id, &b.piece_type, &b.piece_word, &b.piece_begin, &b.piece_end, &b.piece_begin_byte,
                    &b.piece_end_byte})
      v->resize(pieces);
    b.piece_special.resize(pieces);
    const std::size_t words = b.doc_words.total();
    for (auto* v : {&b.word_begin, &b.word_end, &b.word_begin_cp, &b.word_end_cp}) v->resize(words);
    b.word_space.resize(words);
  }

  hf_model model_;
  std::size_t max_length_ = 0, window_ = 0, stride_ = 0, group_windows_ = 64;
  std::vector<encoding> encs_;
  window_stream stream_;  // the long document being run group by group
};

namespace hf_stage {

/// Writes the position ids the model gives one window of token `ids` into `out` (as long as `ids`).
inline void write_positions(const hf_config& c, std::span<const std::int32_t> ids, std::span<std::int32_t> out) {
  if (c.position_ids == hf_position_ids::roberta) {
    // create_position_ids_from_input_ids: padding_idx + cumsum(ids != padding_idx), padding_idx for a padding id
    // (a literal "<pad>" in the text is one; the packed layout has no other padding).
    const auto pad = static_cast<std::int32_t>(c.pad_token_id);
    std::int32_t count = 0;
    for (std::size_t i = 0; i < ids.size(); ++i) out[i] = ids[i] == pad ? pad : pad + ++count;
  } else {
    for (std::size_t i = 0; i < ids.size(); ++i) out[i] = static_cast<std::int32_t>(i);
  }
}

/// Appends the position ids of one window to `out` (write_positions into a grown vector).
inline void append_positions(const hf_config& c, std::span<const std::int32_t> ids, std::vector<std::int32_t>& out) {
  const std::size_t at = out.size();
  out.resize(at + ids.size());
  write_positions(c, ids, std::span<std::int32_t>(out).subspan(at));
}

/// An embedding stage: the pass's ids, token types and positions to policy memory, then `Component::forward` into
/// the pass's activations (grown as needed, in the compute type). Windows are packed longest first.
template <device_policy Policy, class Component>
class hf_embedding_stage {
 public:
  static constexpr stage_kind kind = stage_kind::embedding;
  static constexpr field_set reads = field::pieces | field::windows | field::sequences;
  static constexpr field_set writes = field::hidden;
  /// Windows are packed longest first: passes of similar lengths, the largest started first.
  static constexpr bool sort_sequences = true;

  hf_embedding_stage(const Policy& p, const hf_model& m, const pipeline_options& o)
      : config_(m.config), embedding_(p, m.config, *m.weights), pass_rows_(o.batch_tokens != 0 ? o.batch_tokens : 8192) {}

  /// The most rows (pieces) one forward pass packs (annotate_options::batch_tokens; a longer window runs alone).
  [[nodiscard]] std::size_t pass_rows() const noexcept { return pass_rows_; }
  [[nodiscard]] dtype compute_dtype() const noexcept { return embedding_.compute_dtype(); }
  [[nodiscard]] const Component& component() const noexcept { return embedding_; }
  /// The activations of one pass: rows x hidden in the compute type.
  [[nodiscard]] std::size_t workspace_bytes(const batch_shape& s) const noexcept {
    return s.rows * embedding_.hidden() * (compute_dtype() == dtype::bf16 ? 2 : 4) + 3 * s.rows * sizeof(std::int32_t);
  }

  void run(batch<Policy>& b) {
    const Policy& p = b.policy();
    // The pass's ids, token types and positions, staged on the host (pinned on cuda_policy: asynchronous copies).
    const std::size_t rows = b.pass.rows, H = embedding_.hidden();
    std::size_t staged = 0;
    for (std::size_t k = b.pass.first; k < b.pass.last; ++k) staged += b.window_pieces.length(static_cast<std::size_t>(b.order[k]));
    if (staged != rows)
      NERPIPE_THROW(model_error(errc::model_shape_mismatch, "bert_embedding: the pass has " + std::to_string(rows) +
                                                                " rows but its windows hold " + std::to_string(staged) + " pieces"));
    const std::span<std::int32_t> ids = ids_.host(p, rows), types = types_.host(p, rows), positions = positions_.host(p, rows);
    std::size_t row = 0;
    for (std::size_t k = b.pass.first; k < b.pass.last; ++k) {
      const auto w = static_cast<std::size_t>(b.order[k]);
      const std::size_t begin = b.window_pieces.begin(w), n = b.window_pieces.length(w);
      const auto piece_ids = std::span<const std::int32_t>(b.piece_id).subspan(begin, n);
      std::copy(piece_ids.begin(), piece_ids.end(), ids.begin() + static_cast<std::ptrdiff_t>(row));
      std::copy_n(b.piece_type.begin() + static_cast<std::ptrdiff_t>(begin), n, types.begin() + static_cast<std::ptrdiff_t>(row));
      write_positions(config_, piece_ids, positions.subspan(row, n));
      row += n;
    }
    const std::int32_t* d_ids = ids_.upload(p, rows);
    const std::int32_t* d_types = types_.upload(p, rows);
    const std::int32_t* d_positions = positions_.upload(p, rows);
    if (rows > capacity_) {
      capacity_ = rows + rows / 4;
      x_ = {};
      x_bf16_ = {};
      if (compute_dtype() == dtype::bf16)
        x_bf16_ = typename Policy::template buffer<bfloat16>(p, capacity_ * H);
      else
        x_ = typename Policy::template buffer<float>(p, capacity_ * H);
    }
    b.pass.compute = compute_dtype();
    b.pass.hidden_cols = H;
    ::nerpipe::detail::with_compute_type<Policy>(compute_dtype(), [&](auto zero) {
      using T = decltype(zero);
      T* x = nullptr;
      if constexpr (std::is_same_v<T, bfloat16>) x = x_bf16_.data();
      else x = x_.data();
      b.pass.hidden = x;
      embedding_.forward(p, d_ids, d_types, d_positions, b.pass.template hidden_as<T>());
    });
  }

 private:
  hf_config config_;
  Component embedding_;
  std::size_t pass_rows_;
  upload_staging<Policy, std::int32_t> ids_, types_, positions_;
  typename Policy::template buffer<float> x_;
  typename Policy::template buffer<bfloat16> x_bf16_;  // the activations in bf16 mode (x_ stays empty then)
  std::size_t capacity_ = 0;
};

/// Refuses a model whose architecture the stage does not compute (a wrong composition, named plainly).
inline void require_arch(const hf_model& m, std::string_view stage, std::initializer_list<hf_arch> archs) {
  for (const auto a : archs)
    if (m.config.arch == a) return;
  NERPIPE_THROW(config_error(errc::config_invalid, std::string(stage) + ": model_type \"" + m.config.model_type +
                                                       "\" is not computed by this stage (see the family pipelines "
                                                       "of pipeline/bert_ner.hpp)"));
}

}  // namespace hf_stage

/// sequences (windows) of the pass -> hidden: word + token type + position embeddings and LayerNorm (BERT,
/// DistilBERT, RoBERTa / XLM-R / CamemBERT).
template <device_policy Policy>
class bert_embedding : public hf_stage::hf_embedding_stage<Policy, nerpipe::bert_embedding<Policy>> {
 public:
  static constexpr std::string_view name = "bert_embedding";
  bert_embedding(const Policy& p, const hf_model& m, const pipeline_options& o)
      : hf_stage::hf_embedding_stage<Policy, nerpipe::bert_embedding<Policy>>(
            p, (hf_stage::require_arch(m, name, {hf_arch::bert, hf_arch::distilbert, hf_arch::roberta}), m), o) {}
};

/// sequences (windows) of the pass -> hidden: ELECTRA and DeBERTa-v2/v3 embeddings, with the projection from
/// embedding_size to hidden_size (embedding/projected_embedding.hpp).
template <device_policy Policy>
class projected_embedding : public hf_stage::hf_embedding_stage<Policy, nerpipe::projected_embedding<Policy>> {
 public:
  static constexpr std::string_view name = "projected_embedding";
  projected_embedding(const Policy& p, const hf_model& m, const pipeline_options& o)
      : hf_stage::hf_embedding_stage<Policy, nerpipe::projected_embedding<Policy>>(
            p, (hf_stage::require_arch(m, name, {hf_arch::electra, hf_arch::deberta_v2}), m), o) {}
};

/// hidden -> hidden: the transformer layers over the packed sequences of the pass.
template <device_policy Policy>
class transformer_encoder {
 public:
  static constexpr stage_kind kind = stage_kind::encoder;
  static constexpr field_set reads = field::hidden | field::sequences;
  static constexpr field_set writes = field::hidden;
  static constexpr std::string_view name = "transformer_encoder";

  transformer_encoder(const Policy& p, const hf_model& m, const pipeline_options&)
      : encoder_(p, (hf_stage::require_arch(m, name, {hf_arch::bert, hf_arch::distilbert, hf_arch::roberta, hf_arch::electra}),
                     m.config),
                 *m.weights) {}

  [[nodiscard]] nerpipe::transformer_encoder<Policy>& component() noexcept { return encoder_; }
  [[nodiscard]] const nerpipe::transformer_encoder<Policy>& component() const noexcept { return encoder_; }
  [[nodiscard]] std::size_t workspace_bytes(const batch_shape&) const noexcept { return 0; }  // keeps its own scratch

  void run(batch<Policy>& b) {
    detail::with_compute_type<Policy>(b.pass.compute, [&](auto zero) {
      using T = decltype(zero);
      encoder_.forward(b.policy(), b.pass.template hidden_as<T>(), b.pass.seq_offsets_device.data(),
                       b.pass.seq_offsets.data(), b.pass.size(), b.pass.longest);
    });
  }

 private:
  nerpipe::transformer_encoder<Policy> encoder_;
};

/// hidden -> hidden: DeBERTa-v2/v3 layers (disentangled relative attention) over the packed sequences of the pass.
template <device_policy Policy>
class deberta_encoder {
 public:
  static constexpr stage_kind kind = stage_kind::encoder;
  static constexpr field_set reads = field::hidden | field::sequences;
  static constexpr field_set writes = field::hidden;
  static constexpr std::string_view name = "deberta_encoder";

  deberta_encoder(const Policy& p, const hf_model& m, const pipeline_options&)
      : encoder_(p, (hf_stage::require_arch(m, name, {hf_arch::deberta_v2}), m.config), *m.weights) {}

  [[nodiscard]] nerpipe::deberta_encoder<Policy>& component() noexcept { return encoder_; }
  [[nodiscard]] const nerpipe::deberta_encoder<Policy>& component() const noexcept { return encoder_; }
  [[nodiscard]] std::size_t workspace_bytes(const batch_shape&) const noexcept { return 0; }  // keeps its own scratch

  void run(batch<Policy>& b) {
    detail::with_compute_type<Policy>(b.pass.compute, [&](auto zero) {
      using T = decltype(zero);
      encoder_.forward(b.policy(), b.pass.template hidden_as<T>(), b.pass.seq_offsets_device.data(),
                       b.pass.seq_offsets.data(), b.pass.size(), b.pass.longest);
    });
  }

 private:
  nerpipe::deberta_encoder<Policy> encoder_;
};

/// hidden -> logits (fp32), copied to the host rows of the pass's windows.
template <device_policy Policy>
class token_classifier {
 public:
  static constexpr stage_kind kind = stage_kind::head;
  static constexpr field_set reads = field::hidden | field::windows | field::sequences;
  static constexpr field_set writes = field::logits;
  static constexpr std::string_view name = "token_classifier";

  token_classifier(const Policy& p, const hf_model& m, const pipeline_options&)
      : head_(p, m.config, *m.weights), hidden_(m.config.hidden) {}

  [[nodiscard]] std::size_t num_labels() const noexcept { return head_.num_labels(); }
  [[nodiscard]] const nerpipe::token_classifier<Policy>& component() const noexcept { return head_; }
  [[nodiscard]] std::size_t workspace_bytes(const batch_shape& s) const noexcept { return s.rows * num_labels() * sizeof(float); }
  /// GEMM floating-point operations of the classifier over `tokens` tokens.
  [[nodiscard]] double gemm_flops(std::size_t tokens) const noexcept {
    return 2.0 * static_cast<double>(tokens) * static_cast<double>(hidden_ * num_labels());
  }

  void run(batch<Policy>& b) {
    const Policy& p = b.policy();
    const std::size_t L = num_labels(), rows = b.pass.rows;
    if (b.logit_cols != L || b.logits.size() != b.window_pieces.total() * L) {
      b.logit_cols = L;
      b.logits.assign(b.window_pieces.total() * L, 0.0f);
    }
    if (rows > capacity_) {
      capacity_ = rows + rows / 4;
      logits_ = typename Policy::template buffer<float>(p, capacity_ * L);
    }
    const matrix_view<float> lg(logits_.data(), rows, L);
    detail::with_compute_type<Policy>(b.pass.compute, [&](auto zero) {
      using T = decltype(zero);
      head_.forward(p, matrix_view<const T>(b.pass.template hidden_as<T>()), lg);
    });
    // Into pinned memory on cuda_policy (full bus speed); returns when the logits are there.
    const std::span<const float> host = host_.download(p, logits_.data(), rows * L);
    for (std::size_t k = b.pass.first, row = 0; k < b.pass.last; ++k) {
      const auto w = static_cast<std::size_t>(b.order[k]);
      const std::size_t n = b.window_pieces.length(w);
      std::copy_n(host.begin() + static_cast<std::ptrdiff_t>(row * L), n * L,
                  b.logits.begin() + static_cast<std::ptrdiff_t>(b.window_pieces.begin(w) * L));
      row += n;
    }
  }

 private:
  nerpipe::token_classifier<Policy> head_;
  std::size_t hidden_;
  typename Policy::template buffer<float> logits_;
  download_staging<Policy, float> host_;
  std::size_t capacity_ = 0;
};

/// logits -> entities: transformers' TokenClassificationPipeline post-processing (softmax, the aggregation
/// strategy, ignore_labels, the merge of overlapping windows), then entities with code-point and byte offsets.
template <device_policy Policy>
class hf_decoder {
 public:
  static constexpr stage_kind kind = stage_kind::decoder;
  static constexpr field_set reads = field::logits | field::pieces | field::windows;
  static constexpr field_set writes = field::entities | field::tokens;
  static constexpr std::string_view name = "hf_decoder";

  hf_decoder(const Policy&, const hf_model& m, const pipeline_options& o)
      : model_(m), post_(m.config.id2label, m.vocab.get()), strategy_(o.strategy), ignore_(o.ignore_labels),
        want_tokens_(o.want_tokens), pack_(o.pack_entities) {}

  [[nodiscard]] std::size_t workspace_bytes(const batch_shape&) const noexcept { return 0; }
  /// Changes the aggregation strategy of later batches (or of a batch finished again: the post-processing reads
  /// only the batch's logits, so one forward pass serves every strategy).
  void strategy(aggregation s) noexcept { strategy_ = s; }
  /// The pipeline's own output form of the last batch (label, word, score, offsets), per document of the batch
  /// (empty for a long document run group by group).
  [[nodiscard]] const std::vector<std::vector<hf_entity>>& raw() const noexcept { return raw_; }

  void run(batch<Policy>& b) {
    if (b.group.active) {
      run_group(b);
      return;
    }
    const std::size_t L = b.logit_cols;
    raw_.assign(b.size(), {});
    for (std::size_t d = 0; d < b.size(); ++d) {
      if (!b.live(d)) continue;
      chunks_.clear();
      const std::size_t nw = b.doc_windows.length(d);
      starts_.resize(nw);
      ends_.resize(nw);
      for (std::size_t k = 0; k < nw; ++k) {
        const std::size_t w = b.doc_windows.begin(d) + k, begin = b.window_pieces.begin(w), n = b.window_pieces.length(w);
        starts_[k].assign(b.piece_begin.begin() + static_cast<std::ptrdiff_t>(begin),
                          b.piece_begin.begin() + static_cast<std::ptrdiff_t>(begin + n));
        ends_[k].assign(b.piece_end.begin() + static_cast<std::ptrdiff_t>(begin),
                        b.piece_end.begin() + static_cast<std::ptrdiff_t>(begin + n));
        chunks_.push_back(hf_chunk{std::span<const std::int32_t>(b.piece_id).subspan(begin, n), starts_[k], ends_[k],
                                   std::span<const std::uint8_t>(b.piece_special).subspan(begin, n),
                                   std::span<const float>(b.logits).subspan(begin * L, n * L)});
      }
      document& doc = *b.docs[d];
      raw_[d] = post_.run(doc.text, chunks_, strategy_, ignore_);
      doc.entities = hf_postprocessor::to_entities(doc.text, raw_[d]);
      if (want_tokens_) fill_tokens(doc);
    }
  }

 private:
  /// One group of windows of a long document: each window's entities, merged with the earlier windows' as they
  /// become final (overlap_merger), converted and appended to the document (packed with pack_entities).
  void run_group(batch<Policy>& b) {
    raw_.assign(1, {});
    if (!b.live(0)) return;
    document& doc = *b.docs[0];
    const std::string_view text = doc.text;
    if (b.group.first) {
      merger_.clear();
      cps_.count = detail::code_point_count(text);
      map_cp_ = map_byte_ = ent_cp_ = ent_byte_ = 0;
      windows_ = 0;
    }
    const std::size_t L = b.logit_cols, nw = b.doc_windows.length(0);
    // The code points the group's windows read, one either side (hf_postprocessor::run_window).
    std::size_t lo = std::numeric_limits<std::size_t>::max(), hi = 0;
    for (std::size_t i = 0; i < b.piece_id.size(); ++i) {
      if (b.piece_special[i]) continue;
      lo = std::min(lo, static_cast<std::size_t>(b.piece_begin[i]));
      hi = std::max({hi, static_cast<std::size_t>(b.piece_begin[i]), static_cast<std::size_t>(b.piece_end[i])});
    }
    lo = lo == std::numeric_limits<std::size_t>::max() ? 0 : std::min(lo, cps_.count);
    hi = std::min(hi + 1, cps_.count);
    lo = lo > 0 ? lo - 1 : 0;
    advance(text, map_cp_, map_byte_, lo);
    cps_.first = map_cp_;
    cps_.pos.clear();
    for (std::size_t cp = map_cp_, byte = map_byte_; cp <= std::max(hi, map_cp_); ++cp) {
      cps_.pos.push_back(byte);
      if (byte < text.size()) byte = next_char(text, byte);
    }
    const bool single = b.group.first && b.group.last && nw == 1;  // one window: no merge, as in run()
    for (std::size_t k = 0; k < nw; ++k) {
      const std::size_t w = b.doc_windows.begin(0) + k, begin = b.window_pieces.begin(w), n = b.window_pieces.length(w);
      starts_.resize(1);
      ends_.resize(1);
      starts_[0].assign(b.piece_begin.begin() + static_cast<std::ptrdiff_t>(begin),
                        b.piece_begin.begin() + static_cast<std::ptrdiff_t>(begin + n));
      ends_[0].assign(b.piece_end.begin() + static_cast<std::ptrdiff_t>(begin),
                      b.piece_end.begin() + static_cast<std::ptrdiff_t>(begin + n));
      const hf_chunk c{std::span<const std::int32_t>(b.piece_id).subspan(begin, n), starts_[0], ends_[0],
                       std::span<const std::uint8_t>(b.piece_special).subspan(begin, n),
                       std::span<const float>(b.logits).subspan(begin * L, n * L)};
      auto ents = post_.run_window(text, cps_, c, strategy_, ignore_);
      if (single)
        for (auto& e : ents) emit(doc, std::move(e));
      else
        merger_.add(std::move(ents));
      ++windows_;
    }
    if (single) return;
    const auto put = [&](hf_entity&& e) { emit(doc, std::move(e)); };
    if (b.group.last) merger_.finish(put);
    else merger_.settle(b.group.bound, put);
  }

  static std::size_t next_char(std::string_view text, std::size_t byte) noexcept {
    ++byte;
    while (byte < text.size() && (static_cast<unsigned char>(text[byte]) & 0xC0u) == 0x80u) ++byte;
    return byte;
  }
  /// Moves a (code point, byte) cursor to code point `to` (back to the start first when `to` is behind it).
  static void advance(std::string_view text, std::size_t& cp, std::size_t& byte, std::size_t to) noexcept {
    if (to < cp) cp = byte = 0;
    while (cp < to && byte < text.size()) {
      byte = next_char(text, byte);
      ++cp;
    }
  }

  /// A final entity of a long document (hf_postprocessor::to_entities' conversion, by a cursor over the text).
  void emit(document& doc, hf_entity&& e) {
    const std::string_view text = doc.text;
    entity x;
    x.start = e.start;
    x.end = e.end;
    advance(text, ent_cp_, ent_byte_, std::min(e.start, cps_.count));
    x.start_byte = ent_byte_;
    std::size_t cp = ent_cp_, byte = ent_byte_;
    advance(text, cp, byte, std::min(e.end, cps_.count));
    x.end_byte = byte;
    x.label = std::move(e.label);
    x.text = std::move(e.word);
    x.score = e.score;
    if (pack_) doc.packed.push_back(x, text.size());
    else doc.entities.push_back(std::move(x));
  }

  /// document::tokens = the model's sub-word tokens of the whole text (no special tokens).
  void fill_tokens(document& d) const {
    const encoding e = model_.tokenizer->encode(d.text);
    d.tokens.clear();
    for (std::size_t k = 0; k < e.size(); ++k) {
      if (e.special_tokens_mask[k]) continue;
      token t;
      t.start = e.offsets[k].begin;
      t.end = e.offsets[k].end;
      t.start_byte = e.byte_offsets[k].begin;
      t.end_byte = e.byte_offsets[k].end;
      t.whitespace = t.end_byte < d.text.size() && d.text[t.end_byte] == ' ';
      d.tokens.push_back(std::move(t));
    }
  }

  hf_model model_;
  hf_postprocessor post_;
  aggregation strategy_;
  std::vector<std::string> ignore_;
  bool want_tokens_, pack_;
  // A long document run group by group: the merge so far, the code points the group reads, text cursors.
  overlap_merger merger_;
  detail::cp_index cps_;
  std::size_t map_cp_ = 0, map_byte_ = 0, ent_cp_ = 0, ent_byte_ = 0, windows_ = 0;
  std::vector<hf_chunk> chunks_;
  std::vector<std::vector<std::size_t>> starts_, ends_;
  std::vector<std::vector<hf_entity>> raw_;
};

}  // namespace stages

/// How a Hugging Face tokenizer splits a phrase pattern into words: its pre-tokenization (pieces grouped by
/// word id), for rule stages that match word sequences.
inline std::function<std::vector<std::string>(std::string_view)> pattern_words(const hf_model& m) {
  auto tok = m.tokenizer;
  return [tok](std::string_view text) {
    const encoding e = tok->encode(text);
    std::vector<std::string> out;
    std::int32_t last = -1;
    for (std::size_t k = 0; k < e.size(); ++k) {
      if (e.special_tokens_mask[k] || e.word_ids[k] < 0) continue;
      const auto& o = e.byte_offsets[k];
      if (e.word_ids[k] != last) out.emplace_back();
      out.back().append(text.substr(o.begin, o.end - o.begin));
      last = e.word_ids[k];
    }
    return out;
  };
}

NERPIPE_NAMESPACE_END
