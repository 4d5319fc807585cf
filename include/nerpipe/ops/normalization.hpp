// SPDX-License-Identifier: Apache-2.0
//! @file Row-wise normalisations: residual + layer_norm, and softmax.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/ops/checks.hpp>
#include <nerpipe/ops/common.hpp>

NERPIPE_NAMESPACE_BEGIN
namespace ops {

template <class Policy>
struct layer_norm_impl {
  NERPIPE_MISSING_OP("layer_norm");
};
template <class Policy>
struct softmax_impl {
  NERPIPE_MISSING_OP("softmax");
};

/// In place, row by row: x = (x + residual - mean) / sqrt(var + eps) * gamma + beta, with the biased
/// variance (torch.nn.LayerNorm). `residual` may be an empty view; gamma and beta are [cols].
template <class Policy, class T>
void layer_norm(const Policy& p, matrix_view<T> x, matrix_view<const T> residual, const float* gamma,
                const float* beta, float eps) {
  namespace chk = detail::op_checks;
  chk::view("layer_norm", "x", x);
  if (residual.data != nullptr && !x.empty()) {
    chk::same_shape("layer_norm", "residual", residual.rows, residual.cols, "x", x.rows, x.cols);
    chk::view("layer_norm", "residual", residual);
  }
  if (!x.empty()) {
    chk::pointer("layer_norm", "gamma", gamma, x.cols);
    chk::pointer("layer_norm", "beta", beta, x.cols);
    if (!(eps >= 0.0f)) chk::fail("layer_norm", "eps " + std::to_string(eps) + " must be >= 0");
  }
  layer_norm_impl<Policy>::run(p, x, residual, gamma, beta, eps);
}

/// In place, row by row: x = exp(x - max) / sum(exp(x - max)).
template <class Policy, class T>
void softmax(const Policy& p, matrix_view<T> x) {
  detail::op_checks::view("softmax", "x", x);
  softmax_impl<Policy>::run(p, x);
}

}  // namespace ops
NERPIPE_NAMESPACE_END
