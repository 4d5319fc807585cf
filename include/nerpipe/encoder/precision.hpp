// SPDX-License-Identifier: Apache-2.0
//! @file The compute precision of the BERT components: which element type weights and activations use on a policy.
//!
//! A policy asks for a precision with `compute_dtype()`: cpu_policy's is the compile-time constant f32,
//! cuda_policy's is chosen at run time (f32 exact mode, bf16 fast mode). Components upload their
//! matrices once in that type (dense_weights) and run their forward passes as templates on the element
//! type; the pipeline picks the instantiation once per batch (with_compute_type). Biases and LayerNorm
//! parameters stay fp32 in every mode (the ops take them as float and do that math in fp32).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/numeric.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

NERPIPE_NAMESPACE_BEGIN
namespace detail {

/// True when Policy can only compute in fp32 at compile time (no compute_dtype(), or a static constexpr
/// one equal to f32, as cpu_policy): half-precision paths are then never instantiated for it, so a policy
/// without 16-bit operations still compiles every component.
template <class Policy>
inline constexpr bool fp32_only_policy = !requires(const Policy& p) { p.compute_dtype(); } ||
                                         requires { requires(Policy::compute_dtype() == dtype::f32); };

/// The precision `p` asks components for (f32 for a policy that does not say).
template <class Policy>
[[nodiscard]] dtype compute_dtype_of(const Policy& p) {
  if constexpr (fp32_only_policy<Policy>)
    return dtype::f32;
  else
    return p.compute_dtype();
}

/// The precision components run in on `p`: f32 or bf16. f16 is refused here, by name, rather than run
/// untested (BERT's activations overflow fp16's range more easily than bf16's).
template <class Policy>
[[nodiscard]] dtype bert_compute_dtype(const Policy& p, std::string_view who) {
  const dtype d = compute_dtype_of(p);
  if (d != dtype::f32 && d != dtype::bf16)
    NERPIPE_THROW(config_error(errc::config_unsupported, std::string(who) + ": compute dtype " +
                                                             std::string(to_string(d)) +
                                                             " is not supported; expected F32 or BF16"));
  return d;
}

/// Calls fn(float{}) or fn(bfloat16{}) for compute dtype d: the one run-time switch between precisions.
/// On an fp32-only policy the bf16 branch is not instantiated.
template <class Policy, class Fn>
decltype(auto) with_compute_type(dtype d, Fn&& fn) {
  if constexpr (!fp32_only_policy<Policy>)
    if (d == dtype::bf16) return fn(bfloat16{});
  return fn(float{});
}

/// Throws when a forward pass is asked for element type T but the weights were uploaded as `have`.
template <class T>
void check_compute_type(dtype have, std::string_view who) {
  if (dtype_of<T> != have)
    NERPIPE_THROW(config_error(errc::config_invalid, std::string(who) + ": forward called with " +
                                                         std::string(to_string(dtype_of<T>)) +
                                                         " activations, but the weights were uploaded as " +
                                                         std::string(to_string(have)) +
                                                         " (the policy's compute_dtype() at construction)"));
}

/// One weight matrix (or table) in policy memory, uploaded once in the compute dtype: fp32 as given, or
/// rounded to bf16 (round to nearest even, as torch's .to(bfloat16)). Only one of the two buffers is held.
template <class Policy>
class dense_weights {
 public:
  dense_weights() = default;
  dense_weights(const Policy& p, std::span<const float> host, dtype d) {
    if (d == dtype::bf16) {
      std::vector<bfloat16> h(host.size());
      for (std::size_t i = 0; i < host.size(); ++i) h[i] = to_bfloat16(host[i]);
      bf16_ = p.upload(std::span<const bfloat16>(h));
    } else {
      f32_ = p.upload(host);
    }
  }

  template <class T>
  [[nodiscard]] const T* data() const noexcept {
    if constexpr (std::is_same_v<T, bfloat16>)
      return bf16_.data();
    else
      return f32_.data();
  }

 private:
  typename Policy::template buffer<float> f32_;
  typename Policy::template buffer<bfloat16> bf16_;
};

}  // namespace detail
NERPIPE_NAMESPACE_END
