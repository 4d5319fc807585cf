// SPDX-License-Identifier: Apache-2.0
//! @file Executors' batch planning: their options and totals, what a document source is, and how a window of
//! documents is cut into batches under a token budget (sorted by length, longest first).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/pipeline/annotator.hpp>

#include <algorithm>
#include <atomic>
#include <concepts>
#include <condition_variable>
#include <mutex>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

struct executor_options {
  std::size_t batch_tokens = 4096;            ///< token budget of one batch (estimated from bytes)
  std::size_t window_docs = 256;              ///< documents sorted by length together
  std::size_t window_bytes = std::size_t{8} << 20;  ///< ... or fewer when their text exceeds this
  std::size_t max_in_flight = 0;              ///< documents read but not yet written (0: 4 windows)
  bool ordered = true;                        ///< write in input order (false: as they finish)
  unsigned retire_after = 3;                  ///< strikes in a row that retire a replica
  /// Overlap each replica's phases across batches (annotator::prepare / compute / finish on three threads: the
  /// host work of batch k+1 and k-1 runs while the device works on batch k). auto: on for replicas whose policy
  /// computes on a device, off for CPU workers (whose cores the other workers already use).
  enum class overlap_mode : unsigned char { automatic, on, off } overlap = overlap_mode::automatic;
};

/// Totals of one run. `tokens` is what the annotators reported (model tokens).
struct run_stats {
  std::uint64_t docs = 0, errors = 0, entities = 0, tokens = 0, text_bytes = 0;
  unsigned replicas = 0, retired = 0;
  std::uint64_t out_of_memory = 0;  ///< annotate calls that ran out of memory (each followed by a split or a retry)
};

/// Counters that a progress display may read while a run is going on (any thread).
struct live_counters {
  std::atomic<std::uint64_t> docs{0}, tokens{0};
  live_counters() = default;
  // Executors are movable before they run; the counters move with their values.
  live_counters(const live_counters& o) noexcept : docs(o.docs.load()), tokens(o.tokens.load()) {}
  live_counters& operator=(const live_counters& o) noexcept {
    docs = o.docs.load();
    tokens = o.tokens.load();
    return *this;
  }
};

/// A source gives documents one at a time; jsonl_reader is one.
template <class S>
concept document_source = requires(S& s, document& d) {
  { s.next(d) } -> std::convertible_to<bool>;
};

namespace detail {

/// Token estimate before tokenizing: about four bytes per model token, plus the special tokens.
inline std::size_t estimate_tokens(const document& d) noexcept { return d.text.size() / 4 + 2; }

/// Cuts the documents at `positions` (indices into `docs`) into batches under `budget` tokens after
/// sorting them by length, longest first (the largest batches are started first).
inline std::vector<std::vector<std::size_t>> plan_batches(const std::vector<document>& docs,
                                                         std::vector<std::size_t> positions, std::size_t budget) {
  std::stable_sort(positions.begin(), positions.end(),
                   [&](std::size_t a, std::size_t b) { return docs[a].text.size() > docs[b].text.size(); });
  std::vector<std::vector<std::size_t>> batches;
  std::size_t used = 0;
  for (const std::size_t p : positions) {
    const std::size_t cost = estimate_tokens(docs[p]);
    if (batches.empty() || (used + cost > budget && !batches.back().empty())) {
      batches.emplace_back();
      used = 0;
    }
    batches.back().push_back(p);
    used += cost;
  }
  return batches;
}

inline std::size_t estimate_tokens(std::span<const document> docs) noexcept {
  std::size_t n = 0;
  for (const document& d : docs) n += estimate_tokens(d);
  return n;
}

inline void count(run_stats& s, const document& d) {
  ++s.docs;
  if (!d.ok()) ++s.errors;
  s.entities += d.entities.size() + d.packed.size();
  s.text_bytes += d.text.size();
}
/// A one-slot channel between two threads of a pipeline (the next phase takes what the previous one made).
/// push blocks while the slot is full; pop blocks while it is empty; close wakes both sides: push then fails,
/// pop drains what is left and then fails.
template <class T>
class handoff {
 public:
  bool push(T&& v) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return closed_ || !full_; });
    if (closed_) return false;
    slot_ = std::move(v);
    full_ = true;
    cv_.notify_all();
    return true;
  }
  bool pop(T& out) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return closed_ || full_; });
    if (!full_) return false;
    out = std::move(slot_);
    full_ = false;
    cv_.notify_all();
    return true;
  }
  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  T slot_{};
  bool full_ = false, closed_ = false;
};

}  // namespace detail

NERPIPE_NAMESPACE_END
