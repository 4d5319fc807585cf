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
#include <nerpipe/spacy_default.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

using namespace nerpipe;
namespace fs = std::filesystem;

namespace {

using ent_tuple = std::tuple<long, long, std::string>;

std::vector<ent_tuple> tuples(const document& d) {
  std::vector<ent_tuple> out;
  for (const auto& e : d.entities) out.emplace_back(static_cast<long>(e.start), static_cast<long>(e.end), e.label);
  return out;
}

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
  std::string parse, merged;
  std::vector<ent_tuple> ents;  // the full pipeline's
};

/// ewt_parser_<which>.jsonl, with the entities it leaves out taken from the NER-only fixtures.
std::vector<golden> load_goldens(const std::string& which) {
  const auto dir = nerpipe::test::fixtures_dir() / "spacy";
  const std::string stem = which == "sm" ? "ewt" : "ewt_" + which;
  std::vector<std::string> ner_only = lines_of(dir / (stem + "_dev.jsonl"));
  for (auto& l : lines_of(dir / (stem + "_train.jsonl"))) ner_only.push_back(std::move(l));
  const auto lines = lines_of(dir / ("ewt_parser_" + which + ".jsonl"));
  std::vector<golden> out;
  if (lines.size() != ner_only.size()) return out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto j = spacy::parse_json(lines[i], "ewt_parser_" + which + ".jsonl");
    golden g;
    g.id = j.find("id")->str;
    for (const auto& x : j.find("ss")->items) g.ss.push_back(static_cast<std::uint32_t>(x.num));
    g.parse = j.find("parse")->str;
    g.merged = j.find("merged")->str;
    if (const auto* e = j.find("ents")) {
      g.ents = ents_of(*e);
    } else {
      const auto n = spacy::parse_json(ner_only[i], stem + " fixture");
      if (n.find("id")->str != g.id) return {};
      g.ents = ents_of(*n.find("ents"));
    }
    out.push_back(std::move(g));
  }
  return out;
}

void check_default_pipeline(const std::string& which) {
  const auto dir = nerpipe::test::models_dir() / ("en_core_web_" + which + "-3.8.0");
  if (!nerpipe::test::require_path(dir / "config.cfg", "en_core_web_" + which + " 3.8.0 (scripts/get-model.sh models " + which + ")")) return;
  const auto docs = nerpipe::test::load_ewt();
  REQUIRE(docs.size() == 858);
  const auto gold = load_goldens(which);
  REQUIRE(gold.size() == docs.size());
  const auto ner = load_spacy_model(dir);
  const auto sents = load_spacy_parser_model(dir);
  CHECK(sents.enabled("parser"));
  CHECK_FALSE(sents.enabled("senter"));
  CHECK(sents.actions.size() == 106);
  spacy_default_ner<cpu_policy> nlp(cpu_policy(1), ner, sents);
  std::vector<std::string_view> texts;
  for (const auto& d : docs) texts.push_back(d.text);
  std::vector<spacy_doc_analysis> an;
  const auto out = nlp(texts, &an);
  REQUIRE(out.size() == docs.size());
  std::size_t same_ss = 0, same_parse = 0, same_ents = 0, same_merged = 0, sentences = 0;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    REQUIRE(gold[i].id == docs[i].id);
    INFO(which << " document " << docs[i].id);
    std::string parse;
    for (std::size_t t = 0; t < an[i].heads.size(); ++t)
      parse += std::to_string(an[i].heads[t]) + " " + nlp.dep_labels()[static_cast<std::size_t>(an[i].labels[t])] + "\n";
    const std::string merged = merged_text(out[i].text, out[i].tokens, out[i].entities);
    sentences += gold[i].ss.size();
    same_ss += an[i].sent_starts == gold[i].ss;
    same_parse += fnv1a64(parse) == gold[i].parse;
    same_ents += tuples(out[i]) == gold[i].ents;
    same_merged += fnv1a64(merged) == gold[i].merged;
    CHECK(an[i].sent_starts == gold[i].ss);
    CHECK(fnv1a64(parse) == gold[i].parse);
    CHECK(tuples(out[i]) == gold[i].ents);
    CHECK(fnv1a64(merged) == gold[i].merged);
  }
  INFO(which << ": of " << docs.size() << " documents (" << sentences << " sentences), identical: sentence starts " << same_ss
             << ", heads+labels " << same_parse << ", entities " << same_ents << ", merged lines " << same_merged);
  CHECK(same_ss == docs.size());
  CHECK(same_parse == docs.size());
  CHECK(same_ents == docs.size());
  CHECK(same_merged == docs.size());
  WARN(which << ": of " << docs.size() << " documents (" << sentences << " sentences), identical: sentence starts " << same_ss
             << ", heads+labels " << same_parse << ", entities " << same_ents << ", merged lines " << same_merged);
}

}  // namespace

TEST_CASE("spacy default pipeline (sm): parser sentence starts, parse, entities and merged lines on every EWT document",
          "[spacy][fidelity][model]") {
  check_default_pipeline("sm");
}

TEST_CASE("spacy default pipeline (md): parser sentence starts, parse, entities and merged lines on every EWT document",
          "[spacy][fidelity][model]") {
  check_default_pipeline("md");
}
