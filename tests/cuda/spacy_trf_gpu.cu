// SPDX-License-Identifier: Apache-2.0
// The spaCy transformer pipeline (tests/fixtures/spacy/trf-tiny) on cuda_policy, fp32: reduce_mean against its
// cpu_policy twin bit for bit; on every EWT document the pooled token vectors against the cpu_policy oracle's and
// the entities against spacy.load(dir)'s (tests/fixtures/spacy/ewt_trf_tiny.jsonl), also through make_annotator.
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

#include <simdjson.h>

#include "support/data.hpp"
#include "support/prerequisite.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {
using namespace nerpipe;
using ent_tuple = std::tuple<long, long, std::string>;

std::filesystem::path trf_dir() { return test::fixtures_dir() / "spacy" / "trf-tiny"; }

/// The reference's entities per document, in EWT order (dev then train).
std::vector<std::vector<ent_tuple>> reference_entities() {
  std::vector<std::vector<ent_tuple>> out;
  simdjson::dom::parser parser;
  std::ifstream in(test::fixtures_dir() / "spacy" / "ewt_trf_tiny.jsonl", std::ios::binary);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const simdjson::dom::element e = parser.parse(line);
    out.emplace_back();
    for (simdjson::dom::array ent : e["ents"].get_array())
      out.back().emplace_back(std::int64_t(ent.at(0)), std::int64_t(ent.at(1)), std::string(std::string_view(ent.at(2))));
  }
  return out;
}

std::vector<ent_tuple> tuples(const document& d) {
  std::vector<ent_tuple> out;
  for (const auto& e : d.entities) out.emplace_back(static_cast<long>(e.start), static_cast<long>(e.end), e.label);
  return out;
}
}  // namespace

TEST_CASE("spacy reduce_mean on cuda_policy equals its cpu_policy twin", "[gpu][spacy][trf]") {
  if (!test::require_devices(1)) return;
  const cuda_policy gpu{0};
  const cpu_policy cpu{1};
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const std::size_t rows = 50, cols = 72, segments = 40;
  std::vector<float> x(rows * cols);
  for (auto& v : x) v = u(rng);
  std::vector<std::int32_t> idx, off{0};
  for (std::size_t s = 0; s < segments; ++s) {
    const std::size_t n = s % 5;  // empty segments too
    for (std::size_t k = 0; k < n; ++k) idx.push_back(static_cast<std::int32_t>((s + 3 * k) % rows));
    off.push_back(static_cast<std::int32_t>(idx.size()));
  }
  std::vector<float> want(segments * cols), got(segments * cols);
  ops::reduce_mean(cpu, matrix_view<const float>(x.data(), rows, cols), idx.data(), off.data(), matrix_view<float>(want.data(), segments, cols));
  const auto dx = gpu.upload(std::span<const float>(x));
  const auto di = gpu.upload(std::span<const std::int32_t>(idx));
  const auto doff = gpu.upload(std::span<const std::int32_t>(off));
  cuda_buffer<float> dy(gpu, segments * cols);
  ops::reduce_mean(gpu, matrix_view<const float>(dx.data(), rows, cols), di.data(), doff.data(), matrix_view<float>(dy.data(), segments, cols));
  gpu.download(std::span<const float>(dy.data(), got.size()), std::span<float>(got));
  gpu.synchronize();
  CHECK(got == want);
}

TEST_CASE("spacy transformer pipeline on cuda_policy (fp32): spacy.load(dir)'s entities on every EWT document",
          "[gpu][spacy][trf][fidelity]") {
  if (!test::require_devices(1)) return;
  const model m = load_model(trf_dir());
  const auto docs = test::load_ewt();
  const auto ref = reference_entities();
  REQUIRE(docs.size() == 858);
  REQUIRE(ref.size() == docs.size());
  std::vector<std::string_view> texts;
  for (const auto& d : docs) texts.push_back(d.text);
  // The CPU pipeline is the oracle for the pooled vectors (tests/unit/spacy_trf.cpp holds it to spacy.load's).
  spacy_trf_ner<cpu_policy> cpu_nlp(cpu_policy(std::max(1u, std::thread::hardware_concurrency())), *m.spacy_pipeline);
  spacy_trf_ner<cuda_policy> gpu_nlp(cuda_policy{0}, *m.spacy_pipeline);
  std::vector<float> cpu_vecs, gpu_vecs;
  cpu_nlp.stage<stages::spacy_transformer>().capture(&cpu_vecs);
  gpu_nlp.stage<stages::spacy_transformer>().capture(&gpu_vecs);
  const auto c = cpu_nlp(texts);
  const auto g = gpu_nlp(texts);
  REQUIRE(c.size() == docs.size());
  REQUIRE(g.size() == docs.size());
  REQUIRE(cpu_vecs.size() == gpu_vecs.size());
  double max_diff = 0;
  for (std::size_t i = 0; i < cpu_vecs.size(); ++i) max_diff = std::max(max_diff, double(std::fabs(cpu_vecs[i] - gpu_vecs[i])));
  std::size_t same = 0, same_cpu = 0, ents = 0;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    INFO("document " << docs[i].id);
    REQUIRE(g[i].ok());
    REQUIRE(g[i].tokens.size() == c[i].tokens.size());
    const auto got = tuples(g[i]);
    ents += got.size();
    same_cpu += got == tuples(c[i]);
    if (got == ref[i]) ++same;
    else CHECK(got == ref[i]);
  }
  WARN("spaCy trf-tiny on cuda_policy: " << same << "/" << docs.size() << " documents with spacy.load's entities, " << same_cpu
                                         << " with cpu_policy's; " << ents << " entities; max |pooled vector diff| vs cpu_policy "
                                         << max_diff);
  CHECK(same == docs.size());
  // cuBLAS and the CPU's BLAS round the fp32 GEMMs differently: rounding-level differences only.
  CHECK(max_diff < 1e-4);

  // The same through the type-erased annotator (make_annotator builds spacy_trf_ner for a transformer pipeline).
  auto ann = make_annotator(cuda_policy{0}, m);
  std::vector<document> batch(64);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    batch[i].index = i;
    batch[i].text = docs[i].text;
  }
  ann->annotate(batch);
  std::size_t ann_same = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) ann_same += tuples(batch[i]) == ref[i];
  CHECK(ann_same == batch.size());
}
