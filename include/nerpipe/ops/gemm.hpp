// SPDX-License-Identifier: Apache-2.0
//! @file gemm with fused epilogues: C = epilogue(alpha * A * op(B) + beta * C + bias).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/ops/checks.hpp>
#include <nerpipe/ops/common.hpp>

NERPIPE_NAMESPACE_BEGIN

/// What happens to each output element after the product.
enum class epilogue : unsigned char {
  none,            ///< C = alpha * A op(B) + beta * C
  bias,            ///< ... + bias[col]
  bias_gelu,       ///< gelu_erf(... + bias[col])   (BERT's "gelu")
  bias_gelu_tanh,  ///< gelu_tanh(... + bias[col]) ("gelu_new" / "gelu_pytorch_tanh")
};

/// Arguments of one gemm. Row-major throughout; `b` is in the layout of a torch nn.Linear weight
/// ([n, k], `b_transposed == true`) or a plain [k, n] matrix. Every pointer is in the policy's memory.
template <class TA, class TB, class TC>
struct gemm_args {
  matrix_view<const TA> a;           // [m, k]
  matrix_view<const TB> b;           // [n, k] if b_transposed, else [k, n]
  matrix_view<TC> c;                 // [m, n]
  bool b_transposed = true;
  const float* bias = nullptr;       // [n]; required by every epilogue but `none`
  epilogue ep = epilogue::none;
  float alpha = 1.0f;
  float beta = 0.0f;                 // beta != 0 adds the old C (residual connections)
};

namespace ops {
template <class Policy>
struct gemm_impl {
  NERPIPE_MISSING_OP("gemm");
};

/// Throws config_error when the shapes of a, b and c disagree, a view lacks data or a stride, or an
/// epilogue has no bias (every policy: ops::gemm calls it).
template <class TA, class TB, class TC>
void check_gemm_args(const gemm_args<TA, TB, TC>& g) {
  namespace chk = detail::op_checks;
  const std::size_t m = g.c.rows, n = g.c.cols, k = g.a.cols;
  const std::size_t b_rows = g.b_transposed ? n : k, b_cols = g.b_transposed ? k : n;
  if (g.a.rows != m || g.b.rows != b_rows || g.b.cols != b_cols)
    chk::fail("gemm", "shapes do not match: a " + chk::describe(g.a) + ", b " + chk::describe(g.b) +
                          (g.b_transposed ? " (transposed, expected [n, k] = " : " (expected [k, n] = ") +
                          chk::shape(b_rows, b_cols) + "), c " + chk::describe(g.c));
  chk::view("gemm", "a", g.a);
  chk::view("gemm", "b", g.b);
  chk::view("gemm", "c", g.c);
  if (g.ep != epilogue::none && g.bias == nullptr && n != 0)
    chk::fail("gemm", "the epilogue needs a bias of " + std::to_string(n) + " floats; got a null bias pointer");
}

/// C = epilogue(alpha * A op(B) + beta * C + bias) (cuBLASLt order: the old C is added before the
/// GELU); accumulates in fp32 whatever the input type.
template <class Policy, class TA, class TB, class TC>
void gemm(const Policy& p, const gemm_args<TA, TB, TC>& args) {
  check_gemm_args(args);
  gemm_impl<Policy>::run(p, args);
}
}  // namespace ops

NERPIPE_NAMESPACE_END
