// SPDX-License-Identifier: Apache-2.0
//! @file spaCy's MaxoutWindowEncoder.v2: `depth` residual (window -> Maxout -> LayerNorm) layers with live padding rows.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/embedding/multi_hash_embed.hpp>
#include <nerpipe/model/spacy/loader.hpp>
#include <nerpipe/ops/ops.hpp>
#include <nerpipe/policy/memory_space.hpp>

#include <algorithm>
#include <cstring>
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
  static_assert(can_access<Policy, host_space>,
                "nerpipe: maxout_window_encoder runs maxout and residual adds on host memory; this policy's memory is not host memory");

 public:
  maxout_window_encoder(const Policy& p, const spacy::ner_weights& w) : width_(w.width), window_(w.window), pad_(w.pad) {
    for (const auto& l : w.encoder) layers_.emplace_back(p, l);
  }

  [[nodiscard]] std::size_t width() const noexcept { return width_; }

  /// X: the docs' rows back to back (sum(lengths) x width); out: same shape.
  void forward(const Policy& p, matrix_view<const float> X, std::span<const std::size_t> lengths, matrix_view<float> out) const {
    const std::size_t W = width_;
    std::size_t docs = 0, total = 0;
    for (auto l : lengths) {
      docs += l != 0;
      total += l;
    }
    if (total == 0) return;
    const std::size_t R = total + pad_ * (docs + 1);
    typename Policy::template buffer<float> Z(p, R * W);
    std::fill(Z.data(), Z.data() + R * W, 0.0f);
    // Copy each doc behind its pad block.
    std::vector<std::size_t> where;
    where.reserve(lengths.size());
    std::size_t src = 0, dst = pad_;
    for (auto l : lengths) {
      where.push_back(dst);
      for (std::size_t i = 0; i < l; ++i) std::memcpy(Z.data() + (dst + i) * W, X.row(src + i), W * sizeof(float));
      src += l;
      if (l != 0) dst += l + pad_;
    }
    const std::size_t K = W * (2 * window_ + 1);
    typename Policy::template buffer<float> C(p, R * K);
    typename Policy::template buffer<float> M(p, R * W);
    std::size_t pieces = 1;
    for (const auto& layer : layers_) pieces = std::max(pieces, layer.nP);
    typename Policy::template buffer<float> Y(p, R * W * pieces);
    seq2col(Z.data(), R, C.data());
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      layers_[l].forward(p, matrix_view<const float>(C.data(), R, K), Y.data(), matrix_view<float>(M.data(), R, W));
      if (l + 1 == layers_.size()) detail::add_into(Z.data(), M.data(), R * W);  // residual: X + f(X)
      else add_seq2col(Z.data(), M.data(), R, C.data());
    }
    src = 0;
    for (std::size_t d = 0; d < lengths.size(); ++d) {
      for (std::size_t i = 0; i < lengths[d]; ++i) std::memcpy(out.row(src + i), Z.data() + (where[d] + i) * W, W * sizeof(float));
      src += lengths[d];
    }
  }

 private:
  /// thinc seq2col: row i = [Z[i-w] .. Z[i] .. Z[i+w]], zeros outside [0, R).
  void seq2col(const float* Z, std::size_t R, float* C) const {
    const std::size_t W = width_, nW = window_, K = W * (2 * nW + 1);
    for (std::size_t i = 0; i < R; ++i) {
      float* c = C + i * K;
      for (std::size_t k = 0; k < 2 * nW + 1; ++k) {
        const std::ptrdiff_t j = static_cast<std::ptrdiff_t>(i + k) - static_cast<std::ptrdiff_t>(nW);
        if (j < 0 || j >= static_cast<std::ptrdiff_t>(R)) std::fill(c + k * W, c + (k + 1) * W, 0.0f);
        else std::memcpy(c + k * W, Z + static_cast<std::size_t>(j) * W, W * sizeof(float));
      }
    }
  }

  /// The residual add and the next layer's seq2col in one pass: Z[i] += M[i], then Z[i] goes to the
  /// window blocks of C that hold it. C's out-of-range blocks stay the zeros the first seq2col wrote.
  void add_seq2col(float* Z, const float* M, std::size_t R, float* C) const {
    const std::size_t W = width_, nW = window_, K = W * (2 * nW + 1);
    for (std::size_t i = 0; i < R; ++i) {
      float* z = Z + i * W;
      detail::add_into(z, M + i * W, W);
      for (std::size_t k = 0; k < 2 * nW + 1; ++k) {
        // C row j = i + nW - k holds Z[i] in its block k
        if (i + nW < k) break;
        const std::size_t j = i + nW - k;
        if (j < R) std::memcpy(C + j * K + k * W, z, W * sizeof(float));
      }
    }
  }

  std::size_t width_, window_, pad_;
  std::vector<detail::maxout_ln_layer<Policy>> layers_;
};

NERPIPE_NAMESPACE_END
