// SPDX-License-Identifier: Apache-2.0
//! @file One interface over the Hugging Face tokenizers nerpipe implements: WordPiece (BERT family) and
//! BPE / Unigram (RoBERTa, XLM-R, CamemBERT, DeBERTa-v3). What a pipeline needs from a tokenizer:
//! encode, encode_windows (truncation with stride and overflow), num_special_tokens, and the vocabulary.
//! Dispatch is one switch per call; each alternative keeps its own speed.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/tokenizer/subword_tokenizer.hpp>
#include <nerpipe/tokenizer/wordpiece_tokenizer.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// A text being cut into encode_windows' windows a few at a time (any_tokenizer::start_windows / next_window):
/// long documents are tokenized and run window group by window group, so what is held stays bounded.
class window_stream {
 public:
  /// Windows handed out so far.
  [[nodiscard]] std::size_t windows() const noexcept { return count_; }

 private:
  friend class any_tokenizer;
  std::variant<std::monostate, wordpiece_tokenizer::window_state, subword_tokenizer::window_state> state_;
  std::size_t count_ = 0;
};

class any_tokenizer {
 public:
  explicit any_tokenizer(wordpiece_tokenizer t) : impl_(std::move(t)) {}
  explicit any_tokenizer(subword_tokenizer t) : impl_(std::move(t)) {}

  [[nodiscard]] encoding encode(std::string_view text) const {
    return std::visit([&](const auto& t) { return t.encode(text); }, impl_);
  }
  void encode(std::string_view text, encoding& out) const {
    std::visit([&](const auto& t) { t.encode(text, out); }, impl_);
  }
  [[nodiscard]] std::vector<encoding> encode_windows(std::string_view text, std::size_t max_length,
                                                     std::size_t stride) const {
    return std::visit([&](const auto& t) { return t.encode_windows(text, max_length, stride); }, impl_);
  }
  void encode_windows(std::string_view text, std::size_t max_length, std::size_t stride,
                      std::vector<encoding>& out) const {
    std::visit([&](const auto& t) { t.encode_windows(text, max_length, stride, out); }, impl_);
  }
  /// Starts cutting `text` (which must outlive the stream) into the windows encode_windows gives, in order.
  void start_windows(std::string_view text, std::size_t max_length, std::size_t stride, window_stream& ws,
                     std::size_t piece_bytes = std::size_t{1} << 16) const {
    ws.count_ = 0;
    std::visit(
        [&](const auto& t) {
          using state = typename std::decay_t<decltype(t)>::window_state;
          if (!std::holds_alternative<state>(ws.state_)) ws.state_.template emplace<state>();
          t.start_windows(text, max_length, stride, std::get<state>(ws.state_), piece_bytes);
        },
        impl_);
  }
  /// The next window into `out`; false when the text has no more.
  bool next_window(window_stream& ws, encoding& out) const {
    const bool more = std::visit(
        [&](const auto& t) {
          using state = typename std::decay_t<decltype(t)>::window_state;
          return t.next_window(std::get<state>(ws.state_), out);
        },
        impl_);
    ws.count_ += more;
    return more;
  }

  /// The smallest code-point offset a token of a window not yet handed out may have (SIZE_MAX: none is left):
  /// entities of later windows start there or after.
  [[nodiscard]] std::size_t window_floor(const window_stream& ws) const noexcept {
    return std::visit(
        [&](const auto& t) {
          using state = typename std::decay_t<decltype(t)>::window_state;
          return t.window_floor(std::get<state>(ws.state_));
        },
        impl_);
  }

  [[nodiscard]] std::size_t num_special_tokens() const noexcept {
    return std::visit([](const auto& t) { return t.num_special_tokens(); }, impl_);
  }
  [[nodiscard]] std::int32_t token_to_id(std::string_view token) const noexcept {
    return std::visit([&](const auto& t) { return t.token_to_id(token); }, impl_);
  }
  [[nodiscard]] std::string_view id_to_token(std::int32_t id) const noexcept {
    return std::visit([&](const auto& t) { return t.id_to_token(id); }, impl_);
  }
  [[nodiscard]] std::int32_t unk_id() const noexcept {
    return std::visit([](const auto& t) { return t.unk_id(); }, impl_);
  }
  [[nodiscard]] std::size_t vocab_size() const noexcept {
    return std::visit([](const auto& t) { return t.vocab_size(); }, impl_);
  }

  /// The WordPiece tokenizer, or nullptr.
  [[nodiscard]] const wordpiece_tokenizer* wordpiece() const noexcept { return std::get_if<wordpiece_tokenizer>(&impl_); }
  /// The BPE / Unigram tokenizer, or nullptr.
  [[nodiscard]] const subword_tokenizer* subword() const noexcept { return std::get_if<subword_tokenizer>(&impl_); }

 private:
  std::variant<wordpiece_tokenizer, subword_tokenizer> impl_;
};

NERPIPE_NAMESPACE_END
