// SPDX-License-Identifier: Apache-2.0
//! @file The loaded form of a Hugging Face token classifier (no file parsing here, so that pipelines compiled
//! by nvcc can name it; <nerpipe/model/hf/model.hpp> loads it).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/model/hf/types.hpp>
#include <nerpipe/tokenizer/any_tokenizer.hpp>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>

NERPIPE_NAMESPACE_BEGIN

/// Everything of one model directory: settings, fp32 host weights, tokenizer, and what the
/// post-processing needs from the tokenizer. Cheap to copy (the heavy parts are shared).
struct hf_model {
  std::filesystem::path dir;
  hf_config config;
  std::shared_ptr<const hf_weights> weights;
  /// WordPiece (BERT, DistilBERT, ELECTRA), byte-level BPE (RoBERTa) or Unigram (XLM-R, CamemBERT, DeBERTa-v3).
  std::shared_ptr<const any_tokenizer> tokenizer;
  std::shared_ptr<const hf_vocab_info> vocab;
  /// Tokens per window, the special tokens included: tokenizer_config.json's model_max_length, capped by
  /// what the position table allows (hf_config::max_window; the reference truncates there, nerpipe windows).
  std::size_t max_length = 0;
  /// tokenizer.json's model type ("WordPiece", "BPE", "Unigram") and tokenizer_config.json's tokenizer_class.
  std::string tokenizer_model, tokenizer_class;
  /// How many safetensors files held the weights (more than one: a sharded checkpoint).
  std::size_t weight_files = 1;
};

NERPIPE_NAMESPACE_END
