// SPDX-License-Identifier: Apache-2.0
//! @file `round_robin<Inner>`: one annotator replica per policy value (a CPU worker, a GPU), each on its own
//! thread, fed by a reader thread through a bounded queue; the calling thread writes, through a reorder buffer
//! that restores input order (or not, with `ordered = false`). Work is handed out from one shared queue, so a
//! fast replica takes more batches than a slow one and a retired replica's work goes to the others.
//!
//! Batches: the reader collects a window of documents, sorts it by length and cuts it into batches under a
//! token budget (executor/planning.hpp).
//!
//! Faults: when a batch throws, its documents are retried one by one, so only the document at fault gets an
//! error record. A single document that throws is tried once more on another replica if there is one; when it
//! succeeds there, the replica that failed it gets a strike, and a replica with `retire_after` strikes in a row
//! is retired. Every document comes out exactly once. Out of memory splits batches (executor/memory.hpp).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/pipeline/annotator.hpp>
#include <nerpipe/executor/isolation.hpp>
#include <nerpipe/executor/memory.hpp>
#include <nerpipe/executor/planning.hpp>
#include <nerpipe/policy/cpu_policy.hpp>
#include <nerpipe/policy/memory_space.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

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
              errc::model_every_replica_failed, "every annotator replica failed and was retired (" + replica_errors + ")"));
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
        st.fatal = std::make_exception_ptr(model_error(errc::model_every_replica_failed,
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
    // The arithmetic first: a policy that knows its free memory (a GPU) gets batches its annotator's workspace
    // fits in, with a quarter left for what the arithmetic does not count; out-of-memory splitting stays the last
    // resort.
    if constexpr (requires(const Inner& p) { { p.free_memory_bytes() } -> std::convertible_to<std::size_t>; }) {
      const std::size_t rows = detail::rows_that_fit(*a, replicas_[r].free_memory_bytes() / 4 * 3);
      if (rows != std::numeric_limits<std::size_t>::max()) budget.set_ceiling(rows);
    }
    if (overlapping()) {
      overlapped_loop(st, *a, r, budget);
      return;
    }
    for (item it; take(st, r, it);) process(st, *a, r, it, budget);
  }

  /// Whether replicas run their phases overlapped (executor_options::overlap).
  [[nodiscard]] bool overlapping() const noexcept {
    using mode = executor_options::overlap_mode;
    return options_.overlap == mode::on || (options_.overlap == mode::automatic && !can_access<Inner, host_space>);
  }

  /// Waits for an item replica r may take; false when there is no more work for it.
  static bool take(state& st, std::size_t r, item& it) {
    std::unique_lock lock(st.mutex);
    auto takeable = st.queue.end();
    st.work_cv.wait(lock, [&] {
      if (st.stop || st.fatal || !st.live[r] || (st.reader_done && st.outstanding == 0)) return true;
      takeable = std::find_if(st.queue.begin(), st.queue.end(), [&](const item& i) { return !i.single || !i.failed_on[r]; });
      return takeable != st.queue.end();
    });
    if (st.stop || st.fatal || !st.live[r] || (st.reader_done && st.outstanding == 0)) return false;
    it = std::move(*takeable);
    st.queue.erase(takeable);
    return true;
  }

  /// One replica with its phases on three threads: a preparing thread takes batches from the shared queue and
  /// runs the host stages before the device (tokenizing), this thread runs the device stages, a finishing
  /// thread runs the host stages after (decoding, rules) and settles the batch. At most one batch waits
  /// between two phases, so three to five batches are in flight and memory stays flat. A phase that throws
  /// sends its batch to the synchronous path (process: out-of-memory splitting, one-by-one isolation), which
  /// runs with every phase held, as do retried single documents and batches after an out-of-memory.
  void overlapped_loop(state& st, annotator& a, std::size_t r, detail::memory_budget& budget) {
    struct job {
      item it;
      std::unique_ptr<staged_batch> staged;
      bool synchronous = false;  // run through process() instead of the phases
    };
    detail::handoff<job> to_compute, to_finish;
    std::mutex prepare_mu, compute_mu, finish_mu;  // each phase's stage scratch, held while it runs
    auto run_synchronously = [&](item& it) {
      std::scoped_lock all(prepare_mu, compute_mu, finish_mu);
      process(st, a, r, it, budget);
    };
    std::thread preparer([&] {
      for (item it; take(st, r, it);) {
        job j{std::move(it), nullptr, false};
        // Retried documents, and batches over what fits, take the synchronous path (splitting, isolation).
        // So do batches with a long document, which runs every phase in one call (annotator::runs_in_groups).
        if (j.it.single || budget.ran_out() || detail::estimate_tokens(std::span<const document>(j.it.docs)) > budget.cap() ||
            std::any_of(j.it.docs.begin(), j.it.docs.end(), [&](const document& d) { return a.runs_in_groups(d); })) {
          j.synchronous = true;
        } else {
          std::lock_guard lock(prepare_mu);
          try {
            detail::clear_outputs(j.it.docs);
            j.staged = a.prepare(j.it.docs);
          } catch (...) {
            j.synchronous = true;
          }
        }
        if (!to_compute.push(std::move(j))) break;
      }
      to_compute.close();
    });
    std::thread finisher([&] {
      for (job j; to_finish.pop(j);) {
        if (!j.synchronous) {
          std::lock_guard lock(finish_mu);
          try {
            a.finish(*j.staged);
          } catch (...) {
            j.synchronous = true;
          }
        }
        if (j.synchronous) {
          j.staged.reset();
          run_synchronously(j.it);
          continue;
        }
        settle_whole(st, r, j.it, j.staged->tokens);
      }
    });
    for (job j; to_compute.pop(j);) {
      if (!j.synchronous) {
        std::lock_guard lock(compute_mu);
        try {
          a.compute(*j.staged);
        } catch (...) {
          j.synchronous = true;
        }
      }
      if (!to_finish.push(std::move(j))) break;
    }
    to_finish.close();
    to_compute.close();  // a stop: the preparer's next push fails and it ends
    preparer.join();
    finisher.join();
  }

  /// A batch that went through the phases without an exception: every document annotated.
  void settle_whole(state& st, std::size_t r, item& it, std::size_t tokens) {
    live_.tokens.fetch_add(tokens, std::memory_order_relaxed);
    std::vector<detail::piece> pieces{{0, it.docs.size(), detail::piece::ok, {}}};
    {
      std::lock_guard lock(st.mutex);
      st.tokens += tokens;
      settle_batch(st, r, it, pieces);
    }
    st.work_cv.notify_all();
    st.done_cv.notify_one();
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
