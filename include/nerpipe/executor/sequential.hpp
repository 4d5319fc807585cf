// SPDX-License-Identifier: Apache-2.0
//! @file `sequential<Policy>`: one annotator on the calling thread, documents in input order.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/pipeline/annotator.hpp>
#include <nerpipe/executor/isolation.hpp>
#include <nerpipe/executor/planning.hpp>
#include <nerpipe/policy/cpu_policy.hpp>

#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

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

NERPIPE_NAMESPACE_END
