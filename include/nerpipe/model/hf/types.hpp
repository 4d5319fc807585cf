// SPDX-License-Identifier: Apache-2.0
//! @file The plain types of a Hugging Face BERT / DistilBERT model (settings and fp32 host weights),
//! with no parsing code, so that device components can include them.
#pragma once

#include <nerpipe/config/macros.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// The encoder families nerpipe runs from a Hugging Face directory.
enum class hf_arch : unsigned char { bert, distilbert };

/// The FFN activation named by hidden_act / activation.
enum class hf_activation : unsigned char {
  gelu,       ///< exact erf GELU: "gelu"
  gelu_tanh,  ///< tanh approximation: "gelu_new", "gelu_pytorch_tanh", "gelu_fast"
};

/// The settings of config.json the forward pass and the post-processing need.
struct hf_config {
  hf_arch arch = hf_arch::bert;
  std::string model_type;            ///< as written ("bert", "distilbert")
  std::size_t vocab_size = 0;
  std::size_t hidden = 0;            ///< hidden_size / dim
  std::size_t layers = 0;            ///< num_hidden_layers / n_layers
  std::size_t heads = 0;             ///< num_attention_heads / n_heads
  std::size_t intermediate = 0;      ///< intermediate_size / hidden_dim
  std::size_t max_position = 512;    ///< max_position_embeddings
  std::size_t type_vocab_size = 0;   ///< 0 for DistilBERT (no token types)
  float layer_norm_eps = 1e-12f;     ///< DistilBERT hard-codes 1e-12
  hf_activation activation = hf_activation::gelu;
  std::int64_t pad_token_id = 0;
  std::vector<std::string> id2label; ///< index = label id
  std::map<std::string, std::int64_t> label2id;

  [[nodiscard]] std::size_t num_labels() const noexcept { return id2label.size(); }
  [[nodiscard]] std::size_t head_dim() const noexcept { return heads ? hidden / heads : 0; }
};

/// One encoder layer. Matrices are row-major in nn.Linear layout ([out, in]).
struct hf_layer_weights {
  std::vector<float> qkv_w, qkv_b;      ///< [3H, H], [3H]: rows 0..H-1 query, then key, then value
  std::vector<float> attn_out_w, attn_out_b;  ///< [H, H], [H]
  std::vector<float> attn_ln_g, attn_ln_b;    ///< [H]
  std::vector<float> ffn_in_w, ffn_in_b;      ///< [I, H], [I]
  std::vector<float> ffn_out_w, ffn_out_b;    ///< [H, I], [H]
  std::vector<float> out_ln_g, out_ln_b;      ///< [H]
};

/// Every weight of the model, as fp32 on the host (half-precision files are widened exactly).
struct hf_weights {
  std::vector<float> word;         ///< [V, H]
  std::vector<float> position;     ///< [P, H]
  std::vector<float> token_type;   ///< [T, H]; empty for DistilBERT
  std::vector<float> emb_ln_g, emb_ln_b;
  std::vector<hf_layer_weights> layers;
  std::vector<float> classifier_w; ///< [L, H]
  std::vector<float> classifier_b; ///< [L]
};

/// What the post-processing needs from the tokenizer: convert_ids_to_tokens, the unknown id, the
/// model's continuing_subword_prefix (empty: the "no real words" fallback heuristic), and the
/// WordPiece decoder (convert_tokens_to_string).
struct hf_vocab_info {
  std::vector<std::string> id_to_token;
  std::int64_t unk_id = -1;
  std::string continuing_subword_prefix = "##";
  std::string decoder_prefix = "##";
  bool decoder_cleanup = true;
};

NERPIPE_NAMESPACE_END
