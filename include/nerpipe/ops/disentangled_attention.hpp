// SPDX-License-Identifier: Apache-2.0
//! @file DeBERTa's disentangled self-attention over packed variable-length sequences (no padding): content-to-
//! content scores plus content-to-position (c2p) and position-to-content (p2c) terms read from projected relative
//! position embeddings at a bucketed relative distance.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/ops/checks.hpp>
#include <nerpipe/ops/common.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

NERPIPE_NAMESPACE_BEGIN

/// Packed as attention_args (sequence s owns rows [seq_offsets[s], seq_offsets[s+1]); head h owns columns
/// [h * head_dim, (h+1) * head_dim)). For query i and key j of one sequence, with r = rel_index[i - j +
/// max_distance - 1] (a row of the position tables):
///   score(i, j) = scale * (q_i . k_j  +  q_i . pos_key_r  +  k_j . pos_query_r)
/// (the c2p term when pos_key has rows, the p2c term when pos_query has rows), out_i = sum_j softmax_j(score) v_j.
/// DeBERTa: pos_key / pos_query are the relative embeddings projected by the layer's key / query projections,
/// rel_index[d] = clamp(bucket(d) + span, 0, 2 span - 1), scale = 1 / sqrt(head_dim * (1 + c2p + p2c)).
template <class T>
struct disentangled_attention_args {
  matrix_view<const T> q, k, v;                    // [tokens, heads * head_dim]
  matrix_view<T> out;                              // [tokens, heads * head_dim]
  const std::int32_t* seq_offsets = nullptr;       // [num_seqs + 1], policy memory
  const std::int32_t* seq_offsets_host = nullptr;  // the same offsets on the host (for launch shapes)
  std::size_t num_seqs = 0;
  std::size_t heads = 0;
  std::size_t head_dim = 0;
  std::size_t max_seq_len = 0;                     // the longest sequence
  matrix_view<const T> pos_key;                    // [rows, heads * head_dim] (c2p); empty: no c2p term
  matrix_view<const T> pos_query;                  // [rows, heads * head_dim] (p2c); empty: no p2c term
  const std::int32_t* rel_index = nullptr;         // [2 max_distance - 1], policy memory; entries < the tables' rows
  std::size_t max_distance = 0;                    // sequences must be at most this long
  float scale = 0.0f;                              // 0: 1 / sqrt(head_dim)
};

/// Throws config_error when the views, offsets, tables or head shape cannot describe a call (every policy:
/// ops::disentangled_attention calls it). rel_index's entries are the caller's to keep below the tables' rows.
template <class T>
void check_disentangled_attention_args(const disentangled_attention_args<T>& a) {
  namespace chk = detail::op_checks;
  constexpr const char* op = "disentangled_attention";
  if (a.num_seqs == 0 || a.heads == 0) return;
  if (a.head_dim == 0) chk::fail(op, "head_dim is 0; expected the per-head width");
  if (a.seq_offsets == nullptr)
    chk::fail(op, "seq_offsets (policy memory) is null; expected " + std::to_string(a.num_seqs + 1) + " offsets");
  if (a.max_seq_len == 0 && a.seq_offsets_host == nullptr)
    chk::fail(op, "max_seq_len is 0 and seq_offsets_host is null; expected one of them");
  const std::size_t width = a.heads * a.head_dim;
  if (a.q.cols < width || a.k.cols < width || a.v.cols < width || a.out.cols < width)
    chk::fail(op, "q/k/v/out need heads * head_dim = " + std::to_string(a.heads) + " * " + std::to_string(a.head_dim) +
                      " = " + std::to_string(width) + " columns; got q " + chk::describe(a.q) + ", k " +
                      chk::describe(a.k) + ", v " + chk::describe(a.v) + ", out " + chk::describe(a.out));
  if (a.q.rows != a.out.rows || a.k.rows != a.out.rows || a.v.rows != a.out.rows)
    chk::fail(op, "q/k/v/out must have one row per token; got q " + chk::describe(a.q) + ", k " + chk::describe(a.k) +
                      ", v " + chk::describe(a.v) + ", out " + chk::describe(a.out));
  chk::view(op, "q", a.q);
  chk::view(op, "k", a.k);
  chk::view(op, "v", a.v);
  chk::view(op, "out", a.out);
  for (const auto* t : {&a.pos_key, &a.pos_query}) {
    if (t->rows == 0) continue;
    const char* name = t == &a.pos_key ? "pos_key" : "pos_query";
    if (t->cols < width)
      chk::fail(op, std::string(name) + " " + chk::describe(*t) + " needs heads * head_dim = " + std::to_string(width) +
                        " columns");
    chk::view(op, name, *t);
  }
  if ((a.pos_key.rows != 0 || a.pos_query.rows != 0) && (a.rel_index == nullptr || a.max_distance == 0))
    chk::fail(op, "position tables are given but rel_index is null or max_distance is 0; expected 2 max_distance - 1 "
                  "table rows");
  std::size_t longest = a.max_seq_len;
  if (a.seq_offsets_host != nullptr) {
    if (static_cast<std::size_t>(a.seq_offsets_host[a.num_seqs]) > a.out.rows)
      chk::fail(op, "the last sequence ends at row " + std::to_string(a.seq_offsets_host[a.num_seqs]) + "; out has " +
                        std::to_string(a.out.rows) + " rows");
    for (std::size_t s = 0; s < a.num_seqs; ++s)
      longest = std::max(longest, static_cast<std::size_t>(a.seq_offsets_host[s + 1] - a.seq_offsets_host[s]));
  }
  if ((a.pos_key.rows != 0 || a.pos_query.rows != 0) && longest > a.max_distance)
    chk::fail(op, "a sequence of " + std::to_string(longest) + " tokens exceeds the relative position table (max_distance " +
                      std::to_string(a.max_distance) + ")");
}

namespace ops {
template <class Policy>
struct disentangled_attention_impl {
  NERPIPE_MISSING_OP("disentangled_attention");
};

/// out = softmax(scale (q k^T + c2p + p2c)) v per sequence and head (see disentangled_attention_args).
template <class Policy, class T>
void disentangled_attention(const Policy& p, const disentangled_attention_args<T>& args) {
  check_disentangled_attention_args(args);
  disentangled_attention_impl<Policy>::run(p, args);
}
}  // namespace ops

NERPIPE_NAMESPACE_END
