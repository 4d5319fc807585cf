// SPDX-License-Identifier: Apache-2.0
//! @file spaCy's merge_entities: one token per entity, and the text with each entity replaced by its label.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>

#include <span>
#include <string>
#include <string_view>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// Merges the tokens each entity covers. `entities` must be sorted, non-overlapping and aligned to
/// token boundaries (what the NER produces).
[[nodiscard]] inline std::vector<merged_token> merge_entities(std::span<const token> tokens, std::span<const entity> entities) {
  std::vector<merged_token> out;
  out.reserve(tokens.size());
  std::size_t e = 0;
  for (std::size_t i = 0; i < tokens.size();) {
    while (e < entities.size() && entities[e].end_byte <= tokens[i].start_byte) ++e;
    if (e < entities.size() && entities[e].start_byte == tokens[i].start_byte) {
      std::size_t j = i;
      while (j + 1 < tokens.size() && tokens[j + 1].start_byte < entities[e].end_byte) ++j;
      out.push_back({tokens[i].start, tokens[j].end, tokens[i].start_byte, tokens[j].end_byte, tokens[j].whitespace,
                     entities[e].label});
      i = j + 1;
      ++e;
    } else {
      out.push_back({tokens[i].start, tokens[i].end, tokens[i].start_byte, tokens[i].end_byte, tokens[i].whitespace, {}});
      ++i;
    }
  }
  return out;
}

/// `" ".join(t.ent_type_ or t.text for t in doc)` after merge_entities.
[[nodiscard]] inline std::string merged_text(std::string_view text, std::span<const merged_token> merged) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < merged.size(); ++i) {
    if (i) out += ' ';
    const auto& t = merged[i];
    if (!t.ent_type.empty()) out += t.ent_type;
    else out.append(text.substr(t.start_byte, t.end_byte - t.start_byte));
  }
  return out;
}

/// Both steps at once, from a document's tokens and entities.
[[nodiscard]] inline std::string merged_text(std::string_view text, std::span<const token> tokens, std::span<const entity> entities) {
  const auto merged = merge_entities(tokens, entities);
  return merged_text(text, merged);
}

NERPIPE_NAMESPACE_END
