// SPDX-License-Identifier: Apache-2.0
//! @file Post-LN transformer encoder (BERT / DistilBERT layers) over packed variable-length sequences.
//!
//! Per layer, with x the packed [tokens, H] activations and no padding anywhere:
//!   qkv = x Wqkv^T + bqkv                (one GEMM: Q, K, V weights concatenated at load time)
//!   ctx = attention(q, k, v) per sequence and head
//!   x1  = LN(ctx Wo^T + bo + x)
//!   x   = LN(gelu(x1 W1^T + b1) W2^T + b2 + x1)   (bias+GELU fused into the first FFN GEMM)
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/model/hf/types.hpp>
#include <nerpipe/ops/ops.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// The encoder stack; weights live in the policy's memory, uploaded once. forward() keeps its
/// scratch buffers between calls (they only grow), so one object serves one thread at a time.
template <class Policy>
class transformer_encoder {
 public:
  using buffer = typename Policy::template buffer<float>;

  transformer_encoder(const Policy& p, const hf_config& c, const hf_weights& w)
      : hidden_(c.hidden),
        heads_(c.heads),
        intermediate_(c.intermediate),
        eps_(c.layer_norm_eps),
        ffn_epilogue_(c.activation == hf_activation::gelu ? epilogue::bias_gelu : epilogue::bias_gelu_tanh) {
    layers_.reserve(w.layers.size());
    for (const auto& l : w.layers) {
      auto up = [&](const std::vector<float>& v) { return p.upload(std::span<const float>(v)); };
      layers_.push_back(layer{up(l.qkv_w), up(l.qkv_b), up(l.attn_out_w), up(l.attn_out_b), up(l.attn_ln_g),
                              up(l.attn_ln_b), up(l.ffn_in_w), up(l.ffn_in_b), up(l.ffn_out_w), up(l.ffn_out_b),
                              up(l.out_ln_g), up(l.out_ln_b)});
    }
  }

  [[nodiscard]] std::size_t hidden() const noexcept { return hidden_; }
  [[nodiscard]] std::size_t num_layers() const noexcept { return layers_.size(); }

  /// Runs every layer in place on x ([tokens, H], policy memory). seq_offsets / seq_offsets_host are
  /// the same [num_seqs + 1] packing offsets in policy and host memory; max_seq_len the longest sequence.
  void forward(const Policy& p, matrix_view<float> x, const std::int32_t* seq_offsets,
               const std::int32_t* seq_offsets_host, std::size_t num_seqs, std::size_t max_seq_len) {
    const std::size_t t = x.rows, H = hidden_, I = intermediate_;
    if (t == 0) return;
    reserve(p, t);
    const matrix_view<float> qkv(qkv_.data(), t, 3 * H), ctx(ctx_.data(), t, H), x1(x1_.data(), t, H),
        ffn(ffn_.data(), t, I);
    const std::size_t dh = H / heads_;
    for (const auto& l : layers_) {
      ops::gemm(p, gemm_args<float, float, float>{x, {l.qkv_w.data(), 3 * H, H}, qkv, true, l.qkv_b.data(),
                                                  epilogue::bias});
      const matrix_view<const float> q(qkv.data, t, H, 3 * H), k(qkv.data + H, t, H, 3 * H),
          v(qkv.data + 2 * H, t, H, 3 * H);
      ops::attention(p, attention_args<float>{q, k, v, ctx, seq_offsets, seq_offsets_host, num_seqs, heads_, dh,
                                              max_seq_len, 1.0f / std::sqrt(static_cast<float>(dh))});
      ops::gemm(p, gemm_args<float, float, float>{ctx, {l.attn_out_w.data(), H, H}, x1, true, l.attn_out_b.data(),
                                                  epilogue::bias});
      ops::layer_norm(p, x1, matrix_view<const float>(x), l.attn_ln_g.data(), l.attn_ln_b.data(), eps_);
      ops::gemm(p, gemm_args<float, float, float>{x1, {l.ffn_in_w.data(), I, H}, ffn, true, l.ffn_in_b.data(),
                                                  ffn_epilogue_});
      ops::gemm(p, gemm_args<float, float, float>{ffn, {l.ffn_out_w.data(), H, I}, x, true, l.ffn_out_b.data(),
                                                  epilogue::bias});
      ops::layer_norm(p, x, matrix_view<const float>(x1), l.out_ln_g.data(), l.out_ln_b.data(), eps_);
    }
  }

 private:
  struct layer {
    buffer qkv_w, qkv_b, attn_out_w, attn_out_b, attn_ln_g, attn_ln_b, ffn_in_w, ffn_in_b, ffn_out_w, ffn_out_b,
        out_ln_g, out_ln_b;
  };

  void reserve(const Policy& p, std::size_t t) {
    if (t <= capacity_) return;
    const std::size_t cap = t + t / 4;  // grow with slack so varying batches do not reallocate each time
    qkv_ = buffer(p, cap * 3 * hidden_);
    ctx_ = buffer(p, cap * hidden_);
    x1_ = buffer(p, cap * hidden_);
    ffn_ = buffer(p, cap * intermediate_);
    capacity_ = cap;
  }

  std::size_t hidden_, heads_, intermediate_;
  float eps_;
  epilogue ffn_epilogue_;
  std::vector<layer> layers_;
  buffer qkv_, ctx_, x1_, ffn_;
  std::size_t capacity_ = 0;
};

NERPIPE_NAMESPACE_END
