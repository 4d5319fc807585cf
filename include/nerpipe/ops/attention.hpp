// SPDX-License-Identifier: Apache-2.0
//! @file Multi-head self-attention over packed variable-length sequences (no padding).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/ops/checks.hpp>
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

/// Throws config_error when the views, offsets or head shape cannot describe an attention call (every
/// policy: ops::attention calls it). Offsets themselves are the caller's: ascending, ending at out.rows.
template <class T>
void check_attention_args(const attention_args<T>& a) {
  namespace chk = detail::op_checks;
  if (a.num_seqs == 0 || a.heads == 0) return;
  if (a.head_dim == 0) chk::fail("attention", "head_dim is 0; expected the per-head width");
  if (a.seq_offsets == nullptr)
    chk::fail("attention", "seq_offsets (policy memory) is null; expected " + std::to_string(a.num_seqs + 1) + " offsets");
  if (a.max_seq_len == 0 && a.seq_offsets_host == nullptr)
    chk::fail("attention", "max_seq_len is 0 and seq_offsets_host is null; expected one of them");
  const std::size_t width = a.heads * a.head_dim;
  if (a.q.cols < width || a.k.cols < width || a.v.cols < width || a.out.cols < width)
    chk::fail("attention", "q/k/v/out need heads * head_dim = " + std::to_string(a.heads) + " * " +
                               std::to_string(a.head_dim) + " = " + std::to_string(width) + " columns; got q " +
                               chk::describe(a.q) + ", k " + chk::describe(a.k) + ", v " + chk::describe(a.v) + ", out " +
                               chk::describe(a.out));
  if (a.q.rows != a.out.rows || a.k.rows != a.out.rows || a.v.rows != a.out.rows)
    chk::fail("attention", "q/k/v/out must have one row per token; got q " + chk::describe(a.q) + ", k " +
                               chk::describe(a.k) + ", v " + chk::describe(a.v) + ", out " + chk::describe(a.out));
  chk::view("attention", "q", a.q);
  chk::view("attention", "k", a.k);
  chk::view("attention", "v", a.v);
  chk::view("attention", "out", a.out);
  if (a.seq_offsets_host != nullptr && static_cast<std::size_t>(a.seq_offsets_host[a.num_seqs]) > a.out.rows)
    chk::fail("attention", "the last sequence ends at row " + std::to_string(a.seq_offsets_host[a.num_seqs]) +
                               "; out has " + std::to_string(a.out.rows) + " rows");
}

namespace ops {
template <class Policy>
struct attention_impl {
  NERPIPE_MISSING_OP("attention");
};

/// out = softmax(q k^T * scale) v per sequence and head.
template <class Policy, class T>
void attention(const Policy& p, const attention_args<T>& args) {
  check_attention_args(args);
  attention_impl<Policy>::run(p, args);
}
}  // namespace ops

NERPIPE_NAMESPACE_END
