// SPDX-License-Identifier: Apache-2.0
//! @file Throughput of the spaCy family on EWT (dev + train, 858 documents): tokenizer words/s and
//! NER-only pipeline words/s (tokenizer + features + embed + encoder + transition decode).
//!
//! Compare with tools/peers/spacy_peer.py (spaCy's nlp.pipe, NER-only, same documents).
//! Needs en_core_web_sm 3.8.0 ($NERPIPE_SPACY_MODEL or models/en_core_web_sm-3.8.0 from
//! scripts/get-model.sh); skips with a message otherwise. Args: {threads, docs per batch}.
#include <nerpipe/cpu/ops.hpp>
#include "spacy/model.hpp"
#include <nerpipe/spacy.hpp>

#include "common/corpus.hpp"

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

using nerpipe::bench::ewt_all;

// Tokenizer only: spaCy's rules, whitespace flags, special-case matcher pass.
void BM_spacy_tokenizer(benchmark::State& state) {
  const auto* m = nerpipe::bench::spacy_sm_model();
  if (m == nullptr) {
    state.SkipWithError("en_core_web_sm-3.8.0 not found: run scripts/get-model.sh or set NERPIPE_SPACY_MODEL");
    return;
  }
  const nerpipe::spacy_tokenizer tok(*m);
  const auto& docs = ewt_all();
  std::vector<nerpipe::spacy::raw_token> out;
  std::size_t words = 0;
  for (auto _ : state) {
    words = 0;
    for (const auto& d : docs) {
      tok.tokenize(d.text, out);
      words += out.size();
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * nerpipe::bench::total_bytes(docs)));
  state.counters["words/s"] = benchmark::Counter(static_cast<double>(words), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["words"] = static_cast<double>(words);
}
BENCHMARK(BM_spacy_tokenizer)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime();

// The NER-only pipeline end to end on cpu_policy, documents in batches (spaCy's nlp.pipe uses 256;
// its NER re-batches by 64).
void BM_spacy_ner(benchmark::State& state) {
  const auto* m = nerpipe::bench::spacy_sm_model();
  if (m == nullptr) {
    state.SkipWithError("en_core_web_sm-3.8.0 not found: run scripts/get-model.sh or set NERPIPE_SPACY_MODEL");
    return;
  }
  nerpipe::spacy_ner<nerpipe::cpu_policy> nlp(nerpipe::cpu_policy(static_cast<unsigned>(state.range(0))), *m);
  const auto& docs = ewt_all();
  const auto batch = static_cast<std::size_t>(state.range(1));
  std::vector<std::string_view> texts;
  for (const auto& d : docs) texts.push_back(d.text);
  std::size_t words = 0, ents = 0;
  for (auto _ : state) {
    words = ents = 0;
    for (std::size_t i = 0; i < texts.size(); i += batch) {
      const std::span<const std::string_view> part(texts.data() + i, std::min(batch, texts.size() - i));
      const auto out = nlp(part);
      for (const auto& d : out) {
        words += d.tokens.size();
        ents += d.entities.size();
      }
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * nerpipe::bench::total_bytes(docs)));
  state.counters["words/s"] = benchmark::Counter(static_cast<double>(words), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["words"] = static_cast<double>(words);
  state.counters["entities"] = static_cast<double>(ents);
}
// Rates are per process CPU second (compare with the CPU figure of tools/peers/spacy_peer.py; on a
// shared machine wall time mostly measures the neighbours). Run with OPENBLAS_NUM_THREADS=1 for one thread.
BENCHMARK(BM_spacy_ner)
    ->ArgNames({"threads", "batch"})
    ->Args({1, 64})
    ->Args({1, 256})
    ->Args({2, 256})
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime();

}  // namespace
