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

// Host kernels of the spaCy family. Each body works on blocks of 16 floats through __restrict pointers
// (a compile-time trip count and no alias check, which GCC's -O2 vectoriser needs). On x86 builds
// without AVX-512 in the baseline, the bodies are also compiled for AVX-512 and picked once per process.
// They only add, compare and copy (no multiply-add pairs that a target with FMA could contract), so
// every copy gives the same floats as a scalar loop.
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(__AVX512F__) && !defined(__CUDACC__) && \
    !defined(NERPIPE_NO_CPU_DISPATCH)
#define NERPIPE_SPACY_DISPATCH 1
#define NERPIPE_SPACY_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2")))
#else
#define NERPIPE_SPACY_DISPATCH 0
#endif
#if defined(__GNUC__) || defined(__clang__)
#define NERPIPE_SPACY_INLINE __attribute__((always_inline)) inline
#else
#define NERPIPE_SPACY_INLINE inline
#endif

/// Whether the AVX-512 copies may run (decided once per process).
[[nodiscard]] inline bool spacy_avx512() noexcept {
#if NERPIPE_SPACY_DISPATCH
  static const bool ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx2");
  }();
  return ok;
#else
  return false;
#endif
}

/// dst[i] += src[i] for i < n, in index order (each element's sum is the same as a plain loop). Blocks of
/// 16 with non-aliasing pointers let -O2 use SIMD lanes.
inline void add_into(float* __restrict dst, const float* __restrict src, std::size_t n) noexcept {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (std::size_t k = 0; k < 16; ++k) dst[i + k] += src[i + k];
  for (; i < n; ++i) dst[i] += src[i];
}

// GCC contracts a * b + c into an FMA wherever the target has one (its C++ default is -ffp-contract=fast);
// the upper layer must round the product first, as the scalar reference does.
#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define NERPIPE_SPACY_NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#define NERPIPE_SPACY_AXPY_WIDE NERPIPE_SPACY_DISPATCH
#else
#define NERPIPE_SPACY_NO_CONTRACT
#define NERPIPE_SPACY_AXPY_WIDE 0
#endif

/// dst[i] += a * src[i] for i < n (a separate multiply and add per element, like a scalar loop).
NERPIPE_SPACY_NO_CONTRACT inline void axpy_into(float* __restrict dst, float a, const float* __restrict src, std::size_t n) noexcept {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (std::size_t k = 0; k < 16; ++k) dst[i + k] += a * src[i + k];
  for (; i < n; ++i) dst[i] += a * src[i];
}

/// dst[c] = (sum_o h[o] * Wt[o, c] in o order) + b[c] for c < n (n a multiple of 16), products rounded
/// before each add: a linear layer over transposed weights (nh x n), vectorised across outputs.
NERPIPE_SPACY_NO_CONTRACT inline void linear_t_generic(const float* __restrict h, std::size_t nh, const float* __restrict Wt,
                                                       const float* __restrict b, std::size_t n, float* __restrict dst) noexcept {
  for (std::size_t c = 0; c < n; ++c) dst[c] = 0.0f;
  for (std::size_t o = 0; o < nh; ++o) axpy_into(dst, h[o], Wt + o * n, n);
  for (std::size_t c = 0; c < n; ++c) dst[c] += b[c];
}
#if NERPIPE_SPACY_AXPY_WIDE
NERPIPE_SPACY_AVX512 NERPIPE_SPACY_NO_CONTRACT inline void linear_t_avx512(const float* __restrict h, std::size_t nh,
                                                                          const float* __restrict Wt, const float* __restrict b,
                                                                          std::size_t n, float* __restrict dst) noexcept {
  // GCC vector types (16 floats: one AVX-512 register each); 80 outputs at a time, so five independent
  // accumulators stay in registers and hide the add latency (en_core_web_* have 74 classes, padded to 80).
  typedef float v16 __attribute__((vector_size(64), aligned(4)));
  std::size_t i = 0;
  for (; i + 80 <= n; i += 80) {
    v16 a0 = {}, a1 = {}, a2 = {}, a3 = {}, a4 = {};
    for (std::size_t o = 0; o < nh; ++o) {
      const float a = h[o];
      const v16* w = reinterpret_cast<const v16*>(Wt + o * n + i);
      a0 += a * w[0];
      a1 += a * w[1];
      a2 += a * w[2];
      a3 += a * w[3];
      a4 += a * w[4];
    }
    v16* d = reinterpret_cast<v16*>(dst + i);
    const v16* bb = reinterpret_cast<const v16*>(b + i);
    d[0] = a0 + bb[0];
    d[1] = a1 + bb[1];
    d[2] = a2 + bb[2];
    d[3] = a3 + bb[3];
    d[4] = a4 + bb[4];
  }
  for (; i < n; i += 16) {
    v16 acc = {};
    for (std::size_t o = 0; o < nh; ++o) acc += h[o] * *reinterpret_cast<const v16*>(Wt + o * n + i);
    *reinterpret_cast<v16*>(dst + i) = acc + *reinterpret_cast<const v16*>(b + i);
  }
}
#endif

/// dst = ((r0 + r1) + r2) + r3, element-wise: thinc's HashEmbed sum of four rows, in key order.
NERPIPE_SPACY_INLINE void sum4_body(float* __restrict dst, const float* __restrict r0, const float* __restrict r1,
                                    const float* __restrict r2, const float* __restrict r3, std::size_t n) {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (std::size_t k = 0; k < 16; ++k) dst[i + k] = ((r0[i + k] + r1[i + k]) + r2[i + k]) + r3[i + k];
  for (; i < n; ++i) dst[i] = ((r0[i] + r1[i]) + r2[i]) + r3[i];
}

/// Bias and maxout over piece-major rows: out[o] = max_p (y[p * nO + o] + b[p * nO + o]), pieces taken in
/// order (the same comparisons as thinc's argmax over the piece axis of y + b).
NERPIPE_SPACY_INLINE void bias_maxout_body(const float* __restrict y, const float* __restrict b, std::size_t nO,
                                           std::size_t nP, float* __restrict out) {
  std::size_t i = 0;
  for (; i + 16 <= nO; i += 16) {
    float m[16];
    for (std::size_t k = 0; k < 16; ++k) m[k] = y[i + k] + b[i + k];
    for (std::size_t p = 1; p < nP; ++p)
      for (std::size_t k = 0; k < 16; ++k) {
        const float v = y[p * nO + i + k] + b[p * nO + i + k];
        m[k] = v > m[k] ? v : m[k];
      }
    for (std::size_t k = 0; k < 16; ++k) out[i + k] = m[k];
  }
  for (; i < nO; ++i) {
    float m = y[i] + b[i];
    for (std::size_t p = 1; p < nP; ++p) m = std::max(m, y[p * nO + i] + b[p * nO + i]);
    out[i] = m;
  }
}

inline void sum4_generic(float* dst, const float* r0, const float* r1, const float* r2, const float* r3, std::size_t n) {
  sum4_body(dst, r0, r1, r2, r3, n);
}
inline void bias_maxout_rows_generic(const float* y, const float* b, std::size_t rows, std::size_t nO, std::size_t nP,
                                     float* out, std::size_t out_ld) {
  for (std::size_t r = 0; r < rows; ++r) bias_maxout_body(y + r * nO * nP, b, nO, nP, out + r * out_ld);
}
#if NERPIPE_SPACY_DISPATCH
NERPIPE_SPACY_AVX512 inline void sum4_avx512(float* dst, const float* r0, const float* r1, const float* r2, const float* r3,
                                             std::size_t n) {
  sum4_body(dst, r0, r1, r2, r3, n);
}
NERPIPE_SPACY_AVX512 inline void bias_maxout_rows_avx512(const float* y, const float* b, std::size_t rows, std::size_t nO,
                                                         std::size_t nP, float* out, std::size_t out_ld) {
  for (std::size_t r = 0; r < rows; ++r) bias_maxout_body(y + r * nO * nP, b, nO, nP, out + r * out_ld);
}
#endif

/// Maxout with bias over `rows` piece-major rows of y (rows x (nP * nO)) into out (row stride out_ld). Host memory.
inline void bias_maxout_rows(const float* y, const float* b, std::size_t rows, std::size_t nO, std::size_t nP, float* out,
                             std::size_t out_ld) {
#if NERPIPE_SPACY_DISPATCH
  if (spacy_avx512()) return bias_maxout_rows_avx512(y, b, rows, nO, nP, out, out_ld);
#endif
  bias_maxout_rows_generic(y, b, rows, nO, nP, out, out_ld);
}

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
  typename Policy::template buffer<float> W, G, beta;
  std::vector<float> b;  // host: added in the maxout pass
  std::size_t nO = 0, nP = 0, nI = 0;

  maxout_ln_layer() = default;
  maxout_ln_layer(const Policy& p, const spacy::maxout_layer_norm& l)
      : W(p.upload(std::span<const float>(piece_major(l.W.data, l.nO, l.nP, l.nI)))),
        G(p.upload(std::span<const float>(l.G.data))),
        beta(p.upload(std::span<const float>(l.beta.data))),
        b(piece_major(l.b.data, l.nO, l.nP, 1)),
        nO(l.nO),
        nP(l.nP),
        nI(l.nI) {}

  /// out (rows x nO) = LayerNorm(Maxout(x)); `y` is scratch of rows * nO * nP floats. The bias is added in
  /// the maxout pass (y + b per element, after the GEMM, as thinc does).
  void forward(const Policy& p, matrix_view<const float> x, float* y, matrix_view<float> out) const {
    ops::gemm(p, gemm_args<float, float, float>{x, matrix_view<const float>(W.data(), nO * nP, nI),
                                                matrix_view<float>(y, x.rows, nO * nP), true});
    bias_maxout_rows(y, b.data(), x.rows, nO, nP, out.data, out.ld);
    // thinc's LayerNorm adds its epsilon (1e-8) to the variance.
    ops::layer_norm(p, out, matrix_view<const float>{}, G.data(), beta.data(), 1e-8f);
  }
};

}  // namespace detail

/// MultiHashEmbed.v2 (NORM, PREFIX, SUFFIX, SHAPE tables; optional static vectors) with its mixer.
template <class Policy>
class multi_hash_embed {
  static_assert(can_access<Policy, host_space>,
                "nerpipe: multi_hash_embed sums table rows and computes maxout on host memory; this policy's memory is not host memory");

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
    // Per table: the four hashed rows of each token are summed straight into its column block, with the
    // rows of a few tokens ahead prefetched (the tables are a few MB; the reads are random).
    std::vector<std::uint32_t> ids(n * 4);
    constexpr std::size_t ahead = 4;
    for (std::size_t a = 0; a < na; ++a) {
      const auto& t = tables_[a];
      for (std::size_t i = 0; i < n; ++i) {
        const auto h = detail::murmurhash3_x64_128_u64(feats[i * na + a], t.seed);
        for (int k = 0; k < 4; ++k) ids[i * 4 + static_cast<std::size_t>(k)] = static_cast<std::uint32_t>(h[k] % t.rows);
      }
      const float* E = t.E.data();
      float* col = concat.data() + a * width_;
      const std::size_t W = width_;
      auto prefetch = [&](std::size_t i) {
#if defined(__GNUC__) || defined(__clang__)
        for (int k = 0; k < 4; ++k) {
          const char* r = reinterpret_cast<const char*>(E + std::size_t{ids[i * 4 + static_cast<std::size_t>(k)]} * W);
          for (std::size_t off = 0; off < W * sizeof(float); off += 64) __builtin_prefetch(r + off);
        }
#else
        (void)i;
#endif
      };
      for (std::size_t i = 0; i < std::min(ahead, n); ++i) prefetch(i);
      const bool wide = detail::spacy_avx512();
      for (std::size_t i = 0; i < n; ++i) {
        if (i + ahead < n) prefetch(i + ahead);
        const std::uint32_t* id = ids.data() + i * 4;
        float* dst = col + i * in_w;
#if NERPIPE_SPACY_DISPATCH
        if (wide) {
          detail::sum4_avx512(dst, E + std::size_t{id[0]} * W, E + std::size_t{id[1]} * W, E + std::size_t{id[2]} * W,
                              E + std::size_t{id[3]} * W, W);
          continue;
        }
#endif
        (void)wide;
        detail::sum4_generic(dst, E + std::size_t{id[0]} * W, E + std::size_t{id[1]} * W, E + std::size_t{id[2]} * W,
                             E + std::size_t{id[3]} * W, W);
      }
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
