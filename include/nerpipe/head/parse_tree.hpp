// SPDX-License-Identifier: Apache-2.0
//! @file What spaCy derives from a dependency parse on the host: subtree edges and sentence starts
//! (doc.pyx set_children_from_heads) and the pseudo-projective head moves (nonproj.pyx deprojectivize).
//! One document at a time; heads are doc-relative token indices, a root is its own head.
#pragma once

#include <nerpipe/config/macros.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

NERPIPE_NAMESPACE_BEGIN
namespace spacy {

/// Token.l_edge / r_edge as set_children_from_heads leaves them. It starts from l = r = i and propagates
/// each child's edges to its head, left to right then right to left, and repeats while some head lies
/// outside the "sentence" its root's left edge opens (non-projective trees), 12 passes at most. The edges
/// accumulate across passes, as in spaCy. Every head must be in [0, n).
inline void set_edges(std::span<const std::int32_t> heads, std::span<std::int32_t> l_edge, std::span<std::int32_t> r_edge) {
  const std::size_t n = heads.size();
  for (std::size_t i = 0; i < n; ++i) l_edge[i] = r_edge[i] = static_cast<std::int32_t>(i);
  if (n == 0) return;
  std::vector<std::uint8_t> starts(n);
  auto pass = [&]() {
    for (std::size_t i = 0; i < n; ++i) {
      const auto h = static_cast<std::size_t>(heads[i]);
      if (l_edge[i] < l_edge[h]) l_edge[h] = l_edge[i];
      if (r_edge[i] > r_edge[h]) r_edge[h] = r_edge[i];
    }
    for (std::size_t k = n; k-- > 0;) {
      const auto h = static_cast<std::size_t>(heads[k]);
      if (r_edge[k] > r_edge[h]) r_edge[h] = r_edge[k];
      if (l_edge[k] < l_edge[h]) l_edge[h] = l_edge[k];
    }
    std::fill(starts.begin(), starts.end(), std::uint8_t{0});
    for (std::size_t i = 0; i < n; ++i)
      if (heads[i] == static_cast<std::int32_t>(i)) starts[static_cast<std::size_t>(l_edge[i])] = 1;
    // _set_lr_kids_and_edges: every token before a sentence start (or before the last token) must have its
    // head inside [start of its sentence, that token].
    std::size_t cur_start = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if ((i > 0 && starts[i]) || i == n - 1) {
        for (std::size_t j = cur_start; j < i; ++j) {
          const auto h = static_cast<std::size_t>(heads[j]);
          if (h < cur_start || h >= i + 1) return false;
        }
        cur_start = i;
      }
    }
    return true;
  };
  for (int loop = 0;; ++loop) {
    if (pass()) break;
    if (loop > 10) break;
  }
}

/// sent_start as set_children_from_heads sets it: 1 on the left edge of every root's subtree, else 0
/// (spaCy's -1). Token.is_sent_start is true exactly there; Doc.sents starts a sentence there.
inline void sentence_starts(std::span<const std::int32_t> heads, std::span<const std::int32_t> l_edge, std::span<std::uint8_t> out) {
  for (std::size_t i = 0; i < heads.size(); ++i) out[i] = 0;
  for (std::size_t i = 0; i < heads.size(); ++i)
    if (heads[i] == static_cast<std::int32_t>(i)) out[static_cast<std::size_t>(l_edge[i])] = 1;
}

/// The label table's view of projectivised labels "x||y": for label k, decorated_new[k] is the index of "x"
/// and decorated_head[k] the index of "y"; both -1 for a plain label.
struct label_decorations {
  std::vector<std::int32_t> decorated_new, decorated_head;
};

/// nonproj.pyx deprojectivize: for each token i in order whose label is "x||y", search breadth-first from its
/// head, through Token.children (which scans the edges of `l_edge`/`r_edge` as they were before this pass,
/// with the heads as already moved), skipping whitespace tokens and i itself, for the first token labelled
/// "y"; make it i's head (none found: the head stays) and relabel i "x". Edges are not updated here.
inline void deprojectivize(std::span<std::int32_t> heads, std::span<std::int32_t> labels, std::span<const std::int32_t> l_edge,
                           std::span<const std::int32_t> r_edge, std::span<const char> is_space, const label_decorations& deco) {
  const std::size_t n = heads.size();
  std::vector<std::int32_t> queue, next;
  std::vector<std::uint8_t> seen(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto lab = static_cast<std::size_t>(labels[i]);
    if (deco.decorated_new[lab] < 0) continue;
    const std::int32_t want = deco.decorated_head[lab];
    const auto self = static_cast<std::int32_t>(i);
    std::int32_t found = heads[i];
    queue.assign(1, heads[i]);
    std::fill(seen.begin(), seen.end(), std::uint8_t{0});
    bool done = false;
    while (!queue.empty() && !done) {
      next.clear();
      for (const std::int32_t q : queue) {
        // A tree never brings a token back; the mark only keeps a damaged parse from looping.
        if (seen[static_cast<std::size_t>(q)]) continue;
        seen[static_cast<std::size_t>(q)] = 1;
        auto visit = [&](std::int32_t c) {
          if (heads[static_cast<std::size_t>(c)] != q || c == q) return false;
          if (is_space[static_cast<std::size_t>(c)] || c == self) return false;
          if (labels[static_cast<std::size_t>(c)] == want) {
            found = c;
            return true;
          }
          next.push_back(c);
          return false;
        };
        // Token.lefts: l_edge .. q-1 ascending; Token.rights: q+1 .. r_edge ascending.
        for (std::int32_t c = l_edge[static_cast<std::size_t>(q)]; c < q && !done; ++c) done = visit(c);
        for (std::int32_t c = q + 1; c <= r_edge[static_cast<std::size_t>(q)] && !done; ++c) done = visit(c);
        if (done) break;
      }
      queue.swap(next);
    }
    heads[i] = found;
    labels[i] = deco.decorated_new[lab];
  }
}

}  // namespace spacy
NERPIPE_NAMESPACE_END
