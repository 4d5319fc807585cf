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

  void annotate(std::span<nerpipe::document> docs) override {
    if (calls_) calls_->fetch_add(1);
    tokens_ = 0;
    if (o_.oom_above_words > 0) {
      std::size_t words = 0;
      for (const auto& d : docs)
        if (d.ok()) words += count_words(d.text);
      if (words > o_.oom_above_words) {
        if (ooms_) ooms_->fetch_add(1);
        if (!docs.empty()) docs[0].entities.push_back({});  // a mess to clean up
        if (o_.oom_as_bad_alloc) throw std::bad_alloc();
        throw nerpipe::cuda_error(nerpipe::errc::cuda_out_of_memory,
                                  "test: a batch of " + std::to_string(words) + " words needs more than " +
                                      std::to_string(o_.oom_above_words));
      }
    }
    if (o_.always_throw) {
      if (!docs.empty()) docs[0].entities.push_back({});  // leave a mess: the executor must clean it up
      throw std::runtime_error("this replica is broken");
    }
    if (docs.size() > 1 && o_.batch_failure_rate > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < o_.batch_failure_rate)
      throw std::runtime_error("injected batch failure");
    for (auto& d : docs) {
      if (!d.ok()) continue;
      d.entities.clear();
      std::size_t cp = 0, i = 0;
      const std::string& s = d.text;
      bool in_entity = false;
      while (i < s.size()) {
        // A word: a run of bytes that are not ASCII spaces.
        if (s[i] == ' ') {
          ++i, ++cp;
          continue;
        }
        const std::size_t wb = i, wc = cp;
        while (i < s.size() && s[i] != ' ') cp += (static_cast<unsigned char>(s[i++]) & 0xC0) != 0x80;
        ++tokens_;
        const std::string_view w(s.data() + wb, i - wb);
        if (w.find(o_.poison) != std::string_view::npos) {
          d.entities.push_back({});
          throw std::runtime_error("poisoned document");
        }
        if (w[0] >= 'A' && w[0] <= 'Z') {
          if (in_entity && d.entities.back().end_byte + 1 == wb) {
            auto& e = d.entities.back();
            e.end = cp;
            e.end_byte = i;
            e.text.assign(s, e.start_byte, i - e.start_byte);
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
