// SPDX-License-Identifier: Apache-2.0
//! @file Loads the `transformer` component of a spaCy transformer pipeline (spacy-transformers >= 1.1) from the
//! pipeline directory alone: transformer/model is thinc's msgpack whose one shim holds what HFShim.to_bytes wrote,
//! {"config": config.json as a map, "tokenizer": {file name: bytes, "kwargs": {...}}, "state": torch.save's zip of
//! the AutoModel's state dict}. The encoder becomes an hf_model (no classifier), read by the Hugging Face loaders.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/model/hf/checkpoint.hpp>
#include <nerpipe/model/hf/config.hpp>
#include <nerpipe/model/hf/hf_model.hpp>
#include <nerpipe/model/hf/subword_tokenizer_json.hpp>
#include <nerpipe/model/hf/weights.hpp>
#include <nerpipe/model/safetensors.hpp>
#include <nerpipe/model/spacy/config.hpp>
#include <nerpipe/model/spacy/msgpack.hpp>
#include <nerpipe/model/spacy/transformer_model.hpp>
#include <nerpipe/model/torch_state.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

NERPIPE_NAMESPACE_BEGIN
namespace spacy::detail {

/// A msgpack value as JSON text (srsly wrote config.json's dict as msgpack; map keys become strings).
inline void msgpack_to_json(const msgpack_doc& doc, const msgpack::object& o, std::string& out) {
  switch (o.type) {
    case msgpack::type::NIL: out += "null"; return;
    case msgpack::type::BOOLEAN: out += o.via.boolean ? "true" : "false"; return;
    case msgpack::type::POSITIVE_INTEGER: out += std::to_string(o.via.u64); return;
    case msgpack::type::NEGATIVE_INTEGER: out += std::to_string(o.via.i64); return;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: {
      char buf[40];
      std::snprintf(buf, sizeof buf, "%.17g", o.via.f64);
      const std::string_view s(buf);
      out += (s.find_first_of("0123456789") == std::string_view::npos) ? "null" : s;  // inf / nan: not JSON
      return;
    }
    case msgpack::type::STR:
    case msgpack::type::BIN: torch_state_detail::append_json_string(out, doc.str(o, "a config string")); return;
    case msgpack::type::ARRAY:
      out += '[';
      for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
        if (i) out += ',';
        msgpack_to_json(doc, o.via.array.ptr[i], out);
      }
      out += ']';
      return;
    case msgpack::type::MAP:
      out += '{';
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        if (i) out += ',';
        const auto& k = o.via.map.ptr[i].key;
        if (k.type == msgpack::type::POSITIVE_INTEGER || k.type == msgpack::type::NEGATIVE_INTEGER)
          torch_state_detail::append_json_string(out, std::to_string(doc.integer(k, "a config key")));
        else
          torch_state_detail::append_json_string(out, doc.str(k, "a config key"));
        out += ':';
        msgpack_to_json(doc, o.via.map.ptr[i].val, out);
      }
      out += '}';
      return;
    default: doc.malformed("the transformer config holds a value of type " + std::string(type_name(o)), "JSON-like values", "that");
  }
}

}  // namespace spacy::detail

/// Loads component `name` (factory "transformer") of the spaCy pipeline in `dir`. model_error naming the file and
/// the setting when it is missing, damaged or not supported (only RoBERTa-style encoders with a fast BPE or
/// Unigram tokenizer, and strided spans).
[[nodiscard]] inline spacy_transformer_model load_spacy_transformer(const std::filesystem::path& dir, const spacy::config_file& cfg,
                                                                    const std::string& name) {
  using namespace spacy;
  using namespace spacy::detail;
  const std::string C = "components." + name, M = C + ".model", S = M + ".get_spans";
  const std::string cfg_path = cfg.file();
  auto unsupported = [&](const std::string& what) { NERPIPE_THROW(model_error(errc::model_unsupported, cfg_path + ": " + what)); };
  spacy_transformer_model t;
  t.component = name;
  if (cfg.raw(C, "source") != nullptr) unsupported("[" + C + "] is sourced from another pipeline; only a factory 'transformer' is supported");
  t.architecture = cfg.get_string(M, "@architectures");
  if (t.architecture != "spacy-transformers.TransformerModel.v3" && t.architecture != "spacy-transformers.TransformerModel.v2" &&
      t.architecture != "spacy-transformers.TransformerModel.v1")
    unsupported("[" + M + "] @architectures \"" + t.architecture + "\" is not supported, expected \"spacy-transformers.TransformerModel.v3\"");
  if (const auto g = cfg.get_string(S, "@span_getters"); g != "spacy-transformers.strided_spans.v1")
    unsupported("[" + S + "] @span_getters \"" + g + "\" is not supported, expected \"spacy-transformers.strided_spans.v1\"");
  t.window = config_size(cfg, S, "window", 1, 1 << 20);
  t.stride = config_size(cfg, S, "stride", 1, 1 << 20);

  const auto model_path = dir / name / "model";
  const std::string where = model_path.string();
  const std::string bytes = read_file(model_path, "the transformer model");
  msgpack_doc doc(where, bytes.data(), bytes.size());
  // thinc's Model.to_bytes: {"nodes", "attrs", "params", "shims": [[shim bytes, ...] per node]}; one shim here.
  const auto& shims = doc.at(doc.root(), "shims", "the transformer model");
  doc.expect(shims, msgpack::type::ARRAY, "shims");
  const msgpack::object* shim = nullptr;
  for (std::uint32_t i = 0; i < shims.via.array.size; ++i) {
    const auto& node = shims.via.array.ptr[i];
    doc.expect(node, msgpack::type::ARRAY, "a node's shims");
    for (std::uint32_t j = 0; j < node.via.array.size; ++j) {
      if (shim != nullptr) doc.malformed("more than one shim", "one (the Hugging Face model)", "several");
      shim = &node.via.array.ptr[j];
    }
  }
  if (shim == nullptr) doc.malformed("no shim", "the Hugging Face model's bytes (HFShim)", "none (an uninitialised transformer?)");
  const auto shim_bytes = doc.str(*shim, "the shim");
  msgpack_doc hf(where + " (HFShim)", shim_bytes.data(), shim_bytes.size());
  const auto& config = hf.at(hf.root(), "config", "the HFShim bytes");
  if (config.type != msgpack::type::MAP || config.via.map.size == 0)
    hf.malformed("'config' is empty", "the transformer's config.json as a map", "an empty value (an uninitialised transformer?)");
  std::string config_json;
  msgpack_to_json(hf, config, config_json);
  t.hf.dir = dir / name;
  t.hf.config = parse_hf_config(config_json, where + " (config)");
  if (t.hf.config.arch != hf_arch::roberta)
    NERPIPE_THROW(model_error(errc::model_unsupported, where + ": model_type \"" + t.hf.config.model_type +
                                                           "\" is not supported in a spaCy transformer pipeline, expected \"roberta\" "
                                                           "(RoBERTa, XLM-R: nerpipe's RoBERTa encoder)"));

  // The tokenizer: a fast tokenizer's tokenizer.json (spacy-transformers aligns through its offsets).
  const auto& files = hf.at(hf.root(), "tokenizer", "the HFShim bytes");
  hf.expect(files, msgpack::type::MAP, "tokenizer");
  if (const auto* kw = msgpack_doc::find(files, "kwargs"))
    if (const auto* fast = msgpack_doc::find(*kw, "use_fast"); fast && fast->type == msgpack::type::BOOLEAN && !fast->via.boolean)
      NERPIPE_THROW(model_error(errc::model_unsupported, where + ": the tokenizer is a slow (Python) tokenizer (use_fast = false); "
                                                             "spacy-transformers then aligns by strings, which is not implemented"));
  const auto* tj = msgpack_doc::find(files, "tokenizer.json");
  if (tj == nullptr)
    NERPIPE_THROW(model_error(errc::model_file_missing, where + ": the tokenizer files hold no tokenizer.json (expected a fast tokenizer)"));
  const std::string tj_text(hf.str(*tj, "tokenizer.json"));
  const std::string tj_name = where + " (tokenizer.json)";
  const std::string type = tokenizer_json_model_type(tj_text, tj_name);
  if (type != "BPE" && type != "Unigram")
    NERPIPE_THROW(model_error(errc::model_unsupported, tj_name + ": model.type \"" + type + "\" is not supported here, expected \"BPE\" or \"Unigram\""));
  hf_tokenizer_info info;
  subword_config tcfg = parse_subword_tokenizer_json(tj_text, tj_name, &info);
  if (const auto* tc = msgpack_doc::find(files, "tokenizer_config.json"))
    apply_subword_tokenizer_config(std::string(hf.str(*tc, "tokenizer_config.json")), where + " (tokenizer_config.json)", tcfg, info);
  auto tok = std::make_shared<const any_tokenizer>(subword_tokenizer(std::move(tcfg)));
  t.hf.tokenizer_model = type;
  t.hf.tokenizer_class = info.tokenizer_class;
  if (tok->vocab_size() > t.hf.config.vocab_size) {
    std::int32_t top = static_cast<std::int32_t>(tok->vocab_size()) - 1;
    while (top > 0 && tok->id_to_token(top).empty()) --top;
    if (static_cast<std::size_t>(top) >= t.hf.config.vocab_size)
      NERPIPE_THROW(model_error(errc::model_shape_mismatch, tj_name + ": token id " + std::to_string(top) +
                                                                " is outside the model's vocab_size " + std::to_string(t.hf.config.vocab_size)));
  }
  for (const auto& piece : tok->subword()->config().single_template)
    for (const auto id : piece.ids)
      if (id < 0 || static_cast<std::size_t>(id) >= t.hf.config.vocab_size)
        NERPIPE_THROW(model_error(errc::model_shape_mismatch, tj_name + ": special token id " + std::to_string(id) +
                                                                  " is outside the model's vocab_size " + std::to_string(t.hf.config.vocab_size)));
  t.hf.tokenizer = std::move(tok);
  // truncate_oversize_splits cuts every span at model_max_length pieces; the position table must hold that many.
  t.truncate = info.model_max_length;
  t.hf.max_length = t.hf.config.max_window();
  if (t.truncate != 0) t.hf.max_length = std::min(t.hf.max_length, t.truncate);

  // The weights: torch.save's zip, re-expressed as safetensors in memory.
  const auto state = hf.str(hf.at(hf.root(), "state", "the HFShim bytes"), "state");
  const safetensors_file weights(where + " (state)", torch_state_to_safetensors(state, where + " (state)"));
  t.hf.weights = std::make_shared<const hf_weights>(load_hf_weights(hf_checkpoint(weights), t.hf.config, false));
  return t;
}

NERPIPE_NAMESPACE_END
