// SPDX-License-Identifier: Apache-2.0
//! @file The one type-erased seam between model families and executors: an annotator fills in the
//! entities (and tokens) of a batch of documents. Families are composed as types below this line;
//! executors (sequential, round_robin, mpi) and the command-line program only see this interface.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/aggregation.hpp>
#include <nerpipe/core/document.hpp>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

NERPIPE_NAMESPACE_BEGIN


/// Options every family understands; a family ignores what does not apply to it.
struct annotate_options {
  aggregation strategy = aggregation::simple;   ///< HF only
  std::size_t stride = 0;                       ///< HF only: overlap of windows over long documents (tokens)
  std::vector<std::string> ignore_labels{"O"};  ///< HF only: labels never reported
  bool want_tokens = false;                     ///< also fill document::tokens (for iob / merged output)
  /// HF only: most model tokens packed into one forward pass (0: the family's default). Executors hand
  /// batches of about executor_options::batch_tokens; a GPU wants each of them run as one pass.
  std::size_t batch_tokens = 0;
  /// HF only: a document longer than about this many windows runs window group by window group, this many
  /// windows at a time, so its memory stays bounded (0: 64). The entities are the same either way.
  std::size_t group_windows = 0;
  /// Such a document's entities go to document::packed (about 10 bytes each) instead of document::entities.
  bool pack_entities = false;
};

/// The sizes a stage plans its workspace from (CUB's two-phase style: ask `workspace_bytes(shape)`, then run).
struct batch_shape {
  std::size_t docs = 0;       ///< documents
  std::size_t rows = 0;       ///< model rows of the largest forward pass (tokens or pieces)
  std::size_t sequences = 0;  ///< sequences of that pass
};

/// A batch on its way through an annotator's phases (prepare on one thread, compute on another, finish on a
/// third: executor/overlap.hpp keeps several in flight). An annotator without phases does all in finish().
class staged_batch {
 public:
  explicit staged_batch(std::span<document> d) : docs(d) {}
  virtual ~staged_batch() = default;
  std::span<document> docs;
  std::size_t tokens = 0;  ///< model tokens, known after finish()
};

/// Annotates documents in place. Implementations are not thread-safe: one annotator per thread
/// (round_robin makes one per replica). A document that cannot be processed gets status `failed`
/// and its message; the others in the batch are still annotated.
class annotator {
 public:
  virtual ~annotator() = default;
  /// Fills `entities` (and `tokens` when asked) of every document whose status is ok.
  virtual void annotate(std::span<document> docs) = 0;
  /// Number of model tokens (sub-words or words) of the last annotate call, for throughput figures.
  [[nodiscard]] virtual std::size_t last_token_count() const noexcept = 0;
  /// Bytes of the policy's memory a forward pass of `shape` needs beyond the weights (0: unknown).
  [[nodiscard]] virtual std::size_t workspace_bytes(const batch_shape& shape) const { return 0 * shape.rows; }
  /// Whether `d` is long enough to run window group by window group, every phase inside one call (annotate, or
  /// finish): an executor that overlaps phases runs a batch holding one through annotate() instead.
  [[nodiscard]] virtual bool runs_in_groups(const document&) const noexcept { return false; }

  // The same work in three phases, each called from one thread at a time (they may be different threads):
  // prepare (host, before the device), compute (the device), finish (host, after it). annotate(d) equals
  // finish(compute(prepare(d))). The default does everything in finish().
  [[nodiscard]] virtual std::unique_ptr<staged_batch> prepare(std::span<document> docs) {
    return std::make_unique<staged_batch>(docs);
  }
  virtual void compute(staged_batch&) {}
  virtual void finish(staged_batch& b) {
    annotate(b.docs);
    b.tokens = last_token_count();
  }
};

NERPIPE_NAMESPACE_END
