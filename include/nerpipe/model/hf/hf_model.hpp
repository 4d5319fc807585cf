// SPDX-License-Identifier: Apache-2.0
//! @file The loaded form of a Hugging Face BERT / DistilBERT model (no file parsing here, so that
//! pipelines compiled by nvcc can name it; <nerpipe/model/hf/model.hpp> loads it).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/model/hf/types.hpp>
#include <nerpipe/tokenizer/wordpiece_tokenizer.hpp>

#include <cstddef>
#include <filesystem>
#include <memory>

NERPIPE_NAMESPACE_BEGIN

/// Everything of one model directory: settings, fp32 host weights, tokenizer, and what the
/// post-processing needs from the tokenizer. Cheap to copy (the heavy parts are shared).
struct hf_model {
  std::filesystem::path dir;
  hf_config config;
  std::shared_ptr<const hf_weights> weights;
  std::shared_ptr<const wordpiece_tokenizer> tokenizer;
  std::shared_ptr<const hf_vocab_info> vocab;
  /// Tokens per window, [CLS] and [SEP] included: tokenizer_config.json's model_max_length, capped by
  /// max_position_embeddings (the reference truncates there; nerpipe windows instead).
  std::size_t max_length = 0;
};

NERPIPE_NAMESPACE_END
