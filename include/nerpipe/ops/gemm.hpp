// SPDX-License-Identifier: Apache-2.0
//! @file gemm with fused epilogues: C = epilogue(alpha * A * op(B) + beta * C + bias).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
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

/// C = epilogue(alpha * A op(B) + beta * C + bias) (cuBLASLt order: the old C is added before the
/// GELU); accumulates in fp32 whatever the input type.
template <class Policy, class TA, class TB, class TC>
void gemm(const Policy& p, const gemm_args<TA, TB, TC>& args) {
  gemm_impl<Policy>::run(p, args);
}
}  // namespace ops

NERPIPE_NAMESPACE_END
