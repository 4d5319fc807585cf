// SPDX-License-Identifier: Apache-2.0
//! @file Token-classification head: logits = x Wc^T + bc, and (optionally) their softmax in fp32.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/model/hf/types.hpp>
#include <nerpipe/ops/ops.hpp>

#include <cstddef>
#include <span>

NERPIPE_NAMESPACE_BEGIN

/// The linear layer over the encoder output. The pipeline's scores are the fp32 softmax of these
/// logits (transformers casts half-precision logits to float32 before its numpy softmax).
template <class Policy>
class token_classifier {
 public:
  using buffer = typename Policy::template buffer<float>;

  token_classifier(const Policy& p, const hf_config& c, const hf_weights& w)
      : hidden_(c.hidden),
        labels_(c.num_labels()),
        w_(p.upload(std::span<const float>(w.classifier_w))),
        b_(p.upload(std::span<const float>(w.classifier_b))) {}

  [[nodiscard]] std::size_t num_labels() const noexcept { return labels_; }

  /// logits ([tokens, L], policy memory) = x ([tokens, H]) Wc^T + bc.
  void forward(const Policy& p, matrix_view<const float> x, matrix_view<float> logits) const {
    ops::gemm(p, gemm_args<float, float, float>{x, {w_.data(), labels_, hidden_}, logits, true, b_.data(),
                                                epilogue::bias});
  }

  /// scores = softmax(logits) row by row, in place (for callers that want probabilities on the device).
  void probabilities(const Policy& p, matrix_view<float> logits) const { ops::softmax(p, logits); }

 private:
  std::size_t hidden_, labels_;
  buffer w_, b_;
};

NERPIPE_NAMESPACE_END
