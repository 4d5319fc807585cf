// SPDX-License-Identifier: Apache-2.0
//! @file Reads a Hugging Face tokenizer.json (+ tokenizer_config.json) into a wordpiece_tokenizer, with the
//! semantics of transformers 4.57.6 / tokenizers 0.22.2 ("honour tokenizer.json", v4).
//!
//! Supported: normalizer BertNormalizer or null; pre_tokenizer BertPreTokenizer or null; model WordPiece;
//! post_processor TemplateProcessing (single sequence), BertProcessing or null; added_tokens with
//! `normalized: false` and no lstrip / rstrip / single_word. Anything else is a model_error naming the
//! JSON key and what was found. tokenizer.json's `truncation` / `padding` are ignored on purpose:
//! transformers resets both on every call (the pipeline passes its own truncation).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/file_read.hpp>
#include <nerpipe/tokenizer/wordpiece_tokenizer.hpp>

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// What tokenizer_config.json (and tokenizer.json's decoder) add to the tokenizer itself.
struct hf_tokenizer_info {
  bool has_tokenizer_config = false;
  std::string tokenizer_class;          ///< as written ("BertTokenizer"), empty when absent
  std::size_t model_max_length = 0;     ///< 0: none given (transformers' VERY_LARGE_INTEGER, nothing truncated)
  std::string truncation_side = "right";
  bool normalizer_overridden = false;   ///< tokenizer_config.json changed the BertNormalizer (see load_hf_tokenizer)
  std::string decoder_type;             ///< "WordPiece" for BERT; empty when null
  std::string decoder_prefix = "##";
  bool decoder_cleanup = true;
};

/// A tokenizer directory, loaded.
struct hf_tokenizer {
  wordpiece_tokenizer tokenizer;
  hf_tokenizer_info info;
};

namespace detail {

/// Small helpers that turn simdjson errors into model_errors naming the file and the key path.
struct tok_json {
  std::string file;  // as shown in messages

  [[noreturn]] void fail(errc code, const std::string& msg) const { NERPIPE_THROW(model_error(code, file + ": " + msg)); }

  static const char* type_name(simdjson::dom::element_type t) {
    switch (t) {
      case simdjson::dom::element_type::ARRAY: return "an array";
      case simdjson::dom::element_type::OBJECT: return "an object";
      case simdjson::dom::element_type::INT64:
      case simdjson::dom::element_type::UINT64: return "an integer";
      case simdjson::dom::element_type::DOUBLE: return "a number";
      case simdjson::dom::element_type::STRING: return "a string";
      case simdjson::dom::element_type::BOOL: return "a boolean";
      default: return "null";
    }
  }
  [[noreturn]] void wrong(const std::string& key, const char* expected, simdjson::dom::element e) const {
    fail(errc::model_file_malformed, "key '" + key + "' is " + type_name(e.type()) + " (expected " + expected + ")");
  }

  std::optional<simdjson::dom::element> opt(simdjson::dom::object o, std::string_view k) const {
    simdjson::dom::element e;
    if (o[k].get(e)) return std::nullopt;
    return e;
  }
  simdjson::dom::element req(simdjson::dom::object o, std::string_view k, const std::string& path) const {
    simdjson::dom::element e;
    if (o[k].get(e)) fail(errc::model_key_missing, "key '" + path + "' is missing");
    return e;
  }
  simdjson::dom::object obj(simdjson::dom::element e, const std::string& path) const {
    simdjson::dom::object o;
    if (e.get(o)) wrong(path, "an object", e);
    return o;
  }
  simdjson::dom::array arr(simdjson::dom::element e, const std::string& path) const {
    simdjson::dom::array a;
    if (e.get(a)) wrong(path, "an array", e);
    return a;
  }
  std::string str(simdjson::dom::element e, const std::string& path) const {
    std::string_view s;
    if (e.get(s)) wrong(path, "a string", e);
    return std::string(s);
  }
  bool boolean(simdjson::dom::element e, const std::string& path) const {
    bool b;
    if (e.get(b)) wrong(path, "a boolean", e);
    return b;
  }
  std::int64_t integer(simdjson::dom::element e, const std::string& path) const {
    std::int64_t v;
    if (e.get(v)) wrong(path, "an integer", e);
    return v;
  }
  std::int32_t token_id(simdjson::dom::element e, const std::string& path) const {
    const std::int64_t v = integer(e, path);
    if (v < 0 || v > INT32_MAX) fail(errc::model_file_malformed, "key '" + path + "' is " + std::to_string(v) +
                                                                   " (expected a token id in [0, 2^31))");
    return static_cast<std::int32_t>(v);
  }
  bool boolean_or(simdjson::dom::object o, std::string_view k, const std::string& path, bool dflt) const {
    auto e = opt(o, k);
    if (!e || e->is_null()) return dflt;
    return boolean(*e, path);
  }
  std::string type_of(simdjson::dom::object o, const std::string& path) const {
    auto e = opt(o, "type");
    if (!e) fail(errc::model_key_missing, "key '" + path + ".type' is missing");
    return str(*e, path + ".type");
  }
  [[noreturn]] void unsupported(const std::string& key, const std::string& got, const std::string& supported) const {
    fail(errc::model_unsupported,
         key + " '" + got + "' is not supported yet (supported: " + supported + ")");
  }

  simdjson::dom::element parse(simdjson::dom::parser& parser, std::string_view text) const {
    simdjson::dom::element root;
    if (auto err = parser.parse(text.data(), text.size()).get(root))
      fail(errc::model_file_malformed, std::string("invalid JSON (") + simdjson::error_message(err) + ")");
    return root;
  }
};

inline std::string read_text_file(const std::filesystem::path& p, const std::string& expected) {
  std::string s;
  if (!read_whole_file(p, s)) {
    const std::string why = file_problem(p);
    NERPIPE_THROW(model_error(errc::model_file_missing, p.string() + (why == "does not exist" ? ": file not found" : ": cannot read the file (" + why + ")") +
                                                            " (expected " + expected + ")"));
  }
  return s;
}

/// simdjson rejects integers beyond 64 bits, and transformers writes model_max_length = int(1e30) as one.
/// Rewrites every integer literal of more than 19 digits outside strings as the number 1e30 (only
/// "huge" matters to the reader).
inline std::string tame_big_integers(std::string_view json) {
  std::string out;
  out.reserve(json.size());
  bool in_string = false;
  for (std::size_t i = 0; i < json.size();) {
    const char c = json[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < json.size()) out += json[++i];
      else if (c == '"') in_string = false;
      ++i;
    } else if (c == '"') {
      in_string = true;
      out += c;
      ++i;
    } else if (c >= '0' && c <= '9') {
      std::size_t e = i;
      while (e < json.size() && json[e] >= '0' && json[e] <= '9') ++e;
      std::size_t k = out.size();
      while (k > 0 && (out[k - 1] == ' ' || out[k - 1] == '\n' || out[k - 1] == '\r' || out[k - 1] == '\t')) --k;
      const bool starts_value = k > 0 && (out[k - 1] == ':' || out[k - 1] == ',' || out[k - 1] == '[');
      const bool plain_integer =
          starts_value && (e >= json.size() || (json[e] != '.' && json[e] != 'e' && json[e] != 'E'));
      if (e - i > 19 && plain_integer) out += "1e30";
      else out.append(json.substr(i, e - i));
      i = e;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

}  // namespace detail

/// Parses the text of a tokenizer.json. `file` names it in error messages.
[[nodiscard]] inline wordpiece_config parse_tokenizer_json(std::string_view json, const std::string& file,
                                                           hf_tokenizer_info* info = nullptr) {
  const detail::tok_json j{file};
  simdjson::dom::parser parser;
  const simdjson::dom::element root_el = j.parse(parser, json);
  const simdjson::dom::object root = j.obj(root_el, "(root)");
  wordpiece_config cfg;

  // model
  const simdjson::dom::object model = j.obj(j.req(root, "model", "model"), "model");
  if (auto t = j.opt(model, "type")) {
    const std::string type = j.str(*t, "model.type");
    if (type != "WordPiece") j.unsupported("model.type", type, "WordPiece");
  } else if (!j.opt(model, "continuing_subword_prefix") || j.opt(model, "merges")) {
    j.unsupported("model.type", "(absent, not WordPiece-shaped)", "WordPiece");
  }
  if (auto e = j.opt(model, "unk_token")) cfg.unk_token = j.str(*e, "model.unk_token");
  if (auto e = j.opt(model, "continuing_subword_prefix"); e && !e->is_null())
    cfg.continuing_subword_prefix = j.str(*e, "model.continuing_subword_prefix");
  if (auto e = j.opt(model, "max_input_chars_per_word")) {
    const std::int64_t v = j.integer(*e, "model.max_input_chars_per_word");
    if (v < 0) j.fail(errc::model_file_malformed, "key 'model.max_input_chars_per_word' is negative");
    cfg.max_input_chars_per_word = static_cast<std::size_t>(v);
  }
  {
    const simdjson::dom::object vocab = j.obj(j.req(model, "vocab", "model.vocab"), "model.vocab");
    cfg.vocab.reserve(vocab.size());
    for (const auto field : vocab) {
      const std::string key(field.key);
      cfg.vocab.emplace_back(key, j.token_id(field.value, "model.vocab." + key));
    }
    if (cfg.vocab.empty()) j.fail(errc::model_file_malformed, "key 'model.vocab' is empty (expected a vocabulary)");
  }

  // normalizer
  if (auto e = j.opt(root, "normalizer"); e && !e->is_null()) {
    const simdjson::dom::object n = j.obj(*e, "normalizer");
    const std::string type = j.type_of(n, "normalizer");
    if (type != "BertNormalizer") j.unsupported("normalizer.type", type, "BertNormalizer (or null)");
    bert_normalizer_options o;
    o.clean_text = j.boolean_or(n, "clean_text", "normalizer.clean_text", true);
    o.handle_chinese_chars = j.boolean_or(n, "handle_chinese_chars", "normalizer.handle_chinese_chars", true);
    o.lowercase = j.boolean_or(n, "lowercase", "normalizer.lowercase", true);
    if (auto s = j.opt(n, "strip_accents"); s && !s->is_null()) o.strip_accents = j.boolean(*s, "normalizer.strip_accents");
    cfg.normalizer = o;
  }

  // pre_tokenizer
  cfg.bert_pre_tokenizer = false;
  if (auto e = j.opt(root, "pre_tokenizer"); e && !e->is_null()) {
    const std::string type = j.type_of(j.obj(*e, "pre_tokenizer"), "pre_tokenizer");
    if (type != "BertPreTokenizer") j.unsupported("pre_tokenizer.type", type, "BertPreTokenizer (or null)");
    cfg.bert_pre_tokenizer = true;
  }

  // added_tokens
  if (auto e = j.opt(root, "added_tokens"); e && !e->is_null()) {
    const simdjson::dom::array arr = j.arr(*e, "added_tokens");
    std::size_t k = 0;
    for (const simdjson::dom::element item : arr) {
      const std::string path = "added_tokens[" + std::to_string(k++) + "]";
      const simdjson::dom::object o = j.obj(item, path);
      added_token a;
      a.content = j.str(j.req(o, "content", path + ".content"), path + ".content");
      a.id = j.token_id(j.req(o, "id", path + ".id"), path + ".id");
      a.special = j.boolean_or(o, "special", path + ".special", false);
      for (const char* flag : {"single_word", "lstrip", "rstrip"})
        if (j.boolean_or(o, flag, path + "." + flag, false))
          j.fail(errc::model_unsupported, "key '" + path + "." + flag + "' is true for '" + a.content +
                                              "' (nerpipe supports added tokens without lstrip/rstrip/single_word)");
      if (j.boolean_or(o, "normalized", path + ".normalized", !a.special))
        j.fail(errc::model_unsupported, "key '" + path + ".normalized' is true for '" + a.content +
                                            "' (nerpipe matches added tokens on the raw text only)");
      cfg.added_tokens.push_back(std::move(a));
    }
  }

  // post_processor
  if (auto e = j.opt(root, "post_processor"); e && !e->is_null()) {
    const simdjson::dom::object pp = j.obj(*e, "post_processor");
    const std::string type = j.type_of(pp, "post_processor");
    if (type == "TemplateProcessing") {
      std::vector<std::pair<std::string, std::vector<std::int32_t>>> specials;
      if (auto st = j.opt(pp, "special_tokens"); st && !st->is_null()) {
        for (const auto field : j.obj(*st, "post_processor.special_tokens")) {
          const std::string path = "post_processor.special_tokens." + std::string(field.key);
          const simdjson::dom::object so = j.obj(field.value, path);
          std::vector<std::int32_t> ids;
          std::size_t k = 0;
          for (const simdjson::dom::element id : j.arr(j.req(so, "ids", path + ".ids"), path + ".ids"))
            ids.push_back(j.token_id(id, path + ".ids[" + std::to_string(k++) + "]"));
          specials.emplace_back(std::string(field.key), std::move(ids));
        }
      }
      std::size_t k = 0;
      for (const simdjson::dom::element item : j.arr(j.req(pp, "single", "post_processor.single"), "post_processor.single")) {
        const std::string path = "post_processor.single[" + std::to_string(k++) + "]";
        const simdjson::dom::object io = j.obj(item, path);
        template_piece piece;
        if (auto sp = j.opt(io, "SpecialToken")) {
          const simdjson::dom::object so = j.obj(*sp, path + ".SpecialToken");
          const std::string id = j.str(j.req(so, "id", path + ".SpecialToken.id"), path + ".SpecialToken.id");
          if (auto t = j.opt(so, "type_id")) piece.type_id = static_cast<std::int32_t>(j.integer(*t, path + ".SpecialToken.type_id"));
          bool found = false;
          for (const auto& [name, ids] : specials)
            if (name == id) {
              piece.ids = ids;
              found = true;
            }
          if (!found)
            j.fail(errc::model_key_missing, "key '" + path + ".SpecialToken.id' names '" + id +
                                                "', which post_processor.special_tokens does not define");
        } else if (auto sq = j.opt(io, "Sequence")) {
          const simdjson::dom::object so = j.obj(*sq, path + ".Sequence");
          const std::string id = j.str(j.req(so, "id", path + ".Sequence.id"), path + ".Sequence.id");
          if (id != "A") j.fail(errc::model_file_malformed, "key '" + path + ".Sequence.id' is '" + id + "' (expected 'A' in a single-sequence template)");
          if (auto t = j.opt(so, "type_id")) piece.type_id = static_cast<std::int32_t>(j.integer(*t, path + ".Sequence.type_id"));
          piece.is_sequence = true;
        } else {
          j.fail(errc::model_file_malformed, "key '" + path + "' has neither SpecialToken nor Sequence");
        }
        cfg.single_template.push_back(std::move(piece));
      }
    } else if (type == "BertProcessing") {
      auto pair = [&](const char* key) {
        const std::string path = std::string("post_processor.") + key;
        const simdjson::dom::array a = j.arr(j.req(pp, key, path), path);
        if (a.size() != 2) j.fail(errc::model_file_malformed, "key '" + path + "' has " + std::to_string(a.size()) + " elements (expected [token, id])");
        template_piece p;
        p.ids.push_back(j.token_id(a.at(1).value(), path + "[1]"));
        return p;
      };
      cfg.single_template.push_back(pair("cls"));
      template_piece seq;
      seq.is_sequence = true;
      cfg.single_template.push_back(seq);
      cfg.single_template.push_back(pair("sep"));
    } else {
      j.unsupported("post_processor.type", type, "TemplateProcessing / BertProcessing (or null)");
    }
  }

  // decoder (only recorded: the pipeline needs it to build word strings)
  if (info) {
    if (auto e = j.opt(root, "decoder"); e && !e->is_null()) {
      const simdjson::dom::object d = j.obj(*e, "decoder");
      info->decoder_type = j.type_of(d, "decoder");
      if (auto p = j.opt(d, "prefix")) info->decoder_prefix = j.str(*p, "decoder.prefix");
      info->decoder_cleanup = j.boolean_or(d, "cleanup", "decoder.cleanup", true);
    }
  }
  return cfg;
}

/// Applies tokenizer_config.json the way transformers 4.57.6 does for a BERT-family fast tokenizer:
/// model_max_length / truncation_side are read, and when the tokenizer class is one whose fast
/// `__init__` rebuilds the normalizer (BertTokenizerFast and its copies), a BertNormalizer whose
/// lowercase / strip_accents / handle_chinese_chars differ from do_lower_case (default true) /
/// strip_accents (default null) / tokenize_chinese_chars (default true) is replaced by those values.
inline void apply_tokenizer_config(std::string_view json, const std::string& file, wordpiece_config& cfg,
                                   hf_tokenizer_info& info) {
  const detail::tok_json j{file};
  simdjson::dom::parser parser;
  const std::string tamed = detail::tame_big_integers(json);
  const simdjson::dom::element root_el = j.parse(parser, tamed);
  const simdjson::dom::object root = j.obj(root_el, "(root)");
  info.has_tokenizer_config = true;
  if (auto e = j.opt(root, "tokenizer_class"); e && !e->is_null()) info.tokenizer_class = j.str(*e, "tokenizer_class");
  if (auto e = j.opt(root, "model_max_length"); e && !e->is_null()) {
    double v = 0;
    std::int64_t iv = 0;
    std::uint64_t uv = 0;
    if (!e->get(iv)) v = static_cast<double>(iv);
    else if (!e->get(uv)) v = static_cast<double>(uv);
    else if (e->get(v)) j.wrong("model_max_length", "a number", *e);
    // transformers writes VERY_LARGE_INTEGER (1e30) for "no limit".
    info.model_max_length = (v <= 0 || v >= 1e18) ? 0 : static_cast<std::size_t>(v);
  }
  if (auto e = j.opt(root, "truncation_side"); e && !e->is_null()) {
    info.truncation_side = j.str(*e, "truncation_side");
    if (info.truncation_side != "right")
      j.fail(errc::model_unsupported, "key 'truncation_side' is '" + info.truncation_side + "' (nerpipe supports 'right')");
  }

  std::string cls = info.tokenizer_class;
  if (cls.size() > 4 && cls.compare(cls.size() - 4, 4, "Fast") == 0) cls.resize(cls.size() - 4);
  static constexpr std::string_view bert_family[] = {
      "BertTokenizer",   "DistilBertTokenizer", "ElectraTokenizer", "MobileBertTokenizer", "SqueezeBertTokenizer",
      "FunnelTokenizer", "LayoutLMTokenizer",   "LxmertTokenizer",  "ConvBertTokenizer"};
  bool family = false;
  for (const auto name : bert_family) family = family || cls == name;
  if (!family || !cfg.normalizer) return;

  const bool lower = j.boolean_or(root, "do_lower_case", "do_lower_case", true);
  std::optional<bool> strip;
  if (auto e = j.opt(root, "strip_accents"); e && !e->is_null()) strip = j.boolean(*e, "strip_accents");
  const bool chinese = j.boolean_or(root, "tokenize_chinese_chars", "tokenize_chinese_chars", true);
  bert_normalizer_options& n = *cfg.normalizer;
  if (n.lowercase != lower || n.strip_accents != strip || n.handle_chinese_chars != chinese) {
    n.lowercase = lower;
    n.strip_accents = strip;
    n.handle_chinese_chars = chinese;
    info.normalizer_overridden = true;
  }
}

/// Loads `dir`/tokenizer.json and, when present, `dir`/tokenizer_config.json.
/// Without tokenizer_config.json, tokenizer.json is honoured as written (transformers would pick the class
/// from config.json and apply its defaults; the caller that knows the model type can call
/// apply_tokenizer_config itself).
[[nodiscard]] inline hf_tokenizer load_hf_tokenizer(const std::filesystem::path& dir) {
  hf_tokenizer_info info;
  const std::filesystem::path tj = dir / "tokenizer.json";
  const std::string text = detail::read_text_file(
      tj, "a Hugging Face fast tokenizer file; a directory with only vocab.txt can be converted by saving the "
          "tokenizer once with transformers");
  wordpiece_config cfg = parse_tokenizer_json(text, tj.string(), &info);
  const std::filesystem::path tc = dir / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::is_regular_file(tc, ec))
    apply_tokenizer_config(detail::read_text_file(tc, "a JSON object"), tc.string(), cfg, info);
  return hf_tokenizer{wordpiece_tokenizer(std::move(cfg)), std::move(info)};
}

NERPIPE_NAMESPACE_END
