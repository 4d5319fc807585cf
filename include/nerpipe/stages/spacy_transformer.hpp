// SPDX-License-Identifier: Apache-2.0
//! @file The stages of a spaCy transformer pipeline (spacy-transformers: en_core_web_trf's shape), the Hugging Face
//! and spaCy families composed: spaCy's rule tokenizer, then each document cut into strided spans of tokens whose
//! texts the transformer's tokenizer encodes (spacy_trf_tokenizer); RoBERTa over the spans and reduce_mean pooling
//! of its rows onto the tokens (spacy_transformer); then spaCy's transition NER head (stages::transition_ner).
//!
//! The reference, spacy-transformers 1.4.0 (TransformerModel.forward, get_alignment_via_offset_mapping,
//! truncate_oversize_splits, trfs2arrays) with thinc's reduce_mean:
//!   spans    strided_spans.v1: doc[start : start + window] every `stride` tokens, from 0, until one reaches the end
//!   pieces   each span's text (first token's start to last token's end) encoded with its special tokens; pieces
//!            from position model_max_length on dropped
//!   align    a piece belongs to every token one of its characters [begin, end) falls in, where a token owns its
//!            characters and the one after it (its trailing space); special tokens ((0, 0) offsets) to none
//!   pool     a token's vector = mean of the rows of all its pieces across every span that holds it (in piece
//!            order); a token with none gets zeros
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/embedding/bert_embedding.hpp>
#include <nerpipe/encoder/transformer_encoder.hpp>
#include <nerpipe/model/spacy/transformer_model.hpp>
#include <nerpipe/ops/spacy.hpp>
#include <nerpipe/pipeline/batch.hpp>
#include <nerpipe/pipeline/stage.hpp>
#include <nerpipe/policy/device_policy.hpp>
#include <nerpipe/policy/memory_space.hpp>
#include <nerpipe/stages/hf.hpp>
#include <nerpipe/stages/spacy.hpp>
#include <nerpipe/stages/spacy_sentences.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

namespace detail {
/// strided_spans.v1 over a document of n tokens: [start, min(start + window, n)) from start 0, every `stride`,
/// n / stride of them at most, stopping at the one that reaches the end; then the rest [start, n) if the loop ran
/// out first (Python's for-else).
inline void strided_spans(std::size_t n, std::size_t window, std::size_t stride, std::vector<std::pair<std::size_t, std::size_t>>& out) {
  out.clear();
  std::size_t start = 0;
  bool reached = false;
  for (std::size_t i = 0; i < n / stride; ++i) {
    out.emplace_back(start, std::min(start + window, n));
    if (start + window >= n) {
      reached = true;
      break;
    }
    start += stride;
  }
  if (!reached && start < n) out.emplace_back(start, n);
}
}  // namespace detail

namespace stages {

/// text -> words (spaCy's tokenizer, with their lexical features; one model sequence per document), and each
/// document's strided spans as windows of the transformer's pieces, with the pieces of every word (word_pieces).
template <device_policy Policy>
class spacy_trf_tokenizer {
 public:
  static constexpr stage_kind kind = stage_kind::tokenizer;
  static constexpr field_set reads = field::text;
  static constexpr field_set writes = spacy_tokenizer<Policy>::writes | field::pieces | field::windows;
  static constexpr std::string_view name = "spacy_trf_tokenizer";

  spacy_trf_tokenizer(const Policy& p, const spacy_pipeline_model& m, const pipeline_options& o) : words_(p, m, o), trf_(m.transformer) {
    if (!trf_) NERPIPE_THROW(config_error(errc::config_invalid, "spacy_trf_tokenizer: the spaCy pipeline has no transformer component"));
  }

  [[nodiscard]] const spacy_tokenizer<Policy>& words() const noexcept { return words_; }
  [[nodiscard]] std::size_t workspace_bytes(const batch_shape&) const noexcept { return 0; }

  void run(batch<Policy>& b) {
    words_.run(b);
    b.word_pieces.clear();
    b.word_piece.clear();
    for (std::size_t d = 0; d < b.size(); ++d) {
      const std::size_t first_window = b.window_doc.size(), first_link = b.word_piece.size();
      if (b.live(d)) {
        try {
          cut(b, d);
        } catch (const std::exception& e) {
          b.fail_current(d, e);
          drop(b, first_window, first_link);
        }
      }
      if (!b.live(d)) // its words get no pieces
        for (std::size_t w = b.doc_words.begin(d); w < b.doc_words.end(d); ++w) b.word_pieces.close(b.word_piece.size());
      b.doc_windows.close(b.window_doc.size());
    }
    b.model_tokens = b.piece_id.size();
  }

 private:
  /// The spans of document d as windows, and the pieces of each of its words.
  void cut(batch<Policy>& b, std::size_t d) {
    const auto& hf = trf_->hf;
    const std::string_view text = b.doc_text_of(d);
    const std::size_t w0 = b.doc_words.begin(d), n = b.doc_words.length(d);
    detail::strided_spans(n, trf_->window, trf_->stride, spans_);
    links_.assign(n, {});
    for (const auto& [s, e] : spans_) {
      const std::size_t cp0 = static_cast<std::size_t>(b.word_begin_cp[w0 + s]);
      const std::size_t cp_len = static_cast<std::size_t>(b.word_end_cp[w0 + e - 1]) - cp0;
      const std::size_t byte0 = static_cast<std::size_t>(b.word_begin[w0 + s]);
      hf.tokenizer->encode(text.substr(byte0, static_cast<std::size_t>(b.word_end[w0 + e - 1]) - byte0), enc_);
      std::size_t pieces = enc_.size();
      if (trf_->truncate != 0) pieces = std::min(pieces, trf_->truncate);
      if (pieces > hf.config.max_window())
        NERPIPE_THROW(input_error(errc::input_too_large, "a span of " + std::to_string(e - s) + " tokens has " + std::to_string(pieces) +
                                                             " pieces, more than the model's " + std::to_string(hf.config.max_window()) +
                                                             " positions (and the tokenizer sets no model_max_length to cut it at)"));
      // Each character of the span: the token that owns it (its own characters and the one after them).
      owner_.assign(cp_len + 1, -1);
      for (std::size_t t = s; t < e; ++t) {
        const auto from = static_cast<std::size_t>(b.word_begin_cp[w0 + t]) - cp0, to = static_cast<std::size_t>(b.word_end_cp[w0 + t]) - cp0;
        for (std::size_t c = from; c <= to && c < owner_.size(); ++c) owner_[c] = static_cast<std::int32_t>(t);
      }
      const std::size_t base = b.piece_id.size();
      for (std::size_t k = 0; k < pieces; ++k) {
        const std::int32_t id = enc_.ids[k];
        if (id < 0 || static_cast<std::size_t>(id) >= hf.config.vocab_size)
          NERPIPE_THROW(model_error(errc::model_shape_mismatch, "token id " + std::to_string(id) + " is outside the transformer's vocabulary of " +
                                                                    std::to_string(hf.config.vocab_size)));
        b.piece_id.push_back(id);
        b.piece_type.push_back(0);
        b.piece_word.push_back(-1);
        b.piece_begin.push_back(static_cast<std::int32_t>(cp0 + enc_.offsets[k].begin));
        b.piece_end.push_back(static_cast<std::int32_t>(cp0 + enc_.offsets[k].end));
        b.piece_begin_byte.push_back(static_cast<std::int32_t>(byte0 + enc_.byte_offsets[k].begin));
        b.piece_end_byte.push_back(static_cast<std::int32_t>(byte0 + enc_.byte_offsets[k].end));
        b.piece_special.push_back(enc_.special_tokens_mask[k]);
        const auto global = static_cast<std::int32_t>(base + k);
        for (std::size_t c = enc_.offsets[k].begin; c < enc_.offsets[k].end && c < owner_.size(); ++c)
          if (const std::int32_t t = owner_[c]; t >= 0 && (links_[static_cast<std::size_t>(t)].empty() || links_[static_cast<std::size_t>(t)].back() != global))
            links_[static_cast<std::size_t>(t)].push_back(global);
      }
      b.window_pieces.close(b.piece_id.size());
      b.window_doc.push_back(static_cast<std::int32_t>(d));
    }
    // Pieces are visited in increasing order, so each word's list is sorted, as spaCy's set is before it pools.
    for (const auto& l : links_) {
      b.word_piece.insert(b.word_piece.end(), l.begin(), l.end());
      b.word_pieces.close(b.word_piece.size());
    }
  }

  /// Takes back the windows and pieces of a document that failed (its words keep their sequence, with no pieces:
  /// cut() links words only once every span is done).
  static void drop(batch<Policy>& b, std::size_t first_window, std::size_t first_link) {
    const std::size_t pieces = b.window_pieces.begin(std::min(first_window, b.window_pieces.size()));
    b.window_pieces.offsets.resize(first_window + 1);
    b.window_doc.resize(first_window);
    for (auto* v : {&b.piece_id, &b.piece_type, &b.piece_word, &b.piece_begin, &b.piece_end, &b.piece_begin_byte, &b.piece_end_byte})
      v->resize(pieces);
    b.piece_special.resize(pieces);
    b.word_piece.resize(first_link);
  }

  spacy_tokenizer<Policy> words_;
  std::shared_ptr<const spacy_transformer_model> trf_;
  std::vector<std::pair<std::size_t, std::size_t>> spans_;
  std::vector<std::int32_t> owner_;
  std::vector<std::vector<std::int32_t>> links_;
  encoding enc_;
};

/// words of the pass -> hidden (words x transformer width, fp32): the transformer over the windows (spans) of the
/// pass's documents, then reduce_mean of each word's piece rows (ops::reduce_mean).
template <device_policy Policy>
class spacy_transformer {
 public:
  static constexpr stage_kind kind = stage_kind::embedding;
  static constexpr field_set reads = field::words | field::pieces | field::windows | field::sequences;
  static constexpr field_set writes = field::hidden;
  static constexpr std::string_view name = "spacy_transformer";
  /// Documents keep their input order: a pass's words and windows are then each one contiguous stretch.
  static constexpr bool sort_sequences = false;

  spacy_transformer(const Policy& p, const spacy_pipeline_model& m, const pipeline_options& o)
      : trf_(require(m)), embedding_(p, trf_->hf.config, *trf_->hf.weights), encoder_(p, trf_->hf.config, *trf_->hf.weights),
        pass_rows_(o.batch_tokens != 0 ? o.batch_tokens : default_pass_rows) {
    if (embedding_.compute_dtype() != dtype::f32)
      NERPIPE_THROW(config_error(errc::config_unsupported, "spacy_transformer: spaCy transformer pipelines run in fp32; this policy "
                                                           "computes in reduced precision (use cuda_policy's exact mode)"));
  }

  /// Words per forward pass (annotate_options::batch_tokens): about 1.5 pieces each with 48/32 spans.
  static constexpr std::size_t default_pass_rows = can_access<Policy, host_space> ? 2048 : 16384;
  [[nodiscard]] std::size_t pass_rows() const noexcept { return pass_rows_; }
  [[nodiscard]] std::size_t width() const noexcept { return embedding_.hidden(); }
  [[nodiscard]] std::size_t workspace_bytes(const batch_shape& s) const noexcept { return 6 * s.rows * width() * sizeof(float); }
  /// Appends every later pass's pooled rows (words x width floats, in document order) to `sink` (nullptr: stop).
  void capture(std::vector<float>* sink) noexcept { sink_ = sink; }

  void run(batch<Policy>& b) {
    const Policy& p = b.policy();
    const std::size_t H = width(), words = b.pass.rows, first_word = b.pass_first_row();
    // The pass's windows: those of its documents, consecutive (documents in input order).
    std::size_t first_window = 0, last_window = 0;
    bool any = false;
    for (std::size_t k = b.pass.first; k < b.pass.last; ++k) {
      const auto d = static_cast<std::size_t>(b.sequence_doc[static_cast<std::size_t>(b.order[k])]);
      if (!any) first_window = b.doc_windows.begin(d);
      else if (b.doc_windows.begin(d) != last_window)
        NERPIPE_THROW(config_error(errc::config_invalid, "spacy_transformer: the pass's documents are not consecutive"));
      last_window = b.doc_windows.end(d);
      any = true;
    }
    const std::size_t piece0 = b.window_pieces.begin(first_window), pieces = b.window_pieces.begin(last_window) - piece0;
    if (pieces > capacity_) {
      capacity_ = pieces + pieces / 4;
      x_ = typename Policy::template buffer<float>(p, capacity_ * H);
    }
    if (pieces != 0) {
      const std::span<std::int32_t> ids = ids_.host(p, pieces), types = types_.host(p, pieces), positions = positions_.host(p, pieces);
      seq_.assign(1, 0);
      std::size_t longest = 0;
      for (std::size_t w = first_window; w < last_window; ++w) {
        const std::size_t begin = b.window_pieces.begin(w) - piece0, n = b.window_pieces.length(w);
        const auto piece_ids = std::span<const std::int32_t>(b.piece_id).subspan(piece0 + begin, n);
        std::copy(piece_ids.begin(), piece_ids.end(), ids.begin() + static_cast<std::ptrdiff_t>(begin));
        std::fill_n(types.begin() + static_cast<std::ptrdiff_t>(begin), n, 0);
        hf_stage::write_positions(trf_->hf.config, piece_ids, positions.subspan(begin, n));
        seq_.push_back(static_cast<std::int32_t>(begin + n));
        longest = std::max(longest, n);
      }
      const auto seq_dev = p.upload(std::span<const std::int32_t>(seq_));
      const matrix_view<float> x(x_.data(), pieces, H);
      embedding_.forward(p, ids_.upload(p, pieces), types_.upload(p, pieces), positions_.upload(p, pieces), x);
      encoder_.forward(p, x, seq_dev.data(), seq_.data(), seq_.size() - 1, longest);
    }
    // Each word's pieces as rows of x (checked here: the device reads them unchecked).
    rows_.clear();
    offsets_.assign(1, 0);
    for (std::size_t w = first_word; w < first_word + words; ++w) {
      for (std::size_t k = b.word_pieces.begin(w); k < b.word_pieces.end(w); ++k) {
        const auto g = static_cast<std::size_t>(b.word_piece[k]);
        if (g < piece0 || g >= piece0 + pieces)
          NERPIPE_THROW(config_error(errc::config_invalid, "spacy_transformer: a word's piece lies outside the pass's windows"));
        rows_.push_back(static_cast<std::int32_t>(g - piece0));
      }
      offsets_.push_back(static_cast<std::int32_t>(rows_.size()));
    }
    if (words > out_capacity_) {
      out_capacity_ = words + words / 4;
      y_ = typename Policy::template buffer<float>(p, out_capacity_ * H);
    }
    const auto rows_dev = p.upload(std::span<const std::int32_t>(rows_));
    const auto offsets_dev = p.upload(std::span<const std::int32_t>(offsets_));
    const matrix_view<float> y(y_.data(), words, H);
    ops::reduce_mean(p, matrix_view<const float>(x_.data(), pieces, H), rows_dev.data(), offsets_dev.data(), y);
    b.pass.compute = dtype::f32;
    b.pass.hidden = y_.data();
    b.pass.hidden_cols = H;
    if (sink_ != nullptr) {
      const std::size_t at = sink_->size();
      sink_->resize(at + words * H);
      p.download(std::span<const float>(y_.data(), words * H), std::span<float>(sink_->data() + at, words * H));
      p.synchronize();
    }
  }

 private:
  static const std::shared_ptr<const spacy_transformer_model>& require(const spacy_pipeline_model& m) {
    if (!m.transformer) NERPIPE_THROW(config_error(errc::config_invalid, "spacy_transformer: the spaCy pipeline has no transformer component"));
    return m.transformer;
  }

  std::shared_ptr<const spacy_transformer_model> trf_;
  nerpipe::bert_embedding<Policy> embedding_;
  nerpipe::transformer_encoder<Policy> encoder_;
  std::size_t pass_rows_;
  upload_staging<Policy, std::int32_t> ids_, types_, positions_;
  std::vector<std::int32_t> seq_, rows_, offsets_;
  typename Policy::template buffer<float> x_, y_;
  std::size_t capacity_ = 0, out_capacity_ = 0;
  std::vector<float>* sink_ = nullptr;
};

}  // namespace stages
NERPIPE_NAMESPACE_END
