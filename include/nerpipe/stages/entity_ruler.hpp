// SPDX-License-Identifier: Apache-2.0
//! @file entity_ruler: spaCy 3.x's EntityRuler with phrase patterns, as a rule stage placed after the NER head —
//! and the model of a stage a user writes and inserts into a pipeline (examples/02_custom_stage).
//!
//! What spaCy 3.8 does (spacy/pipeline/entityruler.py, with its PhraseMatcher) and this stage reproduces:
//!  - each pattern text is tokenized by the pipeline's own tokenizer; a phrase matches a run of words whose
//!    ORTH (the text) or LOWER (Python's str.lower() of the text) equal the pattern's, by
//!    `phrase_matcher_attr`; every occurrence matches, overlapping ones included;
//!  - matches are deduplicated, then taken longest first, earlier start first among equal lengths;
//!  - overwrite_ents = false: a match that touches a word the NER already labelled is dropped; true: the match
//!    wins and every NER entity it overlaps is removed;
//!  - a match whose first or last word was taken by an earlier (longer) match is dropped;
//!  - the document's entities are the NER's that remain plus the ruler's, in text order.
//! A pattern's optional "id" is kept as spaCy keeps it (Span.ent_id_); two patterns with the same text and
//! different labels match the same span: spaCy's order between them follows a Python set's iteration order,
//! here the earlier pattern in the file wins.
//! Token patterns (a list of token dicts) are not supported: the pattern file reader names the line.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/pipeline/batch.hpp>
#include <nerpipe/pipeline/stage.hpp>
#include <nerpipe/policy/device_policy.hpp>
#include <nerpipe/tokenizer/spacy/lexeme.hpp>

#include <simdjson.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// One phrase pattern: {"label": "ORG", "pattern": "Acme Corp", "id": "acme"} ("id" optional).
struct entity_pattern {
  std::string label, pattern, id;
};

/// The settings of an entity_ruler stage (pipeline_options::entity_ruler).
struct entity_ruler_config {
  enum class match_attr : unsigned char { orth, lower };
  std::vector<entity_pattern> patterns;
  match_attr attr = match_attr::orth;  ///< spaCy's phrase_matcher_attr: ORTH (default) or LOWER
  bool overwrite_ents = false;         ///< spaCy's overwrite_ents
};

/// Reads a JSONL patterns file (spaCy's EntityRuler.from_disk / to_disk format for phrase patterns).
/// config_error names the file, the line and what is wrong.
[[nodiscard]] inline std::vector<entity_pattern> read_entity_patterns(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) NERPIPE_THROW(config_error(errc::config_invalid, file.string() + ": cannot open the patterns file"));
  std::vector<entity_pattern> out;
  simdjson::dom::parser parser;
  std::size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = file.string() + ":" + std::to_string(line_no) + ": ";
    simdjson::dom::element e;
    if (parser.parse(line).get(e) != simdjson::SUCCESS || !e.is_object())
      NERPIPE_THROW(config_error(errc::config_invalid, where + "not a JSON object"));
    entity_pattern p;
    std::string_view s;
    if (e["label"].get_string().get(s) != simdjson::SUCCESS)
      NERPIPE_THROW(config_error(errc::config_invalid, where + "no string field \"label\""));
    p.label = std::string(s);
    simdjson::dom::element pat;
    if (e["pattern"].get(pat) != simdjson::SUCCESS)
      NERPIPE_THROW(config_error(errc::config_invalid, where + "no field \"pattern\""));
    if (pat.is_array())
      NERPIPE_THROW(config_error(errc::config_unsupported,
                                 where + "a token pattern (a list of token attributes); only phrase patterns (a string) are supported"));
    if (pat.get_string().get(s) != simdjson::SUCCESS)
      NERPIPE_THROW(config_error(errc::config_invalid, where + "\"pattern\" must be a string"));
    p.pattern = std::string(s);
    if (e["id"].get_string().get(s) == simdjson::SUCCESS) p.id = std::string(s);
    out.push_back(std::move(p));
  }
  return out;
}

namespace stages {

/// words + entities -> entities (see the file comment). Needs, for the model it is built from, a function
/// `pattern_words(model)` returning how that model's tokenizer splits a pattern into word texts (each family's
/// stage header provides one).
template <device_policy Policy>
class entity_ruler {
 public:
  static constexpr stage_kind kind = stage_kind::rule;
  static constexpr field_set reads = field::words | field::entities;
  static constexpr field_set writes = field::entities;
  static constexpr std::string_view name = "entity_ruler";

  using word_splitter = std::function<std::vector<std::string>(std::string_view)>;

  template <class Model>
  entity_ruler(const Policy&, const Model& m, const pipeline_options& o) {
    if (!o.entity_ruler) return;  // no patterns: the stage passes entities through
    config_ = o.entity_ruler;
    const word_splitter split = pattern_words(m);
    for (std::size_t i = 0; i < config_->patterns.size(); ++i) {
      const auto& p = config_->patterns[i];
      std::vector<std::uint32_t> ids;
      for (const auto& w : split(p.pattern)) ids.push_back(intern(key_of(w)));
      if (ids.empty()) continue;  // spaCy's PhraseMatcher ignores an empty pattern
      add(ids, i);
    }
  }

  [[nodiscard]] std::size_t patterns() const noexcept { return config_ ? config_->patterns.size() : 0; }
  [[nodiscard]] std::size_t workspace_bytes(const batch_shape&) const noexcept { return 0; }

  void run(batch<Policy>& b) {
    if (!config_) return;
    for (std::size_t d = 0; d < b.size(); ++d)
      if (b.live(d)) apply(b, d);
  }

 private:
  struct node {
    std::unordered_map<std::uint32_t, std::uint32_t> next;  // word key -> node
    std::vector<std::uint32_t> labels;                      // distinct (label, id) match keys ending here
  };
  struct match {
    std::uint32_t key;  // index into match_keys_
    std::int32_t start, end;
  };

  [[nodiscard]] std::string key_of(std::string_view word) const {
    return config_->attr == entity_ruler_config::match_attr::lower ? py_lower_of(word) : std::string(word);
  }
  /// Python's str.lower() (LOWER), shared with the spaCy tokenizer's lexical attributes.
  static std::string py_lower_of(std::string_view s) { return spacy::detail::py_lower(s); }

  std::uint32_t intern(const std::string& w) {
    auto [it, added] = vocab_.emplace(w, static_cast<std::uint32_t>(vocab_.size()));
    return it->second;
  }
  [[nodiscard]] std::int64_t find(std::string_view w) const {
    auto it = vocab_.find(std::string(w));
    return it == vocab_.end() ? -1 : static_cast<std::int64_t>(it->second);
  }

  void add(const std::vector<std::uint32_t>& ids, std::size_t pattern) {
    if (nodes_.empty()) nodes_.emplace_back();
    std::uint32_t at = 0;
    for (const auto id : ids) {
      auto it = nodes_[at].next.find(id);
      if (it == nodes_[at].next.end()) {
        nodes_.emplace_back();
        it = nodes_[at].next.emplace(id, static_cast<std::uint32_t>(nodes_.size() - 1)).first;
      }
      at = it->second;
    }
    const auto& p = config_->patterns[pattern];
    const auto key = std::make_pair(p.label, p.id);
    auto k = std::find(match_keys_.begin(), match_keys_.end(), key);
    if (k == match_keys_.end()) {
      match_keys_.push_back(key);
      k = match_keys_.end() - 1;
    }
    const auto idx = static_cast<std::uint32_t>(k - match_keys_.begin());
    if (std::find(nodes_[at].labels.begin(), nodes_[at].labels.end(), idx) == nodes_[at].labels.end())
      nodes_[at].labels.push_back(idx);
  }

  void apply(batch<Policy>& b, std::size_t d) {
    const std::size_t w0 = b.doc_words.begin(d), n = b.doc_words.length(d);
    const std::string_view text = b.doc_text_of(d);
    keys_.assign(n, -1);
    for (std::size_t i = 0; i < n; ++i) {
      const std::string_view w = text.substr(static_cast<std::size_t>(b.word_begin[w0 + i]),
                                             static_cast<std::size_t>(b.word_end[w0 + i] - b.word_begin[w0 + i]));
      keys_[i] = find(config_->attr == entity_ruler_config::match_attr::lower ? std::string_view(scratch_ = py_lower_of(w)) : w);
    }
    // Every occurrence of every pattern (the PhraseMatcher), deduplicated.
    matches_.clear();
    for (std::size_t s = 0; s < n && !nodes_.empty(); ++s) {
      std::uint32_t at = 0;
      for (std::size_t e = s; e < n; ++e) {
        if (keys_[e] < 0) break;
        auto it = nodes_[at].next.find(static_cast<std::uint32_t>(keys_[e]));
        if (it == nodes_[at].next.end()) break;
        at = it->second;
        for (const auto k : nodes_[at].labels) matches_.push_back({k, static_cast<std::int32_t>(s), static_cast<std::int32_t>(e + 1)});
      }
    }
    if (matches_.empty()) return;
    // Longest first, then earliest start; equal spans keep pattern order.
    std::stable_sort(matches_.begin(), matches_.end(), [](const match& a, const match& c) {
      const auto la = a.end - a.start, lc = c.end - c.start;
      return la != lc ? la > lc : a.start < c.start;
    });
    // The words the model's entities cover (spaCy's token.ent_type).
    document& doc = *b.docs[d];
    labelled_.assign(n, 0);
    for (const auto& e : doc.entities)
      for (std::size_t i = 0; i < n; ++i)
        if (static_cast<std::size_t>(b.word_begin[w0 + i]) < e.end_byte && static_cast<std::size_t>(b.word_end[w0 + i]) > e.start_byte)
          labelled_[i] = 1;
    seen_.assign(n, 0);
    std::vector<entity> kept = std::move(doc.entities), added;
    for (const auto& m : matches_) {
      if (!config_->overwrite_ents) {
        bool any = false;
        for (auto i = m.start; i < m.end && !any; ++i) any = labelled_[static_cast<std::size_t>(i)] != 0;
        if (any) continue;
      }
      if (seen_[static_cast<std::size_t>(m.start)] || seen_[static_cast<std::size_t>(m.end - 1)]) continue;
      entity e;
      e.start_byte = static_cast<std::size_t>(b.word_begin[w0 + static_cast<std::size_t>(m.start)]);
      e.end_byte = static_cast<std::size_t>(b.word_end[w0 + static_cast<std::size_t>(m.end - 1)]);
      e.start = static_cast<std::size_t>(b.word_begin_cp[w0 + static_cast<std::size_t>(m.start)]);
      e.end = static_cast<std::size_t>(b.word_end_cp[w0 + static_cast<std::size_t>(m.end - 1)]);
      e.label = match_keys_[m.key].first;
      e.text = std::string(text.substr(e.start_byte, e.end_byte - e.start_byte));
      e.score = 1.0f;
      std::erase_if(kept, [&](const entity& x) { return x.start_byte < e.end_byte && x.end_byte > e.start_byte; });
      for (auto i = m.start; i < m.end; ++i) seen_[static_cast<std::size_t>(i)] = 1;
      added.push_back(std::move(e));
    }
    kept.insert(kept.end(), std::make_move_iterator(added.begin()), std::make_move_iterator(added.end()));
    std::stable_sort(kept.begin(), kept.end(), [](const entity& a, const entity& c) { return a.start_byte < c.start_byte; });
    doc.entities = std::move(kept);
  }

  std::shared_ptr<const entity_ruler_config> config_;
  std::unordered_map<std::string, std::uint32_t> vocab_;
  std::vector<node> nodes_;
  std::vector<std::pair<std::string, std::string>> match_keys_;  // (label, id)
  std::vector<std::int64_t> keys_;
  std::vector<match> matches_;
  std::vector<char> labelled_, seen_;
  std::string scratch_;
};

}  // namespace stages
NERPIPE_NAMESPACE_END
