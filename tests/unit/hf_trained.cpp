// SPDX-License-Identifier: Apache-2.0
// Trained weights on the CPU: the small BERT NER model of tools/models/train_tiny_ner.py (4 layers, hidden
// 128, 37 labels, bf16 weights) against the transformers pipeline's own output on every EWT document that
// fits one window (tools/models/tiny_ner_reference.py writes MODEL_DIR/reference.jsonl). The model is
// never committed, so without it the test says so and returns; with it (NERPIPE_TRAINED_NER, else
// models/tiny-ner-ewt): entities identical (label, word, start, end), scores within 1e-4.
#include <catch2/catch.hpp>

#include <nerpipe/hf.hpp>

#include <simdjson.h>

#include "support/hf_entities.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

TEST_CASE("hf trained model on cpu_policy: the transformers pipeline's entities on EWT", "[hf][fidelity][trained]") {
  using namespace nerpipe;
  namespace fs = std::filesystem;
  fs::path dir;
  if (const char* env = std::getenv("NERPIPE_TRAINED_NER"); env != nullptr && *env != '\0') dir = env;
  else dir = fs::path(NERPIPE_SOURCE_DIR) / "models" / "tiny-ner-ewt";
  if (!fs::exists(dir / "reference.jsonl")) {
    WARN("no trained model with a reference at " << dir.string()
                                                 << " (tools/models/train_tiny_ner.py, then tiny_ner_reference.py): skipped");
    return;
  }
  const hf_model model = load_hf_model(dir);
  std::vector<std::string> texts;
  std::vector<std::vector<hf_entity>> want;
  simdjson::dom::parser parser;
  std::ifstream in(dir / "reference.jsonl");
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const simdjson::dom::element d = parser.parse(line);
    texts.emplace_back(std::string_view(d["text"]));
    want.emplace_back();
    for (auto e : d["entities"]) want.back().push_back(test::hf_entity_from_json(e));
  }
  REQUIRE(texts.size() > 100);

  const cpu_policy cpu(std::max(1u, std::thread::hardware_concurrency()));
  bert_ner<cpu_policy> ner(cpu, model);  // simple aggregation, "O" ignored: the reference's settings
  std::vector<std::string_view> views(texts.begin(), texts.end());
  const auto got = hf_entities(ner, views);
  std::size_t same = 0, entities = 0;
  float max_score_diff = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    entities += want[i].size();
    bool eq = got[i].size() == want[i].size();
    for (std::size_t k = 0; eq && k < want[i].size(); ++k) {
      const auto &g = got[i][k], &w = want[i][k];
      eq = g.label == w.label && g.word == w.word && g.start == w.start && g.end == w.end;
      max_score_diff = std::max(max_score_diff, std::fabs(g.score - w.score));
    }
    INFO("reference line " << i + 1);
    CHECK(eq);
    same += eq;
  }
  WARN("trained model " << dir.filename().string() << ": " << same << "/" << texts.size()
                        << " documents with the pipeline's entities (" << entities
                        << " entities), max |score diff| " << max_score_diff);
  CHECK(max_score_diff < 1e-4f);
}
