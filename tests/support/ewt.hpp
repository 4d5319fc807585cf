// SPDX-License-Identifier: Apache-2.0
//! @file The EWT text of ../shared/data/ewt (or $NERPIPE_EWT_DIR, for machines where ../shared is not
//! beside the checkout, such as a lent GPU machine): every document of dev.jsonl, then train.jsonl.
#pragma once

#include <simdjson.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace nerpipe::test {

struct ewt_doc {
  std::string id, text;
};

/// $NERPIPE_EWT_DIR (a folder with dev.jsonl and train.jsonl), else ../shared/data/ewt beside the repository.
inline std::filesystem::path ewt_dir() {
  const char* env = std::getenv("NERPIPE_EWT_DIR");
  return env != nullptr && *env != '\0' ? std::filesystem::path(env)
                                        : std::filesystem::path(NERPIPE_SOURCE_DIR "/../shared/data/ewt");
}

/// Every EWT document, dev then train, in file order; empty when the files are missing.
inline std::vector<ewt_doc> load_ewt() {
  std::vector<ewt_doc> out;
  simdjson::dom::parser parser;
  for (const char* split : {"dev", "train"}) {
    std::ifstream in(ewt_dir() / (std::string(split) + ".jsonl"));
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      simdjson::dom::element e = parser.parse(line);
      out.push_back(ewt_doc{std::string(std::string_view(e["id"])), std::string(std::string_view(e["text"]))});
    }
  }
  return out;
}

}  // namespace nerpipe::test
