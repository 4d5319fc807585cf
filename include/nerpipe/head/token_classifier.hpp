// SPDX-License-Identifier: Apache-2.0
//! @file Token-classification head: logits = x Wc^T + bc, and (optionally) their softmax in fp32.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/encoder/precision.hpp>
#include <nerpipe/model/hf/types.hpp>
#include <nerpipe/ops/ops.hpp>

#include <cstddef>
#include <span>

NERPIPE_NAMESPACE_BEGIN

/// The linear layer over the encoder output. The pipeline's scores are the fp32 softmax of these
/// logits (transformers casts half-precision logits to float32 before its numpy softmax). The weight is
/// uploaded in the policy's compute dtype; the logits are fp32 in every mode (the GEMM accumulates in
/// fp32 and writes fp32, so bf16 mode never rounds the logits to bf16).
template <class Policy>
class token_classifier {
 public:
  using buffer = typename Policy::template buffer<float>;

  token_classifier(const Policy& p, const hf_config& c, const hf_weights& w)
      : hidden_(c.hidden),
        labels_(c.num_labels()),
        dtype_(detail::activation_dtype(detail::bert_compute_dtype(p, "token_classifier"))),  // bf16 in fp8 mode
        w_(p, std::span<const float>(w.classifier_w), dtype_),
        b_(p.upload(std::span<const float>(w.classifier_b))) {}

  [[nodiscard]] std::size_t num_labels() const noexcept { return labels_; }
  [[nodiscard]] dtype compute_dtype() const noexcept { return dtype_; }

  /// logits ([tokens, L], policy memory, fp32) = x ([tokens, H], the compute type T) Wc^T + bc.
  template <class T>
  void forward(const Policy& p, matrix_view<const T> x, matrix_view<float> logits) const {
    detail::check_compute_type<T>(dtype_, "token_classifier");
    ops::gemm(p, gemm_args<T, T, float>{x, matrix_view<const T>(w_.template data<T>(), labels_, hidden_), logits,
                                        true, b_.data(), epilogue::bias});
  }
  /// The fp32 form (also takes braced {data, rows, cols} views).
  void forward(const Policy& p, matrix_view<const float> x, matrix_view<float> logits) const {
    forward<float>(p, x, logits);
  }

  /// scores = softmax(logits) row by row, in place (for callers that want probabilities on the device).
  void probabilities(const Policy& p, matrix_view<float> logits) const { ops::softmax(p, logits); }

 private:
  std::size_t hidden_, labels_;
  dtype dtype_;
  detail::dense_weights<Policy> w_;
  buffer b_;
};

NERPIPE_NAMESPACE_END
