// SPDX-License-Identifier: Apache-2.0
//! @file The cpu_policy specialisations of the spaCy family's operations (ops/spacy.hpp): the host kernels
//! that reproduce spaCy/thinc's floats exactly, with AVX-512 copies picked once per process.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/ops/spacy.hpp>
#include <nerpipe/policy/cpu_policy.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

NERPIPE_NAMESPACE_BEGIN
namespace detail {

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

/// One transition step's hidden layer: h[o] = max_p (((0 + F0[p, o]) + F1[p, o]) + ... + b[p, o]) over the
/// nF precomputed feature rows (piece-major, nP x nH each), in thinc's order of additions.
NERPIPE_SPACY_INLINE void ner_hidden_body(const float* const* feats, std::size_t nF, const float* __restrict b, std::size_t nH,
                                          std::size_t nP, float* __restrict h) {
  std::size_t i = 0;
  for (; i + 16 <= nH; i += 16) {
    float m[16];
    for (std::size_t p = 0; p < nP; ++p) {
      float u[16] = {};
      for (std::size_t f = 0; f < nF; ++f) {
        const float* __restrict x = feats[f] + p * nH + i;
        for (std::size_t k = 0; k < 16; ++k) u[k] += x[k];
      }
      const float* __restrict bp = b + p * nH + i;
      for (std::size_t k = 0; k < 16; ++k) u[k] += bp[k];
      if (p == 0)
        for (std::size_t k = 0; k < 16; ++k) m[k] = u[k];
      else
        for (std::size_t k = 0; k < 16; ++k) m[k] = u[k] > m[k] ? u[k] : m[k];
    }
    for (std::size_t k = 0; k < 16; ++k) h[i + k] = m[k];
  }
  for (; i < nH; ++i) {
    float m = 0.0f;
    for (std::size_t p = 0; p < nP; ++p) {
      float u = 0.0f;
      for (std::size_t f = 0; f < nF; ++f) u += feats[f][p * nH + i];
      u += b[p * nH + i];
      m = p == 0 ? u : std::max(m, u);
    }
    h[i] = m;
  }
}
inline void ner_hidden_generic(const float* const* feats, std::size_t nF, const float* b, std::size_t nH, std::size_t nP, float* h) {
  ner_hidden_body(feats, nF, b, nH, nP, h);
}
#if NERPIPE_SPACY_DISPATCH
NERPIPE_SPACY_AVX512 inline void ner_hidden_avx512(const float* const* feats, std::size_t nF, const float* b, std::size_t nH,
                                                   std::size_t nP, float* h) {
  ner_hidden_body(feats, nF, b, nH, nP, h);
}
#endif

}  // namespace detail

namespace ops {

template <>
struct hash_embed_impl<cpu_policy> {
  static void run(const cpu_policy&, const std::uint64_t* feats, std::size_t stride, std::size_t col, std::uint32_t seed,
                  matrix_view<const float> table, matrix_view<float> out) {
    namespace d = ::nerpipe::detail;
    const std::size_t n = out.rows;
    if (n == 0) return;
    // The four hashed rows of each token are summed straight into its row of out, with the rows of a few
    // tokens ahead prefetched (the tables are a few MB; the reads are random).
    static thread_local std::vector<std::uint32_t> id_scratch;
    std::vector<std::uint32_t>& ids = id_scratch;
    ids.resize(n * 4);
    const std::size_t rows = table.rows;
    for (std::size_t i = 0; i < n; ++i) {
      const auto h = d::murmurhash3_x64_128_u64(feats[i * stride + col], seed);
      for (int k = 0; k < 4; ++k) ids[i * 4 + static_cast<std::size_t>(k)] = static_cast<std::uint32_t>(h[k] % rows);
    }
    const float* E = table.data;
    const std::size_t W = out.cols, ld = table.ld;
    constexpr std::size_t ahead = 4;
    auto prefetch = [&](std::size_t i) {
#if defined(__GNUC__) || defined(__clang__)
      for (int k = 0; k < 4; ++k) {
        const char* r = reinterpret_cast<const char*>(E + std::size_t{ids[i * 4 + static_cast<std::size_t>(k)]} * ld);
        for (std::size_t off = 0; off < W * sizeof(float); off += 64) __builtin_prefetch(r + off);
      }
#else
      (void)i;
#endif
    };
    for (std::size_t i = 0; i < std::min(ahead, n); ++i) prefetch(i);
    const bool wide = d::spacy_avx512();
    for (std::size_t i = 0; i < n; ++i) {
      if (i + ahead < n) prefetch(i + ahead);
      const std::uint32_t* id = ids.data() + i * 4;
      float* dst = out.row(i);
#if NERPIPE_SPACY_DISPATCH
      if (wide) {
        d::sum4_avx512(dst, E + std::size_t{id[0]} * ld, E + std::size_t{id[1]} * ld, E + std::size_t{id[2]} * ld,
                       E + std::size_t{id[3]} * ld, W);
        continue;
      }
#endif
      (void)wide;
      d::sum4_generic(dst, E + std::size_t{id[0]} * ld, E + std::size_t{id[1]} * ld, E + std::size_t{id[2]} * ld,
                      E + std::size_t{id[3]} * ld, W);
    }
  }
};

template <>
struct bias_maxout_impl<cpu_policy> {
  static void run(const cpu_policy&, const float* y, const float* b, std::size_t nO, std::size_t nP, matrix_view<float> out) {
    ::nerpipe::detail::bias_maxout_rows(y, b, out.rows, nO, nP, out.data, out.ld);
  }
};

template <>
struct fill_impl<cpu_policy> {
  static void run(const cpu_policy&, float* x, std::size_t n, float value) { std::fill(x, x + n, value); }
};

template <>
struct add_impl<cpu_policy> {
  static void run(const cpu_policy&, float* dst, const float* src, std::size_t n) { ::nerpipe::detail::add_into(dst, src, n); }
};

template <>
struct zero_rows_impl<cpu_policy> {
  static void run(const cpu_policy&, matrix_view<float> x, const std::int32_t* rows, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      float* r = x.row(static_cast<std::size_t>(rows[i]));
      std::fill(r, r + x.cols, 0.0f);
    }
  }
};

template <>
struct scatter_rows_impl<cpu_policy> {
  static void run(const cpu_policy&, matrix_view<const float> src, const std::int32_t* ids, matrix_view<float> dst) {
    for (std::size_t i = 0; i < src.rows; ++i)
      std::memcpy(dst.row(static_cast<std::size_t>(ids[i])), src.row(i), src.cols * sizeof(float));
  }
};

template <>
struct reduce_mean_impl<cpu_policy> {
  static void run(const cpu_policy&, matrix_view<const float> x, const std::int32_t* rows, const std::int32_t* offsets,
                  matrix_view<float> out) {
    for (std::size_t s = 0; s < out.rows; ++s) {
      float* o = out.row(s);
      std::fill(o, o + out.cols, 0.0f);
      const auto b = static_cast<std::size_t>(offsets[s]), e = static_cast<std::size_t>(offsets[s + 1]);
      if (e <= b) continue;
      const auto scale = static_cast<float>(1.0 / static_cast<double>(e - b));
      for (std::size_t k = b; k < e; ++k) {
        const float* r = x.row(static_cast<std::size_t>(rows[k]));
        for (std::size_t c = 0; c < out.cols; ++c) o[c] += r[c] * scale;
      }
    }
  }
};

template <>
struct seq2col_impl<cpu_policy> {
  static void run(const cpu_policy&, const float* Z, std::size_t R, std::size_t W, std::size_t nW, float* C) {
    const std::size_t K = W * (2 * nW + 1);
    for (std::size_t i = 0; i < R; ++i) {
      float* c = C + i * K;
      for (std::size_t k = 0; k < 2 * nW + 1; ++k) {
        const std::ptrdiff_t j = static_cast<std::ptrdiff_t>(i + k) - static_cast<std::ptrdiff_t>(nW);
        if (j < 0 || j >= static_cast<std::ptrdiff_t>(R)) std::fill(c + k * W, c + (k + 1) * W, 0.0f);
        else std::memcpy(c + k * W, Z + static_cast<std::size_t>(j) * W, W * sizeof(float));
      }
    }
  }
};

template <>
struct add_seq2col_impl<cpu_policy> {
  // The residual add and the next layer's seq2col in one pass: Z[i] += M[i], then Z[i] goes to the
  // window blocks of C that hold it. C's out-of-range blocks stay the zeros the first seq2col wrote.
  static void run(const cpu_policy&, float* Z, const float* M, std::size_t R, std::size_t W, std::size_t nW, float* C) {
    const std::size_t K = W * (2 * nW + 1);
    for (std::size_t i = 0; i < R; ++i) {
      float* z = Z + i * W;
      ::nerpipe::detail::add_into(z, M + i * W, W);
      for (std::size_t k = 0; k < 2 * nW + 1; ++k) {
        // C row j = i + nW - k holds Z[i] in its block k
        if (i + nW < k) break;
        const std::size_t j = i + nW - k;
        if (j < R) std::memcpy(C + j * K + k * W, z, W * sizeof(float));
      }
    }
  }
};

template <>
struct ner_decode_impl<cpu_policy> {
  static void run(const cpu_policy&, const ner_decode_args& a) {
    namespace d = ::nerpipe::detail;
    const std::size_t nF = a.nF, nH = a.nH, nP = a.nP, HP = nH * nP, FHP = nF * HP;
    const std::size_t A = a.classes_n, Ap = a.classes_pad;
    const float* C = a.cached;
    std::vector<float> h(nH), scores(Ap);
    std::vector<const float*> feats(nF);
    const bool wide = d::spacy_avx512();
    for (std::size_t doc = 0; doc < a.docs; ++doc) {
      const auto offset = static_cast<std::size_t>(a.doc_offsets[doc]);
      const std::size_t n = static_cast<std::size_t>(a.doc_offsets[doc + 1]) - offset;
      std::int32_t* ents = a.ents + offset * 3;
      std::int32_t count = 0;
      bool open = false;
      std::size_t ent_start = 0;
      std::uint32_t ent_label = 0;
      for (std::size_t b0 = 0; b0 < n; ++b0) {
        const long ids[3] = {static_cast<long>(b0), open ? static_cast<long>(ent_start) : -1, open ? static_cast<long>(b0) - 1 : -1};
        for (std::size_t f = 0; f < nF; ++f)
          feats[f] = ids[f] < 0 ? a.lower_pad + f * HP : C + (offset + static_cast<std::size_t>(ids[f])) * FHP + f * HP;
#if NERPIPE_SPACY_DISPATCH
        if (wide) d::ner_hidden_avx512(feats.data(), nF, a.lower_b, nH, nP, h.data());
        else
#endif
          d::ner_hidden_generic(feats.data(), nF, a.lower_b, nH, nP, h.data());
        (void)wide;
        // scores[c] = sum_o h[o] W[c, o] in o order, then + b[c]: the same sums as one dot product per
        // class, but over the transposed weights so the loop runs across classes in SIMD lanes.
#if NERPIPE_SPACY_AXPY_WIDE
        if (wide) d::linear_t_avx512(h.data(), nH, a.upper_wt, a.upper_b, Ap, scores.data());
        else
#endif
          d::linear_t_generic(h.data(), nH, a.upper_wt, a.upper_b, Ap, scores.data());
        // buffer_length < 2, or the next token starts a sentence: both forbid exactly B and I.
        const bool last = b0 + 1 >= n || (a.sent_start != nullptr && a.sent_start[offset + b0 + 1] != 0);
        const bool space = a.is_space[offset + b0] != 0;
        std::size_t best = A;
        const std::size_t key = ner_valid_key(open, ent_label, last, space);
        for (std::uint32_t v = a.valid_offsets[key]; v < a.valid_offsets[key + 1]; ++v) {
          const std::uint32_t c = a.valid_list[v];
          if (best == A || scores[c] > scores[best]) best = c;  // ascending class order, so ties: lowest class index
        }
        if (best == A) break;  // cannot happen: O or L is always valid
        const ner_class& act = a.classes[best];
        switch (act.mv) {
          case ner_move::begin:
            open = true;
            ent_start = b0;
            ent_label = act.label;
            break;
          case ner_move::last:
            ents[count * 3] = static_cast<std::int32_t>(ent_start);
            ents[count * 3 + 1] = static_cast<std::int32_t>(b0 + 1);
            ents[count * 3 + 2] = static_cast<std::int32_t>(ent_label - 1);
            ++count;
            open = false;
            break;
          case ner_move::unit:
            ents[count * 3] = static_cast<std::int32_t>(b0);
            ents[count * 3 + 1] = static_cast<std::int32_t>(b0 + 1);
            ents[count * 3 + 2] = static_cast<std::int32_t>(act.label - 1);
            ++count;
            break;
          default: break;
        }
      }
      a.counts[doc] = count;
    }
  }
};

}  // namespace ops
NERPIPE_NAMESPACE_END
