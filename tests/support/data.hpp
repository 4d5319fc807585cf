// SPDX-License-Identifier: Apache-2.0
//! @file Where the tests' inputs are: the text in tests/data (committed, with its license), the committed
//! fixtures, and the models scripts fetch into models/. One locator, so no test spells a path of its own.
//!   NERPIPE_TEST_DATA   a folder with ewt/ and ud-multi/ (default: tests/data of this repository)
//!   NERPIPE_MODELS      the folder scripts/get-model.sh fills (default: models/ of this repository)
#pragma once

#include <simdjson.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace nerpipe::test {

namespace detail {
inline std::filesystem::path env_or(const char* name, const std::filesystem::path& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::filesystem::path(v) : fallback;
}
}  // namespace detail

/// The repository's root.
inline std::filesystem::path source_dir() { return std::filesystem::path(NERPIPE_SOURCE_DIR); }
/// tests/data (or $NERPIPE_TEST_DATA).
inline std::filesystem::path data_dir() { return detail::env_or("NERPIPE_TEST_DATA", source_dir() / "tests" / "data"); }
/// The EWT text: a folder with dev.jsonl and train.jsonl.
inline std::filesystem::path ewt_dir() { return data_dir() / "ewt"; }
/// One EWT split: "dev" (318 documents) or "train" (540).
inline std::filesystem::path ewt_file(std::string_view split) { return ewt_dir() / (std::string(split) + ".jsonl"); }
/// French, German, Chinese, Japanese and Russian documents (ud-multi/dev.jsonl, 774 documents).
inline std::filesystem::path ud_multi_file() { return data_dir() / "ud-multi" / "dev.jsonl"; }
/// Committed fixtures made by tools/ from the reference implementations.
inline std::filesystem::path fixtures_dir() { return source_dir() / "tests" / "fixtures"; }
/// Downloaded models (scripts/get-model.sh): models/ or $NERPIPE_MODELS.
inline std::filesystem::path models_dir() { return detail::env_or("NERPIPE_MODELS", source_dir() / "models"); }

struct text_doc {
  std::string id, text;
};

/// The documents of a JSONL file of {"id", "text"} records, in file order (blank lines skipped).
inline std::vector<text_doc> load_docs(const std::filesystem::path& file) {
  std::vector<text_doc> out;
  simdjson::dom::parser parser;
  std::ifstream in(file, std::ios::binary);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    simdjson::dom::element e = parser.parse(line);
    out.push_back(text_doc{std::string(std::string_view(e["id"])), std::string(std::string_view(e["text"]))});
  }
  return out;
}

/// Every EWT document, dev then train (858).
inline std::vector<text_doc> load_ewt() {
  auto out = load_docs(ewt_file("dev"));
  auto train = load_docs(ewt_file("train"));
  out.insert(out.end(), std::make_move_iterator(train.begin()), std::make_move_iterator(train.end()));
  return out;
}

}  // namespace nerpipe::test
