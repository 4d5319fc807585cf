// SPDX-License-Identifier: Apache-2.0
//! @file The Hugging Face BERT / DistilBERT NER pipeline on one policy: WordPiece windows -> packed
//! batch -> embedding -> encoder -> classifier -> TokenClassificationPipeline post-processing.
//!
//! Long documents. transformers 4.57.6 truncates at model_max_length when `stride` is not given (the
//! rest of the text gets no entities). nerpipe never drops text: with `stride` unset (0) a document
//! longer than one window is cut into windows that overlap by a quarter of a window
//! (default_stride(): 127 tokens for a 512-token model) and merged as the reference merges stride
//! windows (aggregate_overlapping_entities). Documents that fit in one window give exactly the
//! reference output; with `stride` set, the windows and the merge are the reference's.
//!
//! Precision: the policy's compute_dtype() at construction. f32 (cpu_policy always, cuda_policy's exact
//! mode): fp32 throughout. bf16 (cuda_policy's fast mode): weights and activations bf16, fp32
//! accumulation, LayerNorm and softmax math in fp32, fp32 logits; post-processing is the same either way.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/embedding/bert_embedding.hpp>
#include <nerpipe/encoder/transformer_encoder.hpp>
#include <nerpipe/head/hf_postprocess.hpp>
#include <nerpipe/head/token_classifier.hpp>
#include <nerpipe/model/hf/hf_model.hpp>
#include <nerpipe/pipeline/annotator.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// Settings of the HF pipeline beyond annotate_options.
struct hf_run_options {
  std::size_t max_length = 0;      ///< tokens per window ([CLS]/[SEP] included); 0: the model's (model_max_length)
  std::size_t batch_tokens = 8192; ///< most tokens packed into one forward pass (a longer window runs alone)
  /// Measure the stages (bert_ner::stage_times()). Costs one device synchronisation per stage and batch.
  bool time_stages = false;
};

/// Wall-clock seconds spent in each stage, summed over calls since the last reset (hf_run_options::time_stages).
struct bert_stage_times {
  double tokenize = 0;       ///< host: WordPiece windows and id checks
  double upload = 0;         ///< host packing + ids/positions/offsets to the policy's memory
  double encoder = 0;        ///< embedding + encoder layers
  double head_download = 0;  ///< classifier GEMM + logits back to the host
  double postprocess = 0;    ///< host: softmax, aggregation, window merge
  [[nodiscard]] double total() const noexcept { return tokenize + upload + encoder + head_download + postprocess; }
};

/// The composed pipeline. Not thread-safe: one object per thread (it keeps scratch buffers).
template <class Policy>
class bert_ner {
 public:
  using buffer_f = typename Policy::template buffer<float>;
  using buffer_i = typename Policy::template buffer<std::int32_t>;
  using buffer_bf16 = typename Policy::template buffer<bfloat16>;

  bert_ner(const Policy& p, const hf_model& m, annotate_options opts = {}, hf_run_options run = {})
      : policy_(p),
        model_(m),
        opts_(std::move(opts)),
        run_(run),
        embedding_(p, m.config, *m.weights),
        encoder_(p, m.config, *m.weights),
        head_(p, m.config, *m.weights),
        post_(m.config.id2label, m.vocab.get()) {
    if (opts_.batch_tokens != 0) run_.batch_tokens = opts_.batch_tokens;
    max_length_ = run_.max_length != 0 ? run_.max_length : m.max_length;
    if (max_length_ > m.config.max_position)
      NERPIPE_THROW(config_error(errc::config_invalid, "max_length " + std::to_string(max_length_) +
                                                           " exceeds the model's max_position_embeddings " +
                                                           std::to_string(m.config.max_position)));
    const std::size_t specials = m.tokenizer->num_special_tokens();
    if (max_length_ <= specials + 1)
      NERPIPE_THROW(config_error(errc::config_invalid, "max_length " + std::to_string(max_length_) +
                                                           " leaves no room for text after the special tokens"));
    window_ = max_length_ - specials;
    if (opts_.stride >= window_)
      NERPIPE_THROW(config_error(errc::config_invalid,
                                 "stride " + std::to_string(opts_.stride) + " must be smaller than max_length (" +
                                     std::to_string(max_length_) + ") minus the special tokens (" +
                                     std::to_string(specials) + ")"));
    stride_ = opts_.stride != 0 ? opts_.stride : default_stride();
  }

  /// The overlap used when annotate_options::stride is 0: a quarter of a window.
  [[nodiscard]] std::size_t default_stride() const noexcept { return window_ / 4; }
  [[nodiscard]] std::size_t max_length() const noexcept { return max_length_; }
  [[nodiscard]] std::size_t stride() const noexcept { return stride_; }
  [[nodiscard]] std::size_t last_token_count() const noexcept { return last_tokens_; }
  /// The precision the model runs in (the policy's compute dtype when this object was made).
  [[nodiscard]] dtype compute_dtype() const noexcept { return embedding_.compute_dtype(); }
  /// Stage timings (zeros unless hf_run_options::time_stages).
  [[nodiscard]] const bert_stage_times& stage_times() const noexcept { return times_; }
  void reset_stage_times() noexcept { times_ = {}; }
  /// GEMM floating-point operations of the encoder and classifier over `tokens` tokens.
  [[nodiscard]] double gemm_flops(std::size_t tokens) const noexcept {
    return encoder_.gemm_flops(tokens) +
           2.0 * static_cast<double>(tokens) * static_cast<double>(model_.config.hidden * model_.config.num_labels());
  }

  /// The pipeline's entities (hf_entity form) of each text, in order.
  [[nodiscard]] std::vector<std::vector<hf_entity>> run(std::span<const std::string_view> texts) {
    std::vector<std::vector<hf_entity>> out(texts.size());
    std::vector<std::string> errors(texts.size());
    process(texts, out, errors);
    for (std::size_t i = 0; i < texts.size(); ++i)
      if (!errors[i].empty()) NERPIPE_THROW(input_error(errc::input_too_large, errors[i]));
    return out;
  }

  /// Fills entities (and tokens when asked) of every document whose status is ok; a document that
  /// cannot be processed gets status failed and its message.
  void annotate(std::span<document> docs) {
    std::vector<std::size_t> which;
    std::vector<std::string_view> texts;
    for (std::size_t i = 0; i < docs.size(); ++i)
      if (docs[i].ok()) {
        which.push_back(i);
        texts.push_back(docs[i].text);
      }
    std::vector<std::vector<hf_entity>> ents(texts.size());
    std::vector<std::string> errors(texts.size());
    try {
      process(texts, ents, errors);
    } catch (const std::exception& e) {
      for (auto& err : errors)
        if (err.empty()) err = e.what();
    }
    for (std::size_t k = 0; k < which.size(); ++k) {
      document& d = docs[which[k]];
      if (!errors[k].empty()) {
        d.status = record_status::failed;
        d.error = errors[k];
        d.entities.clear();
        continue;
      }
      d.entities = hf_postprocessor::to_entities(d.text, ents[k]);
      if (opts_.want_tokens) fill_tokens(d);
    }
  }

 private:
  struct window {
    std::size_t doc;
    encoding enc;
    std::vector<float> logits;
  };

  void process(std::span<const std::string_view> texts, std::vector<std::vector<hf_entity>>& out,
               std::vector<std::string>& errors) {
    const auto& tok = *model_.tokenizer;
    const std::size_t vocab = model_.config.vocab_size;
    stage_clock clock(run_.time_stages);
    std::vector<std::vector<window>> wins(texts.size());
    std::vector<encoding> encs;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      try {
        tok.encode_windows(texts[i], max_length_, stride_, encs);
      } catch (const std::exception& e) {
        errors[i] = e.what();
        continue;
      }
      for (auto& e : encs) {
        for (const auto id : e.ids)
          if (id < 0 || static_cast<std::size_t>(id) >= vocab) {
            errors[i] = "token id " + std::to_string(id) + " is outside the model's vocabulary of " +
                        std::to_string(vocab) + " (tokenizer and model disagree)";
            break;
          }
        if (model_.config.type_vocab_size != 0)
          for (const auto t : e.type_ids)
            if (t < 0 || static_cast<std::size_t>(t) >= model_.config.type_vocab_size) {
              errors[i] = "token type id " + std::to_string(t) + " is outside type_vocab_size";
              break;
            }
        wins[i].push_back(window{i, std::move(e), {}});
      }
      if (!errors[i].empty()) wins[i].clear();
    }

    clock.lap(times_.tokenize);

    // Longest windows first, packed up to batch_tokens tokens per forward pass (no padding).
    std::vector<window*> order;
    for (auto& w : wins)
      for (auto& x : w) order.push_back(&x);
    std::stable_sort(order.begin(), order.end(),
                     [](const window* a, const window* b) { return a->enc.size() > b->enc.size(); });
    last_tokens_ = 0;
    for (std::size_t b = 0; b < order.size();) {
      std::size_t e = b, tokens = 0;
      while (e < order.size() && (e == b || tokens + order[e]->enc.size() <= run_.batch_tokens))
        tokens += order[e++]->enc.size();
      forward(std::span<window* const>(order.data() + b, e - b), tokens);
      last_tokens_ += tokens;
      b = e;
    }

    clock.restart();
    std::vector<hf_chunk> chunks;
    std::vector<std::vector<std::size_t>> starts, ends;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      if (!errors[i].empty()) continue;
      chunks.clear();
      starts.assign(wins[i].size(), {});
      ends.assign(wins[i].size(), {});
      for (std::size_t k = 0; k < wins[i].size(); ++k) {
        const auto& w = wins[i][k];
        for (const auto& o : w.enc.offsets) {
          starts[k].push_back(o.begin);
          ends[k].push_back(o.end);
        }
        chunks.push_back(hf_chunk{w.enc.ids, starts[k], ends[k], w.enc.special_tokens_mask, w.logits});
      }
      out[i] = post_.run(texts[i], chunks, opts_.strategy, opts_.ignore_labels);
    }
    clock.lap(times_.postprocess);
  }

  /// Adds wall time to a stage when timing is on (no-op otherwise).
  struct stage_clock {
    bool on;
    std::chrono::steady_clock::time_point t0{};
    explicit stage_clock(bool enabled) : on(enabled) { restart(); }
    void restart() {
      if (on) t0 = std::chrono::steady_clock::now();
    }
    void lap(double& into) {
      if (!on) return;
      const auto t1 = std::chrono::steady_clock::now();
      into += std::chrono::duration<double>(t1 - t0).count();
      t0 = t1;
    }
  };

  /// One packed forward pass over `ws` (total `tokens` tokens); fills each window's logits.
  void forward(std::span<window* const> ws, std::size_t tokens) {
    const std::size_t H = model_.config.hidden, L = model_.config.num_labels();
    stage_clock clock(run_.time_stages);
    ids_.clear();
    types_.clear();
    positions_.clear();
    offsets_.assign(1, 0);
    std::size_t longest = 0;
    for (const window* w : ws) {
      const auto& e = w->enc;
      ids_.insert(ids_.end(), e.ids.begin(), e.ids.end());
      if (e.type_ids.size() == e.ids.size())
        types_.insert(types_.end(), e.type_ids.begin(), e.type_ids.end());
      else
        types_.insert(types_.end(), e.ids.size(), 0);
      for (std::size_t k = 0; k < e.size(); ++k) positions_.push_back(static_cast<std::int32_t>(k));
      offsets_.push_back(static_cast<std::int32_t>(ids_.size()));
      longest = std::max(longest, e.size());
    }
    const Policy& p = policy_;
    const auto d_ids = p.upload(std::span<const std::int32_t>(ids_));
    const auto d_types = p.upload(std::span<const std::int32_t>(types_));
    const auto d_pos = p.upload(std::span<const std::int32_t>(positions_));
    const auto d_offs = p.upload(std::span<const std::int32_t>(offsets_));
    if (tokens > capacity_) {
      capacity_ = tokens + tokens / 4;
      x_ = {};
      x_bf16_ = {};
      if (compute_dtype() == dtype::bf16)
        x_bf16_ = buffer_bf16(p, capacity_ * H);
      else
        x_ = buffer_f(p, capacity_ * H);
      logits_ = buffer_f(p, capacity_ * L);
    }
    if (run_.time_stages) p.synchronize();
    clock.lap(times_.upload);
    const matrix_view<float> lg(logits_.data(), tokens, L);
    // The one switch between precisions: activations are float or bfloat16 from here to the logits.
    detail::with_compute_type<Policy>(compute_dtype(), [&](auto zero) {
      using T = decltype(zero);
      const matrix_view<T> x(activations<T>(), tokens, H);
      embedding_.forward(p, d_ids.data(), d_types.data(), d_pos.data(), x);
      encoder_.forward(p, x, d_offs.data(), offsets_.data(), ws.size(), longest);
      if (run_.time_stages) p.synchronize();
      clock.lap(times_.encoder);
      head_.forward(p, matrix_view<const T>(x), lg);
    });
    host_logits_.resize(tokens * L);
    p.download(std::span<const float>(logits_.data(), tokens * L), std::span<float>(host_logits_));
    p.synchronize();
    for (std::size_t k = 0; k < ws.size(); ++k) {
      const auto b = static_cast<std::size_t>(offsets_[k]) * L, n = ws[k]->enc.size() * L;
      ws[k]->logits.assign(host_logits_.begin() + static_cast<std::ptrdiff_t>(b),
                           host_logits_.begin() + static_cast<std::ptrdiff_t>(b + n));
    }
    clock.lap(times_.head_download);
  }

  template <class T>
  [[nodiscard]] T* activations() noexcept {
    if constexpr (std::is_same_v<T, bfloat16>)
      return x_bf16_.data();
    else
      return x_.data();
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

  Policy policy_;
  hf_model model_;
  annotate_options opts_;
  hf_run_options run_;
  bert_embedding<Policy> embedding_;
  transformer_encoder<Policy> encoder_;
  token_classifier<Policy> head_;
  hf_postprocessor post_;
  std::size_t max_length_ = 0, window_ = 0, stride_ = 0, last_tokens_ = 0;
  std::vector<std::int32_t> ids_, types_, positions_, offsets_;
  std::vector<float> host_logits_;
  buffer_f x_, logits_;
  buffer_bf16 x_bf16_;  // the activations in bf16 mode (x_ stays empty then)
  std::size_t capacity_ = 0;
  bert_stage_times times_;
};

/// The annotator seam for the HF family: one bert_ner per executor thread.
template <class Policy>
class hf_annotator final : public annotator {
 public:
  hf_annotator(const Policy& p, const hf_model& m, const annotate_options& opts, hf_run_options run = {})
      : ner_(p, m, opts, run) {}
  void annotate(std::span<document> docs) override { ner_.annotate(docs); }
  [[nodiscard]] std::size_t last_token_count() const noexcept override { return ner_.last_token_count(); }
  [[nodiscard]] bert_ner<Policy>& pipeline() noexcept { return ner_; }

 private:
  bert_ner<Policy> ner_;
};

/// A type-erased annotator for `m` on policy `p` (the name the loader and the command line use).
template <class Policy>
[[nodiscard]] std::unique_ptr<annotator> make_hf_annotator(const Policy& p, const hf_model& m,
                                                           const annotate_options& opts, hf_run_options run = {}) {
  return std::make_unique<hf_annotator<Policy>>(p, m, opts, run);
}

NERPIPE_NAMESPACE_END
