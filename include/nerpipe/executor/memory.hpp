// SPDX-License-Identifier: Apache-2.0
//! @file Executors and memory: how much of a batch fits, and what happens when it does not.
//!
//! First the arithmetic: an annotator can say how many bytes of workspace a pass of a given shape needs
//! (pipeline stages' workspace_bytes, CUB's two-phase style), so a batch can be sized to the memory at hand
//! before it runs (`rows_that_fit`). Then, as the last resort, out of memory (`cuda_error` with
//! `errc::cuda_out_of_memory`, or `std::bad_alloc`) is no fault of the documents nor a strike against the
//! replica: the batch is split into two halves of its tokens and each half retried, down to one document; one
//! that does not fit alone gets an error record that says so. Each replica also remembers the largest batch that
//! worked below the smallest that did not, and cuts later batches to that size.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/pipeline/annotator.hpp>
#include <nerpipe/executor/planning.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <new>
#include <span>
#include <string>
#include <vector>

NERPIPE_NAMESPACE_BEGIN
namespace detail {

inline void clear_outputs(std::span<document> docs) {
  for (document& d : docs) {
    d.entities.clear();
    d.packed.clear();
    d.tokens.clear();
  }
}

inline std::string failure_message(const char* what) { return std::string("failed: ") + what; }

inline std::string current_exception_message() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

/// What the exception in flight says, and whether it is an allocation failure (device or host).
struct caught_error {
  std::string message;
  bool out_of_memory = false;
};

inline caught_error classify_current_exception() {
  try {
    throw;
  } catch (const cuda_error& e) {
    return {e.what(), e.code() == errc::cuda_out_of_memory};
  } catch (const std::bad_alloc& e) {
    return {std::string("out of host memory (") + e.what() + ")", true};
  } catch (const std::exception& e) {
    return {e.what(), false};
  } catch (...) {
    return {"an exception that is not a std::exception", false};
  }
}

/// What one replica has learned about its memory, in estimated tokens per batch. Before any
/// out-of-memory there is no limit (the planner's budget applies). After one, batches are cut to
/// the larger of: the largest batch that worked below the smallest that failed, and half of that
/// smallest failure (the size tried next). So the limit settles between half the real one and it.
class memory_budget {
 public:
  static constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

  [[nodiscard]] std::size_t cap() const noexcept {
    const std::size_t learned =
        min_oom_ == unlimited ? unlimited : std::max(largest_ok_, std::max<std::size_t>(1, min_oom_ / 2));
    return std::min(learned, ceiling_);
  }
  /// The most tokens a batch may have from the arithmetic, before anything ran (rows_that_fit).
  void set_ceiling(std::size_t tokens) noexcept { ceiling_ = std::max<std::size_t>(1, tokens); }
  [[nodiscard]] bool ran_out() const noexcept { return min_oom_ != unlimited; }
  void succeeded(std::size_t tokens) noexcept {
    if (tokens < min_oom_) largest_ok_ = std::max(largest_ok_, tokens);
  }
  void out_of_memory(std::size_t tokens) noexcept {
    min_oom_ = std::min(min_oom_, tokens);
    if (largest_ok_ >= min_oom_) largest_ok_ = 0;  // it worked once at this size; it no longer does
  }

 private:
  std::size_t largest_ok_ = 0, min_oom_ = unlimited, ceiling_ = unlimited;
};

/// The error of a document that runs out of memory alone: its size and what may help.
inline std::string out_of_memory_message(const document& d, const std::string& what) {
  return "out of memory on this document alone (" + std::to_string(d.text.size()) + " bytes, about " +
         std::to_string(estimate_tokens(d)) + " tokens): " + what +
         "; a smaller --batch-tokens or fewer --workers per device leaves more memory free, otherwise split the text";
}

/// What happened to the documents [begin, end) of a batch.
struct piece {
  enum kind_type : unsigned char {
    ok,             ///< annotated
    failed,         ///< another exception: the caller isolates these documents
    out_of_memory,  ///< one document that does not fit alone; `error` says so
  };
  std::size_t begin, end;
  kind_type kind;
  std::string error;
};

/// Annotates `docs` (longest first, as planned) in stretches no larger than `budget.cap()`. A
/// stretch that runs out of memory is split into two halves of its tokens and each retried, down to
/// one document. Appends to `out`, in order, what happened to each stretch (positions + `base`)
/// and counts out-of-memory calls in `ooms`. Returns the model tokens annotated.
inline std::uint64_t annotate_splitting(annotator& a, std::span<document> docs, memory_budget& budget,
                                        std::vector<piece>& out, std::uint64_t& ooms, std::size_t base = 0) {
  std::uint64_t tokens = 0;
  for (std::size_t i = 0; i < docs.size();) {
    const std::size_t cap = budget.cap();
    std::size_t j = i + 1, used = estimate_tokens(docs[i]);
    while (j < docs.size() && used + estimate_tokens(docs[j]) <= cap) used += estimate_tokens(docs[j++]);
    const std::span<document> part = docs.subspan(i, j - i);
    clear_outputs(part);
    caught_error e;
    bool threw = false;
    try {
      a.annotate(part);
      tokens += a.last_token_count();
    } catch (...) {
      threw = true;
      e = classify_current_exception();
    }
    if (!threw) {
      budget.succeeded(used);
      out.push_back({base + i, base + j, piece::ok, {}});
    } else {
      clear_outputs(part);  // an annotator that threw may have left partial results
      if (!e.out_of_memory) {
        out.push_back({base + i, base + j, piece::failed, std::move(e.message)});
      } else {
        ++ooms;
        budget.out_of_memory(used);
        if (part.size() == 1) {
          out.push_back({base + i, base + j, piece::out_of_memory, out_of_memory_message(part[0], e.message)});
        } else {
          // Two halves of the tokens (the longest documents come first), neither empty.
          std::size_t k = 1, first = estimate_tokens(part[0]);
          while (k + 1 < part.size() && 2 * (first + estimate_tokens(part[k])) <= used) first += estimate_tokens(part[k++]);
          tokens += annotate_splitting(a, part.first(k), budget, out, ooms, base + i);
          tokens += annotate_splitting(a, part.subspan(k), budget, out, ooms, base + i + k);
        }
      }
    }
    i = j;
  }
  return tokens;
}

/// The most rows a pass may have so that `a`'s workspace fits in `bytes` (0: no limit known): the largest
/// power of two that fits, found from the annotator's own arithmetic. An annotator that cannot say (0 bytes for
/// every shape) gets no limit.
inline std::size_t rows_that_fit(const annotator& a, std::size_t bytes) {
  if (bytes == 0 || a.workspace_bytes(batch_shape{1, 1u << 20, 1}) == 0) return std::numeric_limits<std::size_t>::max();
  std::size_t rows = 1;
  while (rows < (std::size_t{1} << 30) && a.workspace_bytes(batch_shape{1, rows * 2, 1}) <= bytes) rows *= 2;
  return a.workspace_bytes(batch_shape{1, rows, 1}) <= bytes ? rows : 0;
}

}  // namespace detail
NERPIPE_NAMESPACE_END
