// SPDX-License-Identifier: Apache-2.0
//! @file What comes out of a pipeline: one document per input record, with its entities or its error.
#pragma once

#include <nerpipe/config/macros.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// One entity span. Offsets count Unicode code points (what Python, spaCy and Hugging Face report);
/// byte offsets into the UTF-8 text are given too. `end` is exclusive.
struct entity {
  std::size_t start = 0, end = 0;            // code points
  std::size_t start_byte = 0, end_byte = 0;  // bytes of the UTF-8 text
  std::string label;
  std::string text;
  float score = 1.0f;
};

/// One token of the document as the model's tokenizer saw it (word level for spaCy, sub-word for HF).
struct token {
  std::size_t start = 0, end = 0;            // code points
  std::size_t start_byte = 0, end_byte = 0;  // bytes
  bool whitespace = false;                   // followed by a space (spaCy's `whitespace_`)
  std::string tag;                           // IOB tag, filled by the `iob` output format
};

/// A token after merge_entities: an entity's tokens become one token whose text is
/// text[start_char:end_char] and whose whitespace is that of the entity's last token.
struct merged_token {
  std::size_t start = 0, end = 0;            // code points
  std::size_t start_byte = 0, end_byte = 0;  // bytes
  bool whitespace = false;
  std::string ent_type;                      // the entity label, empty outside entities
};

/// Whether a record came through, and if not why.
enum class record_status : std::uint8_t {
  ok = 0,
  invalid_json,
  missing_text,
  invalid_utf8,
  too_large,
  failed,  ///< an error while processing (the message says which)
};

/// One input record's result, in input order.
struct document {
  std::uint64_t index = 0;       ///< position in the input stream (0-based, counting non-blank lines)
  std::uint64_t line = 0;        ///< 1-based line number in the input
  std::string id;                ///< the record's id as JSON text ("null" when absent)
  std::string text;              ///< the document text (UTF-8)
  std::vector<token> tokens;     ///< filled when the output format needs them
  std::vector<entity> entities;  ///< sorted by start
  std::vector<merged_token> merged;  ///< the tokens after merge_entities, when the pipeline was asked for them
  std::vector<std::uint32_t> sentences;  ///< token indices where sentences start, when a parser or senter ran
  record_status status = record_status::ok;
  std::string error;             ///< empty when status == ok; says what and where otherwise

  [[nodiscard]] bool ok() const noexcept { return status == record_status::ok; }
};

NERPIPE_NAMESPACE_END
