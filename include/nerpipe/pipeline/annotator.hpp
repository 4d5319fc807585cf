// SPDX-License-Identifier: Apache-2.0
//! @file The one type-erased seam between model families and executors: an annotator fills in the
//! entities (and tokens) of a batch of documents. Families are composed as types below this line;
//! executors (sequential, round_robin, mpi) and the command-line program only see this interface.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// How the Hugging Face pipeline groups sub-tokens into entities (transformers' aggregation_strategy).
enum class aggregation : unsigned char { none, simple, first, average, max };

/// Options every family understands; a family ignores what does not apply to it.
struct annotate_options {
  aggregation strategy = aggregation::simple;   ///< HF only
  std::size_t stride = 0;                       ///< HF only: overlap of windows over long documents (tokens)
  std::vector<std::string> ignore_labels{"O"};  ///< HF only: labels never reported
  bool want_tokens = false;                     ///< also fill document::tokens (for iob / merged output)
  /// HF only: most model tokens packed into one forward pass (0: the family's default). Executors hand
  /// batches of about executor_options::batch_tokens; a GPU wants each of them run as one pass.
  std::size_t batch_tokens = 0;
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
};

NERPIPE_NAMESPACE_END
