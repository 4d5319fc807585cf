// SPDX-License-Identifier: Apache-2.0
//! @file ELECTRA and DeBERTa-v2/v3 input embeddings: word (+ position) (+ token type) tables of embedding_size E,
//! a LayerNorm, and a projection to hidden_size H, in each family's order:
//!   ELECTRA   x = word + type + pos; x = LN_E(x); out = x Wp^T + bp     (ElectraEmbeddings, embeddings_project)
//!   DeBERTa   x = word [+ pos] [+ type]; [x = x Wp^T]; out = LN_H(x)   (DebertaV2Embeddings, embed_proj has no bias)
//! The additions are in torch's order (they round differently in another one); DeBERTa's multiplication by the
//! attention mask is a no-op without padding.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/encoder/precision.hpp>
#include <nerpipe/model/hf/types.hpp>
#include <nerpipe/ops/ops.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

NERPIPE_NAMESPACE_BEGIN

/// Embeds packed token ids (ELECTRA or DeBERTa-v2 settings of hf_config). Tables and the projection are uploaded
/// once in the policy's compute dtype, LayerNorm parameters and the projection bias as fp32. forward() keeps a
/// scratch buffer (E wide) when E != H, so one object serves one thread at a time.
template <class Policy>
class projected_embedding {
 public:
  using buffer = typename Policy::template buffer<float>;

  projected_embedding(const Policy& p, const hf_config& c, const hf_weights& w)
      : hidden_(c.hidden),
        width_(c.embedding_width()),
        vocab_(c.vocab_size),
        positions_(w.position.empty() ? 0 : c.max_position),
        types_(w.token_type.empty() ? 0 : c.type_vocab_size),
        eps_(c.layer_norm_eps),
        electra_(c.arch == hf_arch::electra),
        dtype_(detail::bert_compute_dtype(p, "projected_embedding")),
        word_(p, std::span<const float>(w.word), dtype_),
        position_(p, std::span<const float>(w.position), dtype_),
        token_type_(p, std::span<const float>(w.token_type), dtype_),
        proj_(p, std::span<const float>(w.emb_proj_w), dtype_),
        proj_b_(p.upload(std::span<const float>(w.emb_proj_b))),
        ln_g_(p.upload(std::span<const float>(w.emb_ln_g))),
        ln_b_(p.upload(std::span<const float>(w.emb_ln_b))) {
    if (c.arch != hf_arch::electra && c.arch != hf_arch::deberta_v2)
      NERPIPE_THROW(config_error(errc::config_invalid, "projected_embedding: model_type \"" + c.model_type +
                                                           "\" is not ELECTRA or DeBERTa-v2 (use bert_embedding)"));
    if (width_ != hidden_ && w.emb_proj_w.size() != hidden_ * width_)
      NERPIPE_THROW(config_error(errc::config_invalid, "projected_embedding: embedding size " + std::to_string(width_) +
                                                           " differs from hidden size " + std::to_string(hidden_) +
                                                           " but the weights hold no projection"));
  }

  [[nodiscard]] std::size_t hidden() const noexcept { return hidden_; }
  [[nodiscard]] std::size_t embedding_width() const noexcept { return width_; }
  [[nodiscard]] std::size_t vocab_size() const noexcept { return vocab_; }
  /// Rows of the position table (0: no absolute positions, as DeBERTa-v3).
  [[nodiscard]] std::size_t max_positions() const noexcept { return positions_; }
  [[nodiscard]] bool has_token_types() const noexcept { return types_ != 0; }
  [[nodiscard]] dtype compute_dtype() const noexcept { return dtype_; }
  /// GEMM floating-point operations of the projection over `tokens` tokens (0 without one).
  [[nodiscard]] double gemm_flops(std::size_t tokens) const noexcept {
    return width_ == hidden_ ? 0.0 : 2.0 * static_cast<double>(tokens) * static_cast<double>(width_ * hidden_);
  }

  /// out ([rows, H]) for ids, type_ids and positions (policy memory, out.rows entries, validated on the host:
  /// ids < vocab, positions < max_positions(), type ids < type_vocab_size; type_ids / positions are not read
  /// (may be null) when the model has no such table).
  template <class T>
  void forward(const Policy& p, const std::int32_t* ids, const std::int32_t* type_ids, const std::int32_t* positions,
               matrix_view<T> out) {
    detail::check_compute_type<T>(dtype_, "projected_embedding");
    const std::size_t rows = out.rows, E = width_;
    if (rows == 0) return;
    matrix_view<T> x = out;
    if (E != hidden_) {
      auto& s = scratch_of<T>();
      if (rows > capacity_of<T>()) {
        s = {};
        s = typename Policy::template buffer<T>(p, (rows + rows / 4) * E);
        capacity_of<T>() = rows + rows / 4;
      }
      x = matrix_view<T>(s.data(), rows, E);
    }
    using cview = matrix_view<const T>;
    ops::gather(p, cview(word_.template data<T>(), vocab_, E), ids, x, false);
    if (electra_) {
      if (types_ != 0) ops::gather(p, cview(token_type_.template data<T>(), types_, E), type_ids, x, true);
      if (positions_ != 0) ops::gather(p, cview(position_.template data<T>(), positions_, E), positions, x, true);
      ops::layer_norm(p, x, cview{}, ln_g_.data(), ln_b_.data(), eps_);
      if (E != hidden_)
        ops::gemm(p, gemm_args<T, T, T>{cview(x), cview(proj_.template data<T>(), hidden_, E), out, true,
                                        proj_b_.data(), epilogue::bias});
      return;
    }
    if (positions_ != 0) ops::gather(p, cview(position_.template data<T>(), positions_, E), positions, x, true);
    if (types_ != 0) ops::gather(p, cview(token_type_.template data<T>(), types_, E), type_ids, x, true);
    if (E != hidden_)
      ops::gemm(p, gemm_args<T, T, T>{cview(x), cview(proj_.template data<T>(), hidden_, E), out, true, nullptr,
                                      epilogue::none});
    ops::layer_norm(p, out, cview{}, ln_g_.data(), ln_b_.data(), eps_);
  }
  /// The fp32 form (also takes a braced {data, rows, cols} view).
  void forward(const Policy& p, const std::int32_t* ids, const std::int32_t* type_ids, const std::int32_t* positions,
               matrix_view<float> out) {
    forward<float>(p, ids, type_ids, positions, out);
  }

 private:
  template <class T>
  auto& scratch_of() noexcept {
    if constexpr (std::is_same_v<T, bfloat16>) return x_bf16_;
    else return x_f32_;
  }
  template <class T>
  std::size_t& capacity_of() noexcept {
    if constexpr (std::is_same_v<T, bfloat16>) return cap_bf16_;
    else return cap_f32_;
  }

  std::size_t hidden_, width_, vocab_, positions_, types_;
  float eps_;
  bool electra_;
  dtype dtype_;
  detail::dense_weights<Policy> word_, position_, token_type_, proj_;
  buffer proj_b_, ln_g_, ln_b_;
  typename Policy::template buffer<float> x_f32_;
  typename Policy::template buffer<bfloat16> x_bf16_;
  std::size_t cap_f32_ = 0, cap_bf16_ = 0;
};

NERPIPE_NAMESPACE_END
