// SPDX-License-Identifier: Apache-2.0
//! @file spaCy's MultiHashEmbed.v2: HashEmbed per attribute (+ static vectors), then Maxout and LayerNorm.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/model/spacy/loader.hpp>
#include <nerpipe/ops/ops.hpp>
#include <nerpipe/policy/memory_space.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

NERPIPE_NAMESPACE_BEGIN
namespace detail {

/// MurmurHash3_x64_128 of the 8 little-endian bytes of `key` (thinc's `hash` op for uint64 ids),
/// as four 32-bit words [h1 lo, h1 hi, h2 lo, h2 hi].
[[nodiscard]] inline std::array<std::uint32_t, 4> murmurhash3_x64_128_u64(std::uint64_t key, std::uint32_t seed) noexcept {
  constexpr std::uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;
  auto rotl = [](std::uint64_t x, int r) { return (x << r) | (x >> (64 - r)); };
  auto fmix = [](std::uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
  };
  std::uint64_t h1 = seed, h2 = seed;
  std::uint64_t k1 = key;  // the 8-byte tail
  k1 *= c1;
  k1 = rotl(k1, 31);
  k1 *= c2;
  h1 ^= k1;
  h1 ^= 8;
  h2 ^= 8;
  h1 += h2;
  h2 += h1;
  h1 = fmix(h1);
  h2 = fmix(h2);
  h1 += h2;
  h2 += h1;
  return {static_cast<std::uint32_t>(h1), static_cast<std::uint32_t>(h1 >> 32), static_cast<std::uint32_t>(h2),
          static_cast<std::uint32_t>(h2 >> 32)};
}

/// dst[i] += src[i] for i < n, in index order (each element's sum is the same as a plain loop). Blocks of
/// 16 with non-aliasing pointers let -O2 use SIMD lanes.
inline void add_into(float* __restrict dst, const float* __restrict src, std::size_t n) noexcept {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (std::size_t k = 0; k < 16; ++k) dst[i + k] += src[i + k];
  for (; i < n; ++i) dst[i] += src[i];
}

/// dst[i] += a * src[i] for i < n (a separate multiply and add per element, like a scalar loop).
inline void axpy_into(float* __restrict dst, float a, const float* __restrict src, std::size_t n) noexcept {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (std::size_t k = 0; k < 16; ++k) dst[i + k] += a * src[i + k];
  for (; i < n; ++i) dst[i] += a * src[i];
}

/// Maxout over pieces, in place into `out`: out[r, o] = max_p y[r, o * nP + p]. Host memory.
inline void maxout_rows(const float* y, std::size_t rows, std::size_t nO, std::size_t nP, float* out, std::size_t out_ld) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* yr = y + r * nO * nP;
    float* o = out + r * out_ld;
    for (std::size_t i = 0; i < nO; ++i) {
      float m = yr[i * nP];
      for (std::size_t p = 1; p < nP; ++p) m = std::max(m, yr[i * nP + p]);
      o[i] = m;
    }
  }
}

/// A Maxout (nO x nP x nI) + LayerNorm layer on the policy's device.
template <class Policy>
struct maxout_ln_layer {
  typename Policy::template buffer<float> W, b, G, beta;
  std::size_t nO = 0, nP = 0, nI = 0;

  maxout_ln_layer() = default;
  maxout_ln_layer(const Policy& p, const spacy::maxout_layer_norm& l)
      : W(p.upload(std::span<const float>(l.W.data))),
        b(p.upload(std::span<const float>(l.b.data))),
        G(p.upload(std::span<const float>(l.G.data))),
        beta(p.upload(std::span<const float>(l.beta.data))),
        nO(l.nO),
        nP(l.nP),
        nI(l.nI) {}

  /// out (rows x nO) = LayerNorm(Maxout(x)); `y` is scratch of rows * nO * nP floats.
  void forward(const Policy& p, matrix_view<const float> x, float* y, matrix_view<float> out) const {
    ops::gemm(p, gemm_args<float, float, float>{x, matrix_view<const float>(W.data(), nO * nP, nI),
                                                matrix_view<float>(y, x.rows, nO * nP), true, b.data(), epilogue::bias});
    maxout_rows(y, x.rows, nO, nP, out.data, out.ld);
    // thinc's LayerNorm adds its epsilon (1e-8) to the variance.
    ops::layer_norm(p, out, matrix_view<const float>{}, G.data(), beta.data(), 1e-8f);
  }
};

}  // namespace detail

/// MultiHashEmbed.v2 (NORM, PREFIX, SUFFIX, SHAPE tables; optional static vectors) with its mixer.
template <class Policy>
class multi_hash_embed {
  static_assert(can_access<Policy, host_space>,
                "nerpipe: multi_hash_embed computes maxout on host memory; this policy's memory is not host memory");

 public:
  multi_hash_embed(const Policy& p, const spacy::ner_weights& w) : width_(w.width), mix_(p, w.mix) {
    for (const auto& t : w.embeds) {
      tables_.push_back({p.upload(std::span<const float>(t.E.data)), t.E.shape[0], t.seed});
    }
    if (w.has_static_vectors) {
      has_vectors_ = true;
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
  /// read when has_static_vectors(). out: n x width().
  void forward(const Policy& p, std::span<const std::uint64_t> feats, std::span<const std::int64_t> vec_rows,
               matrix_view<float> out) const {
    const std::size_t n = out.rows;
    if (n == 0) return;
    const std::size_t na = tables_.size();
    const std::size_t in_w = width_ * na + (has_vectors_ ? width_ : 0);
    typename Policy::template buffer<float> concat(p, n * in_w);
    std::vector<std::int32_t> ids(n * 4);
    for (std::size_t a = 0; a < na; ++a) {
      const auto& t = tables_[a];
      for (std::size_t i = 0; i < n; ++i) {
        const auto h = detail::murmurhash3_x64_128_u64(feats[i * na + a], t.seed);
        for (int k = 0; k < 4; ++k) ids[static_cast<std::size_t>(k) * n + i] = static_cast<std::int32_t>(h[k] % t.rows);
      }
      auto ids_dev = p.upload(std::span<const std::int32_t>(ids));
      const matrix_view<float> col(concat.data() + a * width_, n, width_, in_w);
      const matrix_view<const float> table(t.E.data(), t.rows, width_);
      // Rows are summed in key order, starting from the first: ((E0 + E1) + E2) + E3, as thinc does.
      for (std::size_t k = 0; k < 4; ++k) ops::gather(p, table, ids_dev.data() + k * n, col, k != 0);
    }
    if (has_vectors_) {
      // StaticVectors: V[row] (row -1 reads the last row, as numpy does) times W^T, then rows without a
      // vector are zeroed; no bias.
      std::vector<std::int32_t> rows(n);
      for (std::size_t i = 0; i < n; ++i)
        rows[i] = static_cast<std::int32_t>(vec_rows[i] < 0 ? static_cast<std::int64_t>(vec_rows_) - 1 : vec_rows[i]);
      auto rows_dev = p.upload(std::span<const std::int32_t>(rows));
      typename Policy::template buffer<float> V(p, n * vec_width_);
      ops::gather(p, matrix_view<const float>(vectors_.data(), vec_rows_, vec_width_), rows_dev.data(),
                  matrix_view<float>(V.data(), n, vec_width_), false);
      const matrix_view<float> col(concat.data() + na * width_, n, width_, in_w);
      ops::gemm(p, gemm_args<float, float, float>{matrix_view<const float>(V.data(), n, vec_width_),
                                                  matrix_view<const float>(vectors_W_.data(), width_, vec_width_), col, true});
      for (std::size_t i = 0; i < n; ++i)
        if (vec_rows[i] < 0) std::fill(col.row(i), col.row(i) + width_, 0.0f);
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
