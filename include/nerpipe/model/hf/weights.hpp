// SPDX-License-Identifier: Apache-2.0
//! @file Host-side fp32 weights of a Hugging Face token classifier, read from model.safetensors or a sharded
//! checkpoint (model/hf/checkpoint.hpp).
//!
//! Names follow transformers (bert.* / distilbert.* / roberta.* / electra.* / deberta.*, or a bare base model's
//! names); Q, K and V are concatenated here into one [3H, H] matrix so the encoder runs one GEMM per layer for them.
//! RoBERTa, XLM-R and CamemBERT all name their encoder `roberta.`.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/model/hf/checkpoint.hpp>
#include <nerpipe/model/hf/config.hpp>
#include <nerpipe/model/safetensors.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

namespace detail {
struct weight_reader {
  const hf_checkpoint& f;
  std::string prefix;

  std::vector<float> read(const std::string& name, std::initializer_list<std::size_t> shape) const {
    const std::vector<std::size_t> s(shape);
    return f.read_float(prefix + name, s);
  }
  /// LayerNorm weight/bias, accepting the old TF names gamma/beta.
  std::vector<float> read_ln(const std::string& base, bool weight, std::size_t h) const {
    const std::string modern = base + (weight ? ".weight" : ".bias");
    if (f.contains(prefix + modern) || !f.contains(prefix + base + (weight ? ".gamma" : ".beta")))
      return read(modern, {h});
    return read(base + (weight ? ".gamma" : ".beta"), {h});
  }
};

inline void append_floats(std::vector<float>& dst, const std::vector<float>& src) { dst.insert(dst.end(), src.begin(), src.end()); }

/// The prefix of the base model in a token-classification checkpoint ("bert.", "roberta.", ...).
inline const char* hf_weight_prefix(hf_arch a) noexcept {
  switch (a) {
    case hf_arch::bert: return "bert.";
    case hf_arch::distilbert: return "distilbert.";
    case hf_arch::roberta: return "roberta.";
    case hf_arch::electra: return "electra.";
    case hf_arch::deberta_v2: return "deberta.";
  }
  return "";
}

/// One BERT-named encoder layer (BERT, RoBERTa, ELECTRA) or DeBERTa-v2 layer (query_proj / key_proj / value_proj).
inline void read_bert_layer(const weight_reader& r, const hf_config& c, std::size_t i, hf_layer_weights& l) {
  const std::size_t H = c.hidden, I = c.intermediate;
  const std::string p = "encoder.layer." + std::to_string(i) + ".";
  const bool deberta = c.arch == hf_arch::deberta_v2;
  for (const char* m : deberta ? std::array<const char*, 3>{"query_proj", "key_proj", "value_proj"}
                               : std::array<const char*, 3>{"query", "key", "value"}) {
    append_floats(l.qkv_w, r.read(p + "attention.self." + m + ".weight", {H, H}));
    append_floats(l.qkv_b, r.read(p + "attention.self." + m + ".bias", {H}));
  }
  if (deberta && c.relative.enabled && !c.relative.share_att_key) {
    if (c.relative.c2p) {
      l.pos_key_w = r.read(p + "attention.self.pos_key_proj.weight", {H, H});
      l.pos_key_b = r.read(p + "attention.self.pos_key_proj.bias", {H});
    }
    if (c.relative.p2c) {
      l.pos_query_w = r.read(p + "attention.self.pos_query_proj.weight", {H, H});
      l.pos_query_b = r.read(p + "attention.self.pos_query_proj.bias", {H});
    }
  }
  l.attn_out_w = r.read(p + "attention.output.dense.weight", {H, H});
  l.attn_out_b = r.read(p + "attention.output.dense.bias", {H});
  l.attn_ln_g = r.read_ln(p + "attention.output.LayerNorm", true, H);
  l.attn_ln_b = r.read_ln(p + "attention.output.LayerNorm", false, H);
  l.ffn_in_w = r.read(p + "intermediate.dense.weight", {I, H});
  l.ffn_in_b = r.read(p + "intermediate.dense.bias", {I});
  l.ffn_out_w = r.read(p + "output.dense.weight", {H, I});
  l.ffn_out_b = r.read(p + "output.dense.bias", {H});
  l.out_ln_g = r.read_ln(p + "output.LayerNorm", true, H);
  l.out_ln_b = r.read_ln(p + "output.LayerNorm", false, H);
}
}  // namespace detail

/// Reads and checks every tensor the architecture needs; extra tensors (pooler, position_ids, heads of other
/// tasks) are ignored. A label count that disagrees with classifier.weight is model_error(model_shape_mismatch).
/// `classifier` false: a bare encoder (AutoModel's, as spacy-transformers stores it), with no head to read.
[[nodiscard]] inline hf_weights load_hf_weights(const hf_checkpoint& f, const hf_config& c, bool classifier = true) {
  const std::size_t H = c.hidden, L = c.num_labels(), E = c.embedding_width();
  // Token-classification checkpoints prefix the encoder ("bert."); a bare base model does not.
  std::string prefix = detail::hf_weight_prefix(c.arch);
  if (!f.contains(prefix + "embeddings.word_embeddings.weight") && f.contains("embeddings.word_embeddings.weight"))
    prefix.clear();
  detail::weight_reader r{f, prefix};
  hf_weights w;

  // The classifier first: a label-count mismatch is the most common user error; say it plainly.
  if (classifier) {
    const auto& e = f.at("classifier.weight");
    if (e.shape.size() != 2 || e.shape[0] != L || e.shape[1] != H) {
      std::string msg = f.file_holding("classifier.weight").path().string() + ": tensor 'classifier.weight' has shape " +
                        detail::shape_string(e.shape);
      if (e.shape.size() == 2 && e.shape[1] == H)
        msg += "; config.json has " + std::to_string(L) + " labels";
      else
        msg += "; expected [" + std::to_string(L) + "," + std::to_string(H) + "] (" + std::to_string(L) +
               " labels in config.json, hidden size " + std::to_string(H) + ")";
      NERPIPE_THROW(model_error(errc::model_shape_mismatch, msg));
    }
    w.classifier_w = f.read_float("classifier.weight");
    w.classifier_b = f.read_float("classifier.bias", std::array<std::size_t, 1>{L});
  }

  // config.json against the weights, named both ways: a config that disagrees would otherwise run (with
  // other layers, or read past a table) or fail with a bare shape.
  {
    const bool distil = c.arch == hf_arch::distilbert;
    const auto& e = f.at(prefix + "embeddings.word_embeddings.weight");
    if (e.shape.size() != 2 || e.shape[0] != c.vocab_size || e.shape[1] != E)
      NERPIPE_THROW(model_error(errc::model_shape_mismatch,
                                f.where() + ": tensor '" + e.name + "' has shape " + detail::shape_string(e.shape) +
                                    " (vocabulary x embedding size), but config.json has vocab_size " + std::to_string(c.vocab_size) +
                                    " and " + (distil ? "dim " : E != H ? "embedding_size " : "hidden_size ") + std::to_string(E)));
    const std::string layer_prefix = prefix + (distil ? "transformer.layer." : "encoder.layer.");
    std::size_t file_layers = 0;
    f.for_each_entry([&](const safetensors_entry& t) {
      if (t.name.compare(0, layer_prefix.size(), layer_prefix) != 0) return;
      std::size_t k = layer_prefix.size(), n = 0;
      while (k < t.name.size() && t.name[k] >= '0' && t.name[k] <= '9' && n < 1'000'000) n = n * 10 + static_cast<std::size_t>(t.name[k++] - '0');
      if (k > layer_prefix.size() && k < t.name.size() && t.name[k] == '.') file_layers = std::max(file_layers, n + 1);
    });
    if (file_layers != c.layers)
      NERPIPE_THROW(model_error(errc::model_shape_mismatch,
                                f.where() + ": the weights have " + std::to_string(file_layers) + " layers (" + layer_prefix +
                                    "*), but config.json has " + (distil ? "n_layers " : "num_hidden_layers ") + std::to_string(c.layers)));
  }
  w.word = r.read("embeddings.word_embeddings.weight", {c.vocab_size, E});
  if (c.position_embeddings) w.position = r.read("embeddings.position_embeddings.weight", {c.max_position, E});
  if (c.arch != hf_arch::distilbert && c.type_vocab_size != 0)
    w.token_type = r.read("embeddings.token_type_embeddings.weight", {c.type_vocab_size, E});
  // ELECTRA normalises the E-wide embeddings before its projection; DeBERTa projects, then normalises H wide.
  const std::size_t ln_width = c.arch == hf_arch::electra ? E : H;
  w.emb_ln_g = r.read_ln("embeddings.LayerNorm", true, ln_width);
  w.emb_ln_b = r.read_ln("embeddings.LayerNorm", false, ln_width);
  if (E != H) {
    if (c.arch == hf_arch::electra) {
      w.emb_proj_w = r.read("embeddings_project.weight", {H, E});
      w.emb_proj_b = r.read("embeddings_project.bias", {H});
    } else if (c.arch == hf_arch::deberta_v2) {
      w.emb_proj_w = r.read("embeddings.embed_proj.weight", {H, E});
    } else {
      NERPIPE_THROW(model_error(errc::model_unsupported, f.where() + ": embedding size " + std::to_string(E) +
                                                             " differs from hidden size " + std::to_string(H) +
                                                             " (model_type \"" + c.model_type + "\")"));
    }
  }
  if (c.arch == hf_arch::deberta_v2 && c.relative.enabled) {
    w.rel_embeddings = r.read("encoder.rel_embeddings.weight", {2 * c.relative.span(), H});
    if (c.relative.norm_rel_ebd) {
      w.rel_ln_g = r.read_ln("encoder.LayerNorm", true, H);
      w.rel_ln_b = r.read_ln("encoder.LayerNorm", false, H);
    }
  }

  w.layers.resize(c.layers);
  for (std::size_t i = 0; i < c.layers; ++i) {
    auto& l = w.layers[i];
    l.qkv_w.reserve(3 * H * H);
    l.qkv_b.reserve(3 * H);
    if (c.arch != hf_arch::distilbert) {
      detail::read_bert_layer(r, c, i, l);
    } else {
      const std::size_t I = c.intermediate;
      const std::string p = "transformer.layer." + std::to_string(i) + ".";
      for (const char* m : {"q_lin", "k_lin", "v_lin"}) {
        detail::append_floats(l.qkv_w, r.read(p + "attention." + m + ".weight", {H, H}));
        detail::append_floats(l.qkv_b, r.read(p + "attention." + m + ".bias", {H}));
      }
      l.attn_out_w = r.read(p + "attention.out_lin.weight", {H, H});
      l.attn_out_b = r.read(p + "attention.out_lin.bias", {H});
      l.attn_ln_g = r.read(p + "sa_layer_norm.weight", {H});
      l.attn_ln_b = r.read(p + "sa_layer_norm.bias", {H});
      l.ffn_in_w = r.read(p + "ffn.lin1.weight", {I, H});
      l.ffn_in_b = r.read(p + "ffn.lin1.bias", {I});
      l.ffn_out_w = r.read(p + "ffn.lin2.weight", {H, I});
      l.ffn_out_b = r.read(p + "ffn.lin2.bias", {H});
      l.out_ln_g = r.read(p + "output_layer_norm.weight", {H});
      l.out_ln_b = r.read(p + "output_layer_norm.bias", {H});
    }
  }
  return w;
}

/// The same from one safetensors file.
[[nodiscard]] inline hf_weights load_hf_weights(const safetensors_file& f, const hf_config& c) {
  return load_hf_weights(hf_checkpoint(f), c);
}

NERPIPE_NAMESPACE_END
