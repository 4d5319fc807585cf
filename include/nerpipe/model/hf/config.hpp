// SPDX-License-Identifier: Apache-2.0
//! @file Reads a Hugging Face config.json for the BERT and DistilBERT token-classification families.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/file_read.hpp>
#include <nerpipe/model/hf/types.hpp>

#include <simdjson.h>

#include <algorithm>
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
};

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
  if (!r.has("model_type")) r.fail(errc::model_key_missing, "key 'model_type' is missing (expected \"bert\" or \"distilbert\")");
  c.model_type = r.string_or("model_type", "");
  if (c.model_type == "bert") {
    c.arch = hf_arch::bert;
    c.vocab_size = r.size("vocab_size");
    c.hidden = r.size("hidden_size");
    c.layers = r.size("num_hidden_layers");
    c.heads = r.size("num_attention_heads");
    c.intermediate = r.size("intermediate_size");
    c.max_position = r.size_or("max_position_embeddings", 512);
    c.type_vocab_size = r.size_or("type_vocab_size", 2);
    c.layer_norm_eps = static_cast<float>(r.number_or("layer_norm_eps", 1e-12));
    c.activation = detail::parse_activation(r, "hidden_act", r.string_or("hidden_act", "gelu"));
    const std::string pos = r.string_or("position_embedding_type", "absolute");
    if (pos != "absolute")
      r.fail(errc::model_unsupported, "'position_embedding_type' is \"" + pos + "\"; nerpipe supports \"absolute\"");
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
    r.fail(errc::model_unsupported, "model_type \"" + c.model_type +
                                        "\" is not supported; expected \"bert\" or \"distilbert\"");
  }
  if (c.heads == 0 || c.hidden % c.heads != 0)
    r.fail(errc::model_file_malformed, "hidden size " + std::to_string(c.hidden) + " is not a multiple of the " +
                                           std::to_string(c.heads) + " attention heads");
  if (r.has("pad_token_id")) {
    std::int64_t v = 0;
    if (!r.obj["pad_token_id"].get_int64().get(v)) c.pad_token_id = v;
  }

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

/// Reads from tokenizer.json what the pipeline's post-processing needs: the vocabulary as
/// id -> token string, the unknown token's id, the model's continuing_subword_prefix and the
/// WordPiece decoder's settings. (Tokenization itself is the tokenizer's business.)
[[nodiscard]] inline hf_vocab_info read_hf_vocab_info(const std::filesystem::path& dir) {
  const auto file = dir / "tokenizer.json";
  if (!std::filesystem::exists(file))
    NERPIPE_THROW(model_error(errc::model_file_missing,
                              file.string() + ": file is missing (expected a fast-tokenizer tokenizer.json)"));
  const std::string text = detail::json_text_of(file);
  simdjson::dom::parser parser;
  simdjson::padded_string padded(text);
  simdjson::dom::element root;
  detail::config_reader r{file.string(), {}};
  if (auto err = parser.parse(padded).get(root))
    r.fail(errc::model_file_malformed, std::string("not valid JSON: ") + simdjson::error_message(err));
  simdjson::dom::object model, vocab;
  if (root["model"].get_object().get(model)) r.fail(errc::model_key_missing, "key 'model' is missing");
  std::string_view type;
  if (model["type"].get_string().get(type) || type != "WordPiece")
    r.fail(errc::model_unsupported, "model type is \"" + std::string(type) +
                                        "\"; BERT / DistilBERT checkpoints use \"WordPiece\"");
  if (model["vocab"].get_object().get(vocab)) r.fail(errc::model_key_missing, "key 'model.vocab' is missing");
  hf_vocab_info v;
  std::vector<std::pair<std::uint64_t, std::string>> pairs;
  for (auto f : vocab) {
    std::uint64_t id = 0;
    if (f.value.get_uint64().get(id)) r.fail(errc::model_file_malformed, "vocab entry is not a non-negative id");
    pairs.emplace_back(id, std::string(f.key));
  }
  // added_tokens may extend the id range (convert_ids_to_tokens sees them too).
  simdjson::dom::array added;
  if (!root["added_tokens"].get_array().get(added))
    for (auto a : added) {
      std::uint64_t id = 0;
      std::string_view content;
      if (!a["id"].get_uint64().get(id) && !a["content"].get_string().get(content))
        pairs.emplace_back(id, std::string(content));
    }
  std::uint64_t max_id = 0;
  for (const auto& [id, s] : pairs) max_id = std::max(max_id, id);
  if (max_id > 100'000'000) r.fail(errc::model_file_malformed, "vocab id " + std::to_string(max_id) + " is too large");
  v.id_to_token.assign(pairs.empty() ? 0 : max_id + 1, std::string());
  for (auto& [id, s] : pairs) v.id_to_token[id] = std::move(s);
  std::string_view unk, prefix;
  if (!model["unk_token"].get_string().get(unk)) {
    for (std::size_t id = 0; id < v.id_to_token.size(); ++id)
      if (v.id_to_token[id] == unk) {
        v.unk_id = static_cast<std::int64_t>(id);
        break;
      }
  }
  v.continuing_subword_prefix = model["continuing_subword_prefix"].get_string().get(prefix) ? "" : std::string(prefix);
  simdjson::dom::object dec;
  if (!root["decoder"].get_object().get(dec)) {
    std::string_view dtype, dprefix;
    bool cleanup = true;
    if (dec["type"].get_string().get(dtype) || dtype != "WordPiece")
      r.fail(errc::model_unsupported, "decoder type is \"" + std::string(dtype) + "\"; expected \"WordPiece\"");
    if (!dec["prefix"].get_string().get(dprefix)) v.decoder_prefix = std::string(dprefix);
    if (!dec["cleanup"].get_bool().get(cleanup)) v.decoder_cleanup = cleanup;
  }
  return v;
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
