// SPDX-License-Identifier: Apache-2.0
//! @file Loads what a spaCy 3.x pipeline directory needs for its sentence boundaries: the shared `tok2vec`
//! component, the arc-eager `parser` that listens to it, and the `senter` (its own tok2vec + softmax).
//! Host memory only; every index and shape read from the files is checked.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/model/spacy/config.hpp>
#include <nerpipe/model/spacy/loader.hpp>
#include <nerpipe/model/spacy/msgpack.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN
namespace spacy {

/// A spacy.Tok2Vec.v2 (MultiHashEmbed.v2 + MaxoutWindowEncoder.v2): the embed and encoder fields of
/// ner_weights, so multi_hash_embed and maxout_window_encoder take it as they are. Its head fields stay empty.
using tok2vec_weights = ner_weights;

/// The moves of spaCy's arc_eager.pyx, with its enum values (also the class ids in parser/moves).
enum class arc_move : std::uint8_t { shift = 0, reduce = 1, left = 2, right = 3, brk = 4 };

/// One output class of the parser: a move and its label ("" for SHIFT/REDUCE; "ROOT" for BREAK;
/// "x||y" for a projectivised arc whose head is to be moved to a "y" by deprojectivize).
struct parser_action {
  arc_move mv = arc_move::shift;
  std::string label;
};

/// TransitionBasedParser.v2 with state_type "parser" over a listened-to tok2vec: projection, lower and upper layers.
struct parser_weights {
  std::size_t width = 96;                  // the tok2vec's width
  std::size_t nF = 8, nH = 64, nP = 2;
  float_array proj_W, proj_b;              // (nH, width), (nH)
  float_array lower_W, lower_b, lower_pad; // (nF, nH, nP, nH), (nH, nP), (1, nF, nH, nP)
  float_array upper_W, upper_b;            // (n_actions, nH), (n_actions)
};

/// The `senter` (spacy.Tagger.v2 over its own Tok2Vec.v2): per token, class 1 ("S") starts a sentence.
struct senter_weights {
  tok2vec_weights tok2vec;
  float_array W, b;  // (2, width), (2)
};

}  // namespace spacy

/// Where the NER's sentence starts come from.
enum class spacy_sentences : std::uint8_t {
  none,    ///< no sentence starts inside a doc: spaCy's NER-only pipeline
  parser,  ///< the dependency parser's (spacy.load(dir) of en_core_web_sm/md/lg)
  senter,  ///< the senter's (nlp.disable_pipe("parser"); nlp.enable_pipe("senter"))
};

/// What sets sentence starts in a spaCy pipeline: the shared tok2vec and the parser (and the senter when
/// the pipeline has one). Loaded by load_spacy_parser_model.
struct spacy_parser_model {
  std::filesystem::path dir;
  std::vector<std::string> pipeline;        // [nlp] pipeline, in order
  std::vector<std::string> disabled;        // [nlp] disabled
  bool has_parser = false;
  std::string tok2vec_name = "tok2vec";     // the component the parser listens to
  spacy::tok2vec_weights tok2vec;           // its weights (embeds[i].attr: NORM ... IS_SPACE)
  spacy::parser_weights parser;
  std::vector<spacy::parser_action> actions; // class index -> move + label, in spaCy's class order
  bool has_senter = false;
  spacy::senter_weights senter;

  /// Whether component `name` runs by default (in the pipeline and not disabled), as spacy.load(dir) runs it.
  [[nodiscard]] bool enabled(const std::string& name) const {
    return std::find(pipeline.begin(), pipeline.end(), name) != pipeline.end() &&
           std::find(disabled.begin(), disabled.end(), name) == disabled.end();
  }
  /// Position of `name` in the pipeline (pipeline.size() when absent).
  [[nodiscard]] std::size_t position(const std::string& name) const {
    return static_cast<std::size_t>(std::find(pipeline.begin(), pipeline.end(), name) - pipeline.begin());
  }
};

namespace spacy::detail {

[[noreturn]] inline void unsupported(const std::string& where, const std::string& what) {
  NERPIPE_THROW(model_error(errc::model_unsupported, where + ": " + what));
}

/// A JSON list of strings from config.cfg ([nlp] pipeline / disabled); absent: empty.
inline std::vector<std::string> config_strings(const config_file& cfg, const std::string& section, const std::string& key) {
  std::vector<std::string> out;
  if (cfg.raw(section, key) == nullptr) return out;
  const auto v = cfg.get(section, key);
  if (v.type != json_value::kind::array)
    NERPIPE_THROW(model_error(errc::model_file_malformed, cfg.file() + ": [" + section + "] " + key + " is not a list, expected [\"name\", ...]"));
  for (const auto& x : v.items) {
    if (x.type != json_value::kind::string)
      NERPIPE_THROW(model_error(errc::model_file_malformed, cfg.file() + ": [" + section + "] " + key + " has a non-string item"));
    out.push_back(x.str);
  }
  return out;
}

/// Static vectors of a MultiHashEmbed (md/lg): vocab/vectors, vocab/key2row and the projection of node `W`.
inline void load_static_vectors_into(const std::filesystem::path& dir, const std::filesystem::path& model_path, float_array W,
                                     std::size_t width, static_vectors& out) {
  out.W = std::move(W);
  out.data = load_npy(dir / "vocab" / "vectors");
  if (out.data.shape.size() != 2)
    NERPIPE_THROW(model_error(errc::model_file_malformed, (dir / "vocab" / "vectors").string() + ": expected a 2-D table"));
  if (out.data.shape[0] == 0)
    NERPIPE_THROW(model_error(errc::model_file_malformed, (dir / "vocab" / "vectors").string() + ": the table has no rows, expected at least one"));
  check_shape(model_path, "static_vectors W", out.W, {width, out.data.shape[1]});
  const auto kpath = dir / "vocab" / "key2row";
  const std::string kb = read_file(kpath, "key2row");
  msgpack_doc kd(kpath.string(), kb.data(), kb.size());
  kd.expect(kd.root(), msgpack::type::MAP, "key2row");
  out.key2row.reserve(kd.root().via.map.size);
  const auto rows = static_cast<std::int64_t>(out.data.shape[0]);
  for (std::uint32_t i = 0; i < kd.root().via.map.size; ++i) {
    const auto& kv = kd.root().via.map.ptr[i];
    const std::int64_t row = kd.integer(kv.val, "a key2row row");
    if (row < 0 || row >= rows)
      kd.malformed("a key2row row is out of range", "0 <= row < " + std::to_string(rows), std::to_string(row));
    out.key2row.emplace(kd.uinteger(kv.key, "a key2row key"), row);
  }
  const auto vcfg_path = dir / "vocab" / "vectors.cfg";
  if (std::filesystem::exists(vcfg_path)) {
    const auto vcfg = parse_json(read_file(vcfg_path, "vectors.cfg"), vcfg_path.string());
    if (const auto* mode = vcfg.find("mode"); mode && mode->str != "default")
      unsupported(vcfg_path.string(), "vectors mode \"" + mode->str + "\" is not supported, expected \"default\"");
    if (const auto* attr = vcfg.find("attr"); attr && attr->str != "ORTH")
      unsupported(vcfg_path.string(), "vectors attr \"" + attr->str + "\" is not supported, expected \"ORTH\"");
  }
}

/// Reads the spacy.Tok2Vec.v2 configured at [T] (T.embed: MultiHashEmbed.v2, T.encode: MaxoutWindowEncoder.v2)
/// from the thinc nodes of `model_path`: its hashembed, static_vectors, maxout and layernorm nodes in walk
/// order (the file's other parameterised nodes are not named so).
inline void load_tok2vec_nodes(const std::filesystem::path& dir, const config_file& cfg, const std::string& T,
                               std::vector<thinc_node>& nodes, const std::filesystem::path& model_path, tok2vec_weights& w) {
  const std::string where = cfg.file() + " [" + T + "]";
  const auto arch = cfg.get_string(T, "@architectures");
  if (arch != "spacy.Tok2Vec.v2" && arch != "spacy.Tok2Vec.v1")
    unsupported(where, "@architectures \"" + arch + "\" is not supported, expected \"spacy.Tok2Vec.v2\"");
  const std::string E = T + ".embed", N = T + ".encode";
  if (const auto a = cfg.get_string(E, "@architectures"); a != "spacy.MultiHashEmbed.v2")
    unsupported(cfg.file() + " [" + E + "]", "@architectures \"" + a + "\" is not supported, expected \"spacy.MultiHashEmbed.v2\"");
  if (const auto a = cfg.get_string(N, "@architectures"); a != "spacy.MaxoutWindowEncoder.v2")
    unsupported(cfg.file() + " [" + N + "]", "@architectures \"" + a + "\" is not supported, expected \"spacy.MaxoutWindowEncoder.v2\"");
  const auto width = static_cast<std::size_t>(cfg.get_int(N, "width"));
  const auto depth = static_cast<std::size_t>(cfg.get_int(N, "depth"));
  const auto window = static_cast<std::size_t>(cfg.get_int(N, "window_size"));
  const auto enc_pieces = static_cast<std::size_t>(cfg.get_int(N, "maxout_pieces"));
  if (width == 0 || width > 4096 || depth == 0 || depth > 64 || window > 16 || enc_pieces == 0 || enc_pieces > 16)
    unsupported(cfg.file() + " [" + N + "]", "width " + std::to_string(width) + ", depth " + std::to_string(depth) + ", window_size " +
                                                 std::to_string(window) + ", maxout_pieces " + std::to_string(enc_pieces) +
                                                 " are out of the supported range (1..4096, 1..64, 0..16, 1..16)");
  const auto attrs_v = cfg.get(E, "attrs");
  const auto rows_v = cfg.get(E, "rows");
  const bool static_vecs = cfg.get_bool(E, "include_static_vectors");
  std::vector<std::string> attrs;
  for (const auto& a : attrs_v.items) {
    if (a.str != "NORM" && a.str != "PREFIX" && a.str != "SUFFIX" && a.str != "SHAPE" && a.str != "SPACY" && a.str != "IS_SPACE")
      unsupported(cfg.file() + " [" + E + "]", "attrs contains \"" + a.str + "\", only NORM, PREFIX, SUFFIX, SHAPE, SPACY, IS_SPACE are supported");
    attrs.push_back(a.str);
  }
  if (attrs.empty() || rows_v.items.size() != attrs.size())
    NERPIPE_THROW(model_error(errc::model_file_malformed, cfg.file() + ": [" + E + "] attrs and rows must be non-empty lists of equal length"));
  for (const auto& r : rows_v.items)
    if (r.type != json_value::kind::number || r.num < 1 || r.num > 1e8)
      NERPIPE_THROW(model_error(errc::model_file_malformed, cfg.file() + ": [" + E + "] rows must be positive integers"));

  std::vector<thinc_node*> hashembeds, maxouts, layernorms, statics;
  std::int64_t pad = -1;
  for (auto& nd : nodes) {
    if (nd.name == "hashembed") hashembeds.push_back(&nd);
    else if (nd.name == "maxout") maxouts.push_back(&nd);
    else if (nd.name == "layernorm") layernorms.push_back(&nd);
    else if (nd.name == "static_vectors") statics.push_back(&nd);
    else if (nd.name.rfind("with_array(residual(", 0) == 0) nd.attr("pad", pad);
  }
  auto count = [&](const char* what, std::size_t got, std::size_t want) {
    if (got != want)
      NERPIPE_THROW(model_error(errc::model_tensor_missing, model_path.string() + ": " + std::to_string(got) + " '" + what +
                                                                "' nodes, expected " + std::to_string(want) + " from config.cfg [" + T + "]"));
  };
  count("hashembed", hashembeds.size(), attrs.size());
  count("maxout", maxouts.size(), depth + 1);
  count("layernorm", layernorms.size(), depth + 1);
  count("static_vectors", statics.size(), static_vecs ? 1 : 0);
  if (pad != static_cast<std::int64_t>(depth * window))
    unsupported(model_path.string(), "encoder pad " + std::to_string(pad < 0 ? 0 : pad) + " is not supported, expected depth*window = " +
                                         std::to_string(depth * window));
  auto param = [&](thinc_node* nd, const char* p) -> float_array& {
    for (auto& [k, v] : nd->params)
      if (k == p) return v;
    NERPIPE_THROW(model_error(errc::model_tensor_missing, model_path.string() + ": node '" + nd->name + "' has no parameter '" + p + "'"));
  };
  w.width = width;
  w.window = window;
  w.pad = static_cast<std::size_t>(pad);
  w.embeds.clear();
  for (std::size_t i = 0; i < attrs.size(); ++i) {
    hash_embed_table t;
    t.E = std::move(param(hashembeds[i], "E"));
    std::int64_t seed = 0, column = static_cast<std::int64_t>(i);
    if (!hashembeds[i]->attr("seed", seed) || seed < 0 || seed > 0xFFFFFFFFLL)
      NERPIPE_THROW(model_error(errc::model_file_malformed, model_path.string() + ": hashembed " + std::to_string(i) + " has no valid 'seed' attr"));
    hashembeds[i]->attr("column", column);
    if (column != static_cast<std::int64_t>(i)) unsupported(model_path.string(), "hashembed columns out of order");
    t.seed = static_cast<std::uint32_t>(seed);
    t.column = i;
    t.attr = attrs[i];
    check_shape(model_path, "hashembed " + attrs[i] + " E", t.E, {static_cast<std::size_t>(rows_v.items[i].num), width});
    w.embeds.push_back(std::move(t));
  }
  std::size_t mix_in = width * attrs.size();
  w.has_static_vectors = static_vecs;
  if (static_vecs) {
    load_static_vectors_into(dir, model_path, std::move(param(statics[0], "W")), width, w.vectors);
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
  // MultiHashEmbed's mixer has 3 pieces in spaCy 3.x; it is read from the stored weights.
  const float_array* mixW = maxouts[0]->param("W");
  const std::size_t mix_pieces = mixW != nullptr && mixW->shape.size() == 3 && mixW->shape[1] >= 1 && mixW->shape[1] <= 16 ? mixW->shape[1] : 3;
  w.mix = take_ml(0, mix_in, mix_pieces, "embed mixer");
  w.encoder.clear();
  for (std::size_t l = 0; l < depth; ++l)
    w.encoder.push_back(take_ml(l + 1, width * (2 * window + 1), enc_pieces, "encoder layer " + std::to_string(l + 1)));
}

/// parser/moves -> classes in spaCy's order (moves_in_class_order); a repeated (move, label) is skipped
/// (add_action is idempotent).
inline std::vector<parser_action> load_parser_moves(const std::filesystem::path& path) {
  std::vector<parser_action> out;
  for (const auto& [code, label] : moves_in_class_order(path, "parser", 4, "0..4 (S, D, L, R, B)")) {
    const auto mv = static_cast<arc_move>(code);
    bool seen = false;
    for (const auto& a : out) seen = seen || (a.mv == mv && a.label == label);
    if (!seen) out.push_back({mv, label});
  }
  if (out.empty()) NERPIPE_THROW(model_error(errc::model_file_malformed, path.string() + ": no moves, expected at least one"));
  return out;
}

inline void load_parser_component(const std::filesystem::path& dir, const config_file& cfg, spacy_parser_model& m) {
  const std::string C = "components.parser", M = C + ".model", L = M + ".tok2vec";
  const std::string cfg_path = cfg.file();
  if (!cfg.has_section(C))
    NERPIPE_THROW(model_error(errc::model_key_missing, cfg_path + ": no [components.parser] section, expected a pipeline with a 'parser'"));
  if (cfg.raw(C, "source") != nullptr) unsupported(cfg_path, "[" + C + "] is sourced from another pipeline; only a factory 'parser' is supported");
  if (const auto f = cfg.get_string(C, "factory"); f != "parser")
    unsupported(cfg_path, "[" + C + "] factory \"" + f + "\" is not supported, expected \"parser\" (beam_parser is not implemented)");
  if (const auto a = cfg.get_string(M, "@architectures"); a != "spacy.TransitionBasedParser.v2" && a != "spacy.TransitionBasedParser.v1")
    unsupported(cfg_path, "[" + M + "] @architectures \"" + a + "\" is not supported, expected \"spacy.TransitionBasedParser.v2\"");
  if (cfg.get_string(M, "state_type") != "parser") unsupported(cfg_path, "[" + M + "] state_type must be \"parser\"");
  if (cfg.get_bool(M, "extra_state_tokens")) unsupported(cfg_path, "[" + M + "] extra_state_tokens = true (13 state features) is not supported");
  if (!cfg.get_bool(M, "use_upper")) unsupported(cfg_path, "[" + M + "] use_upper = false is not supported");
  const auto hidden = static_cast<std::size_t>(cfg.get_int(M, "hidden_width"));
  const auto pieces = static_cast<std::size_t>(cfg.get_int(M, "maxout_pieces"));
  if (pieces < 2 || pieces > 16) unsupported(cfg_path, "[" + M + "] maxout_pieces = " + std::to_string(pieces) + " is not supported, expected 2..16");
  if (hidden == 0 || hidden > 4096) unsupported(cfg_path, "[" + M + "] hidden_width = " + std::to_string(hidden) + " is out of range 1..4096");
  // The parser listens to a tok2vec component (sm/md/lg); its own embedded tok2vec is not implemented.
  if (const auto a = cfg.get_string(L, "@architectures"); a != "spacy.Tok2VecListener.v1")
    unsupported(cfg_path, "[" + L + "] @architectures \"" + a + "\" is not supported, expected \"spacy.Tok2VecListener.v1\" (a parser that listens to a tok2vec component)");
  std::string upstream = cfg.get_string(L, "upstream");
  if (upstream == "*") {  // the nearest tok2vec component before the parser
    upstream.clear();
    for (std::size_t i = 0; i < m.pipeline.size() && m.pipeline[i] != "parser"; ++i)
      if (cfg.raw("components." + m.pipeline[i], "factory") && cfg.get_string("components." + m.pipeline[i], "factory") == "tok2vec")
        upstream = m.pipeline[i];
    if (upstream.empty()) unsupported(cfg_path, "[" + L + "] upstream \"*\": no tok2vec component before the parser");
  }
  if (!cfg.has_section("components." + upstream) || cfg.get_string("components." + upstream, "factory") != "tok2vec")
    unsupported(cfg_path, "[" + L + "] upstream \"" + upstream + "\" is not a component with factory \"tok2vec\"");
  if (upstream.find('/') != std::string::npos || upstream.find("..") != std::string::npos)
    NERPIPE_THROW(model_error(errc::model_file_malformed, cfg_path + ": [" + L + "] upstream \"" + upstream + "\" is not a component name"));
  m.tok2vec_name = upstream;

  const auto pcfg_path = dir / "parser" / "cfg";
  const auto pcfg = parse_json(read_file(pcfg_path, "parser/cfg"), pcfg_path.string());
  if (const auto* bw = pcfg.find("beam_width"); bw && bw->num != 1.0)
    unsupported(pcfg_path.string(), "beam_width " + std::to_string(bw->num) + " is not supported, expected 1 (greedy decoding)");
  if (const auto* lt = pcfg.find("learn_tokens"); lt && lt->type == json_value::kind::boolean && lt->b)
    unsupported(pcfg_path.string(), "learn_tokens = true (merge_subtokens) is not supported");

  // The shared tok2vec.
  const auto t2v_path = dir / upstream / "model";
  auto t2v_nodes = load_thinc(t2v_path);
  load_tok2vec_nodes(dir, cfg, "components." + upstream + ".model", t2v_nodes, t2v_path, m.tok2vec);

  m.actions = load_parser_moves(dir / "parser" / "moves");
  const auto model_path = dir / "parser" / "model";
  auto nodes = load_thinc(model_path);
  std::vector<thinc_node*> linears, affines;
  for (auto& nd : nodes) {
    if (nd.name == "linear") linears.push_back(&nd);
    else if (nd.name == "precomputable_affine") affines.push_back(&nd);
    else if (!nd.params.empty())
      unsupported(model_path.string(), "node '" + nd.name + "' has parameters; expected only the projection, lower and upper layers (a listening parser)");
  }
  if (linears.size() != 2 || affines.size() != 1)
    NERPIPE_THROW(model_error(errc::model_tensor_missing, model_path.string() + ": " + std::to_string(linears.size()) + " 'linear' and " +
                                                              std::to_string(affines.size()) + " 'precomputable_affine' nodes, expected 2 and 1"));
  auto param = [&](thinc_node* nd, const char* p) -> float_array& {
    for (auto& [k, v] : nd->params)
      if (k == p) return v;
    NERPIPE_THROW(model_error(errc::model_tensor_missing, model_path.string() + ": node '" + nd->name + "' has no parameter '" + p + "'"));
  };
  auto& w = m.parser;
  w.width = m.tok2vec.width;
  w.nF = 8;  // B0, B1, S0, S1, S2, L(B0), L(S0), R(S0): _state.pxd set_context_tokens with 8 features
  w.nH = hidden;
  w.nP = pieces;
  // Walk order puts the upper layer (node 3) before the projection (node 6); told apart by shape.
  thinc_node* up = linears[0];
  thinc_node* proj = linears[1];
  if (const auto* W = up->param("W"); W && W->shape == std::vector<std::size_t>{hidden, w.width}) std::swap(up, proj);
  w.upper_W = std::move(param(up, "W"));
  w.upper_b = std::move(param(up, "b"));
  w.proj_W = std::move(param(proj, "W"));
  w.proj_b = std::move(param(proj, "b"));
  w.lower_W = std::move(param(affines[0], "W"));
  w.lower_b = std::move(param(affines[0], "b"));
  w.lower_pad = std::move(param(affines[0], "pad"));
  const std::size_t A = m.actions.size();
  check_shape(model_path, "projection W (tok2vec width from " + upstream + "/model)", w.proj_W, {hidden, w.width});
  check_shape(model_path, "projection b", w.proj_b, {hidden});
  check_shape(model_path, "precomputable_affine W", w.lower_W, {w.nF, hidden, pieces, hidden});
  check_shape(model_path, "precomputable_affine b", w.lower_b, {hidden, pieces});
  check_shape(model_path, "precomputable_affine pad", w.lower_pad, {1, w.nF, hidden, pieces});
  if (w.upper_W.shape != std::vector<std::size_t>{A, hidden})
    NERPIPE_THROW(model_error(errc::model_shape_mismatch, model_path.string() + ": upper linear W has shape " + w.upper_W.shape_string() +
                                                              ", expected (" + std::to_string(A) + ", " + std::to_string(hidden) +
                                                              ") from parser/moves (" + std::to_string(A) + " actions)"));
  check_shape(model_path, "upper linear b", w.upper_b, {A});
  m.has_parser = true;
}

inline void load_senter_component(const std::filesystem::path& dir, const config_file& cfg, spacy_parser_model& m) {
  const std::string C = "components.senter", M = C + ".model";
  const std::string cfg_path = cfg.file();
  if (cfg.raw(C, "source") != nullptr) unsupported(cfg_path, "[" + C + "] is sourced from another pipeline");
  if (const auto f = cfg.get_string(C, "factory"); f != "senter") unsupported(cfg_path, "[" + C + "] factory \"" + f + "\", expected \"senter\"");
  if (const auto* ow = cfg.raw(C, "overwrite"); ow && cfg.get_bool(C, "overwrite"))
    unsupported(cfg_path, "[" + C + "] overwrite = true is not supported");
  if (const auto a = cfg.get_string(M, "@architectures"); a != "spacy.Tagger.v2")
    unsupported(cfg_path, "[" + M + "] @architectures \"" + a + "\" is not supported, expected \"spacy.Tagger.v2\"");
  // normalize = false: the softmax layer returns its logits at inference, and the argmax is taken on them.
  if (cfg.raw(M, "normalize") && cfg.get_bool(M, "normalize")) unsupported(cfg_path, "[" + M + "] normalize = true is not supported");
  const auto model_path = dir / "senter" / "model";
  auto nodes = load_thinc(model_path);
  load_tok2vec_nodes(dir, cfg, M + ".tok2vec", nodes, model_path, m.senter.tok2vec);
  thinc_node* softmax = nullptr;
  for (auto& nd : nodes)
    if (nd.name == "softmax") {
      if (softmax != nullptr) NERPIPE_THROW(model_error(errc::model_file_malformed, model_path.string() + ": two 'softmax' nodes, expected one"));
      softmax = &nd;
    }
  if (softmax == nullptr) NERPIPE_THROW(model_error(errc::model_tensor_missing, model_path.string() + ": no 'softmax' node"));
  const float_array* W = softmax->param("W");
  const float_array* b = softmax->param("b");
  if (W == nullptr || b == nullptr) NERPIPE_THROW(model_error(errc::model_tensor_missing, model_path.string() + ": the softmax node has no W or b"));
  m.senter.W = *W;
  m.senter.b = *b;
  check_shape(model_path, "senter softmax W (labels I, S)", m.senter.W, {2, m.senter.tok2vec.width});
  check_shape(model_path, "senter softmax b", m.senter.b, {2});
  m.has_senter = true;
}

}  // namespace spacy::detail

/// The sentence starts `spacy.load(dir)` gives its NER, from config.cfg's [nlp] pipeline and disabled: the
/// parser's when it is enabled and runs before the ner, else the senter's when that is, else none.
[[nodiscard]] inline spacy_sentences spacy_default_sentences(const std::filesystem::path& dir) {
  using namespace spacy::detail;
  const auto cfg_path = dir / "config.cfg";
  const spacy::config_file cfg(read_file(cfg_path, "config.cfg"), cfg_path.string());
  spacy_parser_model m;
  m.pipeline = config_strings(cfg, "nlp", "pipeline");
  m.disabled = config_strings(cfg, "nlp", "disabled");
  const std::size_t ner = m.position("ner");
  auto before_ner = [&](const char* name) {
    return m.enabled(name) && m.position(name) < ner && cfg.raw(std::string("components.") + name, "factory") != nullptr &&
           cfg.get_string(std::string("components.") + name, "factory") == name;
  };
  if (before_ner("parser")) return spacy_sentences::parser;
  if (before_ner("senter")) return spacy_sentences::senter;
  return spacy_sentences::none;
}

/// Which sentence-boundary components load_spacy_parser_model reads (each has its own weights; md's static
/// vectors come with each, about 80 MB).
struct spacy_parser_parts {
  bool parser = true;   ///< the tok2vec the parser listens to, and the parser
  bool senter = false;  ///< the senter (config.cfg must have one)
};

/// Loads the sentence-boundary components of a spaCy 3.x pipeline directory: the tok2vec the parser listens
/// to and the parser (greedy arc-eager), and/or the senter. Throws model_error on a missing, damaged or
/// unsupported directory; the message names the file and the setting.
[[nodiscard]] inline spacy_parser_model load_spacy_parser_model(const std::filesystem::path& dir, spacy_parser_parts parts = {}) {
  using namespace spacy::detail;
  if (!std::filesystem::is_directory(dir))
    NERPIPE_THROW(model_error(errc::model_file_missing, dir.string() + ": not a directory, expected a spaCy pipeline directory"));
  spacy_parser_model m;
  m.dir = dir;
  const auto cfg_path = dir / "config.cfg";
  const spacy::config_file cfg(read_file(cfg_path, "config.cfg"), cfg_path.string());
  m.pipeline = config_strings(cfg, "nlp", "pipeline");
  m.disabled = config_strings(cfg, "nlp", "disabled");
  if (parts.parser) load_parser_component(dir, cfg, m);
  if (parts.senter) {
    if (!cfg.has_section("components.senter"))
      NERPIPE_THROW(model_error(errc::model_key_missing, cfg_path.string() + ": no [components.senter] section, expected a pipeline with a 'senter'"));
    load_senter_component(dir, cfg, m);
  }
  return m;
}

NERPIPE_NAMESPACE_END
