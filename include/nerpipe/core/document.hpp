// SPDX-License-Identifier: Apache-2.0
//! @file What comes out of a pipeline: one document per input record, with its entities or its error.
#pragma once

#include <nerpipe/config/macros.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
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

/// Entities held compactly, about 10 bytes each (an `entity` takes about 100): what a long document's window
/// groups give when annotate_options::pack_entities is set, so that a document with millions of entities stays
/// small until the writer writes them, a part at a time. Offsets are stored as deltas; `text` only where the
/// byte span does not give it (the writer writes the document's own characters otherwise).
class packed_entities {
 public:
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  void clear() noexcept {
    blocks_.clear();
    blocks_.shrink_to_fit();
    labels_.clear();
    count_ = 0;
    last_start_ = last_start_byte_ = 0;
  }
  /// Appends `e`; `text_size` is the document's text size (whether the byte span gives the entity's text).
  void push_back(const entity& e, std::size_t text_size) {
    std::string& bytes_ = block_for(64 + e.text.size());
    std::size_t label = 0;
    while (label < labels_.size() && labels_[label] != e.label) ++label;
    if (label == labels_.size()) labels_.push_back(e.label);
    put_signed(bytes_, static_cast<std::int64_t>(e.start) - static_cast<std::int64_t>(last_start_));
    put_signed(bytes_, static_cast<std::int64_t>(e.end) - static_cast<std::int64_t>(e.start));
    put_signed(bytes_, static_cast<std::int64_t>(e.start_byte) - static_cast<std::int64_t>(last_start_byte_));
    put_signed(bytes_, static_cast<std::int64_t>(e.end_byte) - static_cast<std::int64_t>(e.start_byte));
    put(bytes_, label);
    std::uint32_t score;
    static_assert(sizeof score == sizeof e.score);
    std::memcpy(&score, &e.score, sizeof score);
    for (int k = 0; k < 4; ++k) bytes_.push_back(static_cast<char>((score >> (8 * k)) & 0xFFu));
    const bool spanned = e.end_byte > e.start_byte && e.end_byte <= text_size;
    put(bytes_, spanned ? 0 : e.text.size() + 1);
    if (!spanned) bytes_.append(e.text);
    last_start_ = e.start;
    last_start_byte_ = e.start_byte;
    ++count_;
  }
  /// Calls `f(std::span<const entity>)` for the entities in order, at most `part` at a time.
  template <class F>
  void for_each_part(F&& f, std::size_t part = 4096) const {
    std::vector<entity> out;
    out.reserve(std::min(part, count_));
    std::size_t at = 0, start = 0, start_byte = 0, block = 0;
    for (std::size_t i = 0; i < count_; ++i) {
      if (at == blocks_[block].size()) ++block, at = 0;  // an entity never spans two blocks
      const std::string& bytes_ = blocks_[block];
      entity e;
      e.start = start = static_cast<std::size_t>(static_cast<std::int64_t>(start) + get_signed(bytes_, at));
      e.end = static_cast<std::size_t>(static_cast<std::int64_t>(e.start) + get_signed(bytes_, at));
      e.start_byte = start_byte = static_cast<std::size_t>(static_cast<std::int64_t>(start_byte) + get_signed(bytes_, at));
      e.end_byte = static_cast<std::size_t>(static_cast<std::int64_t>(e.start_byte) + get_signed(bytes_, at));
      e.label = labels_[get(bytes_, at)];
      std::uint32_t score = 0;
      for (int k = 0; k < 4; ++k) score |= std::uint32_t(static_cast<unsigned char>(bytes_[at++])) << (8 * k);
      std::memcpy(&e.score, &score, sizeof score);
      if (const std::uint64_t n = get(bytes_, at); n != 0) {
        e.text.assign(bytes_, at, n - 1);
        at += n - 1;
      }
      out.push_back(std::move(e));
      if (out.size() == part) {
        f(std::span<const entity>(out));
        out.clear();
      }
    }
    if (!out.empty()) f(std::span<const entity>(out));
  }
  /// Every entity (for callers that want them all at once).
  [[nodiscard]] std::vector<entity> unpack() const {
    std::vector<entity> all;
    all.reserve(count_);
    for_each_part([&](std::span<const entity> p) { all.insert(all.end(), p.begin(), p.end()); });
    return all;
  }
  /// Bytes held.
  [[nodiscard]] std::size_t bytes() const noexcept {
    std::size_t n = 0;
    for (const auto& b : blocks_) n += b.capacity();
    return n;
  }

 private:
  // Blocks of about 1 MiB, filled in turn: the store grows without copying itself (a doubling buffer would
  // hold its old and new copies at once, twice its size).
  static constexpr std::size_t block_bytes = std::size_t{1} << 20;
  std::string& block_for(std::size_t need) {
    if (blocks_.empty() || blocks_.back().size() + need > blocks_.back().capacity()) {
      blocks_.emplace_back();
      blocks_.back().reserve(std::max(block_bytes, need));
    }
    return blocks_.back();
  }
  static void put(std::string& bytes_, std::uint64_t v) {
    while (v >= 0x80) {
      bytes_.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    bytes_.push_back(static_cast<char>(v));
  }
  static void put_signed(std::string& bytes_, std::int64_t v) {
    put(bytes_, (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
  }
  static std::uint64_t get(const std::string& bytes_, std::size_t& at) {
    std::uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      const auto b = static_cast<unsigned char>(bytes_[at++]);
      v |= std::uint64_t(b & 0x7F) << shift;
      if (b < 0x80) return v;
    }
  }
  static std::int64_t get_signed(const std::string& bytes_, std::size_t& at) {
    const std::uint64_t v = get(bytes_, at);
    return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
  }

  std::vector<std::string> blocks_;
  std::vector<std::string> labels_;
  std::size_t count_ = 0, last_start_ = 0, last_start_byte_ = 0;
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
  /// A long document's entities, packed, when annotate_options::pack_entities is set (then `entities` is empty).
  packed_entities packed;
  std::vector<merged_token> merged;  ///< the tokens after merge_entities, when the pipeline was asked for them
  std::vector<std::uint32_t> sentences;  ///< token indices where sentences start, when a parser or senter ran
  record_status status = record_status::ok;
  std::string error;             ///< empty when status == ok; says what and where otherwise

  [[nodiscard]] bool ok() const noexcept { return status == record_status::ok; }
};

NERPIPE_NAMESPACE_END
