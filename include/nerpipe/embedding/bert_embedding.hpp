// SPDX-License-Identifier: Apache-2.0
//! @file BERT / DistilBERT input embeddings: word + token type + position gather, then LayerNorm.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/encoder/precision.hpp>
#include <nerpipe/model/hf/types.hpp>
#include <nerpipe/ops/ops.hpp>

#include <cstddef>
#include <cstdint>
#include <span>

NERPIPE_NAMESPACE_BEGIN

/// Embeds packed token ids. Weights are uploaded once, at construction, into the policy's memory, in the
/// policy's compute dtype (the tables as fp32 or bf16; LayerNorm parameters always fp32).
template <class Policy>
class bert_embedding {
 public:
  using buffer = typename Policy::template buffer<float>;

  bert_embedding(const Policy& p, const hf_config& c, const hf_weights& w)
      : hidden_(c.hidden),
        vocab_(c.vocab_size),
        positions_(c.max_position),
        types_(c.type_vocab_size),
        eps_(c.layer_norm_eps),
        dtype_(detail::activation_dtype(detail::bert_compute_dtype(p, "bert_embedding"))),  // bf16 in fp8 mode
        word_(p, std::span<const float>(w.word), dtype_),
        position_(p, std::span<const float>(w.position), dtype_),
        token_type_(p, std::span<const float>(w.token_type), dtype_),
        ln_g_(p.upload(std::span<const float>(w.emb_ln_g))),
        ln_b_(p.upload(std::span<const float>(w.emb_ln_b))) {}

  [[nodiscard]] std::size_t hidden() const noexcept { return hidden_; }
  [[nodiscard]] std::size_t vocab_size() const noexcept { return vocab_; }
  [[nodiscard]] std::size_t max_positions() const noexcept { return positions_; }
  [[nodiscard]] bool has_token_types() const noexcept { return types_ != 0; }
  /// The element type the tables were uploaded in (forward's T must match).
  [[nodiscard]] dtype compute_dtype() const noexcept { return dtype_; }

  /// out[i] = LN(word[ids[i]] + type[type_ids[i]] + pos[positions[i]]), in torch's order of additions.
  /// ids, type_ids and positions are policy memory of out.rows entries, already validated on the host
  /// (ids < vocab, positions < max_positions, type ids < type_vocab_size); type_ids is ignored
  /// (may be null) for DistilBERT. T is float or bfloat16, the compute dtype: in bf16 the sums are
  /// rounded to bf16 after each addition and LayerNorm computes in fp32, as torch's bf16 model does.
  template <class T>
  void forward(const Policy& p, const std::int32_t* ids, const std::int32_t* type_ids, const std::int32_t* positions,
               matrix_view<T> out) const {
    detail::check_compute_type<T>(dtype_, "bert_embedding");
    ops::gather(p, matrix_view<const T>(word_.template data<T>(), vocab_, hidden_), ids, out, false);
    if (types_ != 0)
      ops::gather(p, matrix_view<const T>(token_type_.template data<T>(), types_, hidden_), type_ids, out, true);
    ops::gather(p, matrix_view<const T>(position_.template data<T>(), positions_, hidden_), positions, out, true);
    ops::layer_norm(p, out, matrix_view<const T>{}, ln_g_.data(), ln_b_.data(), eps_);
  }
  /// The fp32 form (also takes a braced {data, rows, cols} view).
  void forward(const Policy& p, const std::int32_t* ids, const std::int32_t* type_ids, const std::int32_t* positions,
               matrix_view<float> out) const {
    forward<float>(p, ids, type_ids, positions, out);
  }

 private:
  std::size_t hidden_, vocab_, positions_, types_;
  float eps_;
  dtype dtype_;
  detail::dense_weights<Policy> word_, position_, token_type_;
  buffer ln_g_, ln_b_;
};

NERPIPE_NAMESPACE_END
