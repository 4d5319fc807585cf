// SPDX-License-Identifier: Apache-2.0
//! @file The merge_entities stage: spaCy's `merge_entities` component as the last stage of a pipeline. Each
//! entity's words become one token (document::merged), whose text is the entity's text and whose whitespace is
//! that of its last word. Filled when pipeline_options::want_merged is set (the `merged` output format); the
//! words stay in the batch either way.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/merge/merge_entities.hpp>
#include <nerpipe/pipeline/batch.hpp>
#include <nerpipe/pipeline/stage.hpp>
#include <nerpipe/policy/device_policy.hpp>

#include <cstddef>
#include <string_view>
#include <vector>

NERPIPE_NAMESPACE_BEGIN
namespace stages {

template <device_policy Policy>
class merge_entities {
 public:
  static constexpr stage_kind kind = stage_kind::merge;
  static constexpr field_set reads = field::words | field::entities;
  static constexpr field_set writes = field::merged;
  static constexpr std::string_view name = "merge_entities";

  template <class Model>
  merge_entities(const Policy&, const Model&, const pipeline_options& o) : enabled_(o.want_merged) {}

  [[nodiscard]] std::size_t workspace_bytes(const batch_shape&) const noexcept { return 0; }

  void run(batch<Policy>& b) {
    if (!enabled_) return;
    for (std::size_t d = 0; d < b.size(); ++d) {
      if (!b.live(d)) continue;
      words_.clear();
      for (std::size_t w = b.doc_words.begin(d); w < b.doc_words.end(d); ++w) {
        token t;
        t.start = static_cast<std::size_t>(b.word_begin_cp[w]);
        t.end = static_cast<std::size_t>(b.word_end_cp[w]);
        t.start_byte = static_cast<std::size_t>(b.word_begin[w]);
        t.end_byte = static_cast<std::size_t>(b.word_end[w]);
        t.whitespace = b.word_space[w] != 0;
        words_.push_back(t);
      }
      b.docs[d]->merged = nerpipe::merge_entities(words_, b.docs[d]->entities);
    }
  }

 private:
  bool enabled_;
  std::vector<token> words_;
};

}  // namespace stages
NERPIPE_NAMESPACE_END
