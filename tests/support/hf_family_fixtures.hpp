// SPDX-License-Identifier: Apache-2.0
//! @file The RoBERTa / XLM-R / CamemBERT / ELECTRA / DeBERTa fixtures of tools/fixtures/hf_family_fixtures.py:
//! tests/fixtures/hf/models/<family>/ (a model folder) and tests/fixtures/hf/models/reference/<family>.json (what
//! transformers 4.57.6's pipeline returned), read into plain structures. Document texts come from tests/data
//! (EWT dev, ud-multi dev) by index; hand-written ones are in the file.
#pragma once

#include <nerpipe/head/hf_postprocess.hpp>

#include <simdjson.h>

#include "support/data.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace nerpipe::test {

/// Every family with a fixture, in the order the tests run them.
inline const std::vector<std::string>& hf_families() {
  static const std::vector<std::string> names{"roberta", "xlm-roberta", "camembert", "electra", "deberta-v3", "deberta-v2"};
  return names;
}

inline std::filesystem::path hf_family_dir(const std::string& family) {
  return fixtures_dir() / "hf" / "models" / family;
}

struct hf_family_doc {
  std::string id, text;
  std::vector<std::int32_t> ids;  ///< model input (with the special tokens), when the fixture has logits
  std::vector<float> logits;      ///< [ids.size(), labels], PyTorch fp32
  std::map<std::string, std::vector<hf_entity>> entities;  ///< by strategy name
};

struct hf_bucket_table {
  std::int64_t bucket_size = 0, max_position = 0;
  std::vector<std::int64_t> table;  ///< bucket(d) for d = -1023..1023
};

struct hf_family_reference {
  std::string family, tokenizer;
  std::size_t max_length = 0, stride_max_length = 0, stride = 0;
  double min_margin = 0;
  std::vector<hf_family_doc> docs, stride_docs;
  std::vector<hf_bucket_table> buckets;
};

namespace detail {
inline hf_entity family_entity(simdjson::dom::array row) {
  hf_entity e;
  const std::size_t n = row.size();
  e.grouped = n == 5;
  std::size_t k = 0;
  e.label = std::string_view(row.at(k++));
  e.score = static_cast<float>(double(row.at(k++)));
  if (!e.grouped) e.index = std::int64_t(row.at(k++));
  e.start = static_cast<std::size_t>(std::int64_t(row.at(k++)));
  e.end = static_cast<std::size_t>(std::int64_t(row.at(k++)));
  e.word = std::string_view(row.at(k++));
  return e;
}

inline hf_family_doc family_doc(simdjson::dom::element d, const std::vector<text_doc>& ewt, const std::vector<text_doc>& ud) {
  hf_family_doc doc;
  doc.id = std::string_view(d["id"]);
  const std::string_view src = d["src"];
  const auto i = static_cast<std::size_t>(std::int64_t(d["i"]));
  if (src == "extra") {
    doc.text = std::string_view(d["text"]);
  } else {
    const auto& from = src == "ewt-dev" ? ewt : ud;
    if (i >= from.size() || from[i].id != doc.id)
      throw std::runtime_error("fixture document " + doc.id + " is not line " + std::to_string(i) + " of " +
                               std::string(src) + " (tests/data changed? rerun tools/fixtures/hf_family_fixtures.py)");
    doc.text = from[i].text;
  }
  simdjson::dom::array ids;
  if (!d["ids"].get_array().get(ids)) {
    for (auto v : ids) doc.ids.push_back(static_cast<std::int32_t>(std::int64_t(v)));
    for (auto row : d["logits"])
      for (auto v : row) doc.logits.push_back(static_cast<float>(double(v)));
  }
  for (auto f : simdjson::dom::object(d["entities"])) {
    auto& list = doc.entities[std::string(f.key)];
    for (auto e : simdjson::dom::array(f.value)) list.push_back(family_entity(e));
  }
  return doc;
}
}  // namespace detail

/// The reference of `family`, read once per process.
inline const hf_family_reference& hf_family_reference_of(const std::string& family) {
  static std::map<std::string, hf_family_reference> cache;
  if (auto it = cache.find(family); it != cache.end()) return it->second;
  static const std::vector<text_doc> ewt = load_docs(ewt_file("dev"));
  static const std::vector<text_doc> ud = load_docs(ud_multi_file());
  simdjson::dom::parser parser;
  const simdjson::dom::element root =
      parser.load((fixtures_dir() / "hf" / "models" / "reference" / (family + ".json")).string());
  hf_family_reference r;
  r.family = family;
  r.tokenizer = std::string_view(root["tokenizer"]);
  r.max_length = static_cast<std::size_t>(std::int64_t(root["max_length"]));
  r.min_margin = double(root["min_margin"]);
  for (auto d : root["docs"]) r.docs.push_back(detail::family_doc(d, ewt, ud));
  r.stride_max_length = static_cast<std::size_t>(std::int64_t(root["stride"]["max_length"]));
  r.stride = static_cast<std::size_t>(std::int64_t(root["stride"]["stride"]));
  for (auto d : root["stride"]["docs"]) r.stride_docs.push_back(detail::family_doc(d, ewt, ud));
  simdjson::dom::array buckets;
  if (!root["buckets"].get_array().get(buckets))
    for (auto b : buckets) {
      hf_bucket_table t;
      t.bucket_size = std::int64_t(b["bucket_size"]);
      t.max_position = std::int64_t(b["max_position"]);
      for (auto v : b["table"]) t.table.push_back(std::int64_t(v));
      r.buckets.push_back(std::move(t));
    }
  return cache.emplace(family, std::move(r)).first->second;
}

}  // namespace nerpipe::test
