// SPDX-License-Identifier: Apache-2.0
//! @file Branch-free exp and GELU over float arrays, written as fixed-width loops that GCC/Clang vectorise at -O2.
//!
//! Why this shape: at -O2 GCC's "very cheap" vectoriser only takes loops whose trip count is a known
//! multiple of the vector width and that need no alias check, so every kernel works on blocks of
//! `block` elements (a compile-time trip count) through local arrays, plus a scalar tail that runs
//! the very same per-element code. On x86 without -mavx2 the block kernels are also compiled for
//! AVX2+FMA in separate [[gnu::target]] functions and picked once at run time with
//! __builtin_cpu_supports: no ifunc and no target_clones, so every copy is an ordinary inline (COMDAT)
//! function and several translation units including this header stay ODR-clean.
//!
//! Accuracy (measured by tests/unit/ops_cpu.cpp against double references):
//!  - gelu_erf / gelu_tanh compute in double internally and round once at the end: max relative
//!    error ~6e-8 (half an ulp plus < 1e-9 of approximation) over the whole float range, including
//!    x << 0 where 1 + erf(x / sqrt 2) cancels (gelu_scalar's erff form loses all relative accuracy
//!    there). gelu_erf uses erfc(z) = exp(-z^2) erfcx(z) with erfcx as a polynomial in t = 1/(1 + z/2)
//!    (minimax fit, relative error 3.1e-10 on z in [0, 10.3]).
//!  - exp_f (for softmax) is float throughout: Cody-Waite reduction and a degree-7 polynomial,
//!    max relative error ~2 ulp; exp_f(x) = 0 for x < -87.33 (softmax arguments are <= 0).
#pragma once

#include <nerpipe/config/macros.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>

#if defined(__GNUC__) || defined(__clang__)
#define NERPIPE_VMATH_INLINE __attribute__((always_inline)) inline
#else
#define NERPIPE_VMATH_INLINE inline
#endif

// Run-time AVX2 dispatch: GCC/Clang on x86 only, not under nvcc (its host pass gains nothing), and
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

/// exp(x) in float. Cody-Waite: x = n ln2 + r, |r| <= ln2/2, exp(r) = 1 + r + r^2 p(r).
NERPIPE_VMATH_INLINE float exp_f(float x) {
  const float xc = x > 88.37f ? 88.37f : (x < -87.33f ? -87.33f : x);  // NaN passes through both
  const float t = xc * 1.44269504088896341f;
  const int n = static_cast<int>(t + (t < 0.0f ? -0.5f : 0.5f));  // round half away: no SSE4.1 roundps
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
  return x < -87.33f ? 0.0f : e * scale;
}

/// exp(y) in double for |y| <= 708 (callers clamp): Cody-Waite with fdlibm's split of ln2 and a
/// degree-10 Taylor polynomial (|r| <= 0.347: truncation error < 3e-13, far below float rounding).
NERPIPE_VMATH_INLINE double exp_d(double y) {
  const double t = y * 1.4426950408889634;
  const int n = static_cast<int>(t + (t < 0.0 ? -0.5 : 0.5));
  const double fn = static_cast<double>(n);
  const double r = (y - fn * 6.93147180369123816490e-01) - fn * 1.90821492927058770002e-10;
  double p = 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
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
/// full relative accuracy, Phi(x) is q for x < 0 and 1 - q otherwise: no cancellation on either side.
NERPIPE_VMATH_INLINE float gelu_erf(float xf) {
  const double x = xf;
  const double a = x < 0.0 ? -x : x;
  const double ac = a > 37.0 ? 37.0 : a;  // exp(-37^2/2) underflows double; q is 0 in float long before
  const double e = exp_d(-0.5 * ac * ac);  // exact argument: a has 24 bits, so a * a fits a double
  // erfcx(a / sqrt 2) / 2 = t P(t), t = 1 / (1 + a / (2 sqrt 2)).
  const double t = 1.0 / (1.0 + 0.35355339059327373 * ac);
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
  // Selects only between inputs and constants, so that no computation sinks into a branch (GCC
  // will not if-convert trapping floating-point operations, which stops the vectoriser).
  const double base = x < 0.0 ? 0.0 : 1.0, sign = x < 0.0 ? 1.0 : -1.0;
  const double xm = x < -37.0 ? -0.0 : x;  // the limit -0 for x -> -inf (-inf * tiny would be -inf)
  return static_cast<float>(xm * (base + sign * q));
}

/// x/2 (1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3), in double.
NERPIPE_VMATH_INLINE float gelu_tanh(float xf) {
  const double x = xf;
  const double m = -2.0 * 0.79788456080286536 * (x + 0.044715 * x * x * x);
  const double mc = m > 708.0 ? 708.0 : (m < -708.0 ? -708.0 : m);  // NaN passes through
  const double xm = x < -37.0 ? -0.0 : x;  // as gelu_erf: the limit -0 for x -> -inf
  return static_cast<float>(xm / (1.0 + exp_d(mc)));
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
  float sum = 0.0f;
  for (; i < n; ++i) sum += (row[i] = exp_f(row[i] - mx));
  for (std::size_t j = 0; j < block; ++j) sum += sumv[j];

  const float inv = 1.0f / sum;
  i = 0;
  for (; i + block <= n; i += block)
    for (std::size_t j = 0; j < block; ++j) row[i + j] *= inv;
  for (; i < n; ++i) row[i] *= inv;
}

// The out-of-line entry points: one plain copy, and with dispatch an AVX2+FMA copy of the same body.
inline void bias_act_generic(float* x, const float* bias, std::size_t n, act a) { bias_act_dispatch_body(x, bias, n, a); }
inline void softmax_generic(float* row, std::size_t n) { softmax_body(row, n); }

#if NERPIPE_VMATH_DISPATCH
__attribute__((target("avx2,fma"))) inline void bias_act_avx2(float* x, const float* bias, std::size_t n, act a) {
  bias_act_dispatch_body(x, bias, n, a);
}
__attribute__((target("avx2,fma"))) inline void softmax_avx2(float* row, std::size_t n) { softmax_body(row, n); }

inline bool has_avx2_fma() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return yes;
}
#endif

/// x[i] = act(x[i] + bias[i]) for i < n; bias may be null (then act must not be none to do anything).
inline void bias_act(float* x, const float* bias, std::size_t n, act a) {
#if NERPIPE_VMATH_DISPATCH
  if (has_avx2_fma()) return bias_act_avx2(x, bias, n, a);
#endif
  bias_act_generic(x, bias, n, a);
}

/// One softmax row in place.
inline void softmax_row(float* row, std::size_t n) {
#if NERPIPE_VMATH_DISPATCH
  if (has_avx2_fma()) return softmax_avx2(row, n);
#endif
  softmax_generic(row, n);
}

}  // namespace detail::vmath
NERPIPE_NAMESPACE_END
