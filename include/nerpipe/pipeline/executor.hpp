// SPDX-License-Identifier: Apache-2.0
//! @file Executors: run annotators over a stream of documents, in input order, with bad records isolated.
//!
//! `sequential<Policy>` runs one annotator on the calling thread. `round_robin<Inner>` runs one
//! annotator replica per policy value (a CPU worker, a GPU) on its own thread, fed by a reader thread
//! through a bounded queue; the calling thread writes, through a reorder buffer that restores input
//! order (or not, with `ordered = false`). Work is handed out from one shared queue, so a fast
//! replica takes more batches than a slow one and a retired replica's work goes to the others.
//!
//! Batches: the reader collects a window of documents, sorts it by length (less padding, similar
//! sequence lengths per batch) and cuts it into batches under a token budget, estimated from bytes.
//!
//! Faults: when a batch throws, its documents are retried one by one, so only the document at fault
//! gets an error record. A single document that throws is tried once more on another replica if
//! there is one; when it succeeds there, the replica that failed it gets a strike, and a replica
//! with `retire_after` strikes in a row is retired. Every document comes out exactly once.
//!
//! Out of memory (`cuda_error` with `errc::cuda_out_of_memory`, or `std::bad_alloc`) is no fault of
//! the documents nor a strike against the replica: the batch is split into two halves of its tokens
//! and each half retried, down to one document; one that does not fit alone is tried on another
//! replica (which may have more memory) and otherwise gets an error record that says so. Each
//! replica also remembers the largest batch that worked below the smallest that did not, and cuts
//! later batches to that size, so it does not run out of memory on every batch.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/pipeline/annotator.hpp>
#include <nerpipe/policy/cpu_policy.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <numeric>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

struct executor_options {
  std::size_t batch_tokens = 4096;            ///< token budget of one batch (estimated from bytes)
  std::size_t window_docs = 256;              ///< documents sorted by length together
  std::size_t window_bytes = std::size_t{8} << 20;  ///< ... or fewer when their text exceeds this
  std::size_t max_in_flight = 0;              ///< documents read but not yet written (0: 4 windows)
  bool ordered = true;                        ///< write in input order (false: as they finish)
  unsigned retire_after = 3;                  ///< strikes in a row that retire a replica
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

inline void clear_outputs(std::span<document> docs) {
  for (document& d : docs) {
    d.entities.clear();
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

inline std::size_t estimate_tokens(std::span<const document> docs) noexcept {
  std::size_t n = 0;
  for (const document& d : docs) n += estimate_tokens(d);
  return n;
}

/// What one replica has learned about its memory, in estimated tokens per batch. Before any
/// out-of-memory there is no limit (the planner's budget applies). After one, batches are cut to
/// the larger of: the largest batch that worked below the smallest that failed, and half of that
/// smallest failure (the size tried next). So the limit settles between half the real one and it.
class memory_budget {
 public:
  static constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

  [[nodiscard]] std::size_t cap() const noexcept {
    return min_oom_ == unlimited ? unlimited : std::max(largest_ok_, std::max<std::size_t>(1, min_oom_ / 2));
  }
  void succeeded(std::size_t tokens) noexcept {
    if (tokens < min_oom_) largest_ok_ = std::max(largest_ok_, tokens);
  }
  void out_of_memory(std::size_t tokens) noexcept {
    min_oom_ = std::min(min_oom_, tokens);
    if (largest_ok_ >= min_oom_) largest_ok_ = 0;  // it worked once at this size; it no longer does
  }

 private:
  std::size_t largest_ok_ = 0, min_oom_ = unlimited;
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

inline void count(run_stats& s, const document& d) {
  ++s.docs;
  if (!d.ok()) ++s.errors;
  s.entities += d.entities.size();
  s.text_bytes += d.text.size();
}

}  // namespace detail

/// One annotator on the calling thread. The factory is called once: `make(policy, 0)`.
template <class Policy = cpu_policy>
class sequential {
 public:
  using factory_type = std::function<std::unique_ptr<annotator>(Policy&, std::size_t)>;

  explicit sequential(Policy policy = Policy{}, executor_options options = {})
      : policy_(std::move(policy)), options_(options) {}

  /// Reads every document of `source`, annotates it and passes it to `sink(document&)`, in input order.
  template <document_source Source, class Sink>
  run_stats run(const factory_type& make, Source& source, Sink&& sink) {
    auto a = make(policy_, 0);
    if (!a) NERPIPE_THROW(config_error(errc::config_invalid, "sequential: the annotator factory returned null"));
    return run(*a, source, sink);
  }

  /// The same with an annotator you own.
  template <document_source Source, class Sink>
  run_stats run(annotator& a, Source& source, Sink&& sink) {
    run_stats stats;
    stats.replicas = 1;
    detail::memory_budget budget;
    std::vector<document> window, batch;
    std::vector<std::size_t> positions;
    bool more = true;
    while (more) {
      window.clear();
      std::size_t bytes = 0;
      while (window.size() < std::max<std::size_t>(1, options_.window_docs) && bytes < options_.window_bytes) {
        document d;
        if (!source.next(d)) {
          more = false;
          break;
        }
        bytes += d.text.size();
        window.push_back(std::move(d));
      }
      positions.clear();
      for (std::size_t i = 0; i < window.size(); ++i)
        if (window[i].ok()) positions.push_back(i);
      for (const auto& b : detail::plan_batches(window, positions, options_.batch_tokens)) {
        batch.clear();
        for (const std::size_t p : b) batch.push_back(std::move(window[p]));
        const auto t = detail::annotate_isolated(a, batch, budget, stats.out_of_memory);
        stats.tokens += t;
        live_.tokens.fetch_add(t, std::memory_order_relaxed);
        for (std::size_t i = 0; i < b.size(); ++i) window[b[i]] = std::move(batch[i]);
      }
      for (document& d : window) {
        detail::count(stats, d);
        live_.docs.fetch_add(1, std::memory_order_relaxed);
        sink(d);
      }
    }
    return stats;
  }

  [[nodiscard]] const live_counters& progress() const noexcept { return live_; }
  [[nodiscard]] Policy& policy() noexcept { return policy_; }

 private:
  Policy policy_;
  executor_options options_;
  live_counters live_;
};

/// One annotator replica per element of `replicas` (a policy value each: `cpu_policy(1)` per CPU
/// worker, `cuda_policy{d}` per GPU), each on its own thread; see the file comment.
template <class Inner = cpu_policy>
class round_robin {
 public:
  using factory_type = std::function<std::unique_ptr<annotator>(Inner&, std::size_t)>;

  explicit round_robin(std::vector<Inner> replicas, executor_options options = {})
      : replicas_(std::move(replicas)), options_(options) {
    if (replicas_.empty()) NERPIPE_THROW(config_error(errc::config_invalid, "round_robin: no replicas (need at least one policy)"));
  }

  [[nodiscard]] std::size_t size() const noexcept { return replicas_.size(); }
  [[nodiscard]] const live_counters& progress() const noexcept { return live_; }

  /// Reads `source` on a reader thread, annotates on one thread per replica (each builds its annotator
  /// with `make(replica_policy, replica_index)` on that thread), calls `sink(document&)` on this thread.
  /// Throws what the source or the sink threw, or model_error when no replica is left.
  template <document_source Source, class Sink>
  run_stats run(const factory_type& make, Source& source, Sink&& sink) {
    state st(replicas_.size(), options_);
    std::thread reader([&] { read_loop(st, source); });
    std::vector<std::thread> workers;
    workers.reserve(replicas_.size());
    for (std::size_t r = 0; r < replicas_.size(); ++r) workers.emplace_back([&, r] { work_loop(st, make, r); });

    run_stats stats;
    stats.replicas = static_cast<unsigned>(replicas_.size());
    std::vector<document> ready;
    for (;;) {
      {
        std::unique_lock lock(st.mutex);
        st.done_cv.wait(lock, [&] { return st.fatal || st.has_ready() || st.finished(); });
        if (st.fatal) break;
        if (!st.has_ready() && st.finished()) break;
        st.take_ready(ready);
        st.in_flight -= ready.size();
      }
      st.space_cv.notify_one();
      try {
        for (document& d : ready) {
          detail::count(stats, d);
          live_.docs.fetch_add(1, std::memory_order_relaxed);
          sink(d);
        }
      } catch (...) {
        std::lock_guard lock(st.mutex);
        if (!st.fatal) st.fatal = std::current_exception();
      }
      ready.clear();
    }
    {
      std::lock_guard lock(st.mutex);
      st.stop = true;
    }
    st.work_cv.notify_all();
    st.space_cv.notify_all();
    reader.join();
    for (auto& w : workers) w.join();
    if (st.fatal) std::rethrow_exception(st.fatal);
    stats.tokens = st.tokens;
    stats.retired = st.retired;
    stats.out_of_memory = st.out_of_memory;
    return stats;
  }

 private:
  struct item {
    std::vector<document> docs;
    std::vector<std::uint64_t> seq;
    bool single = false;
    std::vector<char> failed_on;  // replicas this single document has failed on
    std::vector<char> oom_on;     // ... of those, where it ran out of memory (no strike)
    std::string last_error;
    std::vector<std::string> errors;  // per replica: its message when this document failed there
  };

  struct state {
    state(std::size_t n, const executor_options& o)
        : live(n, 1), strikes(n, 0), successes(n, 0), live_count(n), ordered(o.ordered), retire_after(std::max(1u, o.retire_after)) {
      window_docs = std::max<std::size_t>(1, o.window_docs);
      max_in_flight = std::max(o.max_in_flight ? o.max_in_flight : 4 * window_docs, 2 * window_docs);
    }
    std::mutex mutex;
    std::condition_variable work_cv, done_cv, space_cv;
    std::deque<item> queue;
    std::map<std::uint64_t, document> reorder;  // ordered: finished documents by sequence number
    std::deque<document> finished_docs;         // unordered
    std::vector<char> live;
    std::vector<unsigned> strikes;
    std::vector<std::uint64_t> successes;  // batches each replica has annotated
    std::size_t live_count;
    std::uint64_t read = 0, emitted = 0, in_flight = 0, outstanding = 0, tokens = 0, out_of_memory = 0;
    std::size_t window_docs, max_in_flight;
    bool ordered, reader_done = false, stop = false;
    unsigned retire_after, retired = 0;
    std::exception_ptr fatal;
    std::string replica_errors;

    bool has_ready() const { return ordered ? (!reorder.empty() && reorder.begin()->first == emitted) : !finished_docs.empty(); }
    bool finished() const { return reader_done && emitted == read; }
    void take_ready(std::vector<document>& out) {
      if (ordered) {
        while (!reorder.empty() && reorder.begin()->first == emitted) {
          out.push_back(std::move(reorder.begin()->second));
          reorder.erase(reorder.begin());
          ++emitted;
        }
      } else {
        while (!finished_docs.empty()) {
          out.push_back(std::move(finished_docs.front()));
          finished_docs.pop_front();
          ++emitted;
        }
      }
    }
    // Caller holds the mutex.
    void finish(document&& d, std::uint64_t seq) {
      if (ordered) reorder.emplace(seq, std::move(d));
      else finished_docs.push_back(std::move(d));
    }
    void complete(item& it) {
      for (std::size_t i = 0; i < it.docs.size(); ++i) finish(std::move(it.docs[i]), it.seq[i]);
      --outstanding;
    }
    bool exhausted(const item& it) const {
      for (std::size_t p = 0; p < live.size(); ++p)
        if (live[p] && !it.failed_on[p]) return false;
      return true;
    }
    // A document that failed everywhere it could go. Its message is the one from the replica that has
    // worked best so far, so a broken replica's complaint does not replace the document's own error.
    void fail_single(item& it) {
      document& d = it.docs[0];
      detail::clear_outputs(std::span<document>(&d, 1));
      std::size_t best = live.size();
      for (std::size_t p = 0; p < it.errors.size(); ++p)
        if (it.failed_on[p] && (best == live.size() || successes[p] > successes[best])) best = p;
      d.status = record_status::failed;
      d.error = detail::failure_message(best < live.size() ? it.errors[best].c_str() : it.last_error.c_str());
      complete(it);
    }
    // A replica leaves: singles that no live replica may still try are finished as failures.
    void retire(std::size_t r, const std::string& why) {
      if (!live[r]) return;
      live[r] = 0;
      --live_count;
      ++retired;
      if (!replica_errors.empty()) replica_errors += "; ";
      replica_errors += "replica " + std::to_string(r) + ": " + why;
      if (live_count == 0) {
        if (!fatal && (outstanding > 0 || !reader_done))
          fatal = std::make_exception_ptr(model_error(
              errc::model_unsupported, "every annotator replica failed and was retired (" + replica_errors + ")"));
        return;
      }
      for (auto it = queue.begin(); it != queue.end();) {
        if (it->single && exhausted(*it)) {
          fail_single(*it);
          it = queue.erase(it);
        } else {
          ++it;
        }
      }
    }
  };

  template <class Source>
  void read_loop(state& st, Source& source) {
    std::vector<document> window;
    std::vector<std::uint64_t> seqs;
    std::size_t window_bytes = 0;
    auto flush = [&] {
      std::vector<std::size_t> positions(window.size());
      std::iota(positions.begin(), positions.end(), std::size_t{0});
      auto batches = detail::plan_batches(window, std::move(positions), options_.batch_tokens);
      {
        std::lock_guard lock(st.mutex);
        for (auto& b : batches) {
          item it;
          for (const std::size_t p : b) {
            it.docs.push_back(std::move(window[p]));
            it.seq.push_back(seqs[p]);
          }
          st.queue.push_back(std::move(it));
          ++st.outstanding;
        }
      }
      st.work_cv.notify_all();
      window.clear();
      seqs.clear();
      window_bytes = 0;
    };
    try {
      for (;;) {
        {
          std::unique_lock lock(st.mutex);
          st.space_cv.wait(lock, [&] { return st.stop || st.in_flight < st.max_in_flight; });
          if (st.stop) break;
        }
        document d;
        if (!source.next(d)) break;
        std::unique_lock lock(st.mutex);
        const std::uint64_t seq = st.read++;
        ++st.in_flight;
        if (!d.ok()) {  // a bad record needs no annotator
          st.finish(std::move(d), seq);
          lock.unlock();
          st.done_cv.notify_one();
          continue;
        }
        lock.unlock();
        window_bytes += d.text.size();
        window.push_back(std::move(d));
        seqs.push_back(seq);
        if (window.size() >= st.window_docs || window_bytes >= options_.window_bytes) flush();
      }
      if (!window.empty()) flush();
    } catch (...) {
      std::lock_guard lock(st.mutex);
      if (!st.fatal) st.fatal = std::current_exception();
    }
    {
      std::lock_guard lock(st.mutex);
      st.reader_done = true;
      if (st.live_count == 0 && st.outstanding > 0 && !st.fatal)
        st.fatal = std::make_exception_ptr(model_error(errc::model_unsupported,
                                                       "every annotator replica failed (" + st.replica_errors + ")"));
    }
    st.work_cv.notify_all();
    st.done_cv.notify_all();
  }

  void work_loop(state& st, const factory_type& make, std::size_t r) {
    std::unique_ptr<annotator> a;
    try {
      a = make(replicas_[r], r);
      if (!a) NERPIPE_THROW(config_error(errc::config_invalid, "the annotator factory returned null"));
    } catch (...) {
      const std::string why = "could not be built: " + detail::current_exception_message();
      {
        std::lock_guard lock(st.mutex);
        st.retire(r, why);
      }
      st.work_cv.notify_all();
      st.done_cv.notify_all();
      return;
    }
    detail::memory_budget budget;  // this replica's memory (a GPU each): learned here, used here
    for (;;) {
      item it;
      {
        std::unique_lock lock(st.mutex);
        auto takeable = st.queue.end();
        st.work_cv.wait(lock, [&] {
          if (st.stop || st.fatal || !st.live[r] || (st.reader_done && st.outstanding == 0)) return true;
          takeable = std::find_if(st.queue.begin(), st.queue.end(),
                                  [&](const item& i) { return !i.single || !i.failed_on[r]; });
          return takeable != st.queue.end();
        });
        if (st.stop || st.fatal || !st.live[r] || (st.reader_done && st.outstanding == 0)) break;
        it = std::move(*takeable);
        st.queue.erase(takeable);
      }
      process(st, *a, r, it, budget);
    }
  }

  void process(state& st, annotator& a, std::size_t r, item& it, detail::memory_budget& budget) {
    std::vector<detail::piece> pieces;
    std::uint64_t ooms = 0;
    const std::uint64_t tokens = detail::annotate_splitting(a, it.docs, budget, pieces, ooms);
    live_.tokens.fetch_add(tokens, std::memory_order_relaxed);
    {
      std::lock_guard lock(st.mutex);
      st.tokens += tokens;
      st.out_of_memory += ooms;
      if (it.single) settle_single(st, r, it, pieces.front());
      else settle_batch(st, r, it, pieces);
    }
    st.work_cv.notify_all();
    st.done_cv.notify_one();
  }

  // Caller holds the mutex. A document retried alone: `p` is its one outcome on replica r.
  static void settle_single(state& st, std::size_t r, item& it, detail::piece& p) {
    if (p.kind == detail::piece::ok) {
      st.strikes[r] = 0;
      ++st.successes[r];
      // It failed elsewhere and works here: the replicas that failed it are at fault, unless they
      // only ran out of memory (it is bigger than they can hold; they are not broken).
      for (std::size_t q = 0; q < it.failed_on.size(); ++q) {
        if (!it.failed_on[q] || it.oom_on[q] || q == r || !st.live[q]) continue;
        if (++st.strikes[q] >= st.retire_after && st.live_count > 1)
          st.retire(q, std::to_string(st.strikes[q]) + " documents in a row failed there and worked elsewhere (last: " +
                           it.last_error + ")");
      }
      st.complete(it);
      return;
    }
    it.failed_on[r] = 1;
    it.oom_on[r] = p.kind == detail::piece::out_of_memory;
    it.errors[r] = p.error;
    it.last_error = std::move(p.error);
    if (st.exhausted(it)) st.fail_single(it);
    else st.queue.push_front(std::move(it));
  }

  // Caller holds the mutex. A planned batch: documents that worked are finished; documents of a
  // stretch that threw are queued one by one (first in line, so the reorder buffer drains), and one
  // that failed alone goes on as a single that has failed on r.
  static void settle_batch(state& st, std::size_t r, item& it, std::vector<detail::piece>& pieces) {
    std::vector<item> again;
    bool any_ok = false;
    for (detail::piece& p : pieces) {
      if (p.kind == detail::piece::ok) {
        any_ok = true;
        for (std::size_t k = p.begin; k < p.end; ++k) st.finish(std::move(it.docs[k]), it.seq[k]);
        continue;
      }
      for (std::size_t k = p.begin; k < p.end; ++k) {
        item one;
        one.docs.push_back(std::move(it.docs[k]));
        one.seq.push_back(it.seq[k]);
        one.single = true;
        one.failed_on.assign(st.live.size(), 0);
        one.oom_on.assign(st.live.size(), 0);
        one.errors.resize(st.live.size());
        if (p.end - p.begin == 1) {  // failed alone here
          one.failed_on[r] = 1;
          one.oom_on[r] = p.kind == detail::piece::out_of_memory;
          one.errors[r] = p.error;
          one.last_error = p.error;
        }
        again.push_back(std::move(one));
      }
    }
    if (any_ok) {
      st.strikes[r] = 0;
      ++st.successes[r];
    }
    --st.outstanding;  // the batch, replaced by its singles
    for (std::size_t k = again.size(); k-- > 0;) {
      ++st.outstanding;
      if (st.exhausted(again[k])) st.fail_single(again[k]);
      else st.queue.push_front(std::move(again[k]));
    }
  }

  std::vector<Inner> replicas_;
  executor_options options_;
  live_counters live_;
};

NERPIPE_NAMESPACE_END
