// SPDX-License-Identifier: Apache-2.0
//! @file Element-wise and gather operations: gelu, embedding gather, argmax.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/ops/checks.hpp>
#include <nerpipe/ops/common.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>

NERPIPE_NAMESPACE_BEGIN

/// The two GELU forms transformer configs name.
enum class gelu_form : unsigned char {
  erf,   ///< x/2 (1 + erf(x / sqrt 2)): "gelu"
  tanh,  ///< x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): "gelu_new", "gelu_pytorch_tanh"
};

/// The scalar definitions, shared by the host reference and every policy (host and device).
NERPIPE_HOST_DEVICE inline float gelu_scalar(float x, gelu_form form) {
  if (form == gelu_form::erf) return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
  const float inner = 0.79788456080286536f * (x + 0.044715f * x * x * x);
  return 0.5f * x * (1.0f + tanhf(inner));
}

namespace ops {

template <class Policy>
struct gelu_impl {
  NERPIPE_MISSING_OP("gelu");
};
template <class Policy>
struct gather_impl {
  NERPIPE_MISSING_OP("gather");
};
template <class Policy>
struct argmax_impl {
  NERPIPE_MISSING_OP("argmax");
};

/// In place over n contiguous elements.
template <class Policy, class T>
void gelu(const Policy& p, T* x, std::size_t n, gelu_form form) {
  detail::op_checks::pointer("gelu", "x", x, n);
  gelu_impl<Policy>::run(p, x, n, form);
}

/// out.row(i) = table.row(ids[i]) (accumulate: +=). out.rows ids; every id must be < table.rows
/// (callers validate ids once, on the host; the op does not check them).
template <class Policy, class TT, class TO>
void gather(const Policy& p, matrix_view<const TT> table, const std::int32_t* ids, matrix_view<TO> out,
            bool accumulate = false) {
  namespace chk = detail::op_checks;
  chk::view("gather", "out", out);
  if (!out.empty()) {
    chk::view("gather", "table", table);
    if (table.rows == 0 || table.cols < out.cols)
      chk::fail("gather", "table " + chk::describe(table) + " has no rows or is narrower than out " + chk::describe(out));
    chk::pointer("gather", "ids", ids, out.rows);
  }
  gather_impl<Policy>::run(p, table, ids, out, accumulate);
}

/// out[r] = the first column index of the largest value of row r (ties: lowest index, like numpy).
template <class Policy, class T>
void argmax(const Policy& p, matrix_view<const T> x, std::int32_t* out) {
  namespace chk = detail::op_checks;
  if (x.rows != 0 && x.cols == 0) chk::fail("argmax", "x " + chk::describe(x) + " has no columns; expected cols >= 1");
  chk::view("argmax", "x", x);
  chk::pointer("argmax", "out", out, x.rows);
  argmax_impl<Policy>::run(p, x, out);
}

}  // namespace ops
NERPIPE_NAMESPACE_END
