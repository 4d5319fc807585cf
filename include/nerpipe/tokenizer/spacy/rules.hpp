// SPDX-License-Identifier: Apache-2.0
//! @file What spaCy's rule tokenizer is made of (its `tokenizer` file): the affix and infix patterns, URL and token
//! matchers, and the special cases. The model loader fills it; the tokenizer reads it (the dependency runs from
//! model/ to tokenizer/ only).
#pragma once

#include <nerpipe/config/macros.hpp>

#include <string>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN
namespace spacy {

/// One sub-token of a tokenizer exception ("special case"): ORTH (key 65) and optional NORM (key 67).
struct special_token {
  std::string orth;
  std::string norm;
  bool has_norm = false;
};

/// The `tokenizer` file: Python `re` patterns and the exceptions.
struct tokenizer_rules {
  std::string prefix_search, suffix_search, infix_finditer, token_match, url_match;
  std::vector<std::pair<std::string, std::vector<special_token>>> exceptions;
  bool faster_heuristics = true;
};

}  // namespace spacy
NERPIPE_NAMESPACE_END
