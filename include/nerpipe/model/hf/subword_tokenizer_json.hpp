// SPDX-License-Identifier: Apache-2.0
//! @file Reads a Hugging Face tokenizer.json whose model is BPE or Unigram into a subword_tokenizer, and
//! loads any supported tokenizer directory (WordPiece, BPE, Unigram) as an any_tokenizer.
//!
//! Every unsupported component or option is a model_error naming the JSON key and what was found;
//! malformed vocabularies, merges, ids and charsmaps name the key and the index.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/model/hf/tokenizer_json.hpp>
#include <nerpipe/tokenizer/any_tokenizer.hpp>
#include <nerpipe/tokenizer/subword_tokenizer.hpp>

#include <simdjson.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

namespace detail {

/// The f64 tokenizers' serde_json (without float_roundtrip) makes of a number's text: the decimal
/// significand as u64 converted to f64, then one multiplication or division by a power of ten. That can be
/// one ulp away from the correctly rounded value (e.g. -7.4182915687561035), and Unigram's Viterbi ties
/// then break differently; so the scores are re-read that way. The text is taken as the shortest
/// round-trip form of the correctly parsed double, which is how tokenizers (ryu) and Python write them.
[[nodiscard]] inline double serde_json_f64(double correct) {
  if (!(correct == correct) || correct == 0.0) return correct;
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, correct);
  const char* p = buf;
  const char* end = res.ptr;
  bool negative = false;
  if (p < end && *p == '-') {
    negative = true;
    ++p;
  }
  std::uint64_t significand = 0;
  int exponent = 0;
  bool frac = false;
  for (; p < end && *p != 'e' && *p != 'E'; ++p) {
    if (*p == '.') {
      frac = true;
      continue;
    }
    significand = significand * 10 + static_cast<std::uint64_t>(*p - '0');
    if (frac) --exponent;
  }
  if (p < end) {
    ++p;
    int e = 0;
    bool eneg = false;
    if (*p == '-' || *p == '+') eneg = *p++ == '-';
    for (; p < end; ++p) e = e * 10 + (*p - '0');
    exponent += eneg ? -e : e;
  }
  static const std::array<double, 309> pow10 = [] {
    std::array<double, 309> t{};
    for (int k = 0; k < 309; ++k) t[static_cast<std::size_t>(k)] = std::strtod(("1e" + std::to_string(k)).c_str(), nullptr);
    return t;
  }();
  double f = static_cast<double>(significand);
  for (;;) {
    const int a = exponent < 0 ? -exponent : exponent;
    if (a < 309) {
      if (exponent >= 0) f *= pow10[static_cast<std::size_t>(a)];
      else f /= pow10[static_cast<std::size_t>(a)];
      break;
    }
    if (f == 0.0) break;
    if (exponent >= 0) return correct;  // serde_json reports out of range; keep the value
    f /= 1e308;
    exponent += 308;
  }
  return negative ? -f : f;
}

inline void parse_subword_normalizer(const tok_json& j, simdjson::dom::object n, const std::string& path,
                                     std::vector<subword_normalizer>& out) {
  const std::string type = j.type_of(n, path);
  subword_normalizer s;
  if (type == "Sequence") {
    std::size_t k = 0;
    for (const simdjson::dom::element e : j.arr(j.req(n, "normalizers", path + ".normalizers"), path + ".normalizers")) {
      const std::string p = path + ".normalizers[" + std::to_string(k++) + "]";
      parse_subword_normalizer(j, j.obj(e, p), p, out);
    }
    return;
  }
  if (type == "Precompiled") {
    const auto e = j.opt(n, "precompiled_charsmap");
    if (!e || e->is_null()) return;  // tokenizers treats a missing map as no-op normalization
    s.type = subword_normalizer::kind::precompiled;
    s.charsmap = std::make_shared<const precompiled_charsmap>(j.str(*e, path + ".precompiled_charsmap"),
                                                              j.file + ": " + path);
  } else if (type == "Strip") {
    s.type = subword_normalizer::kind::strip;
    s.left = j.boolean_or(n, "strip_left", path + ".strip_left", true);
    s.right = j.boolean_or(n, "strip_right", path + ".strip_right", true);
  } else if (type == "Replace") {
    s.type = subword_normalizer::kind::replace;
    const simdjson::dom::object pat = j.obj(j.req(n, "pattern", path + ".pattern"), path + ".pattern");
    if (auto r = j.opt(pat, "Regex")) {
      s.regex = true;
      s.pattern = j.str(*r, path + ".pattern.Regex");
    } else if (auto t = j.opt(pat, "String")) {
      s.pattern = j.str(*t, path + ".pattern.String");
    } else {
      j.fail(errc::model_file_malformed, "key '" + path + ".pattern' has neither String nor Regex");
    }
    s.content = j.str(j.req(n, "content", path + ".content"), path + ".content");
  } else if (type == "Lowercase") {
    s.type = subword_normalizer::kind::lowercase;
  } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    s.type = subword_normalizer::kind::unicode;
    using F = subword_normalizer::form;
    s.unicode_form = type == "NFC" ? F::nfc : type == "NFD" ? F::nfd : type == "NFKC" ? F::nfkc : F::nfkd;
  } else if (type == "Prepend") {
    s.type = subword_normalizer::kind::prepend;
    s.content = j.str(j.req(n, "prepend", path + ".prepend"), path + ".prepend");
  } else {
    j.unsupported(path + ".type", type, "Precompiled, Strip, Replace, Lowercase, Prepend, NFC, NFD, NFKC, NFKD, Sequence");
  }
  out.push_back(std::move(s));
}

inline void parse_subword_pre_tokenizer(const tok_json& j, simdjson::dom::object n, const std::string& path,
                                        std::vector<subword_pre_tokenizer>& out) {
  const std::string type = j.type_of(n, path);
  subword_pre_tokenizer p;
  if (type == "Sequence") {
    std::size_t k = 0;
    for (const simdjson::dom::element e : j.arr(j.req(n, "pretokenizers", path + ".pretokenizers"), path + ".pretokenizers")) {
      const std::string q = path + ".pretokenizers[" + std::to_string(k++) + "]";
      parse_subword_pre_tokenizer(j, j.obj(e, q), q, out);
    }
    return;
  }
  if (type == "ByteLevel") {
    p.type = subword_pre_tokenizer::kind::byte_level;
    p.add_prefix_space = j.boolean_or(n, "add_prefix_space", path + ".add_prefix_space", true);
    p.use_regex = j.boolean_or(n, "use_regex", path + ".use_regex", true);
  } else if (type == "Metaspace") {
    p.type = subword_pre_tokenizer::kind::metaspace;
    if (auto r = j.opt(n, "replacement")) p.replacement = j.str(*r, path + ".replacement");
    if (utf8::length(p.replacement) != 1)
      j.fail(errc::model_file_malformed, "key '" + path + ".replacement' is '" + p.replacement + "' (expected one character)");
    if (auto s = j.opt(n, "prepend_scheme"); s && !s->is_null()) {
      const std::string v = j.str(*s, path + ".prepend_scheme");
      if (v == "always") p.prepend_scheme = subword_pre_tokenizer::prepend::always;
      else if (v == "first") p.prepend_scheme = subword_pre_tokenizer::prepend::first;
      else if (v == "never") p.prepend_scheme = subword_pre_tokenizer::prepend::never;
      else j.fail(errc::model_file_malformed, "key '" + path + ".prepend_scheme' is '" + v + "' (expected always, first or never)");
    } else if (auto a = j.opt(n, "add_prefix_space"); a && !a->is_null()) {  // legacy files
      p.prepend_scheme = j.boolean(*a, path + ".add_prefix_space") ? subword_pre_tokenizer::prepend::always
                                                                    : subword_pre_tokenizer::prepend::never;
    }
    p.split = j.boolean_or(n, "split", path + ".split", true);
  } else if (type == "Punctuation") {
    p.type = subword_pre_tokenizer::kind::punctuation;
    if (auto b = j.opt(n, "behavior"); b && !b->is_null()) {
      const std::string v = j.str(*b, path + ".behavior");
      if (v != "Isolated") j.unsupported(path + ".behavior", v, "Isolated");
    }
  } else if (type == "WhitespaceSplit") {
    p.type = subword_pre_tokenizer::kind::whitespace_split;
  } else {
    j.unsupported(path + ".type", type, "ByteLevel, Metaspace, Punctuation, WhitespaceSplit, Sequence");
  }
  out.push_back(std::move(p));
}

}  // namespace detail

/// Parses the text of a tokenizer.json whose model is BPE or Unigram. `file` names it in error messages.
[[nodiscard]] inline subword_config parse_subword_tokenizer_json(std::string_view json, const std::string& file,
                                                                 hf_tokenizer_info* info = nullptr) {
  const detail::tok_json j{file};
  simdjson::dom::parser parser;
  const simdjson::dom::element root_el = j.parse(parser, json);
  const simdjson::dom::object root = j.obj(root_el, "(root)");
  subword_config cfg;

  const simdjson::dom::object model = j.obj(j.req(root, "model", "model"), "model");
  std::string type;
  if (auto t = j.opt(model, "type")) type = j.str(*t, "model.type");
  else if (j.opt(model, "merges")) type = "BPE";
  else type = "(absent)";
  if (type == "BPE") {
    cfg.model = subword_config::model_kind::bpe;
    auto& m = cfg.bpe;
    if (auto e = j.opt(model, "dropout"); e && !e->is_null()) {
      double d = 0;
      if (e->get(d)) j.wrong("model.dropout", "a number or null", *e);
      if (d != 0.0) j.fail(errc::model_unsupported, "key 'model.dropout' is " + std::to_string(d) + " (nerpipe tokenizes deterministically: expected null)");
    }
    if (auto e = j.opt(model, "unk_token"); e && !e->is_null()) m.unk_token = j.str(*e, "model.unk_token");
    if (auto e = j.opt(model, "continuing_subword_prefix"); e && !e->is_null())
      m.continuing_subword_prefix = j.str(*e, "model.continuing_subword_prefix");
    if (auto e = j.opt(model, "end_of_word_suffix"); e && !e->is_null()) m.end_of_word_suffix = j.str(*e, "model.end_of_word_suffix");
    m.fuse_unk = j.boolean_or(model, "fuse_unk", "model.fuse_unk", false);
    m.byte_fallback = j.boolean_or(model, "byte_fallback", "model.byte_fallback", false);
    m.ignore_merges = j.boolean_or(model, "ignore_merges", "model.ignore_merges", false);
    const simdjson::dom::object vocab = j.obj(j.req(model, "vocab", "model.vocab"), "model.vocab");
    m.vocab.reserve(vocab.size());
    for (const auto field : vocab) {
      const std::string key(field.key);
      m.vocab.emplace_back(key, j.token_id(field.value, "model.vocab." + key));
    }
    if (m.vocab.empty()) j.fail(errc::model_file_malformed, "key 'model.vocab' is empty (expected a vocabulary)");
    std::size_t r = 0;
    for (const simdjson::dom::element e : j.arr(j.req(model, "merges", "model.merges"), "model.merges")) {
      const std::string path = "model.merges[" + std::to_string(r++) + "]";
      std::string_view line;
      simdjson::dom::array pair;
      if (!e.get(line)) {  // legacy "a b"
        const std::size_t sp = line.find(' ');
        if (sp == std::string_view::npos || line.find(' ', sp + 1) != std::string_view::npos)
          j.fail(errc::model_file_malformed, "key '" + path + "' is '" + std::string(line) + "' (expected two tokens separated by one space)");
        m.merges.emplace_back(std::string(line.substr(0, sp)), std::string(line.substr(sp + 1)));
      } else if (!e.get(pair)) {
        if (pair.size() != 2) j.fail(errc::model_file_malformed, "key '" + path + "' has " + std::to_string(pair.size()) + " elements (expected [a, b])");
        m.merges.emplace_back(j.str(pair.at(0).value(), path + "[0]"), j.str(pair.at(1).value(), path + "[1]"));
      } else {
        j.wrong(path, "a string \"a b\" or a pair [a, b]", e);
      }
    }
  } else if (type == "Unigram") {
    cfg.model = subword_config::model_kind::unigram;
    auto& m = cfg.unigram;
    if (auto e = j.opt(model, "unk_id"); e && !e->is_null()) {
      const std::int64_t v = j.integer(*e, "model.unk_id");
      if (v < 0) j.fail(errc::model_file_malformed, "key 'model.unk_id' is negative");
      m.unk_id = static_cast<std::size_t>(v);
    }
    m.byte_fallback = j.boolean_or(model, "byte_fallback", "model.byte_fallback", false);
    std::size_t k = 0;
    for (const simdjson::dom::element e : j.arr(j.req(model, "vocab", "model.vocab"), "model.vocab")) {
      const std::string path = "model.vocab[" + std::to_string(k++) + "]";
      const simdjson::dom::array pair = j.arr(e, path);
      if (pair.size() != 2) j.fail(errc::model_file_malformed, "key '" + path + "' has " + std::to_string(pair.size()) + " elements (expected [piece, score])");
      double score = 0;
      const simdjson::dom::element se = pair.at(1).value();
      std::int64_t iv = 0;
      if (!se.get(iv)) score = static_cast<double>(iv);
      else if (se.get(score)) j.wrong(path + "[1]", "a number", se);
      m.vocab.emplace_back(j.str(pair.at(0).value(), path + "[0]"), detail::serde_json_f64(score));
    }
    if (m.vocab.empty()) j.fail(errc::model_file_malformed, "key 'model.vocab' is empty (expected at least the unk piece)");
    if (m.unk_id && *m.unk_id >= m.vocab.size())
      j.fail(errc::model_file_malformed, "key 'model.unk_id' is " + std::to_string(*m.unk_id) +
                                             " (expected an index below the vocabulary size " + std::to_string(m.vocab.size()) + ")");
  } else {
    j.unsupported("model.type", type, "WordPiece, BPE, Unigram");
  }

  if (auto e = j.opt(root, "normalizer"); e && !e->is_null())
    detail::parse_subword_normalizer(j, j.obj(*e, "normalizer"), "normalizer", cfg.normalizers);
  if (auto e = j.opt(root, "pre_tokenizer"); e && !e->is_null()) {
    detail::parse_subword_pre_tokenizer(j, j.obj(*e, "pre_tokenizer"), "pre_tokenizer", cfg.pre_tokenizers);
    cfg.byte_level_top = j.type_of(j.obj(*e, "pre_tokenizer"), "pre_tokenizer") == "ByteLevel";
  }
  {
    bool byte_level = false;
    for (const auto& p : cfg.pre_tokenizers) byte_level = byte_level || p.type == subword_pre_tokenizer::kind::byte_level;
    if (byte_level && cfg.pre_tokenizers.back().type != subword_pre_tokenizer::kind::byte_level)
      j.fail(errc::model_unsupported, "key 'pre_tokenizer': a ByteLevel pre-tokenizer must come last (nerpipe maps bytes in the model)");
    if (byte_level && cfg.model != subword_config::model_kind::bpe)
      j.fail(errc::model_unsupported, "key 'pre_tokenizer': ByteLevel is supported with a BPE model only");
    if (byte_level && cfg.bpe.byte_fallback)
      j.fail(errc::model_unsupported, "key 'model.byte_fallback' is true with a ByteLevel pre-tokenizer (not supported)");
  }

  if (auto e = j.opt(root, "added_tokens"); e && !e->is_null()) {
    std::size_t k = 0;
    for (const simdjson::dom::element item : j.arr(*e, "added_tokens")) {
      const std::string path = "added_tokens[" + std::to_string(k++) + "]";
      const simdjson::dom::object o = j.obj(item, path);
      subword_added_token a;
      a.content = j.str(j.req(o, "content", path + ".content"), path + ".content");
      a.id = j.token_id(j.req(o, "id", path + ".id"), path + ".id");
      a.special = j.boolean_or(o, "special", path + ".special", false);
      a.single_word = j.boolean_or(o, "single_word", path + ".single_word", false);
      a.lstrip = j.boolean_or(o, "lstrip", path + ".lstrip", false);
      a.rstrip = j.boolean_or(o, "rstrip", path + ".rstrip", false);
      a.normalized = j.boolean_or(o, "normalized", path + ".normalized", !a.special);
      cfg.added_tokens.push_back(std::move(a));
    }
  }

  if (auto e = j.opt(root, "post_processor"); e && !e->is_null()) {
    const simdjson::dom::object pp = j.obj(*e, "post_processor");
    const std::string ptype = j.type_of(pp, "post_processor");
    cfg.post_processor_type = ptype;
    auto pair_id = [&](const char* key) {
      const std::string path = std::string("post_processor.") + key;
      const simdjson::dom::array a = j.arr(j.req(pp, key, path), path);
      if (a.size() != 2) j.fail(errc::model_file_malformed, "key '" + path + "' has " + std::to_string(a.size()) + " elements (expected [token, id])");
      template_piece p;
      p.ids.push_back(j.token_id(a.at(1).value(), path + "[1]"));
      return p;
    };
    if (ptype == "RobertaProcessing" || ptype == "BertProcessing") {
      cfg.single_template.push_back(pair_id("cls"));
      template_piece seq;
      seq.is_sequence = true;
      cfg.single_template.push_back(seq);
      cfg.single_template.push_back(pair_id("sep"));
      if (ptype == "RobertaProcessing") {
        cfg.trim_offsets = j.boolean_or(pp, "trim_offsets", "post_processor.trim_offsets", true);
        cfg.trim_add_prefix_space = j.boolean_or(pp, "add_prefix_space", "post_processor.add_prefix_space", true);
      }
    } else if (ptype == "ByteLevel") {
      cfg.trim_offsets = j.boolean_or(pp, "trim_offsets", "post_processor.trim_offsets", true);
      cfg.trim_add_prefix_space = j.boolean_or(pp, "add_prefix_space", "post_processor.add_prefix_space", true);
    } else if (ptype == "TemplateProcessing") {
      // The single-sequence template, read as the WordPiece loader does.
      std::string wrapped = "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"x\":0}},\"post_processor\":";
      wrapped += simdjson::minify(*e);
      wrapped += "}";
      cfg.single_template = parse_tokenizer_json(wrapped, file).single_template;
    } else {
      j.unsupported("post_processor.type", ptype, "RobertaProcessing, ByteLevel, TemplateProcessing, BertProcessing (or null)");
    }
  }

  if (info) {
    if (auto e = j.opt(root, "decoder"); e && !e->is_null()) info->decoder_type = j.type_of(j.obj(*e, "decoder"), "decoder");
  }
  return cfg;
}

/// The model.type of a tokenizer.json text ("WordPiece", "BPE", "Unigram", ...; the legacy shape-based guess
/// when the key is absent).
[[nodiscard]] inline std::string tokenizer_json_model_type(std::string_view json, const std::string& file) {
  const detail::tok_json j{file};
  simdjson::dom::parser parser;
  const simdjson::dom::object root = j.obj(j.parse(parser, json), "(root)");
  const simdjson::dom::object model = j.obj(j.req(root, "model", "model"), "model");
  if (auto t = j.opt(model, "type")) return j.str(*t, "model.type");
  if (j.opt(model, "merges")) return "BPE";
  if (j.opt(model, "continuing_subword_prefix")) return "WordPiece";
  return "(absent)";
}

/// Applies tokenizer_config.json the way transformers 4.57.6's fast tokenizers do for BPE / Unigram files:
/// model_max_length and truncation_side are read (as for WordPiece); every fast tokenizer resets a top-level
/// ByteLevel pre-tokenizer's add_prefix_space to the config's `add_prefix_space` (default false), and the
/// RoBERTa-like classes (Roberta, Bart, Blenderbot, LayoutLMv3, LED, Longformer, Mvp) also reset the
/// RobertaProcessing / ByteLevel post-processor's add_prefix_space (default false) and trim_offsets (default true).
inline void apply_subword_tokenizer_config(std::string_view json, const std::string& file, subword_config& cfg,
                                           hf_tokenizer_info& info) {
  wordpiece_config unused;  // no BERT normalizer to override here
  apply_tokenizer_config(json, file, unused, info);
  const detail::tok_json j{file};
  simdjson::dom::parser parser;
  const std::string tamed = detail::tame_big_integers(json);
  const simdjson::dom::object root = j.obj(j.parse(parser, tamed), "(root)");
  const bool add_prefix_space = j.boolean_or(root, "add_prefix_space", "add_prefix_space", false);
  const bool trim_offsets = j.boolean_or(root, "trim_offsets", "trim_offsets", true);
  if (cfg.byte_level_top && !cfg.pre_tokenizers.empty()) cfg.pre_tokenizers.front().add_prefix_space = add_prefix_space;
  std::string cls = info.tokenizer_class;
  if (cls.size() > 4 && cls.compare(cls.size() - 4, 4, "Fast") == 0) cls.resize(cls.size() - 4);
  static constexpr std::string_view roberta_like[] = {"RobertaTokenizer", "BartTokenizer", "BlenderbotTokenizer",
                                                      "LayoutLMv3Tokenizer", "LEDTokenizer", "LongformerTokenizer",
                                                      "MvpTokenizer"};
  bool family = false;
  for (const auto name : roberta_like) family = family || cls == name;
  if (family && (cfg.post_processor_type == "RobertaProcessing" || cfg.post_processor_type == "ByteLevel")) {
    cfg.trim_add_prefix_space = add_prefix_space;
    cfg.trim_offsets = trim_offsets;
  }
}

/// A tokenizer directory of any supported model type, loaded.
struct loaded_tokenizer {
  any_tokenizer tokenizer;
  hf_tokenizer_info info;
};

/// Loads `dir`/tokenizer.json (+ tokenizer_config.json): WordPiece through load_hf_tokenizer (unchanged
/// behaviour), BPE and Unigram through parse_subword_tokenizer_json + apply_subword_tokenizer_config.
/// Without tokenizer_config.json, tokenizer.json is honoured as written.
[[nodiscard]] inline loaded_tokenizer load_any_tokenizer(const std::filesystem::path& dir) {
  const std::filesystem::path tj = dir / "tokenizer.json";
  const std::string text = detail::read_text_file(tj, "a Hugging Face fast tokenizer file");
  const std::string type = tokenizer_json_model_type(text, tj.string());
  if (type == "WordPiece") {
    hf_tokenizer wp = load_hf_tokenizer(dir);
    return loaded_tokenizer{any_tokenizer(std::move(wp.tokenizer)), std::move(wp.info)};
  }
  hf_tokenizer_info info;
  subword_config cfg = parse_subword_tokenizer_json(text, tj.string(), &info);
  const std::filesystem::path tc = dir / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::is_regular_file(tc, ec))
    apply_subword_tokenizer_config(detail::read_text_file(tc, "a JSON object"), tc.string(), cfg, info);
  return loaded_tokenizer{any_tokenizer(subword_tokenizer(std::move(cfg))), std::move(info)};
}

NERPIPE_NAMESPACE_END
