// SPDX-License-Identifier: Apache-2.0
//! @file The loaded `transformer` component of a spaCy transformer pipeline (no file parsing here, so that
//! pipelines compiled by nvcc can name it; <nerpipe/model/spacy/transformer.hpp> loads it).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/model/hf/hf_model.hpp>

#include <cstddef>
#include <string>

NERPIPE_NAMESPACE_BEGIN

/// spacy-transformers' TransformerModel: a Hugging Face encoder run over strided spans of each document's spaCy
/// tokens, whose rows a listening component pools onto the tokens.
struct spacy_transformer_model {
  std::string component = "transformer";  ///< its name in the pipeline
  std::string architecture;               ///< spacy-transformers.TransformerModel.v1 / v2 / v3
  hf_model hf;                            ///< config, weights (no classifier) and fast tokenizer from <component>/model
  /// spacy-transformers.strided_spans.v1: spans of `window` tokens starting every `stride` tokens.
  std::size_t window = 128, stride = 96;
  /// tokenizer_config.json's model_max_length: pieces of a span past it are dropped (truncate_oversize_splits);
  /// 0 when none is given.
  std::size_t truncate = 0;
};

NERPIPE_NAMESPACE_END
