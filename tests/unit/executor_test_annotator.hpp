// SPDX-License-Identifier: Apache-2.0
//! @file A TEST DOUBLE for the executor tests, not a model: it marks runs of capitalised ASCII words as
//! entities (label "CAP"), so executors can be checked for order, completeness and fault isolation
//! without a model. It can throw on purpose: on documents holding a marker, on random batches, always.
#pragma once

#include <nerpipe/core/document.hpp>
#include <nerpipe/pipeline/annotator.hpp>

#include <atomic>
#include <cstdint>
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
  std::uint32_t seed = 1;
};

class capitalised_annotator final : public nerpipe::annotator {
 public:
  explicit capitalised_annotator(test_annotator_options o = {}, std::atomic<std::uint64_t>* calls = nullptr)
      : o_(o), rng_(o.seed), calls_(calls) {}

  void annotate(std::span<nerpipe::document> docs) override {
    if (calls_) calls_->fetch_add(1);
    tokens_ = 0;
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
  std::size_t tokens_ = 0;
};

}  // namespace nerpipe::test
