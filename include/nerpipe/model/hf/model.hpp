// SPDX-License-Identifier: Apache-2.0
//! @file A Hugging Face token-classification directory (BERT, DistilBERT, RoBERTa / XLM-R / CamemBERT, ELECTRA,
//! DeBERTa-v2/v3), loaded and validated on the host.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/model/hf/checkpoint.hpp>
#include <nerpipe/model/hf/config.hpp>
#include <nerpipe/model/hf/hf_model.hpp>
#include <nerpipe/model/hf/subword_tokenizer_json.hpp>
#include <nerpipe/model/hf/tokenizer_json.hpp>
#include <nerpipe/model/hf/types.hpp>
#include <nerpipe/model/hf/vocab.hpp>
#include <nerpipe/model/hf/weights.hpp>
#include <nerpipe/model/safetensors.hpp>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>

NERPIPE_NAMESPACE_BEGIN

/// Loads config.json, the weights (model.safetensors or model.safetensors.index.json + shards), tokenizer.json
/// (+ tokenizer_config.json) from `dir`. Every problem is a model_error naming the file, the key or tensor, what
/// was expected and what was found.
[[nodiscard]] inline hf_model load_hf_model(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    NERPIPE_THROW(model_error(errc::model_file_missing,
                              dir.string() + ": not a directory (expected a Hugging Face model directory)"));
  hf_model m;
  m.dir = dir;
  m.config = read_hf_config(dir);
  {
    const hf_checkpoint ckpt = hf_checkpoint::open(dir);
    m.weights = std::make_shared<const hf_weights>(load_hf_weights(ckpt, m.config));
    m.weight_files = ckpt.file_count();
  }
  const auto tj = dir / "tokenizer.json";
  if (!std::filesystem::exists(tj, ec))
    NERPIPE_THROW(model_error(errc::model_file_missing, tj.string() + ": file is missing (expected a fast-tokenizer "
                                                                      "tokenizer.json next to config.json)"));
  loaded_tokenizer loaded = load_any_tokenizer(dir);
  m.tokenizer_model = loaded.tokenizer.wordpiece() != nullptr ? "WordPiece"
                      : loaded.tokenizer.subword()->config().model == subword_config::model_kind::bpe ? "BPE"
                                                                                                        : "Unigram";
  m.tokenizer_class = loaded.info.tokenizer_class;
  auto tok = std::make_shared<const any_tokenizer>(std::move(loaded.tokenizer));
  m.vocab = std::make_shared<const hf_vocab_info>(make_hf_vocab_info(*tok, dir));
  // Every id the tokenizer can produce indexes the embedding table: none may reach past config.json's vocab_size.
  if (tok->vocab_size() > m.config.vocab_size) {
    std::int32_t top = static_cast<std::int32_t>(tok->vocab_size()) - 1;
    while (top > 0 && tok->id_to_token(top).empty()) --top;
    if (static_cast<std::size_t>(top) >= m.config.vocab_size)
      NERPIPE_THROW(model_error(errc::model_shape_mismatch,
                                tj.string() + ": token id " + std::to_string(top) + " ('" + std::string(tok->id_to_token(top)) +
                                    "') is outside the model's vocabulary: config.json has vocab_size " +
                                    std::to_string(m.config.vocab_size) + " (the tokenizer and the weights disagree)"));
  }
  const auto check_template = [&](const auto& t) {
    for (const auto& piece : t.config().single_template)
      for (const auto id : piece.ids)
        if (id < 0 || static_cast<std::size_t>(id) >= m.config.vocab_size)
          NERPIPE_THROW(model_error(errc::model_shape_mismatch,
                                    tj.string() + ": post_processor special token id " + std::to_string(id) +
                                        " is outside config.json's vocab_size " + std::to_string(m.config.vocab_size)));
  };
  if (const auto* wp = tok->wordpiece()) check_template(*wp);
  if (const auto* sw = tok->subword()) check_template(*sw);
  const std::size_t mml = loaded.info.model_max_length, limit = m.config.max_window();
  m.max_length = mml == 0 ? limit : std::min(mml, limit);
  if (m.max_length <= tok->num_special_tokens())
    NERPIPE_THROW(model_error(errc::model_unsupported,
                              dir.string() + ": model_max_length " + std::to_string(m.max_length) +
                                  " leaves no room for text after the special tokens"));
  m.tokenizer = std::move(tok);
  return m;
}

NERPIPE_NAMESPACE_END
