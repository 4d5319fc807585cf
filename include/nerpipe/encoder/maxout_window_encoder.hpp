// SPDX-License-Identifier: Apache-2.0
//! @file spaCy's MaxoutWindowEncoder.v2: `depth` residual (window -> Maxout -> LayerNorm) layers with live padding rows.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/embedding/multi_hash_embed.hpp>
#include <nerpipe/model/spacy/loader.hpp>
#include <nerpipe/ops/ops.hpp>

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// `with_array(clone(residual(expand_window(w) >> Maxout >> LayerNorm), depth), pad)`.
///
/// The batch is laid out as thinc's `flatten(pad=...)` does: `pad` zero rows before each doc and after
/// the last. Those rows go through every layer like tokens (they are not re-zeroed), so they feed
/// the edge tokens of later layers; with pad = depth * window each doc is independent of its neighbours.
template <class Policy>
class maxout_window_encoder {
 public:
  maxout_window_encoder(const Policy& p, const spacy::ner_weights& w) : width_(w.width), window_(w.window), pad_(w.pad) {
    for (const auto& l : w.encoder) layers_.emplace_back(p, l);
  }

  [[nodiscard]] std::size_t width() const noexcept { return width_; }

  /// X: the docs' rows back to back (sum(lengths) x width); out: same shape. Both in the policy's memory.
  void forward(const Policy& p, matrix_view<const float> X, std::span<const std::size_t> lengths, matrix_view<float> out) const {
    const std::size_t W = width_;
    std::size_t docs = 0, total = 0;
    for (auto l : lengths) {
      docs += l != 0;
      total += l;
    }
    if (total == 0) return;
    const std::size_t R = total + pad_ * (docs + 1);
    // Row of each token in the padded layout: each doc behind its pad block.
    std::vector<std::int32_t> where(total);
    std::size_t src = 0, dst = pad_;
    for (auto l : lengths) {
      for (std::size_t i = 0; i < l; ++i) where[src + i] = static_cast<std::int32_t>(dst + i);
      src += l;
      if (l != 0) dst += l + pad_;
    }
    const auto where_dev = p.upload(std::span<const std::int32_t>(where));
    typename Policy::template buffer<float> Z(p, R * W);
    ops::fill(p, Z.data(), R * W, 0.0f);
    ops::scatter_rows(p, matrix_view<const float>(X.data, total, W, X.ld), where_dev.data(), matrix_view<float>(Z.data(), R, W));
    const std::size_t K = W * (2 * window_ + 1);
    typename Policy::template buffer<float> C(p, R * K);
    typename Policy::template buffer<float> M(p, R * W);
    std::size_t pieces = 1;
    for (const auto& layer : layers_) pieces = std::max(pieces, layer.nP);
    typename Policy::template buffer<float> Y(p, R * W * pieces);
    ops::seq2col(p, Z.data(), R, W, window_, C.data());
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      layers_[l].forward(p, matrix_view<const float>(C.data(), R, K), Y.data(), matrix_view<float>(M.data(), R, W));
      if (l + 1 == layers_.size()) ops::add(p, Z.data(), M.data(), R * W);  // residual: X + f(X)
      else ops::add_seq2col(p, Z.data(), M.data(), R, W, window_, C.data());
    }
    ops::gather(p, matrix_view<const float>(Z.data(), R, W), where_dev.data(), out, false);
  }

 private:
  std::size_t width_, window_, pad_;
  std::vector<detail::maxout_ln_layer<Policy>> layers_;
};

NERPIPE_NAMESPACE_END
