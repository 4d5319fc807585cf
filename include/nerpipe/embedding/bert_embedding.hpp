// SPDX-License-Identifier: Apache-2.0
//! @file BERT / DistilBERT input embeddings: word + token type + position gather, then LayerNorm.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/model/hf/types.hpp>
#include <nerpipe/ops/ops.hpp>

#include <cstddef>
#include <cstdint>
#include <span>

NERPIPE_NAMESPACE_BEGIN

/// Embeds packed token ids. Weights are uploaded once, at construction, into the policy's memory.
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
        word_(p.upload(std::span<const float>(w.word))),
        position_(p.upload(std::span<const float>(w.position))),
        token_type_(p.upload(std::span<const float>(w.token_type))),
        ln_g_(p.upload(std::span<const float>(w.emb_ln_g))),
        ln_b_(p.upload(std::span<const float>(w.emb_ln_b))) {}

  [[nodiscard]] std::size_t hidden() const noexcept { return hidden_; }
  [[nodiscard]] std::size_t vocab_size() const noexcept { return vocab_; }
  [[nodiscard]] std::size_t max_positions() const noexcept { return positions_; }
  [[nodiscard]] bool has_token_types() const noexcept { return types_ != 0; }

  /// out[i] = LN(word[ids[i]] + type[type_ids[i]] + pos[positions[i]]), in torch's order of additions.
  /// ids, type_ids and positions are policy memory of out.rows entries, already validated on the host
  /// (ids < vocab, positions < max_positions, type ids < type_vocab_size); type_ids is ignored
  /// (may be null) for DistilBERT.
  void forward(const Policy& p, const std::int32_t* ids, const std::int32_t* type_ids, const std::int32_t* positions,
               matrix_view<float> out) const {
    ops::gather(p, matrix_view<const float>(word_.data(), vocab_, hidden_), ids, out, false);
    if (types_ != 0)
      ops::gather(p, matrix_view<const float>(token_type_.data(), types_, hidden_), type_ids, out, true);
    ops::gather(p, matrix_view<const float>(position_.data(), positions_, hidden_), positions, out, true);
    ops::layer_norm(p, out, matrix_view<const float>{}, ln_g_.data(), ln_b_.data(), eps_);
  }

 private:
  std::size_t hidden_, vocab_, positions_, types_;
  float eps_;
  buffer word_, position_, token_type_, ln_g_, ln_b_;
};

NERPIPE_NAMESPACE_END
