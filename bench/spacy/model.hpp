// SPDX-License-Identifier: Apache-2.0
//! @file The spaCy model the spaCy benchmarks use: $NERPIPE_SPACY_MODEL, else models/en_core_web_sm-3.8.0
//! (scripts/get-model.sh); loaded once per process, nullptr when absent (the benchmark then skips).
#pragma once

#include <nerpipe/spacy.hpp>

#include <cstdlib>
#include <filesystem>
#include <memory>

namespace nerpipe::bench {

inline const nerpipe::spacy_model* spacy_sm_model() {
  static const std::unique_ptr<nerpipe::spacy_model> m = []() -> std::unique_ptr<nerpipe::spacy_model> {
    const char* env = std::getenv("NERPIPE_SPACY_MODEL");
    const std::filesystem::path dir = env != nullptr && *env != '\0'
                                          ? std::filesystem::path(env)
                                          : std::filesystem::path(NERPIPE_SOURCE_DIR) / "models" / "en_core_web_sm-3.8.0";
    if (!std::filesystem::exists(dir / "config.cfg")) return nullptr;
    return std::make_unique<nerpipe::spacy_model>(nerpipe::load_spacy_model(dir));
  }();
  return m.get();
}

}  // namespace nerpipe::bench
