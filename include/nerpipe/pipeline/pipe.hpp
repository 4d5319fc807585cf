// SPDX-License-Identifier: Apache-2.0
//! @file `any_pipeline` (what make_pipeline returns) and `pipe(source)`: a lazy, input-ordered range of annotated
//! documents over any document source, batching inside.
//!
//!     for (const nerpipe::document& doc : nlp.pipe(nerpipe::jsonl_reader("corpus.jsonl")))
//!       for (const nerpipe::entity& e : doc.entities) ...
//!     std::vector<std::string> texts = ...;
//!     for (const nerpipe::document& doc : nlp.pipe(texts)) ...    // any range of strings
//!
//! The range reads a window of documents from the source when its buffer runs dry, cuts the window into batches
//! under a token budget (longest first), annotates them with fault isolation (a document that fails becomes an
//! error record; the others go on) and hands the documents out in input order. A source passed as an rvalue is
//! owned by the range; an lvalue is referenced. Not thread-safe: one range per thread (the annotator is shared
//! by the ranges of one pipeline, which must not run at the same time).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/executor/isolation.hpp>
#include <nerpipe/executor/planning.hpp>
#include <nerpipe/pipeline/annotator.hpp>
#include <nerpipe/pipeline/stage.hpp>

#include <cstddef>
#include <deque>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// A range of strings as a document source: document i has index i, line i + 1, id i.
template <std::ranges::input_range R>
  requires std::convertible_to<std::ranges::range_reference_t<R>, std::string_view>
class text_source {
 public:
  explicit text_source(R& r) : it_(std::ranges::begin(r)), end_(std::ranges::end(r)) {}
  bool next(document& d) {
    if (it_ == end_) return false;
    d = document{};
    d.index = n_;
    d.line = n_ + 1;
    d.id = std::to_string(n_);
    d.text = std::string(std::string_view(*it_));
    ++it_;
    ++n_;
    return true;
  }

 private:
  std::ranges::iterator_t<R> it_;
  std::ranges::sentinel_t<R> end_;
  std::uint64_t n_ = 0;
};

/// How pipe() batches.
struct pipe_options {
  std::size_t batch_tokens = 4096;  ///< estimated model tokens per annotate call
  std::size_t window_docs = 256;    ///< documents read and sorted by length together
};

namespace detail {
template <class S>
struct owned_or_ref {
  template <class T>
  explicit owned_or_ref(T&& t) : value(std::forward<T>(t)) {}
  S value;
  S& get() noexcept { return value; }
};
template <class S>
struct owned_or_ref<S&> {
  explicit owned_or_ref(S& s) : value(&s) {}
  S* value;
  S& get() noexcept { return *value; }
};
}  // namespace detail

/// The lazy range pipe() returns. `Source` is a document source type (owned) or a reference to one.
template <class Source>
class document_range {
 public:
  using source_type = std::remove_reference_t<Source>;

  template <class S>
  document_range(annotator& a, S&& source, pipe_options o)
      : a_(&a), source_(std::forward<S>(source)), options_(o) {}
  document_range(const document_range&) = delete;
  document_range(document_range&&) noexcept = default;

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = document;
    using difference_type = std::ptrdiff_t;
    using pointer = document*;
    using reference = document&;
    iterator() = default;
    explicit iterator(document_range* r) : r_(r) { r_->advance(); }
    reference operator*() const { return r_->current(); }
    pointer operator->() const { return &r_->current(); }
    iterator& operator++() {
      r_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.r_ == nullptr || it.r_->done(); }

   private:
    document_range* r_ = nullptr;
  };

  /// Starts reading (once: an input range).
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }
  /// True once every document has been handed out.
  [[nodiscard]] bool done() const noexcept { return started_ && ready_.empty(); }

 private:
  document& current() { return ready_.front(); }

  void advance() {
    if (started_ && !ready_.empty()) ready_.pop_front();
    started_ = true;
    if (ready_.empty() && more_) fill();
  }

  void fill() {
    window_.clear();
    while (window_.size() < std::max<std::size_t>(1, options_.window_docs)) {
      document d;
      if (!source_.get().next(d)) {
        more_ = false;
        break;
      }
      window_.push_back(std::move(d));
    }
    positions_.clear();
    for (std::size_t i = 0; i < window_.size(); ++i)
      if (window_[i].ok()) positions_.push_back(i);
    for (const auto& b : detail::plan_batches(window_, positions_, options_.batch_tokens)) {
      batch_.clear();
      for (const std::size_t p : b) batch_.push_back(std::move(window_[p]));
      detail::annotate_isolated(*a_, batch_, budget_, ooms_);
      for (std::size_t i = 0; i < b.size(); ++i) window_[b[i]] = std::move(batch_[i]);
    }
    for (document& d : window_) ready_.push_back(std::move(d));
  }

  annotator* a_;
  detail::owned_or_ref<Source> source_;
  pipe_options options_;
  std::vector<document> window_, batch_;
  std::vector<std::size_t> positions_;
  std::deque<document> ready_;
  detail::memory_budget budget_;
  std::uint64_t ooms_ = 0;
  bool more_ = true, started_ = false;
};

/// A pipeline of any family on any policy, type-erased (make_pipeline returns one). Movable, not copyable.
class any_pipeline {
 public:
  any_pipeline(std::unique_ptr<annotator> a, pipeline_options options) : a_(std::move(a)), options_(std::move(options)) {
    if (!a_) NERPIPE_THROW(config_error(errc::config_invalid, "any_pipeline: no annotator"));
  }

  /// Annotates documents in place (entities; tokens and merged tokens when the options asked for them).
  void annotate(std::span<document> docs) { a_->annotate(docs); }
  [[nodiscard]] annotator& get() noexcept { return *a_; }
  [[nodiscard]] const pipeline_options& options() const noexcept { return options_; }

  /// A lazy range of the source's documents, annotated, in input order. `source` is a document source (has
  /// `bool next(document&)`, as jsonl_reader) or a range of strings; an rvalue is moved into the range.
  template <class S>
  [[nodiscard]] auto pipe(S&& source, pipe_options o = {}) {
    if constexpr (requires(std::remove_cvref_t<S>& s, document& d) { { s.next(d) } -> std::convertible_to<bool>; }) {
      using stored = std::conditional_t<std::is_lvalue_reference_v<S>, S, std::remove_cvref_t<S>>;
      return document_range<stored>(*a_, std::forward<S>(source), o);
    } else {
      static_assert(std::ranges::input_range<std::remove_cvref_t<S>>,
                    "nerpipe::any_pipeline::pipe: the source must have `bool next(document&)` or be a range of strings");
      static_assert(std::is_lvalue_reference_v<S>,
                    "nerpipe::any_pipeline::pipe: pass a range of strings as an lvalue (the range refers to it)");
      using R = std::remove_reference_t<S>;
      return document_range<text_source<R>>(*a_, text_source<R>(source), o);
    }
  }

 private:
  std::unique_ptr<annotator> a_;
  pipeline_options options_;
};

NERPIPE_NAMESPACE_END
