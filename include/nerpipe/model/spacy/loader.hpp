// SPDX-License-Identifier: Apache-2.0
//! @file Loads a spaCy 3.x pipeline directory (as `nlp.to_disk` writes it) into host memory for the NER.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/utf8.hpp>
#include <nerpipe/model/spacy/config.hpp>
#include <nerpipe/model/spacy/msgpack.hpp>
#include <nerpipe/tokenizer/spacy/rules.hpp>
#include <nerpipe/tokenizer/spacy/string_id.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN
namespace spacy {

using detail::float_array;

/// Maxout (W: nO x nP x nI, b: nO x nP) followed by LayerNorm (G, b: nO).
struct maxout_layer_norm {
  float_array W, b, G, beta;
  std::size_t nO = 0, nP = 0, nI = 0;
};

/// One HashEmbed table of MultiHashEmbed.
struct hash_embed_table {
  float_array E;      // nV x nO
  std::uint32_t seed = 0;
  std::size_t column = 0;
  std::string attr;   // NORM, PREFIX, SUFFIX or SHAPE
};

/// Static vectors (md/lg): table, key -> row, and the projection W (nO x width); no bias.
struct static_vectors {
  float_array data;                                  // rows x width
  std::unordered_map<std::uint64_t, std::int64_t> key2row;
  float_array W;                                     // nO x width
};

/// Weights of `spacy.TransitionBasedParser.v2` (state_type ner) with its own Tok2Vec.v2.
struct ner_weights {
  std::size_t width = 96;                 // tok2vec width
  std::vector<hash_embed_table> embeds;   // in attrs order
  bool has_static_vectors = false;
  static_vectors vectors;
  maxout_layer_norm mix;                  // embed mixer
  std::vector<maxout_layer_norm> encoder; // depth layers
  std::size_t window = 1, pad = 4;
  float_array proj_W, proj_b;             // hidden x width, hidden
  float_array lower_W, lower_b, lower_pad;// (nF, nH, nP, nI), (nH, nP), (1, nF, nH, nP)
  std::size_t nF = 3, nH = 64, nP = 2;
  std::size_t nI = 64;                    // the projection's width, the lower layer's input (hidden_width)
  float_array upper_W, upper_b;           // (n_actions, nH), (n_actions)
};

/// BILUO move codes of spaCy's ner.pyx.
enum class move : std::uint8_t { missing = 0, begin = 1, in = 2, last = 3, unit = 4, out = 5 };

/// One output class of the NER: a move and its label ("" for O and the blocked U).
struct ner_action {
  move mv = move::out;
  std::string label;
};

}  // namespace spacy

/// A loaded spaCy pipeline: what the NER-only pipeline needs, in host memory.
struct spacy_model {
  std::filesystem::path dir;
  std::string lang, name, version;
  spacy::tokenizer_rules tokenizer;
  std::unordered_map<std::uint64_t, std::string> lexeme_norm;  // vocab/lookups.bin
  spacy::ner_weights ner;
  std::vector<spacy::ner_action> actions;  // class index -> move + label
  std::vector<std::string> labels;         // entity labels in first-seen class order
  /// The component whose output the NER's tok2vec listens to (a spacy-transformers `transformer`, whose
  /// pooled rows are ner.width wide), or empty: the NER has its own Tok2Vec (embeds, mix, encoder).
  std::string listens_to;
};

namespace spacy::detail {

inline void require(bool ok, errc code, const std::string& msg) {
  if (!ok) NERPIPE_THROW(model_error(code, msg));
}

inline tokenizer_rules load_tokenizer(const std::filesystem::path& path) {
  const std::string bytes = read_file(path, "the tokenizer");
  msgpack_doc doc(path.string(), bytes.data(), bytes.size());
  const auto& root = doc.root();
  doc.expect(root, msgpack::type::MAP, "the tokenizer file");
  tokenizer_rules r;
  auto pattern = [&](std::string_view key, std::string& out) {
    const auto* v = msgpack_doc::find(root, key);
    if (v == nullptr || v->type == msgpack::type::NIL) return;
    out = std::string(doc.str(*v, key));
  };
  pattern("prefix_search", r.prefix_search);
  pattern("suffix_search", r.suffix_search);
  pattern("infix_finditer", r.infix_finditer);
  pattern("token_match", r.token_match);
  pattern("url_match", r.url_match);
  // PCRE2 runs with PCRE2_NO_UTF_CHECK, so every string that reaches it is checked here once.
  for (const std::string* p : {&r.prefix_search, &r.suffix_search, &r.infix_finditer, &r.token_match, &r.url_match})
    if (!utf8::is_valid(*p)) doc.malformed("a tokenizer pattern is not valid UTF-8", "UTF-8", "invalid bytes");
  if (const auto* fh = msgpack_doc::find(root, "faster_heuristics"); fh && fh->type == msgpack::type::BOOLEAN)
    r.faster_heuristics = fh->via.boolean;
  const auto& exc = doc.at(root, "exceptions", "the tokenizer");
  doc.expect(exc, msgpack::type::MAP, "exceptions");
  r.exceptions.reserve(exc.via.map.size);
  for (std::uint32_t i = 0; i < exc.via.map.size; ++i) {
    const auto& kv = exc.via.map.ptr[i];
    std::string key(doc.str(kv.key, "an exception key"));
    if (!utf8::is_valid(key)) doc.malformed("an exception key is not valid UTF-8", "UTF-8", "invalid bytes");
    doc.expect(kv.val, msgpack::type::ARRAY, "exception '" + key + "'");
    std::vector<special_token> toks;
    for (std::uint32_t j = 0; j < kv.val.via.array.size; ++j) {
      const auto& m = kv.val.via.array.ptr[j];
      doc.expect(m, msgpack::type::MAP, "a token of exception '" + key + "'");
      special_token t;
      bool has_orth = false;
      for (std::uint32_t a = 0; a < m.via.map.size; ++a) {
        const auto attr = doc.integer(m.via.map.ptr[a].key, "an exception attribute id");
        if (attr == 65) {  // ORTH
          t.orth = std::string(doc.str(m.via.map.ptr[a].val, "ORTH"));
          has_orth = true;
        } else if (attr == 67) {  // NORM
          t.norm = std::string(doc.str(m.via.map.ptr[a].val, "NORM"));
          t.has_norm = true;
        }
        // Other attributes do not reach the NER's features.
      }
      if (!has_orth) doc.malformed("a token of exception '" + key + "' has no ORTH (65)", "key 65", "none");
      if (!utf8::is_valid(t.orth) || !utf8::is_valid(t.norm)) doc.malformed("exception '" + key + "' is not valid UTF-8", "UTF-8", "invalid bytes");
      toks.push_back(std::move(t));
    }
    std::string joined;
    for (const auto& t : toks) joined += t.orth;
    if (joined != key) doc.malformed("exception '" + key + "': its ORTH values do not spell the key", "'" + key + "'", "'" + joined + "'");
    r.exceptions.emplace_back(std::move(key), std::move(toks));
  }
  return r;
}

inline std::unordered_map<std::uint64_t, std::string> load_lexeme_norm(const std::filesystem::path& path) {
  std::unordered_map<std::uint64_t, std::string> out;
  if (!std::filesystem::exists(path)) return out;  // a pipeline without lookups uses lower()
  const std::string bytes = read_file(path, "the lookups");
  msgpack_doc doc(path.string(), bytes.data(), bytes.size());
  doc.expect(doc.root(), msgpack::type::MAP, "the lookups file");
  const auto* table = msgpack_doc::find(doc.root(), "lexeme_norm");
  if (table == nullptr) return out;
  doc.expect(*table, msgpack::type::MAP, "lexeme_norm");
  out.reserve(table->via.map.size);
  for (std::uint32_t i = 0; i < table->via.map.size; ++i) {
    const auto& kv = table->via.map.ptr[i];
    out.emplace(doc.uinteger(kv.key, "a lexeme_norm key"), std::string(doc.str(kv.val, "a lexeme_norm value")));
  }
  return out;
}

/// The (move id, label) pairs of a transition system's moves file (ner/moves, parser/moves) in spaCy's class order
/// (TransitionSystem.initialize_actions): move ids sorted as strings; within one, labels by (frequency, label)
/// descending; labels with a negative frequency (added with add_label and not seen in the initialising examples)
/// deferred after all others, by (frequency, label) descending, each with the moves it had in the order seen. A pair
/// may repeat: the caller's add_action is idempotent, as spaCy's is. Move ids are single digits 0..max_id.
inline std::vector<std::pair<int, std::string>> moves_in_class_order(const std::filesystem::path& path, const std::string& what,
                                                                    int max_id, const std::string& ids_hint) {
  const std::string bytes = read_file(path, "the " + what + " moves");
  msgpack_doc doc(path.string(), bytes.data(), bytes.size());
  const auto moves_json = doc.str(doc.at(doc.root(), "moves", path.parent_path().filename().string() + "/moves"), "moves");
  const json_value moves = parse_json(moves_json, path.string() + " (moves)");
  require(moves.type == json_value::kind::object, errc::model_file_malformed,
          path.string() + ": moves is not a JSON object, expected {action: {label: freq}}");
  std::vector<std::pair<std::string, const json_value*>> by_action;
  for (const auto& [k, v] : moves.members) by_action.emplace_back(k, &v);
  std::sort(by_action.begin(), by_action.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<int, std::string>> out;
  std::vector<std::pair<double, std::string>> deferred;
  std::vector<std::pair<std::string, int>> deferred_actions;  // label -> move id, in the order seen
  for (const auto& [k, v] : by_action) {
    const bool digit = k.size() == 1 && k[0] >= '0' && k[0] - '0' <= max_id;
    require(digit, errc::model_file_malformed, path.string() + ": move id '" + k + "', expected " + ids_hint);
    require(v->type == json_value::kind::object, errc::model_file_malformed,
            path.string() + ": labels of move " + k + " are not a JSON object");
    const int code = k[0] - '0';
    std::vector<std::pair<double, std::string>> labels;
    for (const auto& [label, freq] : v->members) {
      require(freq.type == json_value::kind::number, errc::model_file_malformed,
              path.string() + ": frequency of " + label + " is not a number");
      labels.emplace_back(freq.num, label);
    }
    std::sort(labels.begin(), labels.end());
    std::reverse(labels.begin(), labels.end());
    for (const auto& [freq, label] : labels) {
      if (freq < 0) {
        deferred.emplace_back(freq, label);
        deferred_actions.emplace_back(label, code);
      } else {
        out.emplace_back(code, label);
      }
    }
  }
  std::sort(deferred.begin(), deferred.end());
  std::reverse(deferred.begin(), deferred.end());
  for (const auto& [freq, label] : deferred)
    for (const auto& [l, code] : deferred_actions)
      if (l == label) out.emplace_back(code, label);
  return out;
}

/// ner/moves -> class list, in spaCy's order (moves_in_class_order); MISSING and OUT-with-label skipped.
inline std::vector<ner_action> load_moves(const std::filesystem::path& path) {
  std::vector<ner_action> out;
  for (const auto& [code, label] : moves_in_class_order(path, "NER", 5, "0..5")) {
    const auto mv = static_cast<move>(code);
    if (mv == move::missing || (mv == move::out && !label.empty())) continue;
    bool seen = false;  // add_action is idempotent
    for (const auto& a : out) seen = seen || (a.mv == mv && a.label == label);
    if (!seen) out.push_back({mv, label});
  }
  return out;
}

/// Parsed thinc model file: node names, dims, attrs and params, in walk (BFS) order.
struct thinc_node {
  std::string name;
  std::vector<std::pair<std::string, std::int64_t>> dims;
  std::vector<std::pair<std::string, std::int64_t>> int_attrs;  // attrs that are msgpack ints/bools
  std::vector<std::pair<std::string, float_array>> params;
  [[nodiscard]] const float_array* param(std::string_view n) const {
    for (const auto& [k, v] : params)
      if (k == n) return &v;
    return nullptr;
  }
  bool attr(std::string_view n, std::int64_t& out) const {
    for (const auto& [k, v] : int_attrs)
      if (k == n) {
        out = v;
        return true;
      }
    return false;
  }
};

inline std::vector<thinc_node> load_thinc(const std::filesystem::path& path) {
  const std::string bytes = read_file(path, "the thinc model");
  msgpack_doc doc(path.string(), bytes.data(), bytes.size());
  const auto& nodes = doc.at(doc.root(), "nodes", "the model");
  const auto& attrs = doc.at(doc.root(), "attrs", "the model");
  const auto& params = doc.at(doc.root(), "params", "the model");
  doc.expect(nodes, msgpack::type::ARRAY, "nodes");
  doc.expect(attrs, msgpack::type::ARRAY, "attrs");
  doc.expect(params, msgpack::type::ARRAY, "params");
  const auto n = nodes.via.array.size;
  if (attrs.via.array.size != n || params.via.array.size != n) {
    doc.malformed("nodes/attrs/params lengths differ", std::to_string(n) + " each",
                  std::to_string(attrs.via.array.size) + " attrs, " + std::to_string(params.via.array.size) + " params");
  }
  std::vector<thinc_node> out(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto& nd = nodes.via.array.ptr[i];
    out[i].name = std::string(doc.str(doc.at(nd, "name", "a node"), "node name"));
    const std::string where = "node " + std::to_string(i) + " (" + out[i].name + ")";
    if (const auto* dims = msgpack_doc::find(nd, "dims"); dims && dims->type == msgpack::type::MAP) {
      for (std::uint32_t d = 0; d < dims->via.map.size; ++d) {
        const auto& kv = dims->via.map.ptr[d];
        if (kv.val.type == msgpack::type::POSITIVE_INTEGER)
          out[i].dims.emplace_back(std::string(doc.str(kv.key, where)), static_cast<std::int64_t>(kv.val.via.u64));
      }
    }
    const auto& am = attrs.via.array.ptr[i];
    doc.expect(am, msgpack::type::MAP, where + " attrs");
    for (std::uint32_t a = 0; a < am.via.map.size; ++a) {
      const auto& kv = am.via.map.ptr[a];
      const auto inner = doc.str(kv.val, where + " attr");  // each attr is msgpack bytes of its own
      msgpack_doc sub(doc.file() + " " + where + " attr", inner.data(), inner.size());
      const auto& v = sub.root();
      if (v.type == msgpack::type::POSITIVE_INTEGER || v.type == msgpack::type::NEGATIVE_INTEGER)
        out[i].int_attrs.emplace_back(std::string(doc.str(kv.key, where)), sub.integer(v, where));
      else if (v.type == msgpack::type::BOOLEAN)
        out[i].int_attrs.emplace_back(std::string(doc.str(kv.key, where)), v.via.boolean ? 1 : 0);
    }
    const auto& pm = params.via.array.ptr[i];
    doc.expect(pm, msgpack::type::MAP, where + " params");
    for (std::uint32_t p = 0; p < pm.via.map.size; ++p) {
      const auto& kv = pm.via.map.ptr[p];
      std::string pname(doc.str(kv.key, where));
      if (kv.val.type == msgpack::type::NIL) {
        NERPIPE_THROW(model_error(errc::model_tensor_missing,
                                  path.string() + ": " + where + " parameter '" + pname + "' is not set (untrained model?)"));
      }
      out[i].params.emplace_back(pname, decode_array(doc, kv.val, where + " param '" + pname + "'"));
    }
  }
  return out;
}

inline void check_shape(const std::filesystem::path& file, const std::string& what, const float_array& a,
                        std::vector<std::size_t> want) {
  if (a.shape != want) {
    float_array w;
    w.shape = std::move(want);
    NERPIPE_THROW(model_error(errc::model_shape_mismatch, file.string() + ": " + what + " has shape " + a.shape_string() +
                                                              ", expected " + w.shape_string() + " from config.cfg"));
  }
}

/// Reads a NumPy .npy (v1/v2/v3) float32 little-endian C-order 2-D array.
inline float_array load_npy(const std::filesystem::path& path) {
  const std::string bytes = read_file(path, "the vectors");
  auto bad = [&](const std::string& what, const std::string& exp) {
    NERPIPE_THROW(model_error(errc::model_file_malformed, path.string() + ": " + what + ", expected " + exp));
  };
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) bad("not a .npy file", "the \\x93NUMPY magic");
  const int major = static_cast<unsigned char>(bytes[6]);
  std::size_t hlen = 0, off = 0;
  if (major == 1) {
    hlen = static_cast<unsigned char>(bytes[8]) | (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    off = 10;
  } else {
    if (bytes.size() < 12) bad("truncated header", "12 bytes");
    for (int k = 0; k < 4; ++k) hlen |= static_cast<std::size_t>(static_cast<unsigned char>(bytes[8 + k])) << (8 * k);
    off = 12;
  }
  if (off + hlen > bytes.size()) bad("truncated header", std::to_string(off + hlen) + " bytes");
  const std::string header = bytes.substr(off, hlen);
  if (header.find("'descr': '<f4'") == std::string::npos) {
    NERPIPE_THROW(model_error(errc::model_dtype_unsupported, path.string() + ": dtype in header " + header + ", expected '<f4'"));
  }
  if (header.find("'fortran_order': False") == std::string::npos) bad("Fortran order", "C order");
  const auto sp = header.find("'shape': (");
  if (sp == std::string::npos) bad("no shape in header", "'shape': (rows, cols)");
  float_array a;
  std::size_t pos = sp + 10;
  // "(rows, cols)" or "(n,)": digits separated by commas and blanks; anything else is malformed.
  for (;;) {
    while (pos < header.size() && (header[pos] == ' ' || header[pos] == ',')) ++pos;
    if (pos >= header.size()) bad("unterminated shape", "'shape': (rows, cols)");
    if (header[pos] == ')') break;
    if (header[pos] < '0' || header[pos] > '9') bad("a shape entry that is not a number", "'shape': (rows, cols)");
    std::size_t v = 0;
    while (pos < header.size() && header[pos] >= '0' && header[pos] <= '9') {
      if (__builtin_mul_overflow(v, std::size_t{10}, &v) || __builtin_add_overflow(v, static_cast<std::size_t>(header[pos++] - '0'), &v))
        bad("a shape entry too large", "a size that fits in memory");
    }
    a.shape.push_back(v);
    if (a.shape.size() > 8) bad("more than 8 dimensions", "'shape': (rows, cols)");
  }
  std::size_t n = 1;
  for (auto d : a.shape)
    if (__builtin_mul_overflow(n, d, &n)) bad("a shape too large", "a size that fits in memory");
  if (n > (bytes.size() - off - hlen) / 4 || bytes.size() - off - hlen != n * 4)
    bad("data size does not match the shape", std::to_string(n) + " floats (" + std::to_string(bytes.size() - off - hlen) + " bytes of data)");
  a.data.resize(n);
  if (n) std::memcpy(a.data.data(), bytes.data() + off + hlen, n * 4);
  return a;
}

/// vocab/key2row: string id -> row of the vectors table. Every row must index the table (`rows` rows):
/// a row past the end would be read out of bounds, a negative one would pick another word's vector.
[[nodiscard]] inline std::unordered_map<std::uint64_t, std::int64_t> load_key2row(const std::filesystem::path& path, std::size_t rows) {
  const std::string bytes = read_file(path, "key2row");
  msgpack_doc doc(path.string(), bytes.data(), bytes.size());
  doc.expect(doc.root(), msgpack::type::MAP, "key2row");
  std::unordered_map<std::uint64_t, std::int64_t> out;
  out.reserve(doc.root().via.map.size);
  for (std::uint32_t i = 0; i < doc.root().via.map.size; ++i) {
    const auto& kv = doc.root().via.map.ptr[i];
    const std::uint64_t key = doc.uinteger(kv.key, "a key2row key");
    const std::int64_t row = doc.integer(kv.val, "a key2row row");
    if (row < 0 || static_cast<std::uint64_t>(row) >= rows)
      doc.malformed("key " + std::to_string(key) + " maps to row " + std::to_string(row), "a row of the vectors table (0.." +
                                                                                             std::to_string(rows) + ")",
                    "row " + std::to_string(row) + " of a table with " + std::to_string(rows) + " rows");
    out.emplace(key, row);
  }
  return out;
}

/// A positive size from config.cfg, at most `limit`; model_error naming the key otherwise.
inline std::size_t config_size(const config_file& cfg, const std::string& section, const std::string& key, std::size_t min,
                               std::size_t limit) {
  const std::int64_t v = cfg.get_int(section, key);
  if (v < static_cast<std::int64_t>(min) || static_cast<std::uint64_t>(v) > limit)
    NERPIPE_THROW(model_error(errc::model_file_malformed, cfg.file() + ": [" + section + "] " + key + " = " + std::to_string(v) +
                                                              ", expected " + std::to_string(min) + " to " + std::to_string(limit)));
  return static_cast<std::size_t>(v);
}

/// The NER of a spaCy transformer pipeline: TransitionBasedParser.v2 whose tok2vec is
/// spacy-transformers.TransformerListener.v1 (reduce_mean pooling of the `transformer` component's rows), so
/// ner/model holds only chain(listener, list2array, Linear(hidden_width)) and the lower (and upper) layers.
/// use_upper = false (en_core_web_trf): the lower layer's maxout gives the class scores itself (nO = the
/// classes); spaCy copies them as they are, which an identity upper layer with zero bias reproduces exactly
/// (x * 1 + 0 * others), so one decoder serves both.
inline void load_ner_listener(const std::filesystem::path& dir, const config_file& cfg, spacy_model& m) {
  const std::string M = "components.ner.model", T = M + ".tok2vec";
  const auto cfg_path = cfg.file();
  auto unsupported = [&](const std::string& what) { NERPIPE_THROW(model_error(errc::model_unsupported, cfg_path + ": " + what)); };
  // pooling: its own section (en_core_web_trf) or an inline {"@layers": ...} value.
  std::string pooling;
  if (cfg.has_section(T + ".pooling")) {
    pooling = cfg.get_string(T + ".pooling", "@layers");
  } else if (cfg.raw(T, "pooling") != nullptr) {
    const auto v = cfg.get(T, "pooling");
    if (const auto* l = v.find("@layers"); l != nullptr && l->type == json_value::kind::string) pooling = l->str;
  }
  if (pooling != "reduce_mean.v1")
    unsupported("[" + T + "] pooling \"" + pooling + "\" is not supported, expected {\"@layers\": \"reduce_mean.v1\"}");
  std::string upstream = cfg.get_string(T, "upstream");
  const auto pipeline = [&] {
    std::vector<std::string> names;
    if (cfg.raw("nlp", "pipeline") != nullptr)
      for (const auto& x : cfg.get("nlp", "pipeline").items) names.push_back(x.str);
    return names;
  }();
  auto is_transformer = [&](const std::string& name) {
    const std::string C = "components." + name;
    return cfg.has_section(C) && cfg.raw(C, "factory") != nullptr && cfg.get_string(C, "factory") == "transformer";
  };
  if (upstream == "*") {  // the nearest transformer component before the NER (spaCy's listener lookup)
    upstream.clear();
    for (std::size_t i = 0; i < pipeline.size() && pipeline[i] != "ner"; ++i)
      if (is_transformer(pipeline[i])) upstream = pipeline[i];
  }
  if (upstream.empty() || !is_transformer(upstream))
    unsupported("[" + T + "] upstream \"" + cfg.get_string(T, "upstream") + "\" is not a component with factory \"transformer\" before the ner");
  if (upstream.find('/') != std::string::npos || upstream.find("..") != std::string::npos)
    NERPIPE_THROW(model_error(errc::model_file_malformed, cfg_path + ": [" + T + "] upstream \"" + upstream + "\" is not a component name"));
  m.listens_to = upstream;
  constexpr std::size_t max_width = 1 << 16;
  const bool use_upper = cfg.get_bool(M, "use_upper");
  const auto hidden = config_size(cfg, M, "hidden_width", 1, max_width);
  const auto pieces = config_size(cfg, M, "maxout_pieces", 1, 64);
  if (pieces < (use_upper ? 2u : 1u))
    unsupported("[" + M + "] maxout_pieces = " + std::to_string(pieces) + " with use_upper = true is not supported, expected >= 2");
  const auto model_path = dir / "ner" / "model";
  auto nodes = load_thinc(model_path);
  std::vector<thinc_node*> linears, affines;
  for (auto& nd : nodes) {
    if (nd.name == "linear") linears.push_back(&nd);
    else if (nd.name == "precomputable_affine") affines.push_back(&nd);
    else if (!nd.params.empty())
      unsupported(model_path.string() + ": node '" + nd.name + "' has parameters; expected only the projection, lower and upper layers (a listening NER)");
  }
  if (linears.size() != (use_upper ? 2u : 1u) || affines.size() != 1)
    NERPIPE_THROW(model_error(errc::model_tensor_missing, model_path.string() + ": " + std::to_string(linears.size()) + " 'linear' and " +
                                                              std::to_string(affines.size()) + " 'precomputable_affine' nodes, expected " +
                                                              (use_upper ? "2" : "1") + " and 1"));
  auto param = [&](thinc_node* nd, const char* p) -> float_array& {
    for (auto& [k, v] : nd->params)
      if (k == p) return v;
    NERPIPE_THROW(model_error(errc::model_tensor_missing, model_path.string() + ": node '" + nd->name + "' has no parameter '" + p + "'"));
  };
  // Walk order puts the upper layer before the projection; the projection is the one hidden_width rows tall
  // whose input is the listener's width.
  thinc_node* proj = linears.back();
  thinc_node* up = use_upper ? linears.front() : nullptr;
  if (use_upper)
    if (const auto* W = up->param("W"); W && W->shape.size() == 2 && W->shape[0] == hidden && proj->param("W") &&
                                        proj->param("W")->shape.size() == 2 && proj->param("W")->shape[1] == hidden)
      std::swap(up, proj);
  auto& w = m.ner;
  w.proj_W = std::move(param(proj, "W"));
  w.proj_b = std::move(param(proj, "b"));
  if (w.proj_W.shape.size() != 2 || w.proj_W.shape[0] != hidden || w.proj_W.shape[1] == 0 || w.proj_W.shape[1] > max_width)
    NERPIPE_THROW(model_error(errc::model_shape_mismatch, model_path.string() + ": the projection W has shape " + w.proj_W.shape_string() +
                                                              ", expected (" + std::to_string(hidden) + ", transformer width)"));
  w.width = w.proj_W.shape[1];
  w.nF = 3;
  w.nI = hidden;
  w.nP = pieces;
  const std::size_t A = m.actions.size();
  w.nH = use_upper ? hidden : A;
  w.lower_W = std::move(param(affines[0], "W"));
  w.lower_b = std::move(param(affines[0], "b"));
  w.lower_pad = std::move(param(affines[0], "pad"));
  check_shape(model_path, "projection b", w.proj_b, {hidden});
  check_shape(model_path, "precomputable_affine W", w.lower_W, {w.nF, w.nH, pieces, hidden});
  check_shape(model_path, "precomputable_affine b", w.lower_b, {w.nH, pieces});
  check_shape(model_path, "precomputable_affine pad", w.lower_pad, {1, w.nF, w.nH, pieces});
  if (use_upper) {
    w.upper_W = std::move(param(up, "W"));
    w.upper_b = std::move(param(up, "b"));
    check_shape(model_path, "upper linear W (classes from ner/moves)", w.upper_W, {A, hidden});
    check_shape(model_path, "upper linear b", w.upper_b, {A});
  } else {
    w.upper_W.shape = {A, A};
    w.upper_W.data.assign(A * A, 0.0f);
    for (std::size_t c = 0; c < A; ++c) w.upper_W.data[c * A + c] = 1.0f;
    w.upper_b.shape = {A};
    w.upper_b.data.assign(A, 0.0f);
  }
}

inline void load_ner(const std::filesystem::path& dir, const config_file& cfg, spacy_model& m) {
  const std::string C = "components.ner";
  const auto cfg_path = cfg.file();
  auto unsupported = [&](const std::string& what) {
    NERPIPE_THROW(model_error(errc::model_unsupported, cfg_path + ": " + what));
  };
  if (!cfg.has_section(C)) {
    NERPIPE_THROW(model_error(errc::model_key_missing, cfg_path + ": no [components.ner] section, expected a pipeline with an 'ner' component"));
  }
  if (cfg.raw(C, "source") != nullptr) unsupported("[components.ner] is sourced from another pipeline; only a factory 'ner' component is supported");
  const auto factory = cfg.get_string(C, "factory");
  if (factory != "ner") unsupported("[components.ner] factory \"" + factory + "\" is not supported, expected \"ner\" (beam_ner etc. are not implemented)");
  const std::string M = C + ".model";
  const auto arch = cfg.get_string(M, "@architectures");
  if (arch != "spacy.TransitionBasedParser.v2" && arch != "spacy.TransitionBasedParser.v1")
    unsupported("[" + M + "] @architectures \"" + arch + "\" is not supported, expected \"spacy.TransitionBasedParser.v2\"");
  if (cfg.get_string(M, "state_type") != "ner") unsupported("[" + M + "] state_type must be \"ner\"");
  if (cfg.get_bool(M, "extra_state_tokens")) unsupported("[" + M + "] extra_state_tokens = true is not supported");
  const std::string T = M + ".tok2vec";
  const auto t2v = cfg.get_string(T, "@architectures");
  if (t2v == "spacy-transformers.TransformerListener.v1") return load_ner_listener(dir, cfg, m);
  if (!cfg.get_bool(M, "use_upper")) unsupported("[" + M + "] use_upper = false is not supported");
  // Sizes are bounded before they are multiplied (window widths, shapes) or allocated.
  constexpr std::size_t max_width = 1 << 16;
  const auto hidden = config_size(cfg, M, "hidden_width", 1, max_width);
  const auto pieces = config_size(cfg, M, "maxout_pieces", 0, 64);
  if (pieces < 2) unsupported("[" + M + "] maxout_pieces = " + std::to_string(pieces) + " is not supported, expected >= 2");
  if (t2v != "spacy.Tok2Vec.v2" && t2v != "spacy.Tok2Vec.v1")
    unsupported("[" + T + "] @architectures \"" + t2v + "\" is not supported, expected \"spacy.Tok2Vec.v2\" (an NER with its own tok2vec; listeners are not implemented)");
  const std::string E = T + ".embed", N = T + ".encode";
  const auto earch = cfg.get_string(E, "@architectures");
  if (earch != "spacy.MultiHashEmbed.v2") unsupported("[" + E + "] @architectures \"" + earch + "\" is not supported, expected \"spacy.MultiHashEmbed.v2\"");
  const auto narch = cfg.get_string(N, "@architectures");
  if (narch != "spacy.MaxoutWindowEncoder.v2") unsupported("[" + N + "] @architectures \"" + narch + "\" is not supported, expected \"spacy.MaxoutWindowEncoder.v2\"");
  const auto width = config_size(cfg, N, "width", 1, max_width);
  const auto depth = config_size(cfg, N, "depth", 0, 64);
  const auto window = config_size(cfg, N, "window_size", 0, 64);
  const auto enc_pieces = config_size(cfg, N, "maxout_pieces", 1, 64);
  const auto attrs_v = cfg.get(E, "attrs");
  const auto rows_v = cfg.get(E, "rows");
  const bool static_vecs = cfg.get_bool(E, "include_static_vectors");
  std::vector<std::string> attrs;
  for (const auto& a : attrs_v.items) {
    if (a.str != "NORM" && a.str != "PREFIX" && a.str != "SUFFIX" && a.str != "SHAPE")
      unsupported("[" + E + "] attrs contains \"" + a.str + "\", only NORM, PREFIX, SUFFIX, SHAPE are supported");
    attrs.push_back(a.str);
  }
  if (attrs.empty() || rows_v.items.size() != attrs.size())
    NERPIPE_THROW(model_error(errc::model_file_malformed, cfg_path + ": [" + E + "] attrs and rows must be non-empty lists of equal length"));
  // Hashed ids are taken modulo the rows (32-bit on the device): 1 to 2^32-1 rows.
  for (const auto& r : rows_v.items)
    if (r.type != json_value::kind::number || !(r.num >= 1 && r.num <= 4294967295.0) || r.num != static_cast<double>(static_cast<std::uint64_t>(r.num)))
      NERPIPE_THROW(model_error(errc::model_file_malformed, cfg_path + ": [" + E + "] rows holds a value that is not a whole number from 1 to 2^32-1"));

  const auto model_path = dir / "ner" / "model";
  auto nodes = load_thinc(model_path);
  auto& w = m.ner;
  w.width = width;
  w.window = window;
  w.nH = hidden;
  w.nI = hidden;
  w.nP = pieces;
  w.nF = 3;
  // Pick parameterised nodes by name in walk order (robust to index shifts).
  std::vector<thinc_node*> hashembeds, maxouts, layernorms, linears, affines, statics;
  std::int64_t pad = -1;
  for (auto& nd : nodes) {
    if (nd.name == "hashembed") hashembeds.push_back(&nd);
    else if (nd.name == "maxout") maxouts.push_back(&nd);
    else if (nd.name == "layernorm") layernorms.push_back(&nd);
    else if (nd.name == "linear") linears.push_back(&nd);
    else if (nd.name == "precomputable_affine") affines.push_back(&nd);
    else if (nd.name == "static_vectors") statics.push_back(&nd);
    else if (nd.name.rfind("with_array(residual(", 0) == 0) nd.attr("pad", pad);
  }
  auto count = [&](const char* what, std::size_t got, std::size_t want) {
    if (got != want)
      NERPIPE_THROW(model_error(errc::model_tensor_missing, model_path.string() + ": " + std::to_string(got) + " '" + what +
                                                                "' nodes, expected " + std::to_string(want) + " from config.cfg"));
  };
  count("hashembed", hashembeds.size(), attrs.size());
  count("maxout", maxouts.size(), depth + 1);
  count("layernorm", layernorms.size(), depth + 1);
  count("linear", linears.size(), 2);
  count("precomputable_affine", affines.size(), 1);
  count("static_vectors", statics.size(), static_vecs ? 1 : 0);
  if (pad != static_cast<std::int64_t>(depth * window)) {
    if (pad < 0) pad = 0;
    unsupported(model_path.string() + ": encoder pad " + std::to_string(pad) + " is not supported, expected depth*window = " +
                std::to_string(depth * window));
  }
  w.pad = static_cast<std::size_t>(pad);
  auto param = [&](thinc_node* nd, const char* p) -> float_array& {
    for (auto& [k, v] : nd->params)
      if (k == p) return v;
    NERPIPE_THROW(model_error(errc::model_tensor_missing, model_path.string() + ": node '" + nd->name + "' has no parameter '" + p + "'"));
  };
  for (std::size_t i = 0; i < attrs.size(); ++i) {
    hash_embed_table t;
    t.E = std::move(param(hashembeds[i], "E"));
    std::int64_t seed = 0, column = static_cast<std::int64_t>(i);
    if (!hashembeds[i]->attr("seed", seed))
      NERPIPE_THROW(model_error(errc::model_file_malformed, model_path.string() + ": hashembed " + std::to_string(i) + " has no 'seed' attr"));
    hashembeds[i]->attr("column", column);
    if (column != static_cast<std::int64_t>(i)) unsupported(model_path.string() + ": hashembed columns out of order");
    t.seed = static_cast<std::uint32_t>(seed);
    t.column = static_cast<std::size_t>(column);
    t.attr = attrs[i];
    check_shape(model_path, "hashembed " + attrs[i] + " E", t.E, {static_cast<std::size_t>(rows_v.items[i].num), width});
    if (seed < 0 || seed > static_cast<std::int64_t>(UINT32_MAX))
      NERPIPE_THROW(model_error(errc::model_file_malformed, model_path.string() + ": hashembed " + std::to_string(i) + " seed " +
                                                                std::to_string(seed) + ", expected 0 to 2^32-1"));
    w.embeds.push_back(std::move(t));
  }
  std::size_t mix_in = width * attrs.size();
  if (static_vecs) {
    w.has_static_vectors = true;
    w.vectors.W = std::move(param(statics[0], "W"));
    w.vectors.data = load_npy(dir / "vocab" / "vectors");
    if (w.vectors.data.shape.size() != 2) NERPIPE_THROW(model_error(errc::model_file_malformed, (dir / "vocab" / "vectors").string() + ": expected a 2-D table"));
    // Words without a vector read row -1 (the last row) before being zeroed: the table needs a row; rows are
    // indexed with 32-bit ids on the device.
    if (w.vectors.data.shape[0] == 0 || w.vectors.data.shape[0] > static_cast<std::size_t>(INT32_MAX) || w.vectors.data.shape[1] == 0)
      NERPIPE_THROW(model_error(errc::model_file_malformed, (dir / "vocab" / "vectors").string() + ": the table has shape " +
                                                                w.vectors.data.shape_string() + ", expected 1 to 2^31-1 rows of at least one column"));
    check_shape(model_path, "static_vectors W", w.vectors.W, {width, w.vectors.data.shape[1]});
    const auto kpath = dir / "vocab" / "key2row";
    w.vectors.key2row = load_key2row(kpath, w.vectors.data.shape[0]);
    const std::string vcfg_path = (dir / "vocab" / "vectors.cfg").string();
    if (std::filesystem::exists(vcfg_path)) {
      const auto vcfg = parse_json(read_file(vcfg_path, "vectors.cfg"), vcfg_path);
      if (const auto* mode = vcfg.find("mode"); mode && mode->str != "default")
        unsupported(vcfg_path + ": vectors mode \"" + mode->str + "\" is not supported, expected \"default\"");
      if (const auto* attr = vcfg.find("attr"); attr && attr->str != "ORTH")
        unsupported(vcfg_path + ": vectors attr \"" + attr->str + "\" is not supported, expected \"ORTH\"");
    }
    mix_in += width;
  }
  auto take_ml = [&](std::size_t k, std::size_t nI, std::size_t nP, const std::string& what) {
    maxout_layer_norm l;
    l.W = std::move(param(maxouts[k], "W"));
    l.b = std::move(param(maxouts[k], "b"));
    l.G = std::move(param(layernorms[k], "G"));
    l.beta = std::move(param(layernorms[k], "b"));
    l.nO = width;
    l.nP = nP;
    l.nI = nI;
    check_shape(model_path, what + " maxout W", l.W, {width, nP, nI});
    check_shape(model_path, what + " maxout b", l.b, {width, nP});
    check_shape(model_path, what + " layernorm G", l.G, {width});
    check_shape(model_path, what + " layernorm b", l.beta, {width});
    return l;
  };
  // MultiHashEmbed's mixer uses 3 pieces in spaCy 3.x; read it from the stored weights.
  const std::size_t mix_pieces = maxouts[0]->param("W") && maxouts[0]->param("W")->shape.size() == 3 ? maxouts[0]->param("W")->shape[1] : 3;
  w.mix = take_ml(0, mix_in, mix_pieces, "embed mixer");
  for (std::size_t l = 0; l < depth; ++l)
    w.encoder.push_back(take_ml(l + 1, width * (2 * window + 1), enc_pieces, "encoder layer " + std::to_string(l + 1)));
  // linear nodes: walk order puts the upper (n_actions x hidden) before the projection (hidden x width).
  float_array* up_W = &param(linears[0], "W");
  thinc_node* up = linears[0];
  thinc_node* proj = linears[1];
  if (up_W->shape.size() == 2 && up_W->shape[1] == width && up_W->shape[0] == hidden) std::swap(up, proj);
  w.upper_W = std::move(param(up, "W"));
  w.upper_b = std::move(param(up, "b"));
  w.proj_W = std::move(param(proj, "W"));
  w.proj_b = std::move(param(proj, "b"));
  w.lower_W = std::move(param(affines[0], "W"));
  w.lower_b = std::move(param(affines[0], "b"));
  w.lower_pad = std::move(param(affines[0], "pad"));
  const std::size_t n_actions = m.actions.size();
  check_shape(model_path, "tok2vec projection W", w.proj_W, {hidden, width});
  check_shape(model_path, "tok2vec projection b", w.proj_b, {hidden});
  check_shape(model_path, "precomputable_affine W", w.lower_W, {w.nF, hidden, pieces, hidden});
  check_shape(model_path, "precomputable_affine b", w.lower_b, {hidden, pieces});
  check_shape(model_path, "precomputable_affine pad", w.lower_pad, {1, w.nF, hidden, pieces});
  if (w.upper_W.shape != std::vector<std::size_t>{n_actions, hidden}) {
    NERPIPE_THROW(model_error(errc::model_shape_mismatch, model_path.string() + ": upper linear W has shape " + w.upper_W.shape_string() +
                                                              ", expected (" + std::to_string(n_actions) + ", " + std::to_string(hidden) +
                                                              ") from ner/moves (" + std::to_string(n_actions) + " actions)"));
  }
  check_shape(model_path, "upper linear b", w.upper_b, {n_actions});
}

}  // namespace spacy::detail

/// Whether `dir` looks like a spaCy pipeline directory (config.cfg and meta.json, as nlp.to_disk writes).
[[nodiscard]] inline bool is_spacy_model_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  return std::filesystem::is_regular_file(dir / "config.cfg", ec) && std::filesystem::is_regular_file(dir / "meta.json", ec);
}

/// vocab/strings.json: every interned string of the pipeline (not needed to run the NER; useful to
/// turn a string id back into text, e.g. when inspecting lookups.bin).
[[nodiscard]] inline std::vector<std::string> load_spacy_strings(const std::filesystem::path& dir) {
  const auto path = dir / "vocab" / "strings.json";
  const auto v = spacy::parse_json(spacy::detail::read_file(path, "strings.json"), path.string());
  if (v.type != spacy::json_value::kind::array) {
    NERPIPE_THROW(model_error(errc::model_file_malformed, path.string() + ": expected a JSON array of strings"));
  }
  std::vector<std::string> out;
  out.reserve(v.items.size());
  for (const auto& x : v.items) {
    if (x.type != spacy::json_value::kind::string) {
      NERPIPE_THROW(model_error(errc::model_file_malformed, path.string() + ": expected only strings in the array"));
    }
    out.push_back(x.str);
  }
  return out;
}

/// Loads a spaCy 3.x pipeline directory for NER-only inference. Throws model_error on a missing,
/// damaged or unsupported directory; the message names the file and the setting.
[[nodiscard]] inline spacy_model load_spacy_model(const std::filesystem::path& dir) {
  using namespace spacy;
  using namespace spacy::detail;
  if (!std::filesystem::is_directory(dir)) {
    NERPIPE_THROW(model_error(errc::model_file_missing, dir.string() + ": not a directory, expected a spaCy pipeline directory"));
  }
  spacy_model m;
  m.dir = dir;
  const auto meta_path = dir / "meta.json";
  const auto meta = parse_json(read_file(meta_path, "meta.json"), meta_path.string());
  auto meta_str = [&](const char* k) {
    const auto* v = meta.find(k);
    return v && v->type == json_value::kind::string ? v->str : std::string();
  };
  m.lang = meta_str("lang");
  m.name = meta_str("name");
  m.version = meta_str("version");
  const auto cfg_path = dir / "config.cfg";
  const config_file cfg(read_file(cfg_path, "config.cfg"), cfg_path.string());
  const auto lang = cfg.get_string("nlp", "lang");
  if (lang != "en") {
    NERPIPE_THROW(model_error(errc::model_unsupported, cfg_path.string() + ": [nlp] lang \"" + lang +
                                                           "\" is not supported, expected \"en\" (lexical attributes are English)"));
  }
  if (const auto* tok = cfg.raw("nlp", "tokenizer"); tok && tok->find("spacy.Tokenizer.v1") == std::string::npos) {
    NERPIPE_THROW(model_error(errc::model_unsupported, cfg_path.string() + ": [nlp] tokenizer " + *tok +
                                                           " is not supported, expected {\"@tokenizers\":\"spacy.Tokenizer.v1\"}"));
  }
  m.tokenizer = load_tokenizer(dir / "tokenizer");
  m.lexeme_norm = load_lexeme_norm(dir / "vocab" / "lookups.bin");
  const auto ner_cfg_path = dir / "ner" / "cfg";
  const auto ner_cfg = parse_json(read_file(ner_cfg_path, "ner/cfg"), ner_cfg_path.string());
  if (const auto* bw = ner_cfg.find("beam_width"); bw && bw->num != 1.0) {
    NERPIPE_THROW(model_error(errc::model_unsupported, ner_cfg_path.string() + ": beam_width " + std::to_string(static_cast<int>(bw->num)) +
                                                           " is not supported, expected 1 (greedy decoding)"));
  }
  m.actions = load_moves(dir / "ner" / "moves");
  for (const auto& a : m.actions)
    if (!a.label.empty() && std::find(m.labels.begin(), m.labels.end(), a.label) == m.labels.end()) m.labels.push_back(a.label);
  load_ner(dir, cfg, m);
  return m;
}

NERPIPE_NAMESPACE_END
