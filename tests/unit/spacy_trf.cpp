// SPDX-License-Identifier: Apache-2.0
// A spaCy transformer pipeline (spacy-transformers 1.4.0: RoBERTa over strided spans, reduce_mean pooling,
// TransitionBasedParser.v2 with use_upper = false) loaded from its spaCy directory alone, against spacy.load(dir)
// on every EWT document: the committed fixture tests/fixtures/spacy/trf-tiny (tools/models/train_tiny_spacy_trf.py)
// and its reference outputs tests/fixtures/spacy/ewt_trf_tiny.jsonl (tools/fixtures/spacy_trf_fixtures.py).
#include <catch2/catch.hpp>

#include "spacy_test_support.hpp"

#include <nerpipe/cpu/ops.hpp>
#include <nerpipe/nerpipe.hpp>
#include <nerpipe/spacy.hpp>

#include <simdjson.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

using namespace nerpipe;
namespace st = nerpipe_spacy_test;

namespace {

using ent_tuple = std::tuple<long, long, std::string>;

struct trf_reference {
  std::string id, text;
  std::size_t tokens = 0;
  std::vector<ent_tuple> ents;
  std::vector<std::vector<float>> vectors;  // the pooled token vectors, for the sampled documents
};

std::filesystem::path trf_dir() { return st::fixture_dir() / "trf-tiny"; }

std::vector<trf_reference> load_trf_reference() {
  std::vector<trf_reference> out;
  const auto docs = nerpipe::test::load_ewt();
  const auto lines = st::read_lines(st::fixture_dir() / "ewt_trf_tiny.jsonl");
  REQUIRE(lines.size() == docs.size());
  simdjson::dom::parser parser;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const simdjson::dom::element e = parser.parse(lines[i]);
    trf_reference r;
    r.id = std::string(std::string_view(e["id"]));
    REQUIRE(r.id == docs[i].id);
    r.text = docs[i].text;
    r.tokens = static_cast<std::size_t>(std::int64_t(e["tokens"]));
    for (auto ent : e["ents"].get_array())
      r.ents.emplace_back(std::int64_t(ent.at(0)), std::int64_t(ent.at(1)), std::string(std::string_view(ent.at(2))));
    simdjson::dom::array vecs;
    if (!e["vectors"].get_array().get(vecs))
      for (auto row : vecs) {
        r.vectors.emplace_back();
        for (auto x : row) r.vectors.back().push_back(static_cast<float>(double(x)));
      }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

TEST_CASE("spacy transformer pipeline: loaded from the spaCy directory alone", "[spacy][trf]") {
  const model m = load_model(trf_dir());
  REQUIRE(m.spacy_pipeline);
  REQUIRE(m.spacy_pipeline->transformer);
  const auto& trf = *m.spacy_pipeline->transformer;
  CHECK(m.spacy->listens_to == "transformer");
  CHECK(trf.architecture == "spacy-transformers.TransformerModel.v3");
  CHECK(trf.window == 48);
  CHECK(trf.stride == 32);
  CHECK(trf.truncate == 512);
  CHECK(trf.hf.config.model_type == "roberta");
  CHECK(trf.hf.config.hidden == 64);
  CHECK(trf.hf.config.layers == 2);
  CHECK(trf.hf.tokenizer_model == "BPE");
  CHECK(trf.hf.weights->word.size() == 8000 * 64);
  // use_upper = false: the lower layer gives one unit per class, read through an identity upper layer.
  const auto A = m.spacy->actions.size();
  CHECK(m.spacy->ner.nH == A);
  CHECK(m.spacy->ner.nI == 64);
  CHECK(m.spacy->ner.width == 64);
  CHECK(m.spacy->labels.size() == 18);
}

TEST_CASE("spacy transformer pipeline: strided spans as spacy-transformers cuts them", "[spacy][trf]") {
  std::vector<std::pair<std::size_t, std::size_t>> s;
  using spans = std::vector<std::pair<std::size_t, std::size_t>>;
  detail::strided_spans(100, 48, 32, s);
  CHECK(s == spans{{0, 48}, {32, 80}, {64, 100}});
  detail::strided_spans(10, 48, 32, s);  // shorter than a stride: the for-else's one span
  CHECK(s == spans{{0, 10}});
  detail::strided_spans(0, 48, 32, s);
  CHECK(s.empty());
  detail::strided_spans(64, 48, 32, s);  // 64 // 32 = 2 iterations; the first does not reach the end
  CHECK(s == spans{{0, 48}, {32, 64}});
  detail::strided_spans(70, 10, 32, s);  // window < stride leaves gaps; the rest after the loop
  CHECK(s == spans{{0, 10}, {32, 42}, {64, 70}});
}

TEST_CASE("spacy transformer pipeline on cpu_policy: spacy.load(dir)'s entities on every EWT document",
          "[spacy][trf][fidelity]") {
  const model m = load_model(trf_dir());
  const auto ref = load_trf_reference();
  pipeline_options o;
  spacy_trf_ner<cpu_policy> nlp(cpu_policy(2), *m.spacy_pipeline, o);
  std::vector<float> pooled;
  nlp.stage<stages::spacy_transformer>().capture(&pooled);
  std::vector<std::string_view> texts;
  for (const auto& r : ref) texts.push_back(r.text);
  const auto out = nlp(texts);
  nlp.stage<stages::spacy_transformer>().capture(nullptr);
  REQUIRE(out.size() == ref.size());
  std::size_t same = 0, ents = 0, sampled = 0, row = 0;
  float worst = 0.0f;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    INFO("document " << ref[i].id);
    REQUIRE(out[i].ok());
    CHECK(out[i].tokens.size() == ref[i].tokens);
    ents += ref[i].ents.size();
    const auto got = st::entity_tuples(out[i]);
    if (got == ref[i].ents) ++same;
    else CHECK(got == ref[i].ents);
    // The pooled vectors of the sampled documents: torch's fp32 RoBERTa and nerpipe's agree to float rounding.
    if (!ref[i].vectors.empty()) {
      REQUIRE(ref[i].vectors.size() == ref[i].tokens);
      for (std::size_t t = 0; t < ref[i].tokens; ++t)
        for (std::size_t c = 0; c < 64; ++c) {
          const float want = ref[i].vectors[t][c], have = pooled[(row + t) * 64 + c];
          const float diff = std::fabs(want - have);
          if (!(diff <= worst)) worst = diff;  // a NaN sticks
        }
      ++sampled;
    }
    row += ref[i].tokens;
  }
  REQUIRE(pooled.size() == row * 64);
  INFO(same << "/" << ref.size() << " documents with identical entities (" << ents << " entities); pooled vectors of " << sampled
            << " documents within " << worst);
  CHECK(ref.size() == 858);
  CHECK(same == ref.size());
  CHECK(sampled == 3);
  // Measured: 1.2e-6 (torch 2.15.0 CPU against nerpipe's cpu_policy, values of order 1).
  CHECK(worst < 1e-5f);
  CHECK(ents > 1000);
}

TEST_CASE("spacy transformer pipeline: nerpipe::model runs it through make_annotator", "[spacy][trf]") {
  const model m = load_model(trf_dir());
  const auto ref = load_trf_reference();
  auto nlp = make_pipeline(cpu_policy(1), m);
  std::vector<document> docs(8);
  for (std::size_t i = 0; i < docs.size(); ++i) docs[i].text = ref[i].text;
  nlp.annotate(docs);
  for (std::size_t i = 0; i < docs.size(); ++i) {
    INFO("document " << ref[i].id);
    CHECK(st::entity_tuples(docs[i]) == ref[i].ents);
  }
  model_options none;
  none.sentences = spacy_sentences::parser;
  CHECK_THROWS_AS(load_model(trf_dir(), none), model_error);
}
