// SPDX-License-Identifier: Apache-2.0
// The entity_ruler stage against spaCy 3.8.7's entity_ruler added after the NER (tools/fixtures/entity_ruler_fixtures.py):
// every EWT document, with overwrite_ents false and true (ORTH) and with phrase_matcher_attr LOWER; plus the pattern
// file reader's errors and a pipeline built through make_pipeline with the ruler.
#include <catch2/catch.hpp>

#include "spacy_test_support.hpp"
#include "support/data.hpp"

#include <nerpipe/nerpipe.hpp>

#include <simdjson.h>

#include <fstream>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

using namespace nerpipe;
namespace st = nerpipe_spacy_test;

namespace {

using ent_tuple = std::tuple<long, long, std::string>;

struct ruler_reference {
  std::vector<std::string> ids;
  std::vector<std::vector<ent_tuple>> orth, orth_overwrite, lower;
};

const ruler_reference& reference() {
  static const ruler_reference r = [] {
    ruler_reference out;
    simdjson::dom::parser parser;
    std::ifstream in(test::fixtures_dir() / "spacy" / "entity_ruler_ewt.jsonl");
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      const simdjson::dom::element e = parser.parse(line);
      out.ids.emplace_back(std::string_view(e["id"]));
      auto read = [&](const char* key, std::vector<std::vector<ent_tuple>>& into) {
        into.emplace_back();
        for (simdjson::dom::element x : e[key].get_array())
          into.back().emplace_back(std::int64_t(x.at(0)), std::int64_t(x.at(1)), std::string(std::string_view(x.at(2))));
      };
      read("orth", out.orth);
      read("orth_overwrite", out.orth_overwrite);
      read("lower", out.lower);
    }
    return out;
  }();
  return r;
}

void check_setting(entity_ruler_config::match_attr attr, bool overwrite, const std::vector<std::vector<ent_tuple>>& want,
                   const char* name) {
  auto dir = st::model_dir("sm");
  if (!dir) return;  // skipped, or failed under CI: model_dir says what is missing
  const auto& ref = reference();
  const auto ewt = test::load_ewt();
  REQUIRE(ewt.size() == ref.ids.size());
  const auto model = load_spacy_model(*dir);
  auto rules = std::make_shared<entity_ruler_config>();
  rules->patterns = read_entity_patterns(test::fixtures_dir() / "spacy" / "entity_ruler_patterns.jsonl");
  REQUIRE(rules->patterns.size() == 40);
  rules->attr = attr;
  rules->overwrite_ents = overwrite;
  pipeline_options o;
  o.entity_ruler = rules;
  spacy_ner_with_rules<cpu_policy> nlp(cpu_policy(2), model, o);
  std::vector<std::string_view> texts;
  for (const auto& d : ewt) texts.push_back(d.text);
  const auto out = nlp(texts);
  std::size_t same = 0, entities = 0;
  for (std::size_t i = 0; i < ewt.size(); ++i) {
    REQUIRE(ewt[i].id == ref.ids[i]);
    INFO(name << ": document " << ref.ids[i]);
    CHECK(st::entity_tuples(out[i]) == want[i]);
    same += st::entity_tuples(out[i]) == want[i];
    entities += want[i].size();
  }
  WARN("entity_ruler " << name << ": " << same << "/" << ewt.size() << " EWT documents with spaCy's entities (" << entities
                       << " entities)");
}

}  // namespace

TEST_CASE("entity_ruler (ORTH, overwrite_ents false) = spaCy's entity_ruler after ner on every EWT document",
          "[spacy][rules][fidelity][model]") {
  check_setting(entity_ruler_config::match_attr::orth, false, reference().orth, "ORTH");
}

TEST_CASE("entity_ruler (ORTH, overwrite_ents true) = spaCy's entity_ruler after ner on every EWT document",
          "[spacy][rules][fidelity][model]") {
  check_setting(entity_ruler_config::match_attr::orth, true, reference().orth_overwrite, "ORTH, overwrite_ents");
}

TEST_CASE("entity_ruler (LOWER) = spaCy's entity_ruler after ner on every EWT document", "[spacy][rules][fidelity][model]") {
  check_setting(entity_ruler_config::match_attr::lower, false, reference().lower, "LOWER");
}

TEST_CASE("entity_ruler through make_pipeline, and the pattern file's errors", "[spacy][rules][model]") {
  auto dir = st::model_dir("sm");
  if (!dir) return;
  const auto m = load_model(*dir);
  auto rules = std::make_shared<entity_ruler_config>();
  rules->patterns = {{"COMPANY", "Acme Corp", "acme"}, {"COMPANY", "Acme", ""}, {"GREETING", "hello there", ""}};
  rules->overwrite_ents = true;  // the ruler wins where the model found an entity too
  pipeline_options o;
  o.entity_ruler = rules;
  auto nlp = make_pipeline(cpu_policy(1), m, o);
  std::vector<std::string> texts = {"We bought Acme Corp and hello there.", "Acme makes anvils.", "nothing here"};
  std::vector<document> got;
  for (const document& d : nlp.pipe(texts)) got.push_back(d);
  REQUIRE(got.size() == 3);
  auto has = [](const document& d, const std::string& text, const std::string& label) {
    for (const auto& e : d.entities)
      if (e.text == text && e.label == label) return true;
    return false;
  };
  CHECK(has(got[0], "Acme Corp", "COMPANY"));  // the longer match wins over "Acme"
  CHECK(has(got[0], "hello there", "GREETING"));
  CHECK(has(got[1], "Acme", "COMPANY"));

  st::temp_dir tmp;
  auto write = [&](const std::string& text) {
    std::ofstream(tmp.path / "p.jsonl") << text;
    return tmp.path / "p.jsonl";
  };
  CHECK_THROWS_WITH(read_entity_patterns(write("{\"label\": \"X\", \"pattern\": [{\"LOWER\": \"a\"}]}\n")),
                    Catch::Contains("p.jsonl:1") && Catch::Contains("token pattern"));
  CHECK_THROWS_WITH(read_entity_patterns(write("\n{\"pattern\": \"a\"}\n")), Catch::Contains("p.jsonl:2") && Catch::Contains("label"));
  CHECK_THROWS_WITH(read_entity_patterns(write("not json\n")), Catch::Contains("not a JSON object"));
  CHECK_THROWS_WITH(read_entity_patterns(tmp.path / "missing.jsonl"), Catch::Contains("cannot open"));
  CHECK(read_entity_patterns(write("{\"label\": \"X\", \"pattern\": \"a b\", \"id\": \"x\"}\r\n")).front().id == "x");
}
