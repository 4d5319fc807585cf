// SPDX-License-Identifier: Apache-2.0
//! @file A Hugging Face BERT / DistilBERT token-classification directory, loaded and validated on the host.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/model/hf/config.hpp>
#include <nerpipe/model/hf/hf_model.hpp>
#include <nerpipe/model/hf/tokenizer_json.hpp>
#include <nerpipe/model/hf/types.hpp>
#include <nerpipe/model/hf/weights.hpp>
#include <nerpipe/model/safetensors.hpp>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>

NERPIPE_NAMESPACE_BEGIN

/// Loads config.json, model.safetensors, tokenizer.json (+ tokenizer_config.json) from `dir`.
/// Every problem is a model_error naming the file, the key or tensor, what was expected and what was found.
[[nodiscard]] inline hf_model load_hf_model(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    NERPIPE_THROW(model_error(errc::model_file_missing,
                              dir.string() + ": not a directory (expected a Hugging Face model directory)"));
  hf_model m;
  m.dir = dir;
  m.config = read_hf_config(dir);
  const auto st = dir / "model.safetensors";
  if (!std::filesystem::exists(st, ec)) {
    const bool sharded = std::filesystem::exists(dir / "model.safetensors.index.json", ec);
    const bool torch_bin = std::filesystem::exists(dir / "pytorch_model.bin", ec);
    NERPIPE_THROW(model_error(errc::model_file_missing,
                              st.string() + ": file is missing (expected the weights as one safetensors file" +
                                  (sharded ? "; sharded checkpoints are not supported" : "") +
                                  (torch_bin ? "; pytorch_model.bin is not read: convert it to safetensors" : "") + ")"));
  }
  {
    const safetensors_file file(st);
    m.weights = std::make_shared<const hf_weights>(load_hf_weights(file, m.config));
  }
  hf_tokenizer loaded = load_hf_tokenizer(dir);
  const hf_tokenizer_info info = loaded.info;
  auto tok = std::make_shared<const wordpiece_tokenizer>(std::move(loaded.tokenizer));
  auto vocab = std::make_shared<hf_vocab_info>();
  const auto& wp = *tok;
  vocab->id_to_token.reserve(wp.vocab_size());
  for (std::size_t i = 0; i < wp.vocab_size(); ++i)
    vocab->id_to_token.emplace_back(wp.id_to_token(static_cast<std::int32_t>(i)));
  vocab->unk_id = wp.unk_id();
  vocab->continuing_subword_prefix = wp.config().continuing_subword_prefix;
  if (!info.decoder_type.empty() && info.decoder_type != "WordPiece")
    NERPIPE_THROW(model_error(errc::model_unsupported, (dir / "tokenizer.json").string() + ": decoder type is \"" +
                                                           info.decoder_type + "\"; expected \"WordPiece\""));
  vocab->decoder_prefix = info.decoder_prefix;
  vocab->decoder_cleanup = info.decoder_cleanup;
  // Every id the tokenizer can produce indexes the embedding table: none may reach past config.json's vocab_size.
  if (wp.vocab_size() > m.config.vocab_size) {
    std::int32_t top = static_cast<std::int32_t>(wp.vocab_size()) - 1;
    while (top > 0 && wp.id_to_token(top).empty()) --top;
    if (static_cast<std::size_t>(top) >= m.config.vocab_size)
      NERPIPE_THROW(model_error(errc::model_shape_mismatch,
                                (dir / "tokenizer.json").string() + ": token id " + std::to_string(top) + " ('" +
                                    std::string(wp.id_to_token(top)) + "') is outside the model's vocabulary: config.json has vocab_size " +
                                    std::to_string(m.config.vocab_size) + " (the tokenizer and the weights disagree)"));
  }
  for (const auto& piece : wp.config().single_template)
    for (const auto id : piece.ids)
      if (id < 0 || static_cast<std::size_t>(id) >= m.config.vocab_size)
        NERPIPE_THROW(model_error(errc::model_shape_mismatch,
                                  (dir / "tokenizer.json").string() + ": post_processor special token id " + std::to_string(id) +
                                      " is outside config.json's vocab_size " + std::to_string(m.config.vocab_size)));
  const std::size_t mml = info.model_max_length;
  m.max_length = mml == 0 ? m.config.max_position : std::min(mml, m.config.max_position);
  if (m.max_length <= wp.num_special_tokens())
    NERPIPE_THROW(model_error(errc::model_unsupported,
                              dir.string() + ": model_max_length " + std::to_string(m.max_length) +
                                  " leaves no room for text after the special tokens"));
  m.tokenizer = std::move(tok);
  m.vocab = std::move(vocab);
  return m;
}

NERPIPE_NAMESPACE_END
