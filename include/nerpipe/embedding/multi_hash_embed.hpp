// SPDX-License-Identifier: Apache-2.0
//! @file spaCy's MultiHashEmbed.v2: HashEmbed per attribute (+ static vectors), then Maxout and LayerNorm.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/model/spacy/loader.hpp>
#include <nerpipe/ops/ops.hpp>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

NERPIPE_NAMESPACE_BEGIN
namespace detail {

/// Reorders (nO, nP, rest) weights to piece-major (nP, nO, rest), so maxout compares contiguous vectors.
/// Each output keeps its own weight row, so its dot product is unchanged.
[[nodiscard]] inline std::vector<float> piece_major(const std::vector<float>& w, std::size_t nO, std::size_t nP, std::size_t rest) {
  std::vector<float> out(w.size());
  for (std::size_t o = 0; o < nO; ++o)
    for (std::size_t p = 0; p < nP; ++p)
      std::memcpy(out.data() + (p * nO + o) * rest, w.data() + (o * nP + p) * rest, rest * sizeof(float));
  return out;
}

/// A Maxout (nO x nP x nI) + LayerNorm layer on the policy's device. W and b are kept piece-major.
template <class Policy>
struct maxout_ln_layer {
  typename Policy::template buffer<float> W, b, G, beta;
  std::size_t nO = 0, nP = 0, nI = 0;

  maxout_ln_layer() = default;
  maxout_ln_layer(const Policy& p, const spacy::maxout_layer_norm& l)
      : W(p.upload(std::span<const float>(piece_major(l.W.data, l.nO, l.nP, l.nI)))),
        b(p.upload(std::span<const float>(piece_major(l.b.data, l.nO, l.nP, 1)))),
        G(p.upload(std::span<const float>(l.G.data))),
        beta(p.upload(std::span<const float>(l.beta.data))),
        nO(l.nO),
        nP(l.nP),
        nI(l.nI) {}

  /// out (rows x nO) = LayerNorm(Maxout(x)); `y` is scratch of rows * nO * nP floats. The bias is added in
  /// the maxout pass (y + b per element, after the GEMM, as thinc does).
  void forward(const Policy& p, matrix_view<const float> x, float* y, matrix_view<float> out) const {
    ops::gemm(p, gemm_args<float, float, float>{x, matrix_view<const float>(W.data(), nO * nP, nI),
                                                matrix_view<float>(y, x.rows, nO * nP), true});
    ops::bias_maxout(p, y, b.data(), nO, nP, out);
    // thinc's LayerNorm adds its epsilon (1e-8) to the variance.
    ops::layer_norm(p, out, matrix_view<const float>{}, G.data(), beta.data(), 1e-8f);
  }
};

}  // namespace detail

/// MultiHashEmbed.v2 (NORM, PREFIX, SUFFIX, SHAPE tables; optional static vectors) with its mixer.
template <class Policy>
class multi_hash_embed {
 public:
  multi_hash_embed(const Policy& p, const spacy::ner_weights& w) : width_(w.width), mix_(p, w.mix) {
    for (const auto& t : w.embeds) {
      tables_.push_back({p.upload(std::span<const float>(t.E.data)), t.E.shape[0], t.seed});
    }
    if (w.has_static_vectors) {
      has_vectors_ = true;
      if (w.vectors.data.shape.size() != 2 || w.vectors.data.shape[0] == 0 || w.vectors.data.shape[0] > static_cast<std::size_t>(INT32_MAX))
        NERPIPE_THROW(model_error(errc::model_shape_mismatch, "static vectors: the table has shape " + w.vectors.data.shape_string() +
                                                                  ", expected 1 to 2^31-1 rows"));
      vec_rows_ = w.vectors.data.shape[0];
      vec_width_ = w.vectors.data.shape[1];
      vectors_ = p.upload(std::span<const float>(w.vectors.data.data));
      vectors_W_ = p.upload(std::span<const float>(w.vectors.W.data));
    }
  }

  [[nodiscard]] std::size_t width() const noexcept { return width_; }
  [[nodiscard]] std::size_t attrs() const noexcept { return tables_.size(); }
  [[nodiscard]] bool has_static_vectors() const noexcept { return has_vectors_; }

  /// feats: n x attrs() string ids (host); vec_rows: n rows of the vectors table (-1: none), only
  /// read when has_static_vectors(). out: n x width() in the policy's memory.
  void forward(const Policy& p, std::span<const std::uint64_t> feats, std::span<const std::int64_t> vec_rows,
               matrix_view<float> out) const {
    const std::size_t n = out.rows;
    if (n == 0) return;
    const std::size_t na = tables_.size();
    const std::size_t in_w = width_ * na + (has_vectors_ ? width_ : 0);
    typename Policy::template buffer<float> concat(p, n * in_w);
    const auto feats_dev = p.upload(feats.first(n * na));
    // Per table: the four hashed rows of each token summed into the table's column block.
    for (std::size_t a = 0; a < na; ++a) {
      const auto& t = tables_[a];
      ops::hash_embed(p, feats_dev.data(), na, a, t.seed, matrix_view<const float>(t.E.data(), t.rows, width_),
                      matrix_view<float>(concat.data() + a * width_, n, width_, in_w));
    }
    if (has_vectors_) {
      // StaticVectors: V[row] (row -1 reads the last row, as numpy does) times W^T, then rows without a
      // vector are zeroed; no bias.
      std::vector<std::int32_t> rows(n), missing;
      for (std::size_t i = 0; i < n; ++i) {
        // A row outside the table would be read out of bounds (the loader refuses such a key2row).
        if (vec_rows[i] < -1 || vec_rows[i] >= static_cast<std::int64_t>(vec_rows_))
          NERPIPE_THROW(model_error(errc::model_shape_mismatch, "static vectors: row " + std::to_string(vec_rows[i]) +
                                                                    " is outside the table of " + std::to_string(vec_rows_) + " rows"));
        rows[i] = static_cast<std::int32_t>(vec_rows[i] < 0 ? static_cast<std::int64_t>(vec_rows_) - 1 : vec_rows[i]);
        if (vec_rows[i] < 0) missing.push_back(static_cast<std::int32_t>(i));
      }
      auto rows_dev = p.upload(std::span<const std::int32_t>(rows));
      typename Policy::template buffer<float> V(p, n * vec_width_);
      ops::gather(p, matrix_view<const float>(vectors_.data(), vec_rows_, vec_width_), rows_dev.data(),
                  matrix_view<float>(V.data(), n, vec_width_), false);
      const matrix_view<float> col(concat.data() + na * width_, n, width_, in_w);
      ops::gemm(p, gemm_args<float, float, float>{matrix_view<const float>(V.data(), n, vec_width_),
                                                  matrix_view<const float>(vectors_W_.data(), width_, vec_width_), col, true});
      if (!missing.empty()) {
        const auto missing_dev = p.upload(std::span<const std::int32_t>(missing));
        ops::zero_rows(p, col, missing_dev.data(), missing.size());
      }
    }
    typename Policy::template buffer<float> y(p, n * mix_.nO * mix_.nP);
    mix_.forward(p, matrix_view<const float>(concat.data(), n, in_w), y.data(), out);
  }

 private:
  struct table {
    typename Policy::template buffer<float> E;
    std::size_t rows;
    std::uint32_t seed;
  };
  std::size_t width_;
  std::vector<table> tables_;
  detail::maxout_ln_layer<Policy> mix_;
  bool has_vectors_ = false;
  std::size_t vec_rows_ = 0, vec_width_ = 0;
  typename Policy::template buffer<float> vectors_, vectors_W_;
};

NERPIPE_NAMESPACE_END
