// SPDX-License-Identifier: Apache-2.0
//! @file The Hugging Face BERT / DistilBERT components and bert_ner on cuda_policy, unchanged from the
//! CPU: logits against PyTorch fp32 and the CPU oracle, and entities against transformers 4.57.6.
// simdjson's x86 SIMD kernels do not get through nvcc's front end (EDG rejects their vector
// initialisers); this TU parses JSON with the portable kernel only. The library's runtime dispatch
// is unaffected (the DOM parser still runs the best kernel of libsimdjson).
#ifndef SIMDJSON_IMPLEMENTATION_ICELAKE
#  define SIMDJSON_IMPLEMENTATION_ICELAKE 0
#endif
#ifndef SIMDJSON_IMPLEMENTATION_HASWELL
#  define SIMDJSON_IMPLEMENTATION_HASWELL 0
#endif
#ifndef SIMDJSON_IMPLEMENTATION_WESTMERE
#  define SIMDJSON_IMPLEMENTATION_WESTMERE 0
#endif
#include <catch2/catch.hpp>

#include <nerpipe/cuda.cuh>
#include <nerpipe/hf.hpp>

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace {
namespace fs = std::filesystem;
using namespace nerpipe;

const fs::path fixtures = fs::path(NERPIPE_SOURCE_DIR) / "tests/fixtures/hf/models";

struct ref_entity {
  std::string label, word;
  std::size_t start = 0, end = 0;
  float score = 0;
};
struct ref_doc {
  std::string text;
  std::vector<std::int32_t> ids;
  std::vector<float> logits;
  std::map<std::string, std::vector<ref_entity>> entities;
};

std::vector<ref_doc> load(const std::string& kind) {
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.load((fixtures / "reference" / (kind + ".json")).string());
  std::vector<ref_doc> out;
  for (auto d : root["docs"]) {
    ref_doc r;
    r.text = std::string_view(d["text"]);
    for (auto v : d["ids"]) r.ids.push_back(static_cast<std::int32_t>(std::int64_t(v)));
    for (auto row : d["logits"])
      for (auto v : row) r.logits.push_back(static_cast<float>(double(v)));
    for (auto f : simdjson::dom::object(d["entities"])) {
      auto& list = r.entities[std::string(f.key)];
      for (auto e : f.value) {
        ref_entity x;
        std::string_view s;
        x.label = std::string(e["entity"].get_string().get(s) ? std::string_view(e["entity_group"]) : s);
        x.word = std::string_view(e["word"]);
        x.start = static_cast<std::size_t>(std::int64_t(e["start"]));
        x.end = static_cast<std::size_t>(std::int64_t(e["end"]));
        x.score = static_cast<float>(double(e["score"]));
        list.push_back(std::move(x));
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

aggregation strategy_of(const std::string& s) {
  if (s == "none") return aggregation::none;
  if (s == "simple") return aggregation::simple;
  if (s == "first") return aggregation::first;
  if (s == "average") return aggregation::average;
  return aggregation::max;
}

template <class Policy>
std::vector<float> logits(const Policy& p, const hf_model& m, const std::vector<ref_doc>& docs) {
  bert_embedding<Policy> emb(p, m.config, *m.weights);
  transformer_encoder<Policy> enc(p, m.config, *m.weights);
  token_classifier<Policy> head(p, m.config, *m.weights);
  std::vector<std::int32_t> ids, types, pos, offs{0};
  std::size_t longest = 0;
  for (const auto& d : docs) {
    ids.insert(ids.end(), d.ids.begin(), d.ids.end());
    for (std::size_t k = 0; k < d.ids.size(); ++k) {
      pos.push_back(static_cast<std::int32_t>(k));
      types.push_back(0);
    }
    offs.push_back(static_cast<std::int32_t>(ids.size()));
    longest = std::max(longest, d.ids.size());
  }
  const std::size_t T = ids.size(), H = m.config.hidden, L = m.config.num_labels();
  const auto d_ids = p.upload(std::span<const std::int32_t>(ids));
  const auto d_types = p.upload(std::span<const std::int32_t>(types));
  const auto d_pos = p.upload(std::span<const std::int32_t>(pos));
  const auto d_offs = p.upload(std::span<const std::int32_t>(offs));
  typename Policy::template buffer<float> x(p, T * H), lg(p, T * L);
  emb.forward(p, d_ids.data(), d_types.data(), d_pos.data(), {x.data(), T, H});
  enc.forward(p, {x.data(), T, H}, d_offs.data(), offs.data(), docs.size(), longest);
  head.forward(p, matrix_view<const float>(x.data(), T, H), {lg.data(), T, L});
  std::vector<float> out(T * L);
  p.download(std::span<const float>(lg.data(), T * L), std::span<float>(out));
  p.synchronize();
  return out;
}

}  // namespace

TEST_CASE("hf components on cuda_policy: logits match PyTorch fp32 and the CPU oracle", "[gpu][hf][fidelity]") {
  const cuda_policy gpu{0};
  const cpu_policy cpu{1};
  for (const std::string kind : {"bert", "distilbert"}) {
    const auto docs = load(kind);
    const hf_model m = load_hf_model(fixtures / kind);
    const auto g = logits(gpu, m, docs), c = logits(cpu, m, docs);
    double vs_ref = 0, vs_cpu = 0;
    std::size_t at = 0;
    for (const auto& d : docs)
      for (const float v : d.logits) {
        vs_ref = std::max(vs_ref, double(std::fabs(g[at] - v)));
        vs_cpu = std::max(vs_cpu, double(std::fabs(g[at] - c[at])));
        ++at;
      }
    WARN(kind << " on GPU: max |logit diff| vs PyTorch fp32 " << vs_ref << ", vs cpu_policy " << vs_cpu);
    CHECK(vs_ref < 1e-4);
    CHECK(vs_cpu < 1e-4);
  }
}

TEST_CASE("hf bert_ner on cuda_policy: entities equal the pipeline's for all five strategies", "[gpu][hf][fidelity]") {
  const cuda_policy gpu{0};
  for (const std::string kind : {"bert", "distilbert"}) {
    const auto docs = load(kind);
    const hf_model m = load_hf_model(fixtures / kind);
    std::vector<std::string_view> texts;
    for (const auto& d : docs) texts.push_back(d.text);
    for (const std::string s : {"none", "simple", "first", "average", "max"}) {
      annotate_options o;
      o.strategy = strategy_of(s);
      bert_ner<cuda_policy> ner(gpu, m, o);
      const auto got = hf_entities(ner, texts);
      for (std::size_t i = 0; i < docs.size(); ++i) {
        const auto& want = docs[i].entities.at(s);
        INFO(kind << " doc " << i << " " << s);
        REQUIRE(got[i].size() == want.size());
        for (std::size_t k = 0; k < want.size(); ++k) {
          CHECK(got[i][k].label == want[k].label);
          CHECK(got[i][k].word == want[k].word);
          CHECK(got[i][k].start == want[k].start);
          CHECK(got[i][k].end == want[k].end);
          CHECK(std::fabs(got[i][k].score - want[k].score) < 1e-4f);
        }
      }
    }
  }
}
