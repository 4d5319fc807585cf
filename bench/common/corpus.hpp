// SPDX-License-Identifier: Apache-2.0
//! @file Benchmark corpus: loads JSONL documents ({"id": ..., "text": ...} per line) once per process.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#ifndef NERPIPE_SOURCE_DIR
#error "bench/common/corpus.hpp needs NERPIPE_SOURCE_DIR (the repository root) to find the shared corpus"
#endif

namespace nerpipe::bench {

struct corpus_doc {
  std::string id;    ///< the "id" field (a number is kept as its JSON text); "line N" when absent
  std::string text;  ///< the "text" field, unescaped UTF-8
};

/// Reads every line of a JSONL file (blank lines skipped). Throws std::runtime_error naming the file and
/// line when a line is not a JSON object with a string "text".
inline std::vector<corpus_doc> load_jsonl(const std::string& path,
                                          std::size_t max_docs = std::numeric_limits<std::size_t>::max()) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("bench corpus: cannot open '" + path + "'");
  simdjson::ondemand::parser parser;
  std::vector<corpus_doc> docs;
  std::size_t line_no = 0;
  for (std::string line; docs.size() < max_docs && std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto fail = [&](std::string_view what) {
      return std::runtime_error("bench corpus: " + path + ":" + std::to_string(line_no) + ": " + std::string(what));
    };
    const simdjson::padded_string padded(line);
    simdjson::ondemand::document doc;
    if (parser.iterate(padded).get(doc) != simdjson::SUCCESS) throw fail("not JSON");
    simdjson::ondemand::object obj;
    if (doc.get_object().get(obj) != simdjson::SUCCESS) throw fail("not a JSON object");
    corpus_doc d;
    bool have_text = false;
    for (auto field : obj) {
      std::string_view key;
      if (field.unescaped_key().get(key) != simdjson::SUCCESS) throw fail("bad key");
      simdjson::ondemand::value value;
      if (field.value().get(value) != simdjson::SUCCESS) throw fail("bad value");
      if (key == "text") {
        std::string_view s;
        if (value.get_string().get(s) != simdjson::SUCCESS) throw fail("\"text\" is not a string");
        d.text.assign(s);
        have_text = true;
      } else if (key == "id") {
        std::string_view s;
        if (value.get_string().get(s) == simdjson::SUCCESS)
          d.id.assign(s);
        else
          d.id.assign(std::string_view(value.raw_json_token()));
      }
    }
    if (!have_text) throw fail("no \"text\" field");
    if (d.id.empty()) d.id = "line " + std::to_string(line_no);
    docs.push_back(std::move(d));
  }
  return docs;
}

/// Path of a split of the English Web Treebank text in tests/data (or $NERPIPE_TEST_DATA/ewt): "dev" (318 docs)
/// or "train" (540 docs).
inline std::string ewt_path(std::string_view split = "dev") {
  const char* env = std::getenv("NERPIPE_TEST_DATA");
  const std::string root = env != nullptr && *env != '\0' ? std::string(env) : std::string(NERPIPE_SOURCE_DIR) + "/tests/data";
  return root + "/ewt/" + std::string(split) + ".jsonl";
}

/// The EWT split, loaded on first use and kept for the rest of the process (benchmarks call it per run).
inline const std::vector<corpus_doc>& ewt(std::string_view split = "dev") {
  static std::map<std::string, std::vector<corpus_doc>, std::less<>> cache;
  auto it = cache.find(split);
  if (it == cache.end()) it = cache.emplace(std::string(split), load_jsonl(ewt_path(split))).first;
  return it->second;
}

/// Total UTF-8 bytes of the texts (for bytes/s counters).
/// Every EWT document, dev then train (858), loaded once per process.
inline const std::vector<corpus_doc>& ewt_all() {
  static const std::vector<corpus_doc> docs = [] {
    std::vector<corpus_doc> d = ewt("dev");
    const auto& t = ewt("train");
    d.insert(d.end(), t.begin(), t.end());
    return d;
  }();
  return docs;
}

inline std::size_t total_bytes(const std::vector<corpus_doc>& docs) {
  std::size_t n = 0;
  for (const auto& d : docs) n += d.text.size();
  return n;
}

}  // namespace nerpipe::bench
