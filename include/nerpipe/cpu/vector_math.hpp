// SPDX-License-Identifier: Apache-2.0
//! @file Vectorised CPU kernels: GELU (erf, tanh) with bias, softmax rows (fast exp), LayerNorm rows.
//!
//! Why this shape: at -O2 GCC's "very cheap" vectoriser only takes loops whose trip count is a known
//! multiple of the vector width and that need no alias check, so every kernel works on blocks of
//! `block` elements (a compile-time trip count) through local arrays, plus a short tail. Everything
//! is branch-free (see `select`), so the default x86-64 (SSE2) build vectorises too. On x86 without
//! -mavx2 the same bodies are also compiled for AVX2+FMA and for AVX-512 in target-attributed
//! functions and one is picked once per process with __builtin_cpu_supports. No ifunc and no
//! target_clones: every copy is an ordinary inline (COMDAT) function with its own name, so several
//! translation units including this header stay ODR-clean and need no loader support.
//!
//! Accuracy (tests/unit/cpu_vector_math.cpp checks every level against double references):
//!  - gelu_erf / gelu_tanh compute in double and round once at the end: max relative error 6.0e-8
//!    (half an ulp plus < 1e-9 of approximation) on [-10, 10], with the right limits (x for +inf, -0
//!    for -inf), including x << 0 where 1 + erf(x / sqrt 2) cancels (gelu_scalar's erff form loses
//!    all relative accuracy there). gelu_erf uses erfc(z) = exp(-z^2) erfcx(z) with erfcx(z)/2 as
//!    t P(t), t = 1/(1 + z/2), P of degree 11 (minimax fit, relative error 3.1e-10 on z in [0, 10.3]).
//!  - exp_f (for softmax) is float throughout: Cody-Waite reduction and a degree-7 polynomial,
//!    max relative error 8e-8; exp_f(x) = 0 for x < -87.33 (softmax arguments are <= 0).
//!  - Sums (softmax, LayerNorm) run over `block` lanes, then add the lanes: a different rounding
//!    order from a sequential loop, and a more accurate one.
#pragma once

#include <nerpipe/config/macros.hpp>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#if defined(__GNUC__) || defined(__clang__)
#define NERPIPE_VMATH_INLINE __attribute__((always_inline)) inline
#else
#define NERPIPE_VMATH_INLINE inline
#endif

// Run-time AVX2 / AVX-512 dispatch: GCC/Clang on x86 only, not under nvcc (its host pass gains nothing), and
// not when the baseline already has AVX2 (then the plain kernels are AVX2 code already).
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__)) && !defined(__AVX2__) && \
    !defined(__CUDACC__) && !defined(NERPIPE_NO_CPU_DISPATCH)
#define NERPIPE_VMATH_DISPATCH 1
#else
#define NERPIPE_VMATH_DISPATCH 0
#endif

NERPIPE_NAMESPACE_BEGIN
namespace detail::vmath {

/// Elements per vectorised block: one 512-bit vector of floats, two AVX2 ones, four SSE2 ones.
inline constexpr std::size_t block = 16;

/// c ? a : b as bit operations. A plain ?: on floats lets GCC thread jumps over correlated
/// conditions and sink arithmetic into the branches; it then refuses to if-convert the (trapping,
/// under the default -ftrapping-math) floating-point operations, and the loop is not vectorised.
template <class T>
NERPIPE_VMATH_INLINE T select(bool c, T a, T b) {
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  const U m = U(0) - static_cast<U>(c);
  return std::bit_cast<T>(static_cast<U>((std::bit_cast<U>(a) & m) | (std::bit_cast<U>(b) & ~m)));
}

/// exp(x) in float for x <= 88.3 (softmax arguments are <= 0); 0 below -87.33, NaN stays NaN.
/// Cody-Waite: x = n ln2 + r, |r| <= ln2/2, exp(r) = 1 + r + r^2 p(r) (p: minimax, degree 5).
NERPIPE_VMATH_INLINE float exp_f(float x) {
  const float xc = select(x < -87.33f, -87.33f, select(x > 88.3f, 88.3f, x));
  const float t = xc * 1.44269504088896341f;
  const int n = static_cast<int>(t + select(t < 0.0f, -0.5f, 0.5f));  // round half away: no SSE4.1 roundps
  const float fn = static_cast<float>(n);
  const float r = (xc - fn * 0.693359375f) - fn * -2.12194440e-4f;  // 0.693359375 has 9 bits: fn * it is exact
  float p = 1.97860561e-4f;
  p = p * r + 1.39489823e-3f;
  p = p * r + 8.33352432e-3f;
  p = p * r + 4.16662355e-2f;
  p = p * r + 1.66666657e-1f;
  p = p * r + 5.00000008e-1f;
  const float e = 1.0f + (r + (r * r) * p);
  const float scale = std::bit_cast<float>(static_cast<std::uint32_t>(n + 127) << 23);  // n in [-126, 127]
  return select(x < -87.33f, 0.0f, e * scale);
}

/// exp(y) in double for |y| <= 708 (callers clamp): Cody-Waite with fdlibm's split of ln2 and a
/// degree-8 Taylor polynomial (|r| <= 0.347: relative truncation error < 3e-10, far below float rounding).
/// No double-width selects anywhere below: SSE2 cannot vectorise 64-bit masks made from compares.
NERPIPE_VMATH_INLINE double exp_d(double y) {
  const double t = y * 1.4426950408889634;
  const int n = static_cast<int>(t + std::copysign(0.5, t));
  const double fn = static_cast<double>(n);
  const double r = (y - fn * 6.93147180369123816490e-01) - fn * 1.90821492927058770002e-10;
  double p = 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  const double scale = std::bit_cast<double>(static_cast<std::uint64_t>(static_cast<std::int64_t>(n) + 1023) << 52);
  return p * scale;
}

/// x/2 (1 + erf(x / sqrt 2)) = x Phi(x). With q = Phi(-|x|) = erfc(|x| / sqrt 2) / 2 computed to
/// full relative accuracy, the result is x q for x < 0 and x (1 - q) otherwise: no cancellation.
NERPIPE_VMATH_INLINE float gelu_erf(float x) {
  const float af = std::abs(x);
  const double a = select(af > 37.0f, 37.0f, af);  // exp(-37^2/2) is near double's limit; q is 0 in float long before
  const double e = exp_d(-0.5 * a * a);  // an exact argument: a has 24 bits, so a * a fits a double
  // erfcx(a / sqrt 2) / 2 = t P(t), t = 1 / (1 + a / (2 sqrt 2)); minimax, relative error 3.1e-10.
  const double t = 1.0 / (1.0 + 0.35355339059327373 * a);
  double p = -0.014435506274648289;
  p = p * t + 0.10885606348541529;
  p = p * t + -0.34920925942185349;
  p = p * t + 0.60307618438497268;
  p = p * t + -0.57793276337731003;
  p = p * t + 0.29699482309407765;
  p = p * t + -0.13320393591507634;
  p = p * t + 0.078280024726969932;
  p = p * t + 0.081280219829840974;
  p = p * t + 0.12425745955239025;
  p = p * t + 0.14098740438458005;
  p = p * t + 0.14104928568620678;
  const double q = e * (t * p);
  const float neg = static_cast<float>(x * q), pos = static_cast<float>(x * (1.0 - q));
  // x < -37: the limit -0 exactly (x q would be -inf * tiny = -inf for x = -inf).
  return select(x < -37.0f, -0.0f, select(x < 0.0f, neg, pos));
}

/// x/2 (1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3), in double.
NERPIPE_VMATH_INLINE float gelu_tanh(float x) {
  // |x| <= 20 keeps |2u| <= 604 (no overflow); beyond it the float result is x or -0 anyway.
  const double xc = select(x > 20.0f, 20.0f, select(x < -20.0f, -20.0f, x));  // NaN passes through
  const double m = -2.0 * 0.79788456080286536 * (xc + 0.044715 * xc * xc * xc);
  const float r = static_cast<float>(static_cast<double>(x) / (1.0 + exp_d(m)));
  return select(x < -20.0f, -0.0f, r);
}

enum class act : unsigned char { none, gelu_erf, gelu_tanh };

template <act A>
NERPIPE_VMATH_INLINE float apply(float v) {
  if constexpr (A == act::gelu_erf)
    return gelu_erf(v);
  else if constexpr (A == act::gelu_tanh)
    return gelu_tanh(v);
  else
    return v;
}

/// x[0, W) = act(x + bias) (bias may be null). The local copy keeps the loops free of alias checks.
template <act A, bool Bias, std::size_t W>
NERPIPE_VMATH_INLINE void bias_act_block(float* x, const float* bias) {
  float v[W];
  for (std::size_t j = 0; j < W; ++j) v[j] = Bias ? x[j] + bias[j] : x[j];
  for (std::size_t j = 0; j < W; ++j) x[j] = apply<A>(v[j]);
}

template <act A, bool Bias>
NERPIPE_VMATH_INLINE void bias_act_body(float* x, const float* bias, std::size_t n) {
  std::size_t i = 0;
  for (; i + block <= n; i += block) bias_act_block<A, Bias, block>(x + i, Bias ? bias + i : nullptr);
  for (; i < n; ++i) bias_act_block<A, Bias, 1>(x + i, Bias ? bias + i : nullptr);
}

NERPIPE_VMATH_INLINE void bias_act_dispatch_body(float* x, const float* bias, std::size_t n, act a) {
  switch (a) {
    case act::none:
      if (bias != nullptr) bias_act_body<act::none, true>(x, bias, n);
      return;
    case act::gelu_erf:
      if (bias != nullptr)
        bias_act_body<act::gelu_erf, true>(x, bias, n);
      else
        bias_act_body<act::gelu_erf, false>(x, bias, n);
      return;
    case act::gelu_tanh:
      if (bias != nullptr)
        bias_act_body<act::gelu_tanh, true>(x, bias, n);
      else
        bias_act_body<act::gelu_tanh, false>(x, bias, n);
      return;
  }
}

/// In place: row = exp(row - max) / sum, max and sum over lanes of a block (order differs from a
/// sequential loop only in the rounding of the sum, which the tolerance of softmax covers).
NERPIPE_VMATH_INLINE void softmax_body(float* row, std::size_t n) {
  if (n == 0) return;
  std::size_t i = 0;
  float mxv[block];
  for (std::size_t j = 0; j < block; ++j) mxv[j] = -std::numeric_limits<float>::infinity();
  for (; i + block <= n; i += block)
    for (std::size_t j = 0; j < block; ++j) mxv[j] = mxv[j] > row[i + j] ? mxv[j] : row[i + j];
  float mx = -std::numeric_limits<float>::infinity();
  for (std::size_t j = 0; j < block; ++j) mx = mx > mxv[j] ? mx : mxv[j];
  for (; i < n; ++i) mx = mx > row[i] ? mx : row[i];

  float sumv[block] = {};
  i = 0;
  for (; i + block <= n; i += block) {
    float v[block];
    for (std::size_t j = 0; j < block; ++j) v[j] = exp_f(row[i + j] - mx);
    for (std::size_t j = 0; j < block; ++j) {
      row[i + j] = v[j];
      sumv[j] += v[j];
    }
  }
  if (i < n) {  // the tail as one padded block (exp_f(-inf) = 0 adds nothing): no scalar exp calls
    float v[block];
    for (std::size_t j = 0; j < block; ++j) v[j] = -std::numeric_limits<float>::infinity();
    for (std::size_t j = 0; i + j < n; ++j) v[j] = row[i + j];
    for (std::size_t j = 0; j < block; ++j) {
      v[j] = exp_f(v[j] - mx);
      sumv[j] += v[j];
    }
    for (std::size_t j = 0; i + j < n; ++j) row[i + j] = v[j];
  }
  float sum = 0.0f;
  for (std::size_t j = 0; j < block; ++j) sum += sumv[j];

  const float inv = 1.0f / sum;
  i = 0;
  for (; i + block <= n; i += block)
    for (std::size_t j = 0; j < block; ++j) row[i + j] *= inv;
  for (; i < n; ++i) row[i] *= inv;
}

/// In place: row = LayerNorm(row + residual) * gamma + beta (residual may be null). Two passes, mean
/// then centred squares, as torch does; each sum runs over `block` lanes and then adds the lanes.
template <bool Residual>
NERPIPE_VMATH_INLINE void layer_norm_row_impl(float* row, const float* res, const float* gamma, const float* beta,
                                          std::size_t n, float eps) {
  std::size_t i = 0;
  float acc[block] = {};
  for (; i + block <= n; i += block) {
    float v[block];
    for (std::size_t j = 0; j < block; ++j) v[j] = Residual ? row[i + j] + res[i + j] : row[i + j];
    for (std::size_t j = 0; j < block; ++j) {
      row[i + j] = v[j];
      acc[j] += v[j];
    }
  }
  float sum = 0.0f;
  for (; i < n; ++i) sum += (row[i] = Residual ? row[i] + res[i] : row[i]);
  for (std::size_t j = 0; j < block; ++j) sum += acc[j];
  const float mean = sum / static_cast<float>(n);

  float sq[block] = {};
  i = 0;
  for (; i + block <= n; i += block)
    for (std::size_t j = 0; j < block; ++j) {
      const float d = row[i + j] - mean;
      sq[j] += d * d;
    }
  float var = 0.0f;
  for (; i < n; ++i) {
    const float d = row[i] - mean;
    var += d * d;
  }
  for (std::size_t j = 0; j < block; ++j) var += sq[j];
  var /= static_cast<float>(n);
  const float inv = 1.0f / std::sqrt(var + eps);

  i = 0;
  for (; i + block <= n; i += block) {
    float v[block];
    for (std::size_t j = 0; j < block; ++j) v[j] = (row[i + j] - mean) * inv * gamma[i + j] + beta[i + j];
    for (std::size_t j = 0; j < block; ++j) row[i + j] = v[j];
  }
  for (; i < n; ++i) row[i] = (row[i] - mean) * inv * gamma[i] + beta[i];
}

NERPIPE_VMATH_INLINE void layer_norm_body(float* row, const float* res, const float* gamma, const float* beta,
                                          std::size_t n, float eps) {
  if (n == 0) return;
  if (res != nullptr)
    layer_norm_row_impl<true>(row, res, gamma, beta, n, eps);
  else
    layer_norm_row_impl<false>(row, res, gamma, beta, n, eps);
}

// The out-of-line entry points: one plain copy, and with dispatch AVX2+FMA and AVX-512 copies of the same bodies.
inline void bias_act_generic(float* x, const float* bias, std::size_t n, act a) {
  bias_act_dispatch_body(x, bias, n, a);
}
inline void softmax_generic(float* row, std::size_t n) { softmax_body(row, n); }
inline void layer_norm_generic(float* row, const float* res, const float* gamma, const float* beta, std::size_t n,
                               float eps) {
  layer_norm_body(row, res, gamma, beta, n, eps);
}

#if NERPIPE_VMATH_DISPATCH
#define NERPIPE_VMATH_AVX2 __attribute__((target("avx2,fma")))
#define NERPIPE_VMATH_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")))
NERPIPE_VMATH_AVX2 inline void bias_act_avx2(float* x, const float* bias, std::size_t n, act a) {
  bias_act_dispatch_body(x, bias, n, a);
}
NERPIPE_VMATH_AVX2 inline void softmax_avx2(float* row, std::size_t n) { softmax_body(row, n); }
NERPIPE_VMATH_AVX512 inline void bias_act_avx512(float* x, const float* bias, std::size_t n, act a) {
  bias_act_dispatch_body(x, bias, n, a);
}
NERPIPE_VMATH_AVX512 inline void softmax_avx512(float* row, std::size_t n) { softmax_body(row, n); }
NERPIPE_VMATH_AVX2 inline void layer_norm_avx2(float* row, const float* res, const float* gamma, const float* beta,
                                               std::size_t n, float eps) {
  layer_norm_body(row, res, gamma, beta, n, eps);
}
NERPIPE_VMATH_AVX512 inline void layer_norm_avx512(float* row, const float* res, const float* gamma,
                                                   const float* beta, std::size_t n, float eps) {
  layer_norm_body(row, res, gamma, beta, n, eps);
}
#undef NERPIPE_VMATH_AVX2
#undef NERPIPE_VMATH_AVX512

/// 0: baseline, 1: AVX2 + FMA, 2: AVX-512 (F, DQ, VL, BW). Decided once per process.
inline int cpu_level() {
  static const int level = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw"))
      return 2;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
  }();
  return level;
}
#endif

/// x[i] = act(x[i] + bias[i]) for i < n; bias may be null (then act must not be none to do anything).
inline void bias_act(float* x, const float* bias, std::size_t n, act a) {
#if NERPIPE_VMATH_DISPATCH
  switch (cpu_level()) {
    case 2:
      return bias_act_avx512(x, bias, n, a);
    case 1:
      return bias_act_avx2(x, bias, n, a);
    default:
      break;
  }
#endif
  bias_act_generic(x, bias, n, a);
}

/// One softmax row in place.
inline void softmax_row(float* row, std::size_t n) {
#if NERPIPE_VMATH_DISPATCH
  switch (cpu_level()) {
    case 2:
      return softmax_avx512(row, n);
    case 1:
      return softmax_avx2(row, n);
    default:
      break;
  }
#endif
  softmax_generic(row, n);
}

/// One LayerNorm row in place, with an optional residual added first.
inline void layer_norm_row(float* row, const float* res, const float* gamma, const float* beta, std::size_t n,
                           float eps) {
#if NERPIPE_VMATH_DISPATCH
  switch (cpu_level()) {
    case 2:
      return layer_norm_avx512(row, res, gamma, beta, n, eps);
    case 1:
      return layer_norm_avx2(row, res, gamma, beta, n, eps);
    default:
      break;
  }
#endif
  layer_norm_generic(row, res, gamma, beta, n, eps);
}

}  // namespace detail::vmath
NERPIPE_NAMESPACE_END
