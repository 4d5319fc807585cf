// SPDX-License-Identifier: Apache-2.0
//! @file Multi-head self-attention over packed variable-length sequences (no padding).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/ops/common.hpp>

#include <cstddef>
#include <cstdint>

NERPIPE_NAMESPACE_BEGIN

/// Sequences are packed back to back: sequence s owns rows [seq_offsets[s], seq_offsets[s+1]) of
/// q, k, v and out; tokens attend only within their own sequence. Head h uses columns
/// [h * head_dim, (h+1) * head_dim). q, k, v may be column slices of one fused [tokens, 3 * hidden]
/// matrix (their `ld` says so).
template <class T>
struct attention_args {
  matrix_view<const T> q, k, v;             // [tokens, heads * head_dim]
  matrix_view<T> out;                       // [tokens, heads * head_dim]
  const std::int32_t* seq_offsets = nullptr;  // [num_seqs + 1], policy memory
  const std::int32_t* seq_offsets_host = nullptr;  // the same offsets on the host (for launch shapes)
  std::size_t num_seqs = 0;
  std::size_t heads = 0;
  std::size_t head_dim = 0;
  std::size_t max_seq_len = 0;              // the longest sequence
  float scale = 0.0f;                       // 0: 1 / sqrt(head_dim)
};

namespace ops {
template <class Policy>
struct attention_impl {
  NERPIPE_MISSING_OP("attention");
};

/// out = softmax(q k^T * scale) v per sequence and head.
template <class Policy, class T>
void attention(const Policy& p, const attention_args<T>& args) {
  attention_impl<Policy>::run(p, args);
}
}  // namespace ops

NERPIPE_NAMESPACE_END
