// SPDX-License-Identifier: Apache-2.0
// Real-weights check (hidden; run by hand): all-MiniLM-L6-v2 encoder + seeded random 9-label head,
// built by tools/fixtures/minilm_check.py into $NERPIPE_MINILM_DIR, against PyTorch fp32.
//   NERPIPE_MINILM_DIR=/tmp/nerpipe-minilm-ner nerpipe_tests "[minilm]" -s
#include <catch2/catch.hpp>

#include <nerpipe/hf.hpp>

#include <simdjson.h>

#include "support/hf_entities.hpp"
#include "support/prerequisite.hpp"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

TEST_CASE("hf MiniLM-L6 real weights: logits within 1e-4 of PyTorch fp32, same entities", "[.slow][minilm]") {
  using namespace nerpipe;
  const char* env = std::getenv("NERPIPE_MINILM_DIR");
  if (env == nullptr || *env == '\0') {
    nerpipe::test::missing_prerequisite("NERPIPE_MINILM_DIR (made by tools/fixtures/minilm_check.py, see its docstring)");
    return;
  }
  const std::filesystem::path dir(env);
  const hf_model model = load_hf_model(dir);
  REQUIRE(model.config.hidden == 384);
  REQUIRE(model.config.layers == 6);
  simdjson::dom::parser parser;
  const simdjson::dom::element root = parser.load((dir / "reference.json").string());

  const cpu_policy p(0);
  bert_embedding<cpu_policy> emb(p, model.config, *model.weights);
  transformer_encoder<cpu_policy> enc(p, model.config, *model.weights);
  token_classifier<cpu_policy> head(p, model.config, *model.weights);
  const std::size_t H = model.config.hidden, L = model.config.num_labels();

  std::vector<std::string> texts;
  std::vector<std::vector<std::int32_t>> ref_ids;
  std::vector<std::vector<float>> ref_logits;
  std::vector<std::vector<hf_entity>> ref_ents;
  for (auto d : root["docs"]) {
    texts.emplace_back(std::string_view(d["text"]));
    ref_ids.emplace_back();
    for (auto v : d["ids"]) ref_ids.back().push_back(static_cast<std::int32_t>(std::int64_t(v)));
    ref_logits.emplace_back();
    for (auto row : d["logits"])
      for (auto v : row) ref_logits.back().push_back(static_cast<float>(double(v)));
    ref_ents.emplace_back();
    for (auto e : d["entities_simple"]) ref_ents.back().push_back(test::hf_entity_from_json(e));
  }
  REQUIRE(texts.size() == 100);

  // The C++ tokenizer must give the reference ids; then one packed forward pass over all documents.
  std::vector<std::int32_t> ids, types, pos, offs{0};
  std::size_t longest = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const encoding e = model.tokenizer->encode(texts[i]);
    REQUIRE(e.ids == ref_ids[i]);
    ids.insert(ids.end(), e.ids.begin(), e.ids.end());
    for (std::size_t k = 0; k < e.size(); ++k) {
      pos.push_back(static_cast<std::int32_t>(k));
      types.push_back(0);
    }
    offs.push_back(static_cast<std::int32_t>(ids.size()));
    longest = std::max(longest, e.size());
  }
  const std::size_t T = ids.size();
  host_buffer<float> x(T * H), lg(T * L);
  emb.forward(p, ids.data(), types.data(), pos.data(), {x.data(), T, H});
  enc.forward(p, {x.data(), T, H}, offs.data(), offs.data(), texts.size(), longest);
  head.forward(p, matrix_view<const float>(x.data(), T, H), {lg.data(), T, L});
  double max_diff = 0;
  std::size_t at = 0;
  for (const auto& r : ref_logits)
    for (const float v : r) max_diff = std::max(max_diff, double(std::fabs(lg[at++] - v)));
  REQUIRE(at == T * L);
  WARN("MiniLM-L6 (384 hidden, 6 layers): " << texts.size() << " EWT docs, " << T
                                            << " tokens, max |logit diff| vs PyTorch fp32 = " << max_diff);
  CHECK(max_diff < 1e-4);

  // And the whole pipeline's entities (simple aggregation) are the reference's.
  bert_ner<cpu_policy> ner(p, model, pipeline_options{});
  std::vector<std::string_view> views(texts.begin(), texts.end());
  const auto got = hf_entities(ner, views);
  std::size_t same = 0, total = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    total += ref_ents[i].size();
    if (got[i].size() != ref_ents[i].size()) continue;
    bool all = true;
    for (std::size_t k = 0; k < got[i].size(); ++k)
      all = all && got[i][k].label == ref_ents[i][k].label && got[i][k].start == ref_ents[i][k].start &&
            got[i][k].end == ref_ents[i][k].end && got[i][k].word == ref_ents[i][k].word &&
            std::fabs(got[i][k].score - ref_ents[i][k].score) < 1e-4f;
    if (all) same += got[i].size();
  }
  WARN("entities identical to the pipeline's (simple): " << same << " / " << total);
  CHECK(same == total);
}
