// SPDX-License-Identifier: Apache-2.0
//! @file FP8 (e4m3) gemm with per-tensor scales: C = epilogue(sa * sb * qa op(qb) + bias), fp32 accumulation.
//!
//! The weight b is quantised once (detail::quantize_fp8_e4m3: qb, sb = amax(|b|) / 448). The activations a
//! (bf16) are quantised at every call on the policy's device: amax = max |a| over the whole matrix,
//! sa = amax / 448, qa = e4m3(a * (448 / amax)) with round to nearest even and saturation (amax 0: sa = 1).
//! Only the policies with FP8 matrix units implement it (cuda_policy on sm_89+, through cuBLASLt).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/ops/checks.hpp>
#include <nerpipe/ops/common.hpp>
#include <nerpipe/ops/gemm.hpp>

#include <cstddef>
#include <string>

NERPIPE_NAMESPACE_BEGIN

/// Arguments of one FP8 gemm. Row-major; b in the nn.Linear layout ([n, k]). Every pointer is in the policy's memory.
template <class TA, class TC>
struct fp8_gemm_args {
  matrix_view<const TA> a;             // [m, k] activations, quantised per call
  matrix_view<const float8_e4m3> b;    // [n, k] quantised weight
  const float* b_scale = nullptr;      // one float: b's dequantisation scale
  matrix_view<TC> c;                   // [m, n]
  const float* bias = nullptr;         // [n]; required by every epilogue but `none`
  epilogue ep = epilogue::none;
};

namespace ops {
template <class Policy>
struct fp8_gemm_impl {
  NERPIPE_MISSING_OP("fp8_gemm");
};

/// Throws config_error when shapes disagree, a view lacks data or stride, the scale or an epilogue's bias is
/// missing, or k and n are not positive multiples of 16 (what FP8 matrix units need).
template <class TA, class TC>
void check_fp8_gemm_args(const fp8_gemm_args<TA, TC>& g) {
  namespace chk = detail::op_checks;
  const std::size_t m = g.c.rows, n = g.c.cols, k = g.a.cols;
  if (g.a.rows != m || g.b.rows != n || g.b.cols != k)
    chk::fail("fp8_gemm", "shapes do not match: a " + chk::describe(g.a) + ", b " + chk::describe(g.b) +
                              " (expected [n, k] = " + chk::shape(n, k) + "), c " + chk::describe(g.c));
  chk::view("fp8_gemm", "a", g.a);
  chk::view("fp8_gemm", "b", g.b);
  chk::view("fp8_gemm", "c", g.c);
  if (g.b_scale == nullptr) chk::fail("fp8_gemm", "b_scale is null; expected the weight's dequantisation scale");
  if (g.ep != epilogue::none && g.bias == nullptr && n != 0)
    chk::fail("fp8_gemm", "the epilogue needs a bias of " + std::to_string(n) + " floats; got a null bias pointer");
  if (k % 16 != 0 || n % 16 != 0 || (k == 0 && m != 0 && n != 0))
    chk::fail("fp8_gemm", "k and n must be positive multiples of 16 for FP8 matrix units; got k " + std::to_string(k) +
                              ", n " + std::to_string(n));
}

/// C = epilogue(sa * sb * qa op(qb) + bias); see the file comment for the quantisation.
template <class Policy, class TA, class TC>
void fp8_gemm(const Policy& p, const fp8_gemm_args<TA, TC>& args) {
  check_fp8_gemm_args(args);
  fp8_gemm_impl<Policy>::run(p, args);
}
}  // namespace ops

NERPIPE_NAMESPACE_END
