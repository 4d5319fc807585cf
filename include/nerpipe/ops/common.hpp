// SPDX-License-Identifier: Apache-2.0
//! @file Shared pieces of the operation declarations.
#pragma once

#include <nerpipe/config/macros.hpp>

#include <type_traits>

NERPIPE_NAMESPACE_BEGIN
namespace detail {
template <class...>
inline constexpr bool dependent_false = false;
}  // namespace detail

// Each operation is a primary template `ops::<op>_impl<Policy>` whose body fails to compile with a
// message that says what to include; <nerpipe/cpu/ops.hpp> and <nerpipe/cuda.cuh> specialise it.
#define NERPIPE_MISSING_OP(op)                                                                                  \
  static_assert(::nerpipe::detail::dependent_false<Policy>,                                                     \
                "nerpipe: no " op " for this policy. For cpu_policy include <nerpipe/nerpipe.hpp> (or "        \
                "<nerpipe/cpu/ops.hpp>); for cuda_policy include <nerpipe/cuda.cuh> from a .cu file compiled " \
                "by nvcc.")

NERPIPE_NAMESPACE_END
