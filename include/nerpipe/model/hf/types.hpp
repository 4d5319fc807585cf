// SPDX-License-Identifier: Apache-2.0
//! @file The plain types of a Hugging Face token classifier (BERT, DistilBERT, RoBERTa / XLM-R / CamemBERT,
//! ELECTRA, DeBERTa-v2/v3): settings and fp32 host weights, with no parsing code, so that device components can
//! include them.
#pragma once

#include <nerpipe/config/macros.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// The encoder families nerpipe runs from a Hugging Face directory.
enum class hf_arch : unsigned char {
  bert,        ///< "bert"
  distilbert,  ///< "distilbert"
  roberta,     ///< "roberta", "xlm-roberta", "camembert": BERT layers, positions counted from padding_idx + 1
  electra,     ///< "electra": BERT layers after embeddings of embedding_size projected to hidden_size
  deberta_v2,  ///< "deberta-v2" (DeBERTa-v2 and -v3): disentangled relative attention
};

/// The family's name as nerpipe reports it ("bert", "distilbert", "roberta", "electra", "deberta-v2").
[[nodiscard]] constexpr const char* to_string(hf_arch a) noexcept {
  switch (a) {
    case hf_arch::bert: return "bert";
    case hf_arch::distilbert: return "distilbert";
    case hf_arch::roberta: return "roberta";
    case hf_arch::electra: return "electra";
    case hf_arch::deberta_v2: return "deberta-v2";
  }
  return "?";
}

/// How position ids are made from a sequence of token ids.
enum class hf_position_ids : unsigned char {
  absolute,  ///< 0, 1, 2, ... (BERT, DistilBERT, ELECTRA, DeBERTa with position_biased_input)
  roberta,   ///< create_position_ids_from_input_ids: padding_idx + 1 + (non-padding tokens before), padding_idx
             ///< for a padding token (RoBERTa, XLM-R, CamemBERT)
};

/// DeBERTa-v2/v3 disentangled attention settings (config.json, as DisentangledSelfAttention reads them).
struct hf_relative_attention {
  bool enabled = false;            ///< relative_attention
  std::int64_t position_buckets = -1;   ///< > 0: log buckets (make_log_bucket_position)
  std::size_t max_relative_positions = 0;  ///< max_relative_positions, or max_position_embeddings when < 1
  bool c2p = false, p2c = false;   ///< pos_att_type
  bool share_att_key = false;      ///< position projections by query_proj / key_proj
  bool norm_rel_ebd = false;       ///< "layer_norm" in norm_rel_ebd: LayerNorm over the relative embeddings
  /// The attention span S (rel_embeddings has 2 S rows): position_buckets when > 0, else max_relative_positions.
  [[nodiscard]] std::size_t span() const noexcept {
    return position_buckets > 0 ? static_cast<std::size_t>(position_buckets) : max_relative_positions;
  }
  /// 1 + (c2p) + (p2c): the attention scores are divided by sqrt(head_dim * scale_factor).
  [[nodiscard]] std::size_t scale_factor() const noexcept { return 1 + (c2p ? 1 : 0) + (p2c ? 1 : 0); }
};

/// The FFN activation named by hidden_act / activation.
enum class hf_activation : unsigned char {
  gelu,       ///< exact erf GELU: "gelu"
  gelu_tanh,  ///< tanh approximation: "gelu_new", "gelu_pytorch_tanh", "gelu_fast"
};

/// The settings of config.json the forward pass and the post-processing need.
struct hf_config {
  hf_arch arch = hf_arch::bert;
  std::string model_type;            ///< as written ("bert", "distilbert", "roberta", "xlm-roberta", ...)
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
  std::size_t embedding_size = 0;    ///< ELECTRA / DeBERTa embedding width (equal to hidden when not projected)
  hf_position_ids position_ids = hf_position_ids::absolute;
  bool position_embeddings = true;   ///< absolute position embeddings (DeBERTa: position_biased_input)
  hf_relative_attention relative;    ///< DeBERTa-v2/v3 only
  std::vector<std::string> id2label; ///< index = label id
  std::map<std::string, std::int64_t> label2id;

  [[nodiscard]] std::size_t num_labels() const noexcept { return id2label.size(); }
  [[nodiscard]] std::size_t head_dim() const noexcept { return heads ? hidden / heads : 0; }
  /// The width of the embedding tables (hidden unless embedding_size says otherwise).
  [[nodiscard]] std::size_t embedding_width() const noexcept { return embedding_size != 0 ? embedding_size : hidden; }
  /// The largest position id a window of `tokens` tokens uses, plus one (what max_position_embeddings must cover).
  [[nodiscard]] std::size_t positions_needed(std::size_t tokens) const noexcept {
    return position_ids == hf_position_ids::roberta ? tokens + static_cast<std::size_t>(pad_token_id) + 1 : tokens;
  }
  /// The longest window the position table allows (max_position_embeddings, less RoBERTa's padding offset).
  [[nodiscard]] std::size_t max_window() const noexcept {
    const std::size_t off = position_ids == hf_position_ids::roberta ? static_cast<std::size_t>(pad_token_id) + 1 : 0;
    return !position_embeddings ? max_position : max_position > off ? max_position - off : 0;
  }
};

/// One encoder layer. Matrices are row-major in nn.Linear layout ([out, in]).
struct hf_layer_weights {
  std::vector<float> qkv_w, qkv_b;      ///< [3H, H], [3H]: rows 0..H-1 query, then key, then value
  std::vector<float> attn_out_w, attn_out_b;  ///< [H, H], [H]
  std::vector<float> attn_ln_g, attn_ln_b;    ///< [H]
  std::vector<float> ffn_in_w, ffn_in_b;      ///< [I, H], [I]
  std::vector<float> ffn_out_w, ffn_out_b;    ///< [H, I], [H]
  std::vector<float> out_ln_g, out_ln_b;      ///< [H]
  std::vector<float> pos_key_w, pos_key_b;    ///< DeBERTa pos_key_proj [H, H], [H] (share_att_key false, c2p)
  std::vector<float> pos_query_w, pos_query_b;  ///< DeBERTa pos_query_proj [H, H], [H] (share_att_key false, p2c)
};

/// Every weight of the model, as fp32 on the host (half-precision files are widened exactly).
/// E is the embedding width (hidden_size H but for ELECTRA / DeBERTa with embedding_size).
struct hf_weights {
  std::vector<float> word;         ///< [V, E]
  std::vector<float> position;     ///< [P, E]; empty for DeBERTa without position_biased_input
  std::vector<float> token_type;   ///< [T, E]; empty for DistilBERT and type_vocab_size 0
  std::vector<float> emb_ln_g, emb_ln_b;  ///< [E] (ELECTRA: LayerNorm before the projection), else [H]
  std::vector<float> emb_proj_w;   ///< [H, E] when E != H: ELECTRA embeddings_project, DeBERTa embed_proj
  std::vector<float> emb_proj_b;   ///< [H]: ELECTRA only (DeBERTa's embed_proj has no bias)
  std::vector<float> rel_embeddings;     ///< DeBERTa [2 S, H]
  std::vector<float> rel_ln_g, rel_ln_b;  ///< DeBERTa encoder.LayerNorm over rel_embeddings [H] (norm_rel_ebd)
  std::vector<hf_layer_weights> layers;
  std::vector<float> classifier_w; ///< [L, H]
  std::vector<float> classifier_b; ///< [L]
};

/// The tokenizer.json decoder, which convert_tokens_to_string runs.
enum class hf_decoder_kind : unsigned char {
  none,        ///< no decoder: the tokens joined by " "
  wordpiece,   ///< WordPiece{prefix, cleanup}
  byte_level,  ///< ByteLevel: characters back to bytes (a token with any other character stays as it is), lossy UTF-8
  metaspace,   ///< Metaspace{replacement, prepend_scheme}: replacement -> " ", dropped in the first token
};

/// What the post-processing needs from the tokenizer: convert_ids_to_tokens, the unknown id, the
/// model's continuing_subword_prefix (empty: the "no real words" fallback heuristic), and the
/// decoder (convert_tokens_to_string).
struct hf_vocab_info {
  std::vector<std::string> id_to_token;
  std::int64_t unk_id = -1;
  std::string continuing_subword_prefix = "##";
  hf_decoder_kind decoder = hf_decoder_kind::wordpiece;
  std::string decoder_prefix = "##";                  ///< WordPiece
  bool decoder_cleanup = true;                        ///< WordPiece
  std::string metaspace_replacement = "\xE2\x96\x81";  ///< Metaspace ("▁")
  bool metaspace_prepend = true;                      ///< Metaspace prepend_scheme always / first (not never)
};

NERPIPE_NAMESPACE_END
