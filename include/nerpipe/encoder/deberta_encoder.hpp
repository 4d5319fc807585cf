// SPDX-License-Identifier: Apache-2.0
//! @file DeBERTa-v2/v3 encoder (DebertaV2Encoder of transformers 4.57.6) over packed variable-length sequences.
//!
//! Per layer, the post-LN layout of BERT with DisentangledSelfAttention in place of self-attention:
//!   qkv = x Wqkv^T + bqkv                                      (query_proj, key_proj, value_proj in one GEMM)
//!   ctx = softmax((q k^T + c2p + p2c) / sqrt(head_dim * (1 + c2p + p2c))) v    (ops::disentangled_attention)
//!   x1  = LN(ctx Wo^T + bo + x);  x = LN(act(x1 W1^T + b1) W2^T + b2 + x1)
//! with c2p(i, j) = q_i . Kr[r] and p2c(i, j) = k_j . Qr[r], r = clamp(bucket(i - j) + span, 0, 2 span - 1), and
//! Kr / Qr the relative embeddings (LayerNorm'd when norm_rel_ebd says so) through the layer's key / query
//! projections (share_att_key) or its pos_key_proj / pos_query_proj. Those tables do not depend on the input:
//! they are computed once, at construction, in the compute dtype, as torch computes them every forward.
//! bucket() is make_log_bucket_position in float32 as torch evaluates it; the index table covers every distance a
//! window of max_position tokens has. The convolution layer of some DeBERTa-v2 checkpoints is refused at load.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/encoder/precision.hpp>
#include <nerpipe/model/hf/types.hpp>
#include <nerpipe/ops/ops.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// make_log_bucket_position(relative_pos, bucket_size, max_position) for one distance, in torch's float32
/// arithmetic (abs / mid and the log ratio in float32, ceil); `rel` itself when bucket_size or max_position is not
/// positive (build_relative_position skips the bucketing then).
[[nodiscard]] inline std::int64_t deberta_relative_bucket(std::int64_t rel, std::int64_t bucket_size,
                                                          std::int64_t max_position) {
  if (bucket_size <= 0 || max_position <= 0) return rel;
  const std::int64_t mid = bucket_size / 2;
  const std::int64_t sign = rel > 0 ? 1 : rel < 0 ? -1 : 0;
  const std::int64_t abs_pos = (rel < mid && rel > -mid) ? mid - 1 : (rel < 0 ? -rel : rel);
  if (abs_pos <= mid) return rel;
  const float ratio = static_cast<float>(abs_pos) / static_cast<float>(mid);
  const float base = static_cast<float>(static_cast<double>(max_position - 1) / static_cast<double>(mid));
  const float scaled = std::log(ratio) / std::log(base) * static_cast<float>(mid - 1);
  const auto log_pos = static_cast<std::int64_t>(std::ceil(scaled)) + mid;
  return log_pos * sign;
}

/// The row of the relative position tables for every distance d = i - j in (-max_distance, max_distance), at
/// index d + max_distance - 1: clamp(bucket(d) + span, 0, 2 span - 1).
[[nodiscard]] inline std::vector<std::int32_t> deberta_relative_index(const hf_relative_attention& rel,
                                                                      std::size_t max_distance) {
  const auto span = static_cast<std::int64_t>(rel.span());
  const auto mrp = static_cast<std::int64_t>(rel.max_relative_positions);
  std::vector<std::int32_t> out(max_distance == 0 ? 0 : 2 * max_distance - 1);
  for (std::size_t k = 0; k < out.size(); ++k) {
    const std::int64_t d = static_cast<std::int64_t>(k) - static_cast<std::int64_t>(max_distance - 1);
    const std::int64_t b = deberta_relative_bucket(d, rel.position_buckets, mrp) + span;
    out[k] = static_cast<std::int32_t>(std::clamp<std::int64_t>(b, 0, 2 * span - 1));
  }
  return out;
}

/// The encoder stack; weights live in the policy's memory in its compute dtype (matrices fp32 or bf16; biases
/// and LayerNorm parameters fp32). forward() keeps its scratch buffers between calls, so one object serves one
/// thread at a time.
template <class Policy>
class deberta_encoder {
 public:
  using buffer = typename Policy::template buffer<float>;

  deberta_encoder(const Policy& p, const hf_config& c, const hf_weights& w)
      : hidden_(c.hidden),
        heads_(c.heads),
        intermediate_(c.intermediate),
        eps_(c.layer_norm_eps),
        ffn_epilogue_(c.activation == hf_activation::gelu ? epilogue::bias_gelu : epilogue::bias_gelu_tanh),
        dtype_(detail::bert_compute_dtype(p, "deberta_encoder")),
        rel_(c.relative),
        max_distance_(c.relative.enabled ? std::max(c.max_position, std::size_t{1}) : 0) {
    const std::size_t H = hidden_;
    scale_ = 1.0f / std::sqrt(static_cast<float>(c.head_dim() * rel_.scale_factor()));
    layers_.reserve(w.layers.size());
    for (const auto& l : w.layers) {
      auto up = [&](const std::vector<float>& v) { return p.upload(std::span<const float>(v)); };
      auto mat = [&](const std::vector<float>& v) { return detail::dense_weights<Policy>(p, std::span<const float>(v), dtype_); };
      layers_.push_back(layer{mat(l.qkv_w), up(l.qkv_b), mat(l.attn_out_w), up(l.attn_out_b), up(l.attn_ln_g),
                              up(l.attn_ln_b), mat(l.ffn_in_w), up(l.ffn_in_b), mat(l.ffn_out_w), up(l.ffn_out_b),
                              up(l.out_ln_g), up(l.out_ln_b), {}, {}});
    }
    if (!rel_.enabled) return;
    const std::size_t rows = 2 * rel_.span();
    if (w.rel_embeddings.size() != rows * H)
      NERPIPE_THROW(config_error(errc::config_invalid, "deberta_encoder: rel_embeddings holds " +
                                                           std::to_string(w.rel_embeddings.size()) + " values; expected " +
                                                           std::to_string(rows) + " x " + std::to_string(H)));
    const auto index = deberta_relative_index(rel_, max_distance_);
    for (const auto r : index)
      if (r < 0 || static_cast<std::size_t>(r) >= rows)
        NERPIPE_THROW(config_error(errc::config_invalid, "deberta_encoder: relative index " + std::to_string(r) +
                                                             " outside the " + std::to_string(rows) + " table rows"));
    rel_index_ = p.upload(std::span<const std::int32_t>(index));
    detail::with_compute_type<Policy>(dtype_, [&](auto zero) { build_position_tables<decltype(zero)>(p, w); });
  }

  [[nodiscard]] std::size_t hidden() const noexcept { return hidden_; }
  [[nodiscard]] std::size_t num_layers() const noexcept { return layers_.size(); }
  [[nodiscard]] dtype compute_dtype() const noexcept { return dtype_; }
  /// The longest sequence the relative position index covers (0: no relative attention, no limit).
  [[nodiscard]] std::size_t max_distance() const noexcept { return max_distance_; }

  /// Runs every layer in place on x ([tokens, H], policy memory); arguments as transformer_encoder::forward.
  template <class T>
  void forward(const Policy& p, matrix_view<T> x, const std::int32_t* seq_offsets,
               const std::int32_t* seq_offsets_host, std::size_t num_seqs, std::size_t max_seq_len) {
    detail::check_compute_type<T>(dtype_, "deberta_encoder");
    const std::size_t t = x.rows, H = hidden_, I = intermediate_;
    if (t == 0) return;
    scratch<T>& s = scratch_of<T>();
    s.reserve(p, t, H, I);
    const matrix_view<T> qkv(s.qkv.data(), t, 3 * H), ctx(s.ctx.data(), t, H), x1(s.x1.data(), t, H),
        ffn(s.ffn.data(), t, I);
    const std::size_t dh = H / heads_, rows = rel_.enabled ? 2 * rel_.span() : 0;
    using cview = matrix_view<const T>;
    for (const auto& l : layers_) {
      ops::gemm(p, gemm_args<T, T, T>{x, cview(l.qkv_w.template data<T>(), 3 * H, H), qkv, true, l.qkv_b.data(),
                                      epilogue::bias});
      const cview q(qkv.data, t, H, 3 * H), k(qkv.data + H, t, H, 3 * H), v(qkv.data + 2 * H, t, H, 3 * H);
      if (rel_.enabled) {
        disentangled_attention_args<T> a;
        a.q = q;
        a.k = k;
        a.v = v;
        a.out = ctx;
        a.seq_offsets = seq_offsets;
        a.seq_offsets_host = seq_offsets_host;
        a.num_seqs = num_seqs;
        a.heads = heads_;
        a.head_dim = dh;
        a.max_seq_len = max_seq_len;
        if (rel_.c2p) a.pos_key = cview(l.pos_key.template data<T>(), rows, H);
        if (rel_.p2c) a.pos_query = cview(l.pos_query.template data<T>(), rows, H);
        a.rel_index = rel_index_.data();
        a.max_distance = max_distance_;
        a.scale = scale_;
        ops::disentangled_attention(p, a);
      } else {
        ops::attention(p, attention_args<T>{q, k, v, ctx, seq_offsets, seq_offsets_host, num_seqs, heads_, dh,
                                            max_seq_len, scale_});
      }
      ops::gemm(p, gemm_args<T, T, T>{ctx, cview(l.attn_out_w.template data<T>(), H, H), x1, true,
                                      l.attn_out_b.data(), epilogue::bias});
      ops::layer_norm(p, x1, cview(x), l.attn_ln_g.data(), l.attn_ln_b.data(), eps_);
      ops::gemm(p, gemm_args<T, T, T>{x1, cview(l.ffn_in_w.template data<T>(), I, H), ffn, true, l.ffn_in_b.data(),
                                      ffn_epilogue_});
      ops::gemm(p, gemm_args<T, T, T>{ffn, cview(l.ffn_out_w.template data<T>(), H, I), x, true,
                                      l.ffn_out_b.data(), epilogue::bias});
      ops::layer_norm(p, x, cview(x1), l.out_ln_g.data(), l.out_ln_b.data(), eps_);
    }
  }
  /// The fp32 form (also takes a braced {data, rows, cols} view).
  void forward(const Policy& p, matrix_view<float> x, const std::int32_t* seq_offsets,
               const std::int32_t* seq_offsets_host, std::size_t num_seqs, std::size_t max_seq_len) {
    forward<float>(p, x, seq_offsets, seq_offsets_host, num_seqs, max_seq_len);
  }

  /// GEMM floating-point operations of one forward pass over `tokens` tokens (2 per multiply-add; the attention
  /// products, relative terms included, are not GEMMs here and are excluded). For throughput reports.
  [[nodiscard]] double gemm_flops(std::size_t tokens) const noexcept {
    const double H = static_cast<double>(hidden_), I = static_cast<double>(intermediate_);
    return 2.0 * static_cast<double>(tokens) * static_cast<double>(layers_.size()) * (4.0 * H * H + 2.0 * H * I);
  }

 private:
  /// A matrix computed on the policy in the compute dtype (only one of the buffers is held).
  struct computed_table {
    typename Policy::template buffer<float> f32;
    typename Policy::template buffer<bfloat16> bf16;
    template <class T>
    [[nodiscard]] const T* data() const noexcept {
      if constexpr (std::is_same_v<T, bfloat16>) return bf16.data();
      else return f32.data();
    }
    template <class T>
    [[nodiscard]] T* data() noexcept {
      if constexpr (std::is_same_v<T, bfloat16>) return bf16.data();
      else return f32.data();
    }
    template <class T>
    void allocate(const Policy& p, std::size_t n) {
      if constexpr (std::is_same_v<T, bfloat16>) bf16 = typename Policy::template buffer<bfloat16>(p, n);
      else f32 = typename Policy::template buffer<float>(p, n);
    }
  };

  struct layer {
    detail::dense_weights<Policy> qkv_w;
    buffer qkv_b;
    detail::dense_weights<Policy> attn_out_w;
    buffer attn_out_b, attn_ln_g, attn_ln_b;
    detail::dense_weights<Policy> ffn_in_w;
    buffer ffn_in_b;
    detail::dense_weights<Policy> ffn_out_w;
    buffer ffn_out_b, out_ln_g, out_ln_b;
    computed_table pos_key, pos_query;  ///< [2 span, H]: c2p / p2c position tables
  };

  /// rel = LN(rel_embeddings) (norm_rel_ebd); per layer pos_key = rel Wk^T + bk, pos_query = rel Wq^T + bq.
  template <class T>
  void build_position_tables(const Policy& p, const hf_weights& w) {
    const std::size_t H = hidden_, rows = 2 * rel_.span();
    const detail::dense_weights<Policy> rel_in(p, std::span<const float>(w.rel_embeddings), dtype_);
    computed_table rel;
    rel.template allocate<T>(p, rows * H);
    using cview = matrix_view<const T>;
    const matrix_view<T> relv(rel.template data<T>(), rows, H);
    // A copy of every row (a gather of rows 0..rows-1) into a buffer the LayerNorm may overwrite.
    std::vector<std::int32_t> ids(rows);
    for (std::size_t r = 0; r < rows; ++r) ids[r] = static_cast<std::int32_t>(r);
    const auto dids = p.upload(std::span<const std::int32_t>(ids));
    ops::gather(p, cview(rel_in.template data<T>(), rows, H), dids.data(), relv, false);
    if (rel_.norm_rel_ebd) {
      const buffer g = p.upload(std::span<const float>(w.rel_ln_g)), b = p.upload(std::span<const float>(w.rel_ln_b));
      ops::layer_norm(p, relv, cview{}, g.data(), b.data(), eps_);
      p.synchronize();
    }
    p.synchronize();
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      auto& l = layers_[i];
      const auto& lw = w.layers[i];
      auto project = [&](computed_table& out, const T* weight, const float* bias) {
        out.template allocate<T>(p, rows * H);
        ops::gemm(p, gemm_args<T, T, T>{cview(relv), cview(weight, H, H), matrix_view<T>(out.template data<T>(), rows, H),
                                        true, bias, epilogue::bias});
      };
      if (rel_.share_att_key) {
        if (rel_.c2p) project(l.pos_key, l.qkv_w.template data<T>() + H * H, l.qkv_b.data() + H);
        if (rel_.p2c) project(l.pos_query, l.qkv_w.template data<T>(), l.qkv_b.data());
        p.synchronize();
      } else {
        if (rel_.c2p) {
          const detail::dense_weights<Policy> wk(p, std::span<const float>(lw.pos_key_w), dtype_);
          const buffer bk = p.upload(std::span<const float>(lw.pos_key_b));
          project(l.pos_key, wk.template data<T>(), bk.data());
          p.synchronize();
        }
        if (rel_.p2c) {
          const detail::dense_weights<Policy> wq(p, std::span<const float>(lw.pos_query_w), dtype_);
          const buffer bq = p.upload(std::span<const float>(lw.pos_query_b));
          project(l.pos_query, wq.template data<T>(), bq.data());
          p.synchronize();
        }
      }
    }
  }

  template <class T>
  struct scratch {
    typename Policy::template buffer<T> qkv, ctx, x1, ffn;
    std::size_t capacity = 0;
    void reserve(const Policy& p, std::size_t t, std::size_t H, std::size_t I) {
      if (t <= capacity) return;
      const std::size_t cap = t + t / 4;
      qkv = {};
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
    if constexpr (std::is_same_v<T, bfloat16>) return bf16_;
    else return f32_;
  }

  std::size_t hidden_, heads_, intermediate_;
  float eps_;
  epilogue ffn_epilogue_;
  dtype dtype_;
  hf_relative_attention rel_;
  std::size_t max_distance_;
  float scale_ = 1.0f;
  std::vector<layer> layers_;
  typename Policy::template buffer<std::int32_t> rel_index_;
  scratch<float> f32_;
  scratch<bfloat16> bf16_;
};

NERPIPE_NAMESPACE_END
