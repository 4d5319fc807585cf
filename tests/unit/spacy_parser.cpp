// SPDX-License-Identifier: Apache-2.0
// spaCy's full default pipeline (tokenizer, tok2vec, parser, ..., ner) on cpu_policy against spaCy 3.8.7 on
// every EWT document, for en_core_web_sm and en_core_web_md 3.8.0: the parser's sentence starts and parse,
// the entities and merge_entities' line (goldens: tools/fixtures/spacy_parser_fixtures.py); plus the
// sentence-start rules of the NER, the parse-tree post-processing and the loader's checks.
#include <catch2/catch.hpp>

#include "spacy_test_support.hpp"
#include "support/data.hpp"
#include "support/prerequisite.hpp"

#include <nerpipe/cpu/ops.hpp>
#include <nerpipe/merge/merge_entities.hpp>
#include <nerpipe/spacy.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

using namespace nerpipe;
namespace fs = std::filesystem;
namespace st = nerpipe_spacy_test;

namespace {

using ent_tuple = std::tuple<long, long, std::string>;

/// What the tests read per document besides the entities (token indices of the tokenizer's tokens).
struct spacy_doc_analysis {
  std::vector<std::uint32_t> sent_starts;  ///< tokens that start a sentence, ascending (0 first when non-empty)
  std::vector<std::int32_t> heads;         ///< parser only: each token's head (a root is its own head)
  std::vector<std::int32_t> labels;        ///< parser only: index into dep_labels()
};

/// The composed spaCy pipelines (spacy_parser_ner, spacy_senter_ner, spacy_ner) behind one call that also returns
/// each document's sentence starts (document::sentences) and, with the parser, its parse (the parser stage's).
class default_runner {
 public:
  default_runner(const spacy_model& ner, const spacy_parser_model& sents, spacy_sentences source = spacy_sentences::parser)
      : source_(source) {
    model_.ner = std::make_shared<const spacy_model>(ner);
    model_.sentences = std::make_shared<const spacy_parser_model>(sents);
    model_.source = source;
    if (source == spacy_sentences::parser) parser_ = std::make_unique<spacy_parser_ner<cpu_policy>>(cpu_policy(1), model_);
    else if (source == spacy_sentences::senter) senter_ = std::make_unique<spacy_senter_ner<cpu_policy>>(cpu_policy(1), model_);
    else none_ = std::make_unique<spacy_ner<cpu_policy>>(cpu_policy(1), ner);
  }
  [[nodiscard]] spacy_sentences sentences() const noexcept { return source_; }
  [[nodiscard]] const std::vector<std::string>& dep_labels() const {
    static const std::vector<std::string> none;
    return parser_ ? parser_->stage<stages::spacy_parser>().dep_labels() : none;
  }
  std::vector<document> operator()(std::span<const std::string_view> texts, std::vector<spacy_doc_analysis>* an = nullptr) {
    std::vector<document> out = parser_ ? (*parser_)(texts) : senter_ ? (*senter_)(texts) : (*none_)(texts);
    if (an == nullptr) return out;
    an->assign(texts.size(), {});
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (!out[i].ok()) continue;
      auto& a = (*an)[i];
      if (source_ == spacy_sentences::none) {
        if (!out[i].tokens.empty()) a.sent_starts = {0};
      } else {
        a.sent_starts = out[i].sentences;
      }
    }
    if (parser_) {
      const auto& b = parser_->last_batch();
      const auto& st = parser_->stage<stages::spacy_parser>();
      for (std::size_t d = 0; d < b.size(); ++d) {
        if (!b.live(d)) continue;
        auto& a = (*an)[static_cast<std::size_t>(b.docs[d] - out.data())];
        a.heads.assign(st.heads().begin() + static_cast<std::ptrdiff_t>(b.doc_words.begin(d)),
                       st.heads().begin() + static_cast<std::ptrdiff_t>(b.doc_words.end(d)));
        a.labels.assign(st.labels().begin() + static_cast<std::ptrdiff_t>(b.doc_words.begin(d)),
                        st.labels().begin() + static_cast<std::ptrdiff_t>(b.doc_words.end(d)));
      }
    }
    return out;
  }
  document operator()(std::string_view text, spacy_doc_analysis* an = nullptr) {
    std::vector<spacy_doc_analysis> a;
    auto docs = (*this)(std::span<const std::string_view>(&text, 1), an != nullptr ? &a : nullptr);
    if (an != nullptr) *an = std::move(a.front());
    return std::move(docs.front());
  }

 private:
  spacy_sentences source_;
  spacy_pipeline_model model_;
  std::unique_ptr<spacy_parser_ner<cpu_policy>> parser_;
  std::unique_ptr<spacy_senter_ner<cpu_policy>> senter_;
  std::unique_ptr<spacy_ner<cpu_policy>> none_;
};

std::vector<ent_tuple> ents_of(const spacy::json_value& v) {
  std::vector<ent_tuple> out;
  for (const auto& e : v.items) out.emplace_back(static_cast<long>(e.items[0].num), static_cast<long>(e.items[1].num), e.items[2].str);
  return out;
}

/// The tool's digest: FNV-1a 64 over UTF-8 bytes, as 16 hex digits.
std::string fnv1a64(const std::string& s) {
  std::uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001B3ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::vector<std::string> lines_of(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(std::move(l));
  return out;
}

struct golden {
  std::string id;
  std::vector<std::uint32_t> ss;
  std::string parse, merged;    // empty where the fixture has none
  std::vector<ent_tuple> ents;  // the pipeline's (from the NER-only fixture where the file leaves them out)
};

/// tests/fixtures/spacy/<file>.jsonl (tools/fixtures/spacy_parser_fixtures.py); with file empty, the NER-only
/// fixtures alone (every document starts one sentence).
std::vector<golden> load_goldens(const std::string& which, const std::string& file) {
  const auto dir = nerpipe::test::fixtures_dir() / "spacy";
  const std::string stem = which == "sm" ? "ewt" : "ewt_" + which;
  std::vector<std::string> ner_only = lines_of(dir / (stem + "_dev.jsonl"));
  for (auto& l : lines_of(dir / (stem + "_train.jsonl"))) ner_only.push_back(std::move(l));
  const auto lines = file.empty() ? std::vector<std::string>(ner_only.size(), "{}") : lines_of(dir / (file + ".jsonl"));
  std::vector<golden> out;
  if (lines.size() != ner_only.size()) return out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto j = spacy::parse_json(lines[i], file);
    const auto n = spacy::parse_json(ner_only[i], stem + " fixture");
    golden g;
    g.id = n.find("id")->str;
    if (const auto* id = j.find("id"); id != nullptr && id->str != g.id) return {};
    if (const auto* ss = j.find("ss")) {
      for (const auto& x : ss->items) g.ss.push_back(static_cast<std::uint32_t>(x.num));
    } else {
      g.ss = {0};
    }
    if (const auto* p = j.find("parse")) g.parse = p->str;
    if (const auto* m = j.find("merged")) g.merged = m->str;
    g.ents = ents_of(j.find("ents") != nullptr ? *j.find("ents") : *n.find("ents"));
    out.push_back(std::move(g));
  }
  return out;
}

/// Runs the composed default pipeline with `source` on every EWT document and compares with the goldens of `file`.
void check_pipeline(const std::string& which, spacy_sentences source, const std::string& file) {
  const auto dir = nerpipe::test::models_dir() / ("en_core_web_" + which + "-3.8.0");
  if (!nerpipe::test::require_path(dir / "config.cfg", "en_core_web_" + which + " 3.8.0 (scripts/get-model.sh models " + which + ")")) return;
  const auto docs = nerpipe::test::load_ewt();
  REQUIRE(docs.size() == 858);
  const auto gold = load_goldens(which, file);
  REQUIRE(gold.size() == docs.size());
  const auto ner = load_spacy_model(dir);
  spacy_parser_parts parts;
  parts.parser = source == spacy_sentences::parser;
  parts.senter = source == spacy_sentences::senter;
  const auto sents = load_spacy_parser_model(dir, parts);
  CHECK(sents.enabled("parser"));
  CHECK_FALSE(sents.enabled("senter"));
  if (parts.parser) CHECK(sents.actions.size() == 106);
  default_runner nlp(ner, sents, source);
  std::vector<std::string_view> texts;
  for (const auto& d : docs) texts.push_back(d.text);
  std::vector<spacy_doc_analysis> an;
  const auto out = nlp(texts, &an);
  REQUIRE(out.size() == docs.size());
  std::size_t same_ss = 0, same_parse = 0, same_ents = 0, same_merged = 0, sentences = 0, ents = 0;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    REQUIRE(gold[i].id == docs[i].id);
    INFO(which << " document " << docs[i].id);
    std::string parse;
    for (std::size_t t = 0; t < an[i].heads.size(); ++t)
      parse += std::to_string(an[i].heads[t]) + " " + nlp.dep_labels()[static_cast<std::size_t>(an[i].labels[t])] + "\n";
    const std::string merged = merged_text(out[i].text, out[i].tokens, out[i].entities);
    sentences += gold[i].ss.size();
    ents += gold[i].ents.size();
    same_ss += an[i].sent_starts == gold[i].ss;
    same_ents += st::entity_tuples(out[i]) == gold[i].ents;
    CHECK(an[i].sent_starts == gold[i].ss);
    CHECK(st::entity_tuples(out[i]) == gold[i].ents);
    if (!gold[i].parse.empty()) {
      same_parse += fnv1a64(parse) == gold[i].parse;
      CHECK(fnv1a64(parse) == gold[i].parse);
    }
    if (!gold[i].merged.empty()) {
      same_merged += fnv1a64(merged) == gold[i].merged;
      CHECK(fnv1a64(merged) == gold[i].merged);
    }
  }
  const char* src = source == spacy_sentences::parser ? "parser" : source == spacy_sentences::senter ? "senter" : "none";
  INFO(which << " (sentences: " << src << "): of " << docs.size() << " documents (" << sentences << " sentences, " << ents
             << " entities), identical: sentence starts " << same_ss << ", heads+labels " << same_parse << ", entities " << same_ents
             << ", merged lines " << same_merged);
  CHECK(same_ss == docs.size());
  CHECK(same_ents == docs.size());
  if (source == spacy_sentences::parser) CHECK(same_parse == docs.size());
  if (!file.empty()) CHECK(same_merged == docs.size());
}

}  // namespace

TEST_CASE("spacy default pipeline (sm): parser sentence starts, parse, entities and merged lines on every EWT document",
          "[spacy][fidelity][model]") {
  check_pipeline("sm", spacy_sentences::parser, "ewt_parser_sm");
}

TEST_CASE("spacy default pipeline (md): parser sentence starts, parse, entities and merged lines on every EWT document",
          "[spacy][fidelity][model]") {
  check_pipeline("md", spacy_sentences::parser, "ewt_parser_md");
}

TEST_CASE("spacy pipeline with the senter (sm, md): sentence starts, entities and merged lines on every EWT document",
          "[spacy][fidelity][model]") {
  SECTION("sm") { check_pipeline("sm", spacy_sentences::senter, "ewt_senter_sm"); }
  SECTION("md") { check_pipeline("md", spacy_sentences::senter, "ewt_senter_md"); }
}

TEST_CASE("spacy pipeline without sentence starts is the NER-only pipeline (sm, md)", "[spacy][fidelity][model]") {
  SECTION("sm") { check_pipeline("sm", spacy_sentences::none, ""); }
  SECTION("md") { check_pipeline("md", spacy_sentences::none, ""); }
}

TEST_CASE("spacy parse trees: deprojectivize and set_children_from_heads match spaCy on generated trees", "[spacy]") {
  const auto lines = lines_of(nerpipe::test::fixtures_dir() / "spacy" / "parse_trees.jsonl");
  REQUIRE(lines.size() == 250);
  std::size_t same = 0;
  for (const auto& l : lines) {
    const auto j = spacy::parse_json(l, "parse_trees.jsonl");
    // A label table with each string once, and the halves of every "x||y".
    std::vector<std::string> table;
    auto intern = [&](const std::string& s) {
      for (std::size_t k = 0; k < table.size(); ++k)
        if (table[k] == s) return static_cast<std::int32_t>(k);
      table.push_back(s);
      return static_cast<std::int32_t>(table.size() - 1);
    };
    std::vector<std::int32_t> heads, labels, want_heads, want_labels;
    std::vector<char> space;
    std::vector<std::uint32_t> want_ss;
    for (const auto& w : j.find("words")->items) space.push_back(w.str == " " || w.str == "\n" ? 1 : 0);
    for (const auto& h : j.find("heads")->items) heads.push_back(static_cast<std::int32_t>(h.num));
    for (const auto& d : j.find("deps")->items) labels.push_back(intern(d.str));
    for (const auto& h : j.find("out_heads")->items) want_heads.push_back(static_cast<std::int32_t>(h.num));
    for (const auto& d : j.find("out_deps")->items) want_labels.push_back(intern(d.str));
    for (const auto& x : j.find("ss")->items) want_ss.push_back(static_cast<std::uint32_t>(x.num));
    spacy::label_decorations deco;
    for (std::size_t k = 0; k < table.size(); ++k) {
      const std::string s = table[k];
      const auto at = s.find("||");
      const std::int32_t x = at == std::string::npos ? -1 : intern(s.substr(0, at));
      const std::int32_t y = at == std::string::npos ? -1 : intern(s.substr(at + 2));
      deco.decorated_new.resize(table.size(), -1);
      deco.decorated_head.resize(table.size(), -1);
      deco.decorated_new[k] = x;
      deco.decorated_head[k] = y;
    }
    deco.decorated_new.resize(table.size(), -1);
    deco.decorated_head.resize(table.size(), -1);
    const std::size_t n = heads.size();
    std::vector<std::int32_t> le(n), re(n);
    std::vector<std::uint8_t> ss(n);
    spacy::set_edges(heads, le, re);
    spacy::deprojectivize(heads, labels, le, re, space, deco);
    spacy::set_edges(heads, le, re);
    spacy::sentence_starts(heads, le, ss);
    std::vector<std::uint32_t> got_ss;
    for (std::size_t i = 0; i < n; ++i)
      if (ss[i]) got_ss.push_back(static_cast<std::uint32_t>(i));
    INFO(l);
    CHECK(heads == want_heads);
    CHECK(labels == want_labels);
    CHECK(got_ss == want_ss);
    same += heads == want_heads && labels == want_labels && got_ss == want_ss;
  }
  CHECK(same == lines.size());
}

TEST_CASE("spacy NER: an entity never continues into a sentence start (ner.pyx Begin/In.is_valid)", "[spacy][model]") {
  const auto dir = nerpipe::test::models_dir() / "en_core_web_sm-3.8.0";
  if (!nerpipe::test::require_path(dir / "config.cfg", "en_core_web_sm 3.8.0 (scripts/get-model.sh models sm)")) return;
  const auto model = load_spacy_model(dir);
  const cpu_policy p(1);
  const spacy_tokenizer tok(model);
  spacy::token_features feats_of(tok);
  const spacy_tok2vec<cpu_policy> t2v(p, model.ner);
  const transition_ner<cpu_policy> head(p, model);
  const std::string text = "Barack Obama visited New York City on Monday with Google engineers and the United Nations.";
  const auto raw = tok.tokenize(text);
  const std::size_t n = raw.size();
  std::vector<std::uint64_t> feats;
  std::vector<std::int64_t> rows;
  std::vector<char> space;
  feats_of.extract(text, raw, spacy::token_attrs_of(model.ner), feats, nullptr, &rows);
  feats_of.is_space(text, raw, space);
  std::vector<float> X(n * t2v.width());
  const std::size_t lens[1] = {n};
  t2v.forward(p, feats, rows, lens, matrix_view<float>(X.data(), n, t2v.width()));
  auto run = [&](const std::vector<std::uint8_t>& ss) {
    std::vector<std::vector<token_span>> out;
    head.forward(p, matrix_view<const float>(X.data(), n, t2v.width()), lens, space, out, ss);
    return out.front();
  };
  const auto plain = run({});
  std::size_t multi = 0;
  for (const auto& s : plain) multi += s.end - s.start > 1;
  REQUIRE(multi >= 2);  // "Barack Obama", "New York City", "the United Nations"
  // Every token a sentence start: only one-token entities remain.
  for (const auto& s : run(std::vector<std::uint8_t>(n, 1))) CHECK(s.end - s.start == 1);
  // A start inside each multi-token entity: no entity crosses it.
  std::vector<std::uint8_t> ss(n, 0);
  for (const auto& s : plain)
    if (s.end - s.start > 1) ss[s.start + 1] = 1;
  for (const auto& s : run(ss))
    for (std::size_t t = s.start + 1; t < s.end; ++t) CHECK(ss[t] == 0);
  // Token 0 is always a sentence start; marking it changes nothing.
  std::vector<std::uint8_t> first(n, 0);
  first[0] = 1;
  const auto same = run(first);
  REQUIRE(same.size() == plain.size());
  for (std::size_t k = 0; k < same.size(); ++k) CHECK((same[k].start == plain[k].start && same[k].end == plain[k].end));
}

namespace {

// The error load_spacy_parser_model throws for `dir` (fails the test when it loads).
model_error parser_load_error(const fs::path& dir, spacy_parser_parts parts = {}) {
  try {
    (void)load_spacy_parser_model(dir, parts);
  } catch (const model_error& e) {
    return e;
  }
  FAIL("load_spacy_parser_model(" << dir.string() << ") did not throw");
  return model_error(errc::model_file_missing, "unreachable");
}

void copy_parser_files(const fs::path& from, const fs::path& to) {
  for (const char* f : {"config.cfg", "tok2vec/model", "parser/cfg", "parser/moves", "parser/model"}) {
    fs::create_directories((to / f).parent_path());
    fs::copy_file(from / f, to / f, fs::copy_options::overwrite_existing);
  }
}

/// Rewrites parser/moves with `from` replaced by `to` in its JSON string.
void edit_moves(const fs::path& p, const std::string& from, const std::string& to) {
  std::ifstream in(p, std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  spacy::detail::msgpack_doc doc(p.string(), bytes.data(), bytes.size());
  std::string moves(doc.str(doc.at(doc.root(), "moves", "moves"), "moves"));
  const auto pos = moves.find(from);
  REQUIRE(pos != std::string::npos);
  moves.replace(pos, from.size(), to);
  msgpack::sbuffer b;
  nerpipe_spacy_test::packer pk(&b);
  pk.pack_map(2);
  nerpipe_spacy_test::pack_str(pk, "moves");
  nerpipe_spacy_test::pack_str(pk, moves);
  nerpipe_spacy_test::pack_str(pk, "cfg");
  pk.pack_map(1);
  nerpipe_spacy_test::pack_str(pk, "neg_key");
  pk.pack_nil();
  std::ofstream(p, std::ios::binary) << std::string(b.data(), b.size());
}

void replace_once(const fs::path& p, const std::string& from, const std::string& to) {
  std::ifstream in(p, std::ios::binary);
  std::string s{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const auto pos = s.find(from);
  REQUIRE(pos != std::string::npos);
  s.replace(pos, from.size(), to);
  std::ofstream(p, std::ios::binary) << s;
}

}  // namespace

TEST_CASE("spacy parser loader: damaged and unsupported copies of en_core_web_sm are named", "[spacy][model]") {
  const auto dir = nerpipe::test::models_dir() / "en_core_web_sm-3.8.0";
  if (!nerpipe::test::require_path(dir / "config.cfg", "en_core_web_sm 3.8.0 (scripts/get-model.sh models sm)")) return;
  {
    const auto m = load_spacy_parser_model(dir, {true, true});
    CHECK(m.has_parser);
    CHECK(m.has_senter);
    CHECK(m.tok2vec_name == "tok2vec");
    CHECK(m.tok2vec.embeds.size() == 6);
    CHECK(m.tok2vec.embeds[4].attr == "SPACY");
    CHECK(m.parser.nF == 8);
    CHECK(m.actions.front().mv == spacy::arc_move::shift);
    CHECK(m.actions[2].label == "det");  // LEFT labels by frequency
    CHECK(m.actions.back().mv == spacy::arc_move::brk);
    CHECK(m.actions.back().label == "ROOT");
    CHECK(m.senter.tok2vec.width == 16);
    CHECK(m.position("parser") < m.position("ner"));
  }
  CHECK(spacy_default_sentences(dir) == spacy_sentences::parser);
  nerpipe_spacy_test::temp_dir tmp;
  auto fresh = [&] {
    fs::remove_all(tmp.path);
    copy_parser_files(dir, tmp.path);
  };
  fresh();
  CHECK_NOTHROW(load_spacy_parser_model(tmp.path));

  // One more LEFT label than the upper layer has rows.
  edit_moves(tmp.path / "parser" / "moves", "\"det\":172595", "\"det\":172595,\"zzz\":1");
  auto e = parser_load_error(tmp.path);
  CHECK(e.code() == errc::model_shape_mismatch);
  CHECK_THAT(e.what(), Catch::Contains("107 actions"));

  fresh();
  edit_moves(tmp.path / "parser" / "moves", "\"4\":", "\"7\":");
  e = parser_load_error(tmp.path);
  CHECK(e.code() == errc::model_file_malformed);
  CHECK_THAT(e.what(), Catch::Contains("move id '7'"));

  fresh();
  replace_once(tmp.path / "config.cfg", "state_type = \"parser\"\nextra_state_tokens = false", "state_type = \"parser\"\nextra_state_tokens = true");
  e = parser_load_error(tmp.path);
  CHECK(e.code() == errc::model_unsupported);
  CHECK_THAT(e.what(), Catch::Contains("extra_state_tokens"));

  fresh();
  replace_once(tmp.path / "parser" / "cfg", "\"beam_width\":1", "\"beam_width\":8");
  e = parser_load_error(tmp.path);
  CHECK(e.code() == errc::model_unsupported);
  CHECK_THAT(e.what(), Catch::Contains("beam_width"));

  fresh();
  replace_once(tmp.path / "config.cfg", "upstream = \"tok2vec\"\n\n[components.senter]", "upstream = \"tagger\"\n\n[components.senter]");
  e = parser_load_error(tmp.path);
  CHECK(e.code() == errc::model_unsupported);
  CHECK_THAT(e.what(), Catch::Contains("upstream"));

  fresh();
  replace_once(tmp.path / "config.cfg", "rows = [5000,1000,2500,2500,50,50]", "rows = [5000,1000,2500,2500,50,60]");
  e = parser_load_error(tmp.path);
  CHECK(e.code() == errc::model_shape_mismatch);
  CHECK_THAT(e.what(), Catch::Contains("IS_SPACE"));

  fresh();
  {  // a truncated parser/model
    const auto p = tmp.path / "parser" / "model";
    const auto size = fs::file_size(p);
    fs::resize_file(p, size / 2);
  }
  e = parser_load_error(tmp.path);
  CHECK(e.code() == errc::model_file_malformed);

  fresh();
  fs::remove(tmp.path / "tok2vec" / "model");
  e = parser_load_error(tmp.path);
  CHECK(e.code() == errc::model_file_missing);
  CHECK_THAT(e.what(), Catch::Contains("tok2vec"));

  // Which sentence starts spacy.load(dir) gives the NER follows [nlp] pipeline and disabled.
  fresh();
  replace_once(tmp.path / "config.cfg", "disabled = [\"senter\"]", "disabled = [\"parser\"]");
  CHECK(spacy_default_sentences(tmp.path) == spacy_sentences::senter);
  replace_once(tmp.path / "config.cfg", "disabled = [\"parser\"]", "disabled = [\"parser\",\"senter\"]");
  CHECK(spacy_default_sentences(tmp.path) == spacy_sentences::none);
  fresh();
  replace_once(tmp.path / "config.cfg", "pipeline = [\"tok2vec\",\"tagger\",\"parser\",\"senter\",\"attribute_ruler\",\"lemmatizer\",\"ner\"]",
               "pipeline = [\"tok2vec\",\"tagger\",\"ner\",\"parser\",\"senter\",\"attribute_ruler\",\"lemmatizer\"]");
  CHECK(spacy_default_sentences(tmp.path) == spacy_sentences::none);  // the parser runs after the NER

  fresh();
  e = parser_load_error(tmp.path, {false, true});  // senter/model was not copied
  CHECK(e.code() == errc::model_file_missing);
  CHECK_THAT(e.what(), Catch::Contains("senter"));
}

TEST_CASE("spacy default pipeline (sm): batches, empty and whitespace texts, invalid UTF-8", "[spacy][model]") {
  const auto dir = nerpipe::test::models_dir() / "en_core_web_sm-3.8.0";
  if (!nerpipe::test::require_path(dir / "config.cfg", "en_core_web_sm 3.8.0 (scripts/get-model.sh models sm)")) return;
  const auto ner = load_spacy_model(dir);
  const auto sents = load_spacy_parser_model(dir);
  default_runner nlp(ner, sents);
  CHECK(nlp.sentences() == spacy_sentences::parser);
  const std::string a = "Barack Obama visited Paris. Then he flew to New York City on Monday.";
  const std::string b = "I met Dr. Smith at Google. He works for the United Nations in Geneva";
  spacy_doc_analysis aa, ab;
  const auto da = nlp(a, &aa);
  const auto db = nlp(b, &ab);
  REQUIRE(aa.sent_starts.size() >= 2);
  CHECK(aa.sent_starts.front() == 0);
  CHECK(aa.heads.size() == da.tokens.size());
  // A doc's result does not depend on its batch neighbours (also across the ~256-token decode groups).
  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += b + ". ";
  std::vector<std::string_view> batch = {b, "", a, "  \n", long_text, "\xff\xfe", a, "x"};
  std::vector<spacy_doc_analysis> an;
  const auto out = nlp(batch, &an);
  REQUIRE(out.size() == batch.size());
  CHECK(st::entity_tuples(out[0]) == st::entity_tuples(db));
  CHECK(an[0].sent_starts == ab.sent_starts);
  CHECK(an[0].heads == ab.heads);
  CHECK(st::entity_tuples(out[2]) == st::entity_tuples(da));
  CHECK(an[2].sent_starts == aa.sent_starts);
  CHECK(an[2].labels == aa.labels);
  CHECK(st::entity_tuples(out[6]) == st::entity_tuples(da));
  CHECK(out[1].tokens.empty());
  CHECK(an[1].sent_starts.empty());
  CHECK(out[3].entities.empty());
  CHECK(an[3].sent_starts.front() == 0);
  CHECK(an[4].sent_starts.size() >= 40);
  CHECK(out[5].status == record_status::invalid_utf8);
  CHECK(an[7].sent_starts == std::vector<std::uint32_t>{0});
  // Every label the parser reports is a plain dependency label (deprojectivised), ROOT exactly on roots.
  for (std::size_t t = 0; t < an[4].heads.size(); ++t) {
    const std::string& l = nlp.dep_labels()[static_cast<std::size_t>(an[4].labels[t])];
    CHECK(l.find("||") == std::string::npos);
    CHECK((l == "ROOT") == (an[4].heads[t] == static_cast<std::int32_t>(t)));
  }
}
