// SPDX-License-Identifier: Apache-2.0
//! @file The compute precision of the BERT components: which element type weights and activations use on a policy.
//!
//! A policy asks for a precision with `compute_dtype()`: cpu_policy's is the compile-time constant f32,
//! cuda_policy's is chosen at run time (f32 exact mode, bf16 fast mode). Components upload their
//! matrices once in that type (dense_weights) and run their forward passes as templates on the element
//! type; the pipeline picks the instantiation once per batch (with_compute_type). Biases and LayerNorm
//! parameters stay fp32 in every mode (the ops take them as float and do that math in fp32).
//!
//! fp8_e4m3 (cuda_policy, opt-in): the encoder's four big GEMMs per layer run in FP8 (weights quantised once
//! with a per-tensor scale, inputs quantised per GEMM with a scale from their amax computed on the device,
//! fp32 accumulation, bf16 output); activations between operations, the embedding and the classifier are bf16.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/numeric.hpp>

#include <cmath>
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

/// The precision components run in on `p`: f32, bf16 or fp8_e4m3. f16 is refused here, by name, rather than
/// run untested (BERT's activations overflow fp16's range more easily than bf16's).
template <class Policy>
[[nodiscard]] dtype bert_compute_dtype(const Policy& p, std::string_view who) {
  const dtype d = compute_dtype_of(p);
  if (d != dtype::f32 && d != dtype::bf16 && d != dtype::fp8_e4m3)
    NERPIPE_THROW(config_error(errc::config_unsupported, std::string(who) + ": compute dtype " +
                                                             std::string(to_string(d)) +
                                                             " is not supported; expected F32, BF16 or F8_E4M3"));
  return d;
}

/// The element type of activations between operations in compute dtype d (fp8 mode keeps them bf16).
[[nodiscard]] constexpr dtype activation_dtype(dtype d) noexcept { return d == dtype::fp8_e4m3 ? dtype::bf16 : d; }

/// Calls fn(float{}) or fn(bfloat16{}) for compute dtype d (bf16 for fp8_e4m3: the activations' type): the
/// one run-time switch between precisions. On an fp32-only policy the bf16 branch is not instantiated.
template <class Policy, class Fn>
decltype(auto) with_compute_type(dtype d, Fn&& fn) {
  if constexpr (!fp32_only_policy<Policy>)
    if (activation_dtype(d) == dtype::bf16) return fn(bfloat16{});
  return fn(float{});
}

/// Throws when a forward pass is asked for element type T but the weights were uploaded for `have`.
template <class T>
void check_compute_type(dtype have, std::string_view who) {
  if (dtype_of<T> != activation_dtype(have))
    NERPIPE_THROW(config_error(errc::config_invalid, std::string(who) + ": forward called with " +
                                                         std::string(to_string(dtype_of<T>)) +
                                                         " activations, but the weights were uploaded as " +
                                                         std::string(to_string(have)) +
                                                         " (the policy's compute_dtype() at construction)"));
}

/// An fp32 matrix quantised to e4m3 with one per-tensor scale: w ~= to_float(q[i]) * scale, where
/// scale = amax(|w|) / 448 and q[i] = e4m3(w[i] * (448 / amax)) (round to nearest even). amax 0 gives scale 1.
struct fp8_quantized {
  std::vector<float8_e4m3> q;
  float scale = 1.0f;
};
[[nodiscard]] inline fp8_quantized quantize_fp8_e4m3(std::span<const float> w) {
  float amax = 0.0f;
  for (const float x : w) amax = std::fabs(x) > amax ? std::fabs(x) : amax;
  fp8_quantized out;
  out.q.resize(w.size());
  const float inv = amax > 0.0f ? fp8_e4m3_max / amax : 1.0f;
  out.scale = amax > 0.0f ? amax / fp8_e4m3_max : 1.0f;
  for (std::size_t i = 0; i < w.size(); ++i) out.q[i] = to_float8_e4m3(w[i] * inv);
  return out;
}

/// One weight matrix (or table) in policy memory, uploaded once in the compute dtype: fp32 as given, rounded
/// to bf16 (round to nearest even, as torch's .to(bfloat16)), or quantised to e4m3 with a per-tensor scale
/// (quantize_fp8_e4m3; the scale is a one-float buffer in policy memory). Only one form is held.
template <class Policy>
class dense_weights {
 public:
  dense_weights() = default;
  dense_weights(const Policy& p, std::span<const float> host, dtype d) {
    if (d == dtype::fp8_e4m3) {
      const fp8_quantized qw = quantize_fp8_e4m3(host);
      fp8_ = p.upload(std::span<const float8_e4m3>(qw.q));
      const float scale[1] = {qw.scale};
      fp8_scale_ = p.upload(std::span<const float>(scale, 1));
    } else if (d == dtype::bf16) {
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
    else if constexpr (std::is_same_v<T, float8_e4m3>)
      return fp8_.data();
    else
      return f32_.data();
  }
  /// The e4m3 form's dequantisation scale (policy memory, one float); null in the other forms.
  [[nodiscard]] const float* fp8_scale() const noexcept { return fp8_scale_.data(); }

 private:
  typename Policy::template buffer<float> f32_;
  typename Policy::template buffer<bfloat16> bf16_;
  typename Policy::template buffer<float8_e4m3> fp8_;
  typename Policy::template buffer<float> fp8_scale_;
};

}  // namespace detail
NERPIPE_NAMESPACE_END
