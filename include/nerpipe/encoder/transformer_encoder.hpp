// SPDX-License-Identifier: Apache-2.0
//! @file Post-LN transformer encoder (BERT / DistilBERT layers) over packed variable-length sequences.
//!
//! Per layer, with x the packed [tokens, H] activations and no padding anywhere:
//!   qkv = x Wqkv^T + bqkv                (one GEMM: Q, K, V weights concatenated at load time)
//!   ctx = attention(q, k, v) per sequence and head
//!   x1  = LN(ctx Wo^T + bo + x)
//!   x   = LN(gelu(x1 W1^T + b1) W2^T + b2 + x1)   (bias+GELU fused into the first FFN GEMM)
//!
//! Precision: the policy's compute dtype. f32: everything fp32. bf16: weights and activations bf16
//! between operations, every GEMM accumulating in fp32, LayerNorm and the attention softmax in fp32.
//! fp8_e4m3: as bf16, but the four GEMMs of each layer run in FP8 (ops::fp8_gemm: weights quantised once
//! per tensor, inputs per call from their amax on the device).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/encoder/precision.hpp>
#include <nerpipe/model/hf/types.hpp>
#include <nerpipe/ops/ops.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// The encoder stack; weights live in the policy's memory, uploaded once in the policy's compute dtype
/// (matrices fp32 or bf16; biases and LayerNorm parameters fp32). forward() keeps its scratch buffers
/// between calls (they only grow), so one object serves one thread at a time.
template <class Policy>
class transformer_encoder {
 public:
  using buffer = typename Policy::template buffer<float>;

  transformer_encoder(const Policy& p, const hf_config& c, const hf_weights& w)
      : hidden_(c.hidden),
        heads_(c.heads),
        intermediate_(c.intermediate),
        eps_(c.layer_norm_eps),
        ffn_epilogue_(c.activation == hf_activation::gelu ? epilogue::bias_gelu : epilogue::bias_gelu_tanh),
        dtype_(detail::bert_compute_dtype(p, "transformer_encoder")) {
    layers_.reserve(w.layers.size());
    for (const auto& l : w.layers) {
      auto up = [&](const std::vector<float>& v) { return p.upload(std::span<const float>(v)); };
      auto mat = [&](const std::vector<float>& v) {
        return detail::dense_weights<Policy>(p, std::span<const float>(v), dtype_);
      };
      layers_.push_back(layer{mat(l.qkv_w), up(l.qkv_b), mat(l.attn_out_w), up(l.attn_out_b), up(l.attn_ln_g),
                              up(l.attn_ln_b), mat(l.ffn_in_w), up(l.ffn_in_b), mat(l.ffn_out_w), up(l.ffn_out_b),
                              up(l.out_ln_g), up(l.out_ln_b)});
    }
  }

  [[nodiscard]] std::size_t hidden() const noexcept { return hidden_; }
  [[nodiscard]] std::size_t num_layers() const noexcept { return layers_.size(); }
  /// The element type the weights were uploaded in (forward's T must match).
  [[nodiscard]] dtype compute_dtype() const noexcept { return dtype_; }

  /// Runs every layer in place on x ([tokens, H], policy memory). seq_offsets / seq_offsets_host are
  /// the same [num_seqs + 1] packing offsets in policy and host memory; max_seq_len the longest sequence.
  /// T is float or bfloat16, the compute dtype.
  template <class T>
  void forward(const Policy& p, matrix_view<T> x, const std::int32_t* seq_offsets,
               const std::int32_t* seq_offsets_host, std::size_t num_seqs, std::size_t max_seq_len) {
    detail::check_compute_type<T>(dtype_, "transformer_encoder");
    const std::size_t t = x.rows, H = hidden_, I = intermediate_;
    if (t == 0) return;
    scratch<T>& s = scratch_of<T>();
    s.reserve(p, t, H, I);
    const matrix_view<T> qkv(s.qkv.data(), t, 3 * H), ctx(s.ctx.data(), t, H), x1(s.x1.data(), t, H),
        ffn(s.ffn.data(), t, I);
    const std::size_t dh = H / heads_;
    using cview = matrix_view<const T>;
    for (const auto& l : layers_) {
      linear<T>(p, x, l.qkv_w, 3 * H, H, qkv, l.qkv_b.data(), epilogue::bias);
      const cview q(qkv.data, t, H, 3 * H), k(qkv.data + H, t, H, 3 * H), v(qkv.data + 2 * H, t, H, 3 * H);
      ops::attention(p, attention_args<T>{q, k, v, ctx, seq_offsets, seq_offsets_host, num_seqs, heads_, dh,
                                          max_seq_len, 1.0f / std::sqrt(static_cast<float>(dh))});
      linear<T>(p, ctx, l.attn_out_w, H, H, x1, l.attn_out_b.data(), epilogue::bias);
      ops::layer_norm(p, x1, cview(x), l.attn_ln_g.data(), l.attn_ln_b.data(), eps_);
      linear<T>(p, x1, l.ffn_in_w, I, H, ffn, l.ffn_in_b.data(), ffn_epilogue_);
      linear<T>(p, ffn, l.ffn_out_w, H, I, x, l.ffn_out_b.data(), epilogue::bias);
      ops::layer_norm(p, x, cview(x1), l.out_ln_g.data(), l.out_ln_b.data(), eps_);
    }
  }
  /// The fp32 form (also takes a braced {data, rows, cols} view).
  void forward(const Policy& p, matrix_view<float> x, const std::int32_t* seq_offsets,
               const std::int32_t* seq_offsets_host, std::size_t num_seqs, std::size_t max_seq_len) {
    forward<float>(p, x, seq_offsets, seq_offsets_host, num_seqs, max_seq_len);
  }

  /// GEMM floating-point operations of one forward pass over `tokens` tokens (2 per multiply-add; the
  /// attention products, which are not GEMMs here, excluded). For throughput reports.
  [[nodiscard]] double gemm_flops(std::size_t tokens) const noexcept {
    const double H = static_cast<double>(hidden_), I = static_cast<double>(intermediate_);
    return 2.0 * static_cast<double>(tokens) * static_cast<double>(layers_.size()) * (4.0 * H * H + 2.0 * H * I);
  }

 private:
  /// out = ep(in W^T + b) for W [n, k]: the compute type's gemm, or in fp8 mode the FP8 gemm (bf16 in and out).
  template <class T>
  void linear(const Policy& p, matrix_view<const T> in, const detail::dense_weights<Policy>& w, std::size_t n,
              std::size_t k, matrix_view<T> out, const float* bias, epilogue ep) const {
    if constexpr (std::is_same_v<T, bfloat16>) {
      if (dtype_ == dtype::fp8_e4m3) {
        ops::fp8_gemm(p, fp8_gemm_args<T, T>{in, matrix_view<const float8_e4m3>(w.template data<float8_e4m3>(), n, k),
                                             w.fp8_scale(), out, bias, ep});
        return;
      }
    }
    ops::gemm(p, gemm_args<T, T, T>{in, matrix_view<const T>(w.template data<T>(), n, k), out, true, bias, ep});
  }

  struct layer {
    detail::dense_weights<Policy> qkv_w;
    buffer qkv_b;
    detail::dense_weights<Policy> attn_out_w;
    buffer attn_out_b, attn_ln_g, attn_ln_b;
    detail::dense_weights<Policy> ffn_in_w;
    buffer ffn_in_b;
    detail::dense_weights<Policy> ffn_out_w;
    buffer ffn_out_b, out_ln_g, out_ln_b;
  };

  /// Activations between the operations of a layer, in the compute type.
  template <class T>
  struct scratch {
    typename Policy::template buffer<T> qkv, ctx, x1, ffn;
    std::size_t capacity = 0;
    void reserve(const Policy& p, std::size_t t, std::size_t H, std::size_t I) {
      if (t <= capacity) return;
      const std::size_t cap = t + t / 4;  // grow with slack so varying batches do not reallocate each time
      qkv = {};  // free before allocating the larger set
      ctx = {};
      x1 = {};
      ffn = {};
      qkv = typename Policy::template buffer<T>(p, cap * 3 * H);
      ctx = typename Policy::template buffer<T>(p, cap * H);
      x1 = typename Policy::template buffer<T>(p, cap * H);
      ffn = typename Policy::template buffer<T>(p, cap * I);
      capacity = cap;
    }
  };
  template <class T>
  scratch<T>& scratch_of() noexcept {
    if constexpr (std::is_same_v<T, bfloat16>)
      return bf16_;
    else
      return f32_;
  }

  std::size_t hidden_, heads_, intermediate_;
  float eps_;
  epilogue ffn_epilogue_;
  dtype dtype_;
  std::vector<layer> layers_;
  scratch<float> f32_;
  scratch<bfloat16> bf16_;
};

NERPIPE_NAMESPACE_END
