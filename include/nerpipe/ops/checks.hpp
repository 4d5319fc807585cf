// SPDX-License-Identifier: Apache-2.0
//! @file The argument checks of the op front ends (ops/*.hpp), written once for every policy: shapes that
//! disagree, null pointers where data is needed, strides smaller than a row. Each failure is a config_error
//! (config_invalid) whose message names the op, the argument and the values, so cpu_policy and cuda_policy
//! reject the same calls with the same words instead of one throwing and the other reading out of bounds.
//! What the checks cannot see (ids inside a table, offsets inside a buffer) is the caller's to validate on the
//! host, once per batch; the ops say so where they take such arguments.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/numeric.hpp>

#include <cstddef>
#include <string>
#include <string_view>

NERPIPE_NAMESPACE_BEGIN
namespace detail::op_checks {

[[noreturn]] inline void fail(std::string_view op, const std::string& what) {
  NERPIPE_THROW(config_error(errc::config_invalid, std::string(op) + ": " + what));
}

inline std::string shape(std::size_t rows, std::size_t cols) {
  return "[" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
}

template <class T>
std::string describe(const matrix_view<T>& v) {
  return shape(v.rows, v.cols) + (v.ld != v.cols ? " (ld " + std::to_string(v.ld) + ")" : "");
}

/// A view with rows and columns must have data, and rows at least `cols` apart.
template <class T>
void view(std::string_view op, std::string_view name, const matrix_view<T>& v) {
  if (v.rows == 0 || v.cols == 0) return;
  if (v.data == nullptr) fail(op, std::string(name) + " " + describe(v) + " has a null data pointer");
  if (v.ld < v.cols)
    fail(op, std::string(name) + " " + describe(v) + ": ld " + std::to_string(v.ld) + " is smaller than its " +
                 std::to_string(v.cols) + " columns");
}

/// A pointer the op reads or writes `count` elements through.
inline void pointer(std::string_view op, std::string_view name, const void* p, std::size_t count) {
  if (count != 0 && p == nullptr)
    fail(op, std::string(name) + " is null; expected " + std::to_string(count) + " elements");
}

inline void same_shape(std::string_view op, std::string_view a_name, std::size_t a_rows, std::size_t a_cols,
                       std::string_view b_name, std::size_t b_rows, std::size_t b_cols) {
  if (a_rows != b_rows || a_cols != b_cols)
    fail(op, std::string(a_name) + " " + shape(a_rows, a_cols) + " differs from " + std::string(b_name) + " " +
                 shape(b_rows, b_cols));
}

}  // namespace detail::op_checks
NERPIPE_NAMESPACE_END
