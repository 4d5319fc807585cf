// SPDX-License-Identifier: Apache-2.0
//! @file Host-side fp32 weights of a BERT / DistilBERT token classifier, read from model.safetensors.
//!
//! Names follow transformers (bert.* / distilbert.*, or bare BertModel names); Q, K and V are
//! concatenated here into one [3H, H] matrix so the encoder runs one GEMM per layer for them.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
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
  const safetensors_file& f;
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
}  // namespace detail

/// Reads and checks every tensor the architecture needs; extra tensors (pooler, position_ids) are ignored.
/// A label count that disagrees with classifier.weight is model_error(model_shape_mismatch).
[[nodiscard]] inline hf_weights load_hf_weights(const safetensors_file& f, const hf_config& c) {
  const std::size_t H = c.hidden, I = c.intermediate, L = c.num_labels();
  const std::string family = c.arch == hf_arch::bert ? "bert" : "distilbert";
  // Token-classification checkpoints prefix the encoder ("bert."); a bare BertModel does not.
  std::string prefix = family + ".";
  if (!f.contains(prefix + "embeddings.word_embeddings.weight") && f.contains("embeddings.word_embeddings.weight"))
    prefix.clear();
  detail::weight_reader r{f, prefix};
  hf_weights w;

  // The classifier first: a label-count mismatch is the most common user error; say it plainly.
  {
    const auto& e = f.at("classifier.weight");
    if (e.shape.size() != 2 || e.shape[0] != L || e.shape[1] != H) {
      std::string msg = f.path().string() + ": tensor 'classifier.weight' has shape " + detail::shape_string(e.shape);
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
  const bool bert = c.arch == hf_arch::bert;
  {
    const auto& e = f.at(prefix + "embeddings.word_embeddings.weight");
    if (e.shape.size() != 2 || e.shape[0] != c.vocab_size || e.shape[1] != H)
      NERPIPE_THROW(model_error(errc::model_shape_mismatch,
                                f.path().string() + ": tensor '" + e.name + "' has shape " + detail::shape_string(e.shape) +
                                    " (vocabulary x hidden size), but config.json has vocab_size " + std::to_string(c.vocab_size) +
                                    " and " + (bert ? "hidden_size " : "dim ") + std::to_string(H)));
    const std::string layer_prefix = prefix + (bert ? "encoder.layer." : "transformer.layer.");
    std::size_t file_layers = 0;
    for (const auto& t : f.entries()) {
      if (t.name.compare(0, layer_prefix.size(), layer_prefix) != 0) continue;
      std::size_t k = layer_prefix.size(), n = 0;
      while (k < t.name.size() && t.name[k] >= '0' && t.name[k] <= '9' && n < 1'000'000) n = n * 10 + static_cast<std::size_t>(t.name[k++] - '0');
      if (k > layer_prefix.size() && k < t.name.size() && t.name[k] == '.') file_layers = std::max(file_layers, n + 1);
    }
    if (file_layers != c.layers)
      NERPIPE_THROW(model_error(errc::model_shape_mismatch,
                                f.path().string() + ": the weights have " + std::to_string(file_layers) + " layers (" + layer_prefix +
                                    "*), but config.json has " + (bert ? "num_hidden_layers " : "n_layers ") + std::to_string(c.layers)));
  }
  w.word = r.read("embeddings.word_embeddings.weight", {c.vocab_size, H});
  w.position = r.read("embeddings.position_embeddings.weight", {c.max_position, H});
  if (c.arch == hf_arch::bert) w.token_type = r.read("embeddings.token_type_embeddings.weight", {c.type_vocab_size, H});
  w.emb_ln_g = r.read_ln("embeddings.LayerNorm", true, H);
  w.emb_ln_b = r.read_ln("embeddings.LayerNorm", false, H);

  w.layers.resize(c.layers);
  for (std::size_t i = 0; i < c.layers; ++i) {
    auto& l = w.layers[i];
    l.qkv_w.reserve(3 * H * H);
    l.qkv_b.reserve(3 * H);
    if (c.arch == hf_arch::bert) {
      const std::string p = "encoder.layer." + std::to_string(i) + ".";
      for (const char* m : {"query", "key", "value"}) {
        detail::append_floats(l.qkv_w, r.read(p + "attention.self." + m + ".weight", {H, H}));
        detail::append_floats(l.qkv_b, r.read(p + "attention.self." + m + ".bias", {H}));
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
    } else {
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

NERPIPE_NAMESPACE_END
