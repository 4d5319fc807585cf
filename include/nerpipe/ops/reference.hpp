// SPDX-License-Identifier: Apache-2.0
//! @file Naive double-precision host references of every operation: the oracle the op tests of every policy use.
//!
//! Each function mirrors the signature of the operation of the same name in <nerpipe/ops/>, minus the
//! policy, and works on host memory only. Plain loops, accumulation in double, one rounding to the
//! output type at the end; no threads, no BLAS, nothing clever, so a disagreement points at the policy.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/ops/attention.hpp>
#include <nerpipe/ops/disentangled_attention.hpp>
#include <nerpipe/ops/elementwise.hpp>
#include <nerpipe/ops/gemm.hpp>
#include <nerpipe/ops/normalization.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

NERPIPE_NAMESPACE_BEGIN
namespace detail {
inline double ref_load(float v) noexcept { return v; }
inline double ref_load(double v) noexcept { return v; }
inline double ref_load(float16 v) noexcept { return to_float(v); }
inline double ref_load(bfloat16 v) noexcept { return to_float(v); }

// double -> float first, then to the half type: the double -> float step rounds once more than
// a direct conversion would, which is below every half-precision tolerance we use.
template <class T>
inline T ref_store(double v) noexcept {
  if constexpr (std::is_same_v<T, float16>)
    return to_float16(static_cast<float>(v));
  else if constexpr (std::is_same_v<T, bfloat16>)
    return to_bfloat16(static_cast<float>(v));
  else
    return static_cast<T>(v);
}
}  // namespace detail

namespace ops::reference {

/// GELU in double, in the form the config names.
inline double gelu(double x, gelu_form form) {
  if (form == gelu_form::erf) return 0.5 * x * (1.0 + std::erf(x * 0.70710678118654752440));
  const double inner = 0.79788456080286535588 * (x + 0.044715 * x * x * x);
  return 0.5 * x * (1.0 + std::tanh(inner));
}

/// One element of a gemm: epilogue(alpha * sum_k A[r,k] op(B)[k,c] + beta * c_old + bias[c]), in double.
/// `c_old` is the previous C value; it is not used when beta == 0 (BLAS semantics: C may hold garbage).
template <class TA, class TB, class TC>
double gemm_element(const gemm_args<TA, TB, TC>& g, std::size_t r, std::size_t c, double c_old) {
  double acc = 0.0;
  for (std::size_t i = 0; i < g.a.cols; ++i) {
    const double b = g.b_transposed ? ::nerpipe::detail::ref_load(g.b(c, i)) : ::nerpipe::detail::ref_load(g.b(i, c));
    acc += ::nerpipe::detail::ref_load(g.a(r, i)) * b;
  }
  double v = static_cast<double>(g.alpha) * acc;
  if (g.beta != 0.0f) v += static_cast<double>(g.beta) * c_old;
  if (g.ep != epilogue::none) v += static_cast<double>(g.bias[c]);
  if (g.ep == epilogue::bias_gelu) return gelu(v, gelu_form::erf);
  if (g.ep == epilogue::bias_gelu_tanh) return gelu(v, gelu_form::tanh);
  return v;
}

/// The magnitude a gemm element's rounding error scales with: |alpha| sum_k |A[r,k] op(B)[k,c]| +
/// |beta c_old| + |bias[c]|. Tests bound the error of a policy's result relative to this, not to the
/// (possibly cancelling) result itself.
template <class TA, class TB, class TC>
double gemm_element_magnitude(const gemm_args<TA, TB, TC>& g, std::size_t r, std::size_t c, double c_old) {
  double acc = 0.0;
  for (std::size_t i = 0; i < g.a.cols; ++i) {
    const double b = g.b_transposed ? ::nerpipe::detail::ref_load(g.b(c, i)) : ::nerpipe::detail::ref_load(g.b(i, c));
    acc += std::abs(::nerpipe::detail::ref_load(g.a(r, i)) * b);
  }
  double m = std::abs(static_cast<double>(g.alpha)) * acc;
  if (g.beta != 0.0f) m += std::abs(static_cast<double>(g.beta) * c_old);
  if (g.ep != epilogue::none) m += std::abs(static_cast<double>(g.bias[c]));
  return m;
}

/// C = epilogue(alpha * A op(B) + beta * C + bias), every pointer on the host.
template <class TA, class TB, class TC>
void gemm(const gemm_args<TA, TB, TC>& g) {
  for (std::size_t r = 0; r < g.c.rows; ++r)
    for (std::size_t c = 0; c < g.c.cols; ++c) {
      const double old = g.beta != 0.0f ? ::nerpipe::detail::ref_load(g.c(r, c)) : 0.0;
      g.c(r, c) = ::nerpipe::detail::ref_store<TC>(gemm_element(g, r, c, old));
    }
}

/// In place: x = (x + residual - mean) / sqrt(var + eps) * gamma + beta per row, biased variance.
template <class T>
void layer_norm(matrix_view<T> x, matrix_view<const T> residual, const float* gamma, const float* beta, float eps) {
  const std::size_t n = x.cols;
  std::vector<double> row(n);
  for (std::size_t r = 0; r < x.rows; ++r) {
    for (std::size_t c = 0; c < n; ++c)
      row[c] =
          ::nerpipe::detail::ref_load(x(r, c)) + (residual.empty() ? 0.0 : ::nerpipe::detail::ref_load(residual(r, c)));
    double mean = 0.0;
    for (double v : row) mean += v;
    mean /= static_cast<double>(n);
    double var = 0.0;
    for (double v : row) var += (v - mean) * (v - mean);
    var /= static_cast<double>(n);
    const double inv = 1.0 / std::sqrt(var + static_cast<double>(eps));
    for (std::size_t c = 0; c < n; ++c)
      x(r, c) = ::nerpipe::detail::ref_store<T>((row[c] - mean) * inv * static_cast<double>(gamma[c]) +
                                                static_cast<double>(beta[c]));
  }
}

/// In place, per row: x = exp(x - max) / sum(exp(x - max)).
template <class T>
void softmax(matrix_view<T> x) {
  std::vector<double> row(x.cols);
  for (std::size_t r = 0; r < x.rows; ++r) {
    double mx = -HUGE_VAL;
    for (std::size_t c = 0; c < x.cols; ++c) mx = std::fmax(mx, row[c] = ::nerpipe::detail::ref_load(x(r, c)));
    double sum = 0.0;
    for (double& v : row) sum += (v = std::exp(v - mx));
    for (std::size_t c = 0; c < x.cols; ++c) x(r, c) = ::nerpipe::detail::ref_store<T>(row[c] / sum);
  }
}

/// In place over n contiguous elements.
template <class T>
void gelu(T* x, std::size_t n, gelu_form form) {
  for (std::size_t i = 0; i < n; ++i)
    x[i] = ::nerpipe::detail::ref_store<T>(gelu(::nerpipe::detail::ref_load(x[i]), form));
}

/// out.row(i) = table.row(ids[i]), or += with `accumulate`. Ids are trusted, as in the op.
template <class TT, class TO>
void gather(matrix_view<const TT> table, const std::int32_t* ids, matrix_view<TO> out, bool accumulate = false) {
  for (std::size_t r = 0; r < out.rows; ++r) {
    const auto src = static_cast<std::size_t>(ids[r]);
    for (std::size_t c = 0; c < out.cols; ++c) {
      const double base = accumulate ? ::nerpipe::detail::ref_load(out(r, c)) : 0.0;
      out(r, c) = ::nerpipe::detail::ref_store<TO>(base + ::nerpipe::detail::ref_load(table(src, c)));
    }
  }
}

/// out[r] = the lowest column index holding the row's largest value (NaN never compares larger).
template <class T>
void argmax(matrix_view<const T> x, std::int32_t* out) {
  for (std::size_t r = 0; r < x.rows; ++r) {
    std::size_t best = 0;
    for (std::size_t c = 1; c < x.cols; ++c)
      if (::nerpipe::detail::ref_load(x(r, c)) > ::nerpipe::detail::ref_load(x(r, best))) best = c;
    out[r] = static_cast<std::int32_t>(best);
  }
}

/// out = softmax(q k^T * scale) v for every sequence and head of a packed batch. Offsets are read from
/// `seq_offsets_host` when set, else from `seq_offsets` (both must then be host pointers).
template <class T>
void attention(const attention_args<T>& a) {
  const std::int32_t* offs = a.seq_offsets_host != nullptr ? a.seq_offsets_host : a.seq_offsets;
  const double scale =
      a.scale != 0.0f ? static_cast<double>(a.scale) : 1.0 / std::sqrt(static_cast<double>(a.head_dim));
  std::vector<double> p;
  for (std::size_t s = 0; s < a.num_seqs; ++s) {
    const auto begin = static_cast<std::size_t>(offs[s]);
    const auto len = static_cast<std::size_t>(offs[s + 1] - offs[s]);
    p.resize(len);
    for (std::size_t h = 0; h < a.heads; ++h) {
      const std::size_t col = h * a.head_dim;
      for (std::size_t i = 0; i < len; ++i) {
        double mx = -HUGE_VAL;
        for (std::size_t j = 0; j < len; ++j) {
          double dot = 0.0;
          for (std::size_t d = 0; d < a.head_dim; ++d)
            dot += ::nerpipe::detail::ref_load(a.q(begin + i, col + d)) *
                   ::nerpipe::detail::ref_load(a.k(begin + j, col + d));
          p[j] = dot * scale;
          mx = std::fmax(mx, p[j]);
        }
        double sum = 0.0;
        for (std::size_t j = 0; j < len; ++j) sum += (p[j] = std::exp(p[j] - mx));
        for (std::size_t d = 0; d < a.head_dim; ++d) {
          double acc = 0.0;
          for (std::size_t j = 0; j < len; ++j) acc += p[j] * ::nerpipe::detail::ref_load(a.v(begin + j, col + d));
          a.out(begin + i, col + d) = ::nerpipe::detail::ref_store<T>(acc / sum);
        }
      }
    }
  }
}

/// out = softmax(scale (q k^T + c2p + p2c)) v for every sequence and head of a packed batch (see
/// disentangled_attention_args). Offsets from `seq_offsets_host` when set, else `seq_offsets`; rel_index and the
/// tables must be host memory.
template <class T>
void disentangled_attention(const disentangled_attention_args<T>& a) {
  const std::int32_t* offs = a.seq_offsets_host != nullptr ? a.seq_offsets_host : a.seq_offsets;
  const double scale =
      a.scale != 0.0f ? static_cast<double>(a.scale) : 1.0 / std::sqrt(static_cast<double>(a.head_dim));
  auto dot = [&](const matrix_view<const T>& x, std::size_t rx, const matrix_view<const T>& y, std::size_t ry,
                 std::size_t col) {
    double acc = 0.0;
    for (std::size_t d = 0; d < a.head_dim; ++d)
      acc += ::nerpipe::detail::ref_load(x(rx, col + d)) * ::nerpipe::detail::ref_load(y(ry, col + d));
    return acc;
  };
  std::vector<double> p;
  for (std::size_t s = 0; s < a.num_seqs; ++s) {
    const auto begin = static_cast<std::size_t>(offs[s]);
    const auto len = static_cast<std::size_t>(offs[s + 1] - offs[s]);
    p.resize(len);
    for (std::size_t h = 0; h < a.heads; ++h) {
      const std::size_t col = h * a.head_dim;
      for (std::size_t i = 0; i < len; ++i) {
        double mx = -HUGE_VAL;
        for (std::size_t j = 0; j < len; ++j) {
          double score = dot(a.q, begin + i, a.k, begin + j, col);
          if (a.pos_key.rows != 0 || a.pos_query.rows != 0) {
            const auto r = static_cast<std::size_t>(
                a.rel_index[static_cast<std::ptrdiff_t>(i) - static_cast<std::ptrdiff_t>(j) +
                            static_cast<std::ptrdiff_t>(a.max_distance) - 1]);
            if (a.pos_key.rows != 0) score += dot(a.q, begin + i, a.pos_key, r, col);
            if (a.pos_query.rows != 0) score += dot(a.k, begin + j, a.pos_query, r, col);
          }
          p[j] = score * scale;
          mx = std::fmax(mx, p[j]);
        }
        double sum = 0.0;
        for (std::size_t j = 0; j < len; ++j) sum += (p[j] = std::exp(p[j] - mx));
        for (std::size_t d = 0; d < a.head_dim; ++d) {
          double acc = 0.0;
          for (std::size_t j = 0; j < len; ++j) acc += p[j] * ::nerpipe::detail::ref_load(a.v(begin + j, col + d));
          a.out(begin + i, col + d) = ::nerpipe::detail::ref_store<T>(acc / sum);
        }
      }
    }
  }
}

}  // namespace ops::reference
NERPIPE_NAMESPACE_END
