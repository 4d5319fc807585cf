// SPDX-License-Identifier: Apache-2.0
//! @file Executors' fault isolation: when a batch throws, its documents are retried one by one, so only the
//! document at fault gets an error record; out of memory is split first (executor/memory.hpp).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/pipeline/annotator.hpp>
#include <nerpipe/executor/memory.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

NERPIPE_NAMESPACE_BEGIN
namespace detail {

inline void mark_failed(document& d, const std::string& what) {
  clear_outputs(std::span<document>(&d, 1));
  d.status = record_status::failed;
  d.error = failure_message(what.c_str());
}

/// Annotates a batch on one thread: out of memory splits it (see annotate_splitting); any other
/// exception retries its documents one by one, so only the faulty ones fail. Returns the tokens.
inline std::uint64_t annotate_isolated(annotator& a, std::span<document> docs, memory_budget& budget, std::uint64_t& ooms) {
  std::vector<piece> pieces, one;
  std::uint64_t tokens = annotate_splitting(a, docs, budget, pieces, ooms);
  for (const piece& p : pieces) {
    if (p.kind == piece::ok) continue;
    if (p.end - p.begin == 1) {
      mark_failed(docs[p.begin], p.error);
      continue;
    }
    for (std::size_t k = p.begin; k < p.end; ++k) {
      one.clear();
      tokens += annotate_splitting(a, docs.subspan(k, 1), budget, one, ooms);
      if (one[0].kind != piece::ok) mark_failed(docs[k], one[0].error);
    }
  }
  return tokens;
}
}  // namespace detail
NERPIPE_NAMESPACE_END
