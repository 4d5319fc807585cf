// SPDX-License-Identifier: Apache-2.0
//! @file The batch contract: the one structure every pipeline stage reads and extends.
//!
//! Structure of arrays, as the design notes ask: a few flat arrays with CSR offsets, never a vector of
//! objects per token, so a stage can move a whole field to a device with one copy and the CPU path stays
//! cache-friendly. A batch holds the documents of one `annotate` call (those whose status is ok):
//!
//!   text      one UTF-8 arena, `doc_text` segments into it (bytes)
//!   words     word-level tokens (spaCy's tokenizer, a Hugging Face pre-tokenizer): per document
//!             (`doc_words`), begin/end in bytes and code points of the document's text, trailing space,
//!             sentence starts, and the lexical features a hashed embedding reads
//!   pieces    sub-word model inputs of a transformer, grouped in `windows` (one model sequence each; a
//!             long document has several, `doc_windows`): ids, type ids, offsets, special mask, piece->word
//!   sequences what one forward pass runs over: windows (transformers) or documents (spaCy's CNN); the
//!             pipeline orders them and cuts them into passes under a token budget
//!   pass      the sequences of the running forward pass, their row offsets on the host and in policy
//!             memory, and the activations (`hidden`) in the policy's memory in the compute type
//!   logits    host copy of the classifier's scores, one row per piece (window order)
//!   entities  per document, written into each document (`document::entities`)
//!
//! Offsets are int32 everywhere (one segment description for host and device arrays); a batch that would
//! exceed them is refused with a clear error before anything is computed.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/pipeline/annotator.hpp>
#include <nerpipe/policy/device_policy.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// Consecutive segments of a flat array (CSR): segment i is [offsets[i], offsets[i + 1]).
struct segments {
  std::vector<std::int32_t> offsets{0};

  [[nodiscard]] std::size_t size() const noexcept { return offsets.size() - 1; }
  [[nodiscard]] bool empty() const noexcept { return offsets.size() == 1; }
  [[nodiscard]] std::size_t begin(std::size_t i) const noexcept { return static_cast<std::size_t>(offsets[i]); }
  [[nodiscard]] std::size_t end(std::size_t i) const noexcept { return static_cast<std::size_t>(offsets[i + 1]); }
  [[nodiscard]] std::size_t length(std::size_t i) const noexcept { return end(i) - begin(i); }
  /// Elements in all segments.
  [[nodiscard]] std::size_t total() const noexcept { return static_cast<std::size_t>(offsets.back()); }
  /// Closes the next segment at `end_offset` (the element count so far); refuses what int32 cannot hold.
  void close(std::size_t end_offset) {
    if (end_offset > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
      NERPIPE_THROW(input_error(errc::input_too_large, "a batch holds more than 2^31 elements of one kind (" +
                                                           std::to_string(end_offset) + "); use smaller batches"));
    offsets.push_back(static_cast<std::int32_t>(end_offset));
  }
  void clear() { offsets.assign(1, 0); }
};

/// What stages read and write. A stage names its inputs and outputs as sets of these (pipeline/stage.hpp).
enum class field : std::uint32_t {
  text = 1u << 0,             ///< the text arena and doc_text (the pipeline fills it)
  words = 1u << 1,            ///< doc_words, word offsets, word_space
  word_features = 1u << 2,    ///< lexical features of words (hashed-embedding attributes, vector rows, is_space)
  sentence_starts = 1u << 3,  ///< word_sent_start
  pieces = 1u << 4,           ///< sub-word ids, type ids, offsets, special mask, piece->word
  windows = 1u << 5,          ///< windows of pieces and their documents
  sequences = 1u << 6,        ///< what a forward pass runs over (windows or documents), with their lengths
  hidden = 1u << 7,           ///< activations of the running pass, policy memory
  logits = 1u << 8,           ///< classifier scores per piece, host
  entities = 1u << 10,        ///< document::entities
  merged = 1u << 11,          ///< document::merged (merge_entities' tokens)
  tokens = 1u << 12,          ///< document::tokens (for iob / merged output)
};

/// A set of fields (a bit mask), usable in constant expressions.
struct field_set {
  std::uint32_t bits = 0;
  constexpr field_set() = default;
  constexpr field_set(field f) : bits(static_cast<std::uint32_t>(f)) {}  // NOLINT: a field is a set of one
  constexpr explicit field_set(std::uint32_t b) : bits(b) {}
  [[nodiscard]] constexpr bool has(field f) const noexcept { return (bits & static_cast<std::uint32_t>(f)) != 0; }
  [[nodiscard]] constexpr bool contains(field_set o) const noexcept { return (bits & o.bits) == o.bits; }
  [[nodiscard]] constexpr field_set missing_from(field_set have) const noexcept { return field_set(bits & ~have.bits); }
  [[nodiscard]] constexpr bool empty() const noexcept { return bits == 0; }
  friend constexpr field_set operator|(field_set a, field_set b) noexcept { return field_set(a.bits | b.bits); }
};
constexpr field_set operator|(field a, field b) noexcept { return field_set(a) | field_set(b); }

/// The record status of a document whose processing threw `e`: the same fault gives the same status in
/// every family (invalid UTF-8, too large), anything else is `failed`.
inline record_status status_of(const std::exception& e) noexcept {
  if (const auto* x = dynamic_cast<const error*>(&e)) {
    if (x->code() == errc::input_invalid_utf8) return record_status::invalid_utf8;
    if (x->code() == errc::input_too_large) return record_status::too_large;
  }
  return record_status::failed;
}

/// One batch on `Policy`. Host arrays are plain vectors; device arrays are the policy's buffers.
template <class Policy>
struct batch {
  using policy_type = Policy;
  template <class T>
  using buffer = typename Policy::template buffer<T>;

  // ---- documents: the records of this batch (status ok on entry); a stage that cannot process one
  // document sets its status and error and the later stages skip it (`live(d)`).
  std::vector<document*> docs;
  std::vector<std::exception_ptr> doc_exception;  ///< what failed each document (null: nothing)

  // ---- text
  std::string text;   ///< every document's text, back to back
  segments doc_text;  ///< bytes of the arena per document

  // ---- words
  segments doc_words;
  std::vector<std::int32_t> word_begin, word_end;          ///< bytes, relative to the document's text
  std::vector<std::int32_t> word_begin_cp, word_end_cp;    ///< code points, relative to the document's text
  std::vector<std::uint8_t> word_space;                    ///< followed by a space (spaCy's whitespace_)
  std::vector<std::uint8_t> word_sent_start;               ///< 1: the word starts a sentence (empty: unknown)
  std::size_t feature_count = 0;                           ///< word_features per word
  std::vector<std::uint64_t> word_features;                ///< [words, feature_count] string ids
  std::vector<std::int64_t> word_vector_row;               ///< row of the static vectors table, -1: none
  std::vector<std::uint8_t> word_is_space;                 ///< spaCy's IS_SPACE

  // ---- pieces and windows
  segments window_pieces;                                  ///< pieces of each window (window-major)
  std::vector<std::int32_t> window_doc;                    ///< the document of each window
  segments doc_windows;                                    ///< windows of each document
  std::vector<std::int32_t> piece_id, piece_type, piece_word;  ///< piece_word: -1 for special tokens
  std::vector<std::int32_t> piece_begin, piece_end;        ///< code points of the document's text ((0,0) specials)
  std::vector<std::int32_t> piece_begin_byte, piece_end_byte;
  std::vector<std::uint8_t> piece_special;
  /// The pieces of each word (indices into the piece arrays, ascending): a word may take pieces of several
  /// overlapping windows and a piece may belong to several words (spaCy transformer pipelines pool them).
  segments word_pieces;
  std::vector<std::int32_t> word_piece;

  // ---- sequences: what forward passes run over, and their order
  segments sequence_rows;                                  ///< model rows of each sequence (pieces or words)
  std::vector<std::int32_t> sequence_doc;                  ///< the document of each sequence
  std::vector<std::int32_t> order;                         ///< sequences in the order passes take them

  // ---- the running pass (device stages)
  struct pass_state {
    std::size_t first = 0, last = 0;                       ///< positions [first, last) in `order`
    std::size_t rows = 0, longest = 0;
    std::vector<std::int32_t> seq_offsets{0};              ///< host: row offsets of the pass's sequences
    buffer<std::int32_t> seq_offsets_device;               ///< the same offsets in policy memory
    dtype compute = dtype::f32;                            ///< the element type of `hidden`
    void* hidden = nullptr;                                ///< [rows, hidden_cols] activations, policy memory
    std::size_t hidden_cols = 0;
    /// The activations as a view of element type T (T must be the pass's compute type).
    template <class T>
    [[nodiscard]] matrix_view<T> hidden_as() const noexcept {
      return {static_cast<T*>(hidden), rows, hidden_cols};
    }
    [[nodiscard]] std::size_t size() const noexcept { return last - first; }
  } pass;

  // ---- results
  std::size_t logit_cols = 0;
  std::vector<float> logits;                               ///< [pieces, logit_cols], host, window-major

  /// Model tokens of this batch (for throughput figures): pieces, or words where there are none.
  std::size_t model_tokens = 0;

  explicit batch(const Policy& p) : policy_(&p) {}
  batch(const batch&) = delete;
  batch& operator=(const batch&) = delete;

  /// The policy the batch's device memory belongs to.
  [[nodiscard]] const Policy& policy() const noexcept { return *policy_; }
  [[nodiscard]] std::size_t size() const noexcept { return docs.size(); }

  /// The row (word or piece) where the running pass starts, when its sequences are consecutive in row order
  /// (unsorted passes: spaCy's documents).
  [[nodiscard]] std::size_t pass_first_row() const noexcept {
    return sequence_rows.begin(static_cast<std::size_t>(order[pass.first]));
  }
  /// The rows of each sequence of the running pass, in pass order.
  void pass_lengths(std::vector<std::size_t>& out) const {
    out.clear();
    for (std::size_t k = pass.first; k < pass.last; ++k) out.push_back(sequence_rows.length(static_cast<std::size_t>(order[k])));
  }
  [[nodiscard]] bool live(std::size_t d) const noexcept { return docs[d]->ok(); }
  [[nodiscard]] std::string_view doc_text_of(std::size_t d) const noexcept {
    return std::string_view(text).substr(doc_text.begin(d), doc_text.length(d));
  }
  /// Takes a document out of the batch: its status and message are set, later stages skip it.
  void fail(std::size_t d, record_status status, std::string message, std::exception_ptr why = nullptr) {
    document& doc = *docs[d];
    doc_exception[d] = std::move(why);
    doc.status = status;
    doc.error = std::move(message);
    doc.entities.clear();
    doc.packed.clear();
    doc.tokens.clear();
    doc.merged.clear();
    doc.sentences.clear();
  }

  /// Takes a document out of the batch because of the exception being handled, `e`.
  void fail_current(std::size_t d, const std::exception& e) { fail(d, status_of(e), e.what(), std::current_exception()); }

  /// Starts a batch over `documents` (those whose status is ok and whose text is at most `longest` bytes: longer
  /// ones are left to run window group by window group, reset_group), copying their texts into the arena.
  void reset(std::span<document> documents, std::size_t longest = std::numeric_limits<std::size_t>::max()) {
    docs.clear();
    text.clear();
    doc_text.clear();
    group = {};
    std::size_t bytes = 0;
    for (document& d : documents)
      if (d.ok() && d.text.size() <= longest) bytes += d.text.size();
    text.reserve(bytes);
    for (document& d : documents) {
      if (!d.ok() || d.text.size() > longest) continue;
      clear_results(d);
      docs.push_back(&d);
      text += d.text;
      if (text.size() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
        NERPIPE_THROW(input_error(errc::input_too_large, "a batch holds more than 2 GiB of text; use smaller batches"));
      doc_text.close(text.size());
    }
    clear_arrays();
  }

  /// Starts the next group of windows of the long document `d` (the first when `first`). The text is not copied:
  /// the stages that run groups (the tokenizer and decoder) read d.text.
  void reset_group(document& d, bool first) {
    if (first) clear_results(d);
    docs.assign(1, &d);
    text.clear();
    doc_text.clear();
    doc_text.close(0);
    group = {};
    group.active = true;
    group.first = first;
    clear_arrays();
  }

  /// Set while a long document runs window group by window group (pipeline::annotate): the batch holds one group
  /// of its windows, and the tokenizer and decoder stages keep the document's state from group to group.
  struct group_state {
    bool active = false;
    bool first = false;
    bool last = false;       ///< no windows follow (the tokenizer says)
    std::size_t bound = 0;   ///< code point at or after which the next group's entities start (the tokenizer says)
  } group;

 private:
  static void clear_results(document& d) {
    d.entities.clear();
    d.packed.clear();
    d.tokens.clear();
    d.merged.clear();
    d.sentences.clear();
  }

  void clear_arrays() {
    doc_exception.assign(docs.size(), nullptr);
    doc_words.clear();
    word_begin.clear(), word_end.clear(), word_begin_cp.clear(), word_end_cp.clear(), word_space.clear();
    word_sent_start.clear(), word_features.clear(), word_vector_row.clear(), word_is_space.clear();
    feature_count = 0;
    window_pieces.clear(), doc_windows.clear();
    window_doc.clear(), piece_id.clear(), piece_type.clear(), piece_word.clear(), piece_begin.clear(), piece_end.clear();
    piece_begin_byte.clear(), piece_end_byte.clear(), piece_special.clear();
    word_pieces.clear(), word_piece.clear();
    sequence_rows.clear(), sequence_doc.clear(), order.clear();
    pass.first = pass.last = pass.rows = pass.longest = 0;
    pass.seq_offsets.assign(1, 0);
    pass.hidden = nullptr;
    pass.hidden_cols = 0;
    logit_cols = 0;
    logits.clear();
    model_tokens = 0;
  }

  const Policy* policy_;
};

NERPIPE_NAMESPACE_END
