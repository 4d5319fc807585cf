// SPDX-License-Identifier: Apache-2.0
//! @file What transformers' TokenClassificationPipeline reads from a fast tokenizer besides its encodings:
//! convert_ids_to_tokens (the vocabulary with the added tokens), unk_token_id (tokenizer_config.json's
//! unk_token), `_tokenizer.model.continuing_subword_prefix` (WordPiece "##", a BPE model's prefix, none for
//! Unigram) and the tokenizer.json decoder that convert_tokens_to_string runs (WordPiece, ByteLevel, Metaspace).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/model/hf/subword_tokenizer_json.hpp>
#include <nerpipe/model/hf/tokenizer_json.hpp>
#include <nerpipe/model/hf/types.hpp>
#include <nerpipe/tokenizer/any_tokenizer.hpp>

#include <simdjson.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

NERPIPE_NAMESPACE_BEGIN
namespace detail {

/// Fills the decoder fields of `v` from the "decoder" object of a tokenizer.json text.
inline void read_hf_decoder(std::string_view tokenizer_json, const std::string& file, hf_vocab_info& v) {
  const tok_json j{file};
  simdjson::dom::parser parser;
  const simdjson::dom::object root = j.obj(j.parse(parser, tokenizer_json), "(root)");
  const auto d = j.opt(root, "decoder");
  if (!d || d->is_null()) {
    v.decoder = hf_decoder_kind::none;  // convert_tokens_to_string joins the tokens with " "
    return;
  }
  const simdjson::dom::object dec = j.obj(*d, "decoder");
  const std::string type = j.type_of(dec, "decoder");
  if (type == "WordPiece") {
    v.decoder = hf_decoder_kind::wordpiece;
    if (auto p = j.opt(dec, "prefix"); p && !p->is_null()) v.decoder_prefix = j.str(*p, "decoder.prefix");
    v.decoder_cleanup = j.boolean_or(dec, "cleanup", "decoder.cleanup", true);
  } else if (type == "ByteLevel") {
    v.decoder = hf_decoder_kind::byte_level;
  } else if (type == "Metaspace") {
    v.decoder = hf_decoder_kind::metaspace;
    if (auto r = j.opt(dec, "replacement"); r && !r->is_null()) {
      v.metaspace_replacement = j.str(*r, "decoder.replacement");
      std::size_t chars = 0;
      for (const char c : v.metaspace_replacement) chars += (static_cast<unsigned char>(c) & 0xC0u) != 0x80u;
      if (chars != 1)
        j.fail(errc::model_file_malformed, "key 'decoder.replacement' is '" + v.metaspace_replacement +
                                               "' (expected one character)");
    }
    if (auto s = j.opt(dec, "prepend_scheme"); s && !s->is_null()) {
      const std::string scheme = j.str(*s, "decoder.prepend_scheme");
      if (scheme != "always" && scheme != "first" && scheme != "never")
        j.fail(errc::model_file_malformed, "key 'decoder.prepend_scheme' is '" + scheme + "' (expected always, first or never)");
      v.metaspace_prepend = scheme != "never";
    } else {
      v.metaspace_prepend = j.boolean_or(dec, "add_prefix_space", "decoder.add_prefix_space", true);  // legacy files
    }
  } else {
    j.unsupported("decoder.type", type, "WordPiece, ByteLevel, Metaspace (or null)");
  }
}

/// A special token of tokenizer_config.json / special_tokens_map.json: a string, or {"content": ...}.
inline std::optional<std::string> special_token_of(const std::filesystem::path& file, std::string_view key) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return std::nullopt;
  const std::string text = tame_big_integers(read_text_file(file, "a JSON object"));
  const tok_json j{file.string()};
  simdjson::dom::parser parser;
  const simdjson::dom::object root = j.obj(j.parse(parser, text), "(root)");
  const auto e = j.opt(root, key);
  if (!e || e->is_null()) return std::nullopt;
  std::string_view s;
  if (!e->get(s)) return std::string(s);
  simdjson::dom::object o;
  if (!e->get(o))
    if (auto c = j.opt(o, "content"); c && !c->is_null()) return j.str(*c, std::string(key) + ".content");
  j.wrong(std::string(key), "a string or an object with \"content\"", *e);
}

}  // namespace detail

/// The post-processing facts of a loaded tokenizer directory `dir` (see the file comment).
[[nodiscard]] inline hf_vocab_info make_hf_vocab_info(const any_tokenizer& tok, const std::filesystem::path& dir) {
  hf_vocab_info v;
  v.id_to_token.reserve(tok.vocab_size());
  for (std::size_t i = 0; i < tok.vocab_size(); ++i) v.id_to_token.emplace_back(tok.id_to_token(static_cast<std::int32_t>(i)));
  if (const auto* wp = tok.wordpiece()) {
    v.continuing_subword_prefix = wp->config().continuing_subword_prefix;
  } else {
    const auto& cfg = tok.subword()->config();
    v.continuing_subword_prefix = cfg.model == subword_config::model_kind::bpe ? cfg.bpe.continuing_subword_prefix : "";
  }
  // unk_token_id: the tokenizer's unk_token (tokenizer_config.json, else special_tokens_map.json), else the model's.
  std::optional<std::string> unk = detail::special_token_of(dir / "tokenizer_config.json", "unk_token");
  if (!unk) unk = detail::special_token_of(dir / "special_tokens_map.json", "unk_token");
  v.unk_id = unk ? tok.token_to_id(*unk) : tok.unk_id();
  const auto file = dir / "tokenizer.json";
  detail::read_hf_decoder(detail::read_text_file(file, "a Hugging Face fast tokenizer file"), file.string(), v);
  return v;
}

/// Loads `dir`'s tokenizer and returns what the pipeline's post-processing needs from it.
[[nodiscard]] inline hf_vocab_info read_hf_vocab_info(const std::filesystem::path& dir) {
  return make_hf_vocab_info(load_any_tokenizer(dir).tokenizer, dir);
}

NERPIPE_NAMESPACE_END
