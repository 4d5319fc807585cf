// SPDX-License-Identifier: Apache-2.0
//! @file Helpers of the spaCy tests: locating the real pipelines and fixtures, temp dirs, and a small
//! synthetic spaCy pipeline directory written with msgpack-cxx (so the loader and the whole
//! pipeline are tested without downloading a model).
#pragma once

#include <nerpipe/cpu/ops.hpp>
#include <nerpipe/model/spacy/config.hpp>
#include <nerpipe/model/spacy/msgpack.hpp>
#include <nerpipe/spacy.hpp>

#include <catch2/catch.hpp>

#include "support/data.hpp"
#include "support/prerequisite.hpp"

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace nerpipe_spacy_test {
namespace fs = std::filesystem;

/// The real pipeline directory: $NERPIPE_SPACY_MODEL (sm) / $NERPIPE_SPACY_MD_MODEL (md), else
/// models/en_core_web_<which>-3.8.0 (scripts/get-model.sh puts it there). When it is missing the running
/// test case is reported skipped (a failure under CI=true) and nullopt is returned: `if (!dir) return;`.
inline std::optional<fs::path> model_dir(const std::string& which = "sm") {
  const char* env = std::getenv(which == "sm" ? "NERPIPE_SPACY_MODEL" : "NERPIPE_SPACY_MD_MODEL");
  fs::path p = env != nullptr && *env != '\0' ? fs::path(env) : nerpipe::test::models_dir() / ("en_core_web_" + which + "-3.8.0");
  if (!nerpipe::test::require_path(p / "config.cfg", "en_core_web_" + which + " 3.8.0 (scripts/get-model.sh models " + which + ")"))
    return std::nullopt;
  return p;
}

inline fs::path fixture_dir() { return fs::path(NERPIPE_SOURCE_DIR) / "tests" / "fixtures" / "spacy"; }
inline fs::path ewt_dir() { return nerpipe::test::ewt_dir(); }

inline std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(std::move(line));
  return out;
}

/// One EWT document with spaCy's reference output (tools/fixtures/spacy_fixtures.py).
struct reference_doc {
  std::string id, text;
  std::vector<long> tok;  // len * 2 + whitespace, code points
  std::vector<std::tuple<long, long, std::string>> ents;
};

/// Documents of split `split` ("dev"/"train") with fixture file stem `stem` ("ewt", "ewt_md").
inline std::vector<reference_doc> load_reference(const std::string& split, const std::string& stem = "ewt") {
  using nerpipe::spacy::parse_json;
  const auto data = read_lines(ewt_dir() / (split + ".jsonl"));
  const auto fx = read_lines(fixture_dir() / (stem + "_" + split + ".jsonl"));
  std::vector<reference_doc> out;
  if (data.size() != fx.size()) return out;
  for (std::size_t i = 0; i < data.size(); ++i) {
    const auto d = parse_json(data[i], "data");
    const auto f = parse_json(fx[i], "fixture");
    reference_doc r;
    r.id = d.find("id")->str;
    r.text = d.find("text")->str;
    if (f.find("id")->str != r.id) return {};
    if (const auto* t = f.find("tok"))
      for (const auto& x : t->items) r.tok.push_back(static_cast<long>(x.num));
    for (const auto& e : f.find("ents")->items)
      r.ents.emplace_back(static_cast<long>(e.items[0].num), static_cast<long>(e.items[1].num), e.items[2].str);
    out.push_back(std::move(r));
  }
  return out;
}

/// The entities of a document as (start, end, label) in code points, as the fixtures hold them.
inline std::vector<std::tuple<long, long, std::string>> entity_tuples(const nerpipe::document& d) {
  std::vector<std::tuple<long, long, std::string>> out;
  for (const auto& e : d.entities) out.emplace_back(static_cast<long>(e.start), static_cast<long>(e.end), e.label);
  return out;
}

/// Runs the NER-only pipeline of `model` on all 858 EWT documents (dev + train) and checks that every document
/// gets exactly the entities of the fixture files with stem `stem` (spaCy's own output).
inline void check_ewt_entities(const nerpipe::spacy_model& model, const std::string& stem) {
  REQUIRE(fs::exists(ewt_dir() / "dev.jsonl"));
  nerpipe::spacy_ner<nerpipe::cpu_policy> nlp(nerpipe::cpu_policy(2), model);
  std::size_t docs = 0, same = 0, ents = 0;
  for (const char* split : {"dev", "train"}) {
    const auto ref = load_reference(split, stem);
    REQUIRE_FALSE(ref.empty());
    std::vector<std::string_view> texts;
    for (const auto& r : ref) texts.push_back(r.text);
    const auto out = nlp(texts);
    REQUIRE(out.size() == ref.size());
    for (std::size_t i = 0; i < ref.size(); ++i) {
      ++docs;
      ents += ref[i].ents.size();
      const auto got = entity_tuples(out[i]);
      if (got == ref[i].ents) {
        ++same;
      } else {
        INFO("document " << ref[i].id);
        CHECK(got == ref[i].ents);
      }
    }
  }
  INFO(model.dir.filename().string() << ": " << same << "/" << docs << " documents with identical entities (" << ents << " entities)");
  CHECK(docs == 858);
  CHECK(same == docs);
}

/// A fresh directory under the system temp dir, removed at scope exit.
struct temp_dir {
  fs::path path;
  temp_dir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("nerpipe-spacy-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

inline void write_file(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Copies the files nerpipe reads from a real pipeline into `to` (so a test can damage them).
inline void copy_pipeline(const fs::path& from, const fs::path& to) {
  for (const char* f : {"meta.json", "config.cfg", "tokenizer", "vocab/lookups.bin", "ner/cfg", "ner/moves", "ner/model"}) {
    fs::create_directories((to / f).parent_path());
    fs::copy_file(from / f, to / f, fs::copy_options::overwrite_existing);
  }
}

using packer = msgpack::packer<msgpack::sbuffer>;

inline void pack_str(packer& pk, const std::string& s) {
  pk.pack_str(static_cast<std::uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}
inline void pack_bin(packer& pk, const std::string& s) {
  pk.pack_bin(static_cast<std::uint32_t>(s.size()));
  pk.pack_bin_body(s.data(), static_cast<std::uint32_t>(s.size()));
}
/// srsly's numpy encoding of a float32 array.
inline void pack_array(packer& pk, const std::vector<std::size_t>& shape, const std::vector<float>& data) {
  pk.pack_map(5);
  pack_bin(pk, "nd");
  pk.pack_true();
  pack_bin(pk, "type");
  pack_str(pk, "<f4");
  pack_bin(pk, "kind");
  pack_bin(pk, "");
  pack_bin(pk, "shape");
  pk.pack_array(static_cast<std::uint32_t>(shape.size()));
  for (auto d : shape) pk.pack_uint64(d);
  pack_bin(pk, "data");
  pack_bin(pk, std::string(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float)));
}
inline std::string msgpack_int(std::int64_t v) {
  msgpack::sbuffer b;
  packer pk(&b);
  pk.pack_int64(v);
  return {b.data(), b.size()};
}

/// Sizes of the synthetic pipeline (small, but the same architecture as en_core_web_sm).
struct synthetic_options {
  std::size_t width = 8, depth = 2, window = 1, hidden = 4, pieces = 2, enc_pieces = 3, mix_pieces = 3;
  std::vector<std::size_t> rows = {50, 20, 30, 30};
  std::string architecture = "spacy.TransitionBasedParser.v2";
  std::string tok2vec = "spacy.Tok2Vec.v2";
  std::string attrs = "[\"NORM\",\"PREFIX\",\"SUFFIX\",\"SHAPE\"]";
  std::size_t stored_norm_rows = 50;  // rows of the NORM table in ner/model (!= rows[0] to damage)
  int beam_width = 1;
  std::string exception_second_orth = "n't";  // "don't" = "do" + this (anything else damages it)
  std::uint32_t seed = 1234;
};

/// Writes a complete, loadable spaCy pipeline directory with random weights and 2 labels.
inline void write_synthetic_model(const fs::path& dir, const synthetic_options& o = {}) {
  std::mt19937 rng(o.seed);
  std::normal_distribution<float> nd(0.0f, 0.5f);
  auto rnd = [&](std::size_t n) {
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    return v;
  };
  write_file(dir / "meta.json", R"({"lang":"en","name":"synthetic","version":"0.0.1","pipeline":["ner"]})");
  std::string rows = "[";
  for (std::size_t i = 0; i < o.rows.size(); ++i) rows += (i ? "," : "") + std::to_string(o.rows[i]);
  rows += "]";
  write_file(dir / "config.cfg",
             "[nlp]\nlang = \"en\"\npipeline = [\"ner\"]\ntokenizer = {\"@tokenizers\":\"spacy.Tokenizer.v1\"}\n\n"
             "[components]\n\n[components.ner]\nfactory = \"ner\"\nmoves = null\n\n"
             "[components.ner.model]\n@architectures = \"" + o.architecture + "\"\nstate_type = \"ner\"\n"
             "extra_state_tokens = false\nhidden_width = " + std::to_string(o.hidden) + "\nmaxout_pieces = " +
             std::to_string(o.pieces) + "\nuse_upper = true\nnO = null\n\n"
             "[components.ner.model.tok2vec]\n@architectures = \"" + o.tok2vec + "\"\n\n"
             "[components.ner.model.tok2vec.embed]\n@architectures = \"spacy.MultiHashEmbed.v2\"\nwidth = " +
             std::to_string(o.width) + "\nattrs = " + o.attrs + "\nrows = " + rows + "\ninclude_static_vectors = false\n\n"
             "[components.ner.model.tok2vec.encode]\n@architectures = \"spacy.MaxoutWindowEncoder.v2\"\nwidth = " +
             std::to_string(o.width) + "\ndepth = " + std::to_string(o.depth) + "\nwindow_size = " + std::to_string(o.window) +
             "\nmaxout_pieces = " + std::to_string(o.enc_pieces) + "\n");
  {  // tokenizer: "(" prefix, ")" and "." suffixes, "-" infix, one exception with a NORM
    msgpack::sbuffer b;
    packer pk(&b);
    pk.pack_map(7);
    pack_str(pk, "prefix_search");
    pack_str(pk, "^\\(");
    pack_str(pk, "suffix_search");
    pack_str(pk, "\\)$|\\.$");
    pack_str(pk, "infix_finditer");
    pack_str(pk, "-");
    pack_str(pk, "token_match");
    pk.pack_nil();
    pack_str(pk, "url_match");
    pk.pack_nil();
    pack_str(pk, "exceptions");
    pk.pack_map(1);
    pack_str(pk, "don't");
    pk.pack_array(2);
    pk.pack_map(1);
    pk.pack_uint64(65);
    pack_str(pk, "do");
    pk.pack_map(2);
    pk.pack_uint64(65);
    pack_str(pk, o.exception_second_orth);
    pk.pack_uint64(67);
    pack_str(pk, "not");
    pack_str(pk, "faster_heuristics");
    pk.pack_true();
    write_file(dir / "tokenizer", std::string(b.data(), b.size()));
  }
  write_file(dir / "ner" / "cfg", "{\"moves\":null,\"beam_width\":" + std::to_string(o.beam_width) + "}");
  {
    msgpack::sbuffer b;
    packer pk(&b);
    pk.pack_map(2);
    pack_str(pk, "moves");
    pack_str(pk, R"({"0":{},"1":{"ORG":10,"PERSON":5},"2":{"ORG":10,"PERSON":5},"3":{"ORG":10,"PERSON":5},"4":{"ORG":10,"PERSON":5,"":1},"5":{"":1}})");
    pack_str(pk, "cfg");
    pk.pack_map(1);
    pack_str(pk, "neg_key");
    pk.pack_nil();
    write_file(dir / "ner" / "moves", std::string(b.data(), b.size()));
  }
  // ner/model: only the nodes the loader reads, in thinc's walk order.
  struct node {
    std::string name;
    std::vector<std::pair<std::string, std::string>> attrs;  // name -> msgpack bytes
    std::vector<std::pair<std::string, std::pair<std::vector<std::size_t>, std::vector<float>>>> params;
  };
  const std::size_t W = o.width, H = o.hidden, nA = 10;
  std::vector<node> nodes;
  nodes.push_back({"parser_model", {}, {}});
  nodes.push_back({"precomputable_affine", {},
                   {{"W", {{3, H, o.pieces, H}, rnd(3 * H * o.pieces * H)}},
                    {"b", {{H, o.pieces}, rnd(H * o.pieces)}},
                    {"pad", {{1, 3, H, o.pieces}, rnd(3 * H * o.pieces)}}}});
  nodes.push_back({"linear", {}, {{"W", {{nA, H}, rnd(nA * H)}}, {"b", {{nA}, rnd(nA)}}}});
  nodes.push_back({"linear", {}, {{"W", {{H, W}, rnd(H * W)}}, {"b", {{H}, rnd(H)}}}});
  nodes.push_back({"with_array(residual(expand_window>>maxout>>layernorm>>dropout)>>residual(...))",
                   {{"pad", msgpack_int(static_cast<std::int64_t>(o.depth * o.window))}}, {}});
  for (std::size_t i = 0; i < o.rows.size(); ++i) {
    const std::size_t nv = i == 0 ? o.stored_norm_rows : o.rows[i];
    nodes.push_back({"hashembed",
                     {{"column", msgpack_int(static_cast<std::int64_t>(i))}, {"seed", msgpack_int(static_cast<std::int64_t>(8 + i))}},
                     {{"E", {{nv, W}, rnd(nv * W)}}}});
  }
  auto ml = [&](std::size_t nI, std::size_t nP) {
    nodes.push_back({"maxout", {}, {{"W", {{W, nP, nI}, rnd(W * nP * nI)}}, {"b", {{W, nP}, rnd(W * nP)}}}});
    nodes.push_back({"layernorm", {}, {{"G", {{W}, rnd(W)}}, {"b", {{W}, rnd(W)}}}});
  };
  ml(W * o.rows.size(), o.mix_pieces);
  for (std::size_t l = 0; l < o.depth; ++l) ml(W * (2 * o.window + 1), o.enc_pieces);
  msgpack::sbuffer b;
  packer pk(&b);
  pk.pack_map(4);
  pack_str(pk, "nodes");
  pk.pack_array(static_cast<std::uint32_t>(nodes.size()));
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    pk.pack_map(4);
    pack_str(pk, "index");
    pk.pack_uint64(i);
    pack_str(pk, "name");
    pack_str(pk, nodes[i].name);
    pack_str(pk, "dims");
    pk.pack_map(0);
    pack_str(pk, "refs");
    pk.pack_map(0);
  }
  pack_str(pk, "attrs");
  pk.pack_array(static_cast<std::uint32_t>(nodes.size()));
  for (const auto& n : nodes) {
    pk.pack_map(static_cast<std::uint32_t>(n.attrs.size()));
    for (const auto& [k, v] : n.attrs) {
      pack_str(pk, k);
      pack_bin(pk, v);
    }
  }
  pack_str(pk, "params");
  pk.pack_array(static_cast<std::uint32_t>(nodes.size()));
  for (const auto& n : nodes) {
    pk.pack_map(static_cast<std::uint32_t>(n.params.size()));
    for (const auto& [k, v] : n.params) {
      pack_str(pk, k);
      pack_array(pk, v.first, v.second);
    }
  }
  pack_str(pk, "shims");
  pk.pack_array(static_cast<std::uint32_t>(nodes.size()));
  for (std::size_t i = 0; i < nodes.size(); ++i) pk.pack_array(0);
  write_file(dir / "ner" / "model", std::string(b.data(), b.size()));
}

}  // namespace nerpipe_spacy_test
