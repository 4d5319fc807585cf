// SPDX-License-Identifier: Apache-2.0
//! @file Reads a Hugging Face config.json of a token classifier: BERT, DistilBERT, RoBERTa / XLM-R / CamemBERT,
//! ELECTRA, DeBERTa-v2/v3 (defaults as transformers 4.57.6's configuration classes have them).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/file_read.hpp>
#include <nerpipe/model/hf/types.hpp>

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

namespace detail {
inline std::string json_text_of(const std::filesystem::path& file) {
  std::string s;
  if (!read_whole_file(file, s))
    NERPIPE_THROW(model_error(errc::model_file_missing,
                              file.string() + ": cannot read the file (" + file_problem(file) + "; expected a JSON file)"));
  return s;
}

struct config_reader {
  std::string file;
  simdjson::dom::object obj;

  [[noreturn]] void fail(errc code, const std::string& msg) const { NERPIPE_THROW(model_error(code, file + ": " + msg)); }

  [[nodiscard]] bool has(std::string_view key) const {
    simdjson::dom::element e;
    return !obj[key].get(e) && !e.is_null();
  }
  [[nodiscard]] std::size_t size(std::string_view key) const {
    simdjson::dom::element e;
    if (obj[key].get(e) || e.is_null()) fail(errc::model_key_missing, "key '" + std::string(key) + "' is missing");
    std::uint64_t v = 0;
    if (e.get_uint64().get(v))
      fail(errc::model_file_malformed, "key '" + std::string(key) + "' is not a non-negative integer");
    return static_cast<std::size_t>(v);
  }
  [[nodiscard]] std::size_t size_or(std::string_view key, std::size_t def) const { return has(key) ? size(key) : def; }
  [[nodiscard]] double number_or(std::string_view key, double def) const {
    if (!has(key)) return def;
    double v = 0;
    if (obj[key].get_double().get(v)) fail(errc::model_file_malformed, "key '" + std::string(key) + "' is not a number");
    return v;
  }
  [[nodiscard]] std::string string_or(std::string_view key, std::string def) const {
    if (!has(key)) return def;
    std::string_view v;
    if (obj[key].get_string().get(v)) fail(errc::model_file_malformed, "key '" + std::string(key) + "' is not a string");
    return std::string(v);
  }
  [[nodiscard]] bool boolean_or(std::string_view key, bool def) const {
    if (!has(key)) return def;
    bool v = false;
    if (obj[key].get_bool().get(v)) fail(errc::model_file_malformed, "key '" + std::string(key) + "' is not true or false");
    return v;
  }
  [[nodiscard]] std::int64_t integer_or(std::string_view key, std::int64_t def) const {
    if (!has(key)) return def;
    std::int64_t v = 0;
    if (obj[key].get_int64().get(v)) fail(errc::model_file_malformed, "key '" + std::string(key) + "' is not an integer");
    return v;
  }
};

/// The settings every BERT-layered family spells the same way (BertConfig's names).
inline void read_bert_like(const config_reader& r, hf_config& c, std::size_t type_vocab_default, double eps_default) {
  c.vocab_size = r.size("vocab_size");
  c.hidden = r.size("hidden_size");
  c.layers = r.size("num_hidden_layers");
  c.heads = r.size("num_attention_heads");
  c.intermediate = r.size("intermediate_size");
  c.max_position = r.size_or("max_position_embeddings", 512);
  c.type_vocab_size = r.size_or("type_vocab_size", type_vocab_default);
  c.layer_norm_eps = static_cast<float>(r.number_or("layer_norm_eps", eps_default));
}

/// `pos_att_type` as DebertaV2Config reads it: a list of names, or one string "p2c|c2p" (lower-cased, split on |).
inline void read_pos_att_type(const config_reader& r, hf_relative_attention& rel) {
  if (!r.has("pos_att_type")) return;
  std::vector<std::string> names;
  simdjson::dom::element e = r.obj["pos_att_type"];
  std::string_view one;
  simdjson::dom::array list;
  if (!e.get_string().get(one)) {
    std::string s(one);
    for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    for (std::size_t b = 0; b <= s.size();) {
      std::size_t bar = s.find('|', b);
      if (bar == std::string::npos) bar = s.size();
      std::string name = s.substr(b, bar - b);
      while (!name.empty() && name.front() == ' ') name.erase(name.begin());
      while (!name.empty() && name.back() == ' ') name.pop_back();
      names.push_back(std::move(name));
      b = bar + 1;
    }
  } else if (!e.get_array().get(list)) {
    for (auto x : list) {
      std::string_view name;
      if (x.get_string().get(name)) r.fail(errc::model_file_malformed, "key 'pos_att_type' holds a value that is not a string");
      names.emplace_back(name);
    }
  } else {
    r.fail(errc::model_file_malformed, "key 'pos_att_type' is neither a list of strings nor a string like \"p2c|c2p\"");
  }
  // DisentangledSelfAttention looks for "c2p" and "p2c" only (anything else, e.g. DeBERTa-v1's "p2p", is ignored).
  for (const auto& n : names) {
    rel.c2p = rel.c2p || n == "c2p";
    rel.p2c = rel.p2c || n == "p2c";
  }
}

inline void read_deberta_v2(const config_reader& r, hf_config& c) {
  read_bert_like(r, c, 0, 1e-7);
  c.position_embeddings = r.boolean_or("position_biased_input", true);
  c.embedding_size = r.size_or("embedding_size", c.hidden);
  if (r.has("attention_head_size") && c.heads != 0 && r.size("attention_head_size") * c.heads != c.hidden)
    r.fail(errc::model_unsupported, "'attention_head_size' is " + std::to_string(r.size("attention_head_size")) + " with " +
                                        std::to_string(c.heads) + " heads and hidden_size " + std::to_string(c.hidden) +
                                        "; nerpipe supports attention_head_size = hidden_size / num_attention_heads");
  if (const std::int64_t k = r.integer_or("conv_kernel_size", 0); k > 0)
    r.fail(errc::model_unsupported, "'conv_kernel_size' is " + std::to_string(k) +
                                        " (DeBERTa-v2's convolution layer); nerpipe supports conv_kernel_size 0 "
                                        "(DeBERTa-v3 and DeBERTa-v2 checkpoints without it)");
  auto& rel = c.relative;
  rel.enabled = r.boolean_or("relative_attention", false);
  rel.position_buckets = r.integer_or("position_buckets", -1);
  const std::int64_t mrp = r.integer_or("max_relative_positions", -1);
  rel.max_relative_positions = mrp < 1 ? c.max_position : static_cast<std::size_t>(mrp);
  rel.share_att_key = r.boolean_or("share_att_key", false);
  std::string norm = r.string_or("norm_rel_ebd", "none");
  for (auto& ch : norm) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (std::size_t b = 0; b <= norm.size();) {
    std::size_t bar = norm.find('|', b);
    if (bar == std::string::npos) bar = norm.size();
    std::string name = norm.substr(b, bar - b);
    while (!name.empty() && name.front() == ' ') name.erase(name.begin());
    while (!name.empty() && name.back() == ' ') name.pop_back();
    rel.norm_rel_ebd = rel.norm_rel_ebd || name == "layer_norm";
    b = bar + 1;
  }
  read_pos_att_type(r, rel);
  if (rel.enabled && (rel.span() == 0 || rel.span() > (std::size_t{1} << 20)))
    r.fail(errc::model_file_malformed, "relative attention span " + std::to_string(rel.span()) +
                                           " (position_buckets / max_relative_positions) is out of range");
}

inline hf_activation parse_activation(const config_reader& r, std::string_view key, const std::string& name) {
  if (name == "gelu") return hf_activation::gelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return hf_activation::gelu_tanh;
  r.fail(errc::model_unsupported, "'" + std::string(key) + "' is \"" + name +
                                      "\"; nerpipe supports gelu, gelu_new, gelu_pytorch_tanh, gelu_fast");
}
}  // namespace detail

/// Parses the text of a config.json; `file` names it in messages.
[[nodiscard]] inline hf_config parse_hf_config(std::string_view json, const std::string& file = "config.json") {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::element root;
  detail::config_reader r{file, {}};
  if (auto err = parser.parse(padded).get(root))
    r.fail(errc::model_file_malformed, std::string("not valid JSON: ") + simdjson::error_message(err));
  if (root.get_object().get(r.obj)) r.fail(errc::model_file_malformed, "expected a JSON object");

  hf_config c;
  static constexpr const char* supported =
      "\"bert\", \"distilbert\", \"roberta\", \"xlm-roberta\", \"camembert\", \"electra\" or \"deberta-v2\"";
  if (!r.has("model_type")) r.fail(errc::model_key_missing, std::string("key 'model_type' is missing (expected ") + supported + ")");
  c.model_type = r.string_or("model_type", "");
  auto absolute_positions_only = [&] {
    const std::string pos = r.string_or("position_embedding_type", "absolute");
    if (pos != "absolute")
      r.fail(errc::model_unsupported, "'position_embedding_type' is \"" + pos + "\" (model_type \"" + c.model_type +
                                          "\"); nerpipe supports \"absolute\"");
  };
  if (c.model_type == "bert") {
    c.arch = hf_arch::bert;
    detail::read_bert_like(r, c, 2, 1e-12);
    c.activation = detail::parse_activation(r, "hidden_act", r.string_or("hidden_act", "gelu"));
    absolute_positions_only();
  } else if (c.model_type == "roberta" || c.model_type == "xlm-roberta" || c.model_type == "camembert") {
    c.arch = hf_arch::roberta;
    detail::read_bert_like(r, c, 2, 1e-12);
    c.activation = detail::parse_activation(r, "hidden_act", r.string_or("hidden_act", "gelu"));
    absolute_positions_only();
    c.position_ids = hf_position_ids::roberta;
  } else if (c.model_type == "electra") {
    c.arch = hf_arch::electra;
    detail::read_bert_like(r, c, 2, 1e-12);
    c.embedding_size = r.size_or("embedding_size", 128);
    c.activation = detail::parse_activation(r, "hidden_act", r.string_or("hidden_act", "gelu"));
    absolute_positions_only();
  } else if (c.model_type == "deberta-v2") {
    c.arch = hf_arch::deberta_v2;
    detail::read_deberta_v2(r, c);
    c.activation = detail::parse_activation(r, "hidden_act", r.string_or("hidden_act", "gelu"));
  } else if (c.model_type == "distilbert") {
    c.arch = hf_arch::distilbert;
    c.vocab_size = r.size("vocab_size");
    c.hidden = r.size_or("dim", 768);
    c.layers = r.size_or("n_layers", 6);
    c.heads = r.size_or("n_heads", 12);
    c.intermediate = r.size_or("hidden_dim", 3072);
    c.max_position = r.size_or("max_position_embeddings", 512);
    c.type_vocab_size = 0;
    c.layer_norm_eps = 1e-12f;  // hard-coded in modeling_distilbert
    c.activation = detail::parse_activation(r, "activation", r.string_or("activation", "gelu"));
  } else {
    r.fail(errc::model_unsupported, "model_type \"" + c.model_type + "\" is not supported; expected " + supported);
  }
  if (c.embedding_size == 0) c.embedding_size = c.hidden;
  // RoBERTa-style position ids start after padding_idx, where the pad embedding sits.
  if (r.has("pad_token_id")) {
    std::int64_t v = 0;
    if (!r.obj["pad_token_id"].get_int64().get(v)) c.pad_token_id = v;
  } else {
    c.pad_token_id = c.arch == hf_arch::roberta ? 1 : 0;
  }
  if (c.position_ids == hf_position_ids::roberta &&
      (c.pad_token_id < 0 || static_cast<std::size_t>(c.pad_token_id) + 2 > c.max_position))
    r.fail(errc::model_file_malformed, "pad_token_id " + std::to_string(c.pad_token_id) +
                                           " leaves no position ids below max_position_embeddings " +
                                           std::to_string(c.max_position) + " (RoBERTa counts positions from pad_token_id + 1)");
  if (c.heads == 0 || c.hidden % c.heads != 0)
    r.fail(errc::model_file_malformed, "hidden size " + std::to_string(c.hidden) + " is not a multiple of the " +
                                           std::to_string(c.heads) + " attention heads");

  // id2label: string keys "0".."L-1"; every index must be present exactly once.
  simdjson::dom::object labels;
  if (r.obj["id2label"].get_object().get(labels))
    r.fail(errc::model_key_missing, "key 'id2label' is missing (expected {\"0\": \"O\", ...})");
  std::map<std::size_t, std::string> by_id;
  for (auto f : labels) {
    const std::string key(f.key);
    std::size_t id = 0;
    bool ok = !key.empty() && key.size() < 10;
    for (char ch : key) {
      ok = ok && ch >= '0' && ch <= '9';
      id = id * 10 + static_cast<std::size_t>(ch - '0');
    }
    std::string_view name;
    if (!ok || f.value.get_string().get(name))
      r.fail(errc::model_file_malformed, "id2label entry '" + key + "' is not an integer key with a string label");
    if (!by_id.emplace(id, std::string(name)).second)
      r.fail(errc::model_file_malformed, "id2label has label id " + key + " twice");
  }
  for (std::size_t i = 0; i < by_id.size(); ++i) {
    const auto it = by_id.find(i);
    if (it == by_id.end())
      r.fail(errc::model_file_malformed, "id2label has " + std::to_string(by_id.size()) + " labels but no id " +
                                             std::to_string(i) + " (expected ids 0.." +
                                             std::to_string(by_id.size() - 1) + ")");
    c.id2label.push_back(it->second);
  }
  if (c.id2label.empty()) r.fail(errc::model_file_malformed, "id2label is empty");
  simdjson::dom::object l2i;
  if (!r.obj["label2id"].get_object().get(l2i))
    for (auto f : l2i) {
      std::int64_t v = 0;
      if (!f.value.get_int64().get(v)) c.label2id.emplace(std::string(f.key), v);
    }
  return c;
}

/// Reads `dir`/config.json.
[[nodiscard]] inline hf_config read_hf_config(const std::filesystem::path& dir) {
  const auto file = dir / "config.json";
  if (!std::filesystem::exists(file))
    NERPIPE_THROW(model_error(errc::model_file_missing,
                              file.string() + ": file is missing (expected a Hugging Face config.json)"));
  return parse_hf_config(detail::json_text_of(file), file.string());
}

/// tokenizer_config.json's model_max_length (the pipeline's truncation length), or 0 when the file or
/// the key is absent or holds transformers' "very large integer" placeholder (no limit).
[[nodiscard]] inline std::size_t read_hf_model_max_length(const std::filesystem::path& dir) {
  const auto file = dir / "tokenizer_config.json";
  if (!std::filesystem::exists(file)) return 0;
  const std::string text = detail::json_text_of(file);
  simdjson::dom::parser parser;
  simdjson::padded_string padded(text);
  simdjson::dom::element root;
  if (auto err = parser.parse(padded).get(root))
    NERPIPE_THROW(model_error(errc::model_file_malformed,
                              file.string() + ": not valid JSON: " + simdjson::error_message(err)));
  simdjson::dom::element v;
  if (root["model_max_length"].get(v)) return 0;
  std::uint64_t n = 0;
  double d = 0;
  if (!v.get_uint64().get(n)) return n >= (std::uint64_t{1} << 40) ? 0 : static_cast<std::size_t>(n);
  if (!v.get_double().get(d)) return d >= 1e12 || d <= 0 ? 0 : static_cast<std::size_t>(d);
  return 0;
}

NERPIPE_NAMESPACE_END
