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
#include <utility>
#include <variant>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

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
