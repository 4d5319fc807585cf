// SPDX-License-Identifier: Apache-2.0
// The spaCy NER-only pipeline on cpu_policy against spaCy 3.8.7 (en_core_web_sm 3.8.0; md when
// present) on every EWT document, merge_entities, and the synthetic pipeline end to end.
#include <catch2/catch.hpp>

#include "spacy_test_support.hpp"

#include <nerpipe/cpu/ops.hpp>
#include <nerpipe/spacy.hpp>

#include <memory>
#include <string>
#include <tuple>
#include <vector>

using namespace nerpipe;
namespace st = nerpipe_spacy_test;

namespace {

using ent_tuple = std::tuple<long, long, std::string>;

// Runs the NER-only pipeline of `which` on all EWT documents and compares with the fixtures.
void check_ewt(const std::string& which, const std::string& stem) {
  auto dir = st::model_dir(which);
  if (!dir) return;  // skipped, or failed under CI: model_dir says what is missing
  st::check_ewt_entities(load_spacy_model(*dir), stem);
}

}  // namespace

TEST_CASE("spacy NER (sm): every EWT document gets spaCy's entities", "[spacy][fidelity][model]") { check_ewt("sm", "ewt"); }

TEST_CASE("spacy NER (md, static vectors): every EWT document gets spaCy's entities", "[spacy][fidelity][model]") {
  check_ewt("md", "ewt_md");
}

TEST_CASE("spacy NER (sm): results, offsets, batches and merge_entities", "[spacy][model]") {
  auto dir = st::model_dir("sm");
  if (!dir) return;  // skipped, or failed under CI: model_dir says what is missing
  const auto model = load_spacy_model(*dir);
  CHECK(model.actions.size() == 74);
  CHECK(model.actions.front().label == "ORG");
  CHECK(model.actions.back().mv == spacy::move::out);
  CHECK(model.labels.size() == 18);
  spacy_ner<cpu_policy> nlp(cpu_policy(1), model);

  const std::string text = "Apple is looking at buying U.K. startup for $1 billion in Z\xc3\xbcrich.";
  const document d = nlp(text);
  REQUIRE(d.ok());
  REQUIRE(d.entities.size() >= 2);
  for (const auto& e : d.entities) {
    CHECK(e.text == text.substr(e.start_byte, e.end_byte - e.start_byte));
    CHECK(e.end > e.start);
  }
  CHECK(d.entities.front().label == "ORG");
  CHECK(d.entities.front().text == "Apple");
  // Code points vs bytes: the last entity is after the two-byte u-umlaut only if it is Zurich.
  const auto& last = d.entities.back();
  if (last.text == "Z\xc3\xbcrich") {
    CHECK(last.end_byte - last.start_byte == 7);
    CHECK(last.end - last.start == 6);
  }

  // A doc's result does not depend on its batch neighbours.
  const std::string other = "Barack Obama visited Paris on Monday with Google engineers.";
  std::vector<std::string_view> batch = {other, text, "", "  \n", other};
  const auto many = nlp(batch);
  REQUIRE(many.size() == 5);
  CHECK(st::entity_tuples(many[1]) == st::entity_tuples(d));
  CHECK(st::entity_tuples(many[0]) == st::entity_tuples(many[4]));
  CHECK(many[2].tokens.empty());
  CHECK(many[2].entities.empty());
  CHECK(many[3].entities.empty());

  // merge_entities: labels replace the entity tokens in the joined text.
  const std::string merged = merged_text(text, d.tokens, d.entities);
  CHECK(merged.rfind("ORG is looking at", 0) == 0);
  const auto mt = merge_entities(d.tokens, d.entities);
  CHECK(mt.size() <= d.tokens.size());
  CHECK(mt.front().ent_type == "ORG");

  // A record that is not UTF-8 comes back with its status set; the others are unaffected.
  std::vector<std::string_view> bad = {"\xff\xfe", other};
  const auto res = nlp(bad);
  CHECK(res[0].status == record_status::invalid_utf8);
  CHECK(st::entity_tuples(res[1]) == st::entity_tuples(many[0]));
}

TEST_CASE("spacy merge_entities text matches spaCy's join on hand-made spans", "[spacy]") {
  const std::string text = "New York  is big.\n";
  // tokens: New_ York_ " " is_ big . \n
  std::vector<token> toks = {{0, 3, 0, 3, true, {}},  {4, 8, 4, 8, true, {}},    {9, 10, 9, 10, false, {}},
                             {10, 12, 10, 12, true, {}}, {13, 16, 13, 16, false, {}}, {16, 17, 16, 17, false, {}},
                             {17, 18, 17, 18, false, {}}};
  std::vector<entity> ents(1);
  ents[0].start = ents[0].start_byte = 0;
  ents[0].end = ents[0].end_byte = 8;
  ents[0].label = "GPE";
  CHECK(merged_text(text, toks, ents) == "GPE   is big . \n");
  const auto m = merge_entities(toks, ents);
  REQUIRE(m.size() == 6);
  CHECK(m[0].whitespace);
  CHECK(m[0].end_byte == 8);
}

TEST_CASE("spacy synthetic pipeline: loads, runs, and keeps spaCy's decoding invariants", "[spacy]") {
  st::temp_dir tmp;
  st::write_synthetic_model(tmp.path);
  const auto model = load_spacy_model(tmp.path);
  CHECK(model.name == "synthetic");
  REQUIRE(model.actions.size() == 10);
  CHECK(model.labels == std::vector<std::string>{"ORG", "PERSON"});
  CHECK(model.actions[8].mv == spacy::move::unit);
  CHECK(model.actions[8].label.empty());
  spacy_ner<cpu_policy> nlp(cpu_policy(1), model);
  CHECK(nlp.stage<stages::spacy_tokenizer>().component().special_patterns() == 0);
  const std::string text = "(don't) stop-gap  measures.\n\nAnd more words here , again and again .";
  const auto d = nlp(text);
  REQUIRE(d.ok());
  std::vector<std::string> toks;
  for (const auto& t : d.tokens) toks.push_back(text.substr(t.start_byte, t.end_byte - t.start_byte));
  REQUIRE(toks.size() >= 9);
  CHECK(std::vector<std::string>(toks.begin(), toks.begin() + 9) ==
        std::vector<std::string>{"(", "do", "n't", ")", "stop", "-", "gap", " ", "measures"});
  std::size_t prev_end = 0;
  for (const auto& e : d.entities) {
    CHECK(e.start_byte >= prev_end);
    prev_end = e.end_byte;
    // An entity never starts on a whitespace token.
    CHECK(text[e.start_byte] != ' ');
    CHECK(text[e.start_byte] != '\n');
  }
  std::vector<std::string_view> batch = {"x y z", text, "x y z"};
  const auto many = nlp(batch);
  CHECK(st::entity_tuples(many[1]) == st::entity_tuples(d));
  CHECK(st::entity_tuples(many[0]) == st::entity_tuples(many[2]));

  // Texts over max_length (spaCy's nlp.max_length) fail alone, like spaCy's E088.
  nlp.stage<stages::spacy_tokenizer>().max_length(5);
  std::vector<std::string_view> sized = {"x y z", "x y z w"};
  const auto res = nlp(sized);
  CHECK(res[0].ok());
  CHECK(res[1].status == record_status::too_large);
  CHECK_THAT(res[1].error, Catch::Contains("max_length"));
}

TEST_CASE("spacy tokenizer + NER (sm): generated tricky texts match spaCy 3.8.7", "[spacy][fidelity][model]") {
  auto dir = st::model_dir("sm");
  if (!dir) return;  // skipped, or failed under CI: model_dir says what is missing
  const auto lines = st::read_lines(st::fixture_dir() / "tricky.jsonl");
  REQUIRE(lines.size() == 400);
  std::vector<std::string> texts;
  std::vector<std::vector<long>> toks;
  std::vector<std::vector<ent_tuple>> ents;
  for (const auto& l : lines) {
    const auto j = spacy::parse_json(l, "tricky.jsonl");
    texts.push_back(j.find("text")->str);
    toks.emplace_back();
    for (const auto& x : j.find("tok")->items) toks.back().push_back(static_cast<long>(x.num));
    ents.emplace_back();
    for (const auto& e : j.find("ents")->items)
      ents.back().emplace_back(static_cast<long>(e.items[0].num), static_cast<long>(e.items[1].num), e.items[2].str);
  }
  const auto model = load_spacy_model(*dir);
  spacy_ner<cpu_policy> nlp(cpu_policy(1), model);
  const std::vector<std::string_view> views(texts.begin(), texts.end());
  const auto out = nlp(views);
  std::size_t same_tok = 0, same_ents = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    std::vector<long> enc;
    for (const auto& t : out[i].tokens) enc.push_back(static_cast<long>(t.end - t.start) * 2 + t.whitespace);
    INFO("text #" << i << ": " << texts[i]);
    CHECK(enc == toks[i]);
    CHECK(st::entity_tuples(out[i]) == ents[i]);
    same_tok += enc == toks[i];
    same_ents += st::entity_tuples(out[i]) == ents[i];
  }
  INFO(same_tok << " token-identical, " << same_ents << " entity-identical of " << texts.size());
  CHECK(same_tok == texts.size());
}
