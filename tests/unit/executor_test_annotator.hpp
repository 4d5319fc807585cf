// SPDX-License-Identifier: Apache-2.0
//! @file A TEST DOUBLE for the executor tests, not a model: it marks runs of capitalised ASCII words as
//! entities (label "CAP"), so executors can be checked for order, completeness and fault isolation
//! without a model. It can throw on purpose: on documents holding a marker, on random batches, always,
//! and out of memory (as a GPU would) on batches of more than a given number of words.
#pragma once

#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/pipeline/annotator.hpp>

#include <atomic>
#include <memory>
#include <cstdint>
#include <new>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace nerpipe::test {

struct test_annotator_options {
  std::string_view poison = "THROW_ME";  ///< a batch holding a document with this text throws
  double batch_failure_rate = 0.0;       ///< probability that a batch of more than one document throws
  bool always_throw = false;             ///< a broken replica
  std::size_t oom_above_words = 0;       ///< a batch of more words than this runs out of memory (0: never)
  bool oom_as_bad_alloc = false;         ///< ... and throws std::bad_alloc instead of cuda_error
  std::uint32_t seed = 1;
};

/// Words as the test annotator counts them (its tokens): runs of bytes that are not ASCII spaces.
inline std::size_t count_words(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++i) n += s[i] != ' ' && (i == 0 || s[i - 1] == ' ');
  return n;
}

class capitalised_annotator final : public nerpipe::annotator {
 public:
  explicit capitalised_annotator(test_annotator_options o = {}, std::atomic<std::uint64_t>* calls = nullptr,
                                 std::atomic<std::uint64_t>* ooms = nullptr)
      : o_(o), rng_(o.seed), calls_(calls), ooms_(ooms) {}

  // The work in the three phases executors may overlap (annotator::prepare / compute / finish): counting words
  // (the host before the "device"), the faults a device run has (out of memory, a broken replica, random
  // failures, a poisoned document), writing the entities (the host after). annotate() runs them in a row.
  struct staged_words final : nerpipe::staged_batch {
    using staged_batch::staged_batch;
    std::size_t words = 0;
  };

  [[nodiscard]] std::unique_ptr<nerpipe::staged_batch> prepare(std::span<nerpipe::document> docs) override {
    if (calls_) calls_->fetch_add(1);
    auto s = std::make_unique<staged_words>(docs);
    for (const auto& d : docs)
      if (d.ok()) s->words += count_words(d.text);
    return s;
  }

  void compute(nerpipe::staged_batch& staged) override {
    auto& s = static_cast<staged_words&>(staged);
    auto docs = s.docs;
    if (o_.oom_above_words > 0 && s.words > o_.oom_above_words) {
      if (ooms_) ooms_->fetch_add(1);
      if (!docs.empty()) docs[0].entities.push_back({});  // a mess to clean up
      if (o_.oom_as_bad_alloc) throw std::bad_alloc();
      throw nerpipe::cuda_error(nerpipe::errc::cuda_out_of_memory,
                                "test: a batch of " + std::to_string(s.words) + " words needs more than " +
                                    std::to_string(o_.oom_above_words));
    }
    if (o_.always_throw) {
      if (!docs.empty()) docs[0].entities.push_back({});  // leave a mess: the executor must clean it up
      throw std::runtime_error("this replica is broken");
    }
    if (docs.size() > 1 && o_.batch_failure_rate > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < o_.batch_failure_rate)
      throw std::runtime_error("injected batch failure");
    for (auto& d : docs)
      if (d.ok() && d.text.find(o_.poison) != std::string::npos) {
        d.entities.push_back({});
        throw std::runtime_error("poisoned document");
      }
  }

  void finish(nerpipe::staged_batch& staged) override {
    auto& s = static_cast<staged_words&>(staged);
    tokens_ = 0;
    for (auto& d : s.docs) {
      if (!d.ok()) continue;
      d.entities.clear();
      std::size_t cp = 0, i = 0;
      const std::string& t = d.text;
      bool in_entity = false;
      while (i < t.size()) {
        // A word: a run of bytes that are not ASCII spaces.
        if (t[i] == ' ') {
          ++i, ++cp;
          continue;
        }
        const std::size_t wb = i, wc = cp;
        while (i < t.size() && t[i] != ' ') cp += (static_cast<unsigned char>(t[i++]) & 0xC0) != 0x80;
        ++tokens_;
        const std::string_view w(t.data() + wb, i - wb);
        if (w[0] >= 'A' && w[0] <= 'Z') {
          if (in_entity && d.entities.back().end_byte + 1 == wb) {
            auto& e = d.entities.back();
            e.end = cp;
            e.end_byte = i;
            e.text.assign(t, e.start_byte, i - e.start_byte);
            e.score = 1.0f / static_cast<float>(1 + e.text.size());
            continue;
          }
          nerpipe::entity e;
          e.start = wc, e.end = cp, e.start_byte = wb, e.end_byte = i;
          e.label = "CAP";
          e.text = std::string(w);
          e.score = 1.0f / static_cast<float>(1 + w.size());
          d.entities.push_back(std::move(e));
          in_entity = true;
        } else {
          in_entity = false;
        }
      }
    }
    s.tokens = tokens_;
  }

  void annotate(std::span<nerpipe::document> docs) override {
    tokens_ = 0;
    auto s = prepare(docs);
    compute(*s);
    finish(*s);
  }
  [[nodiscard]] std::size_t last_token_count() const noexcept override { return tokens_; }

 private:
  test_annotator_options o_;
  std::mt19937 rng_;
  std::atomic<std::uint64_t>* calls_;
  std::atomic<std::uint64_t>* ooms_;
  std::size_t tokens_ = 0;
};

}  // namespace nerpipe::test
