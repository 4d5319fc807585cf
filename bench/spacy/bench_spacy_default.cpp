// SPDX-License-Identifier: Apache-2.0
//! @file Throughput of spaCy's NER as spacy.load(dir) runs it (tokenizer -> tok2vec -> parser -> NER, with the
//! parser's sentence starts) against the NER-only pipeline and the senter variant, on EWT (dev + train,
//! 858 documents from tests/data/ewt), one thread, cpu_policy. Words/s per process CPU second.
//!
//! Compare with tools/peers/spacy_peer.py --full (spaCy's nlp.pipe, full default and NER-only, same text).
//! Needs models/en_core_web_{sm,md}-3.8.0 (scripts/get-model.sh); skips with a message otherwise.
//! Args: {model: 0 sm / 1 md, sentences: 0 none / 1 parser / 2 senter}. Run with OPENBLAS_NUM_THREADS=1.
#include <nerpipe/cpu/ops.hpp>
#include <nerpipe/spacy.hpp>

#include "common/corpus.hpp"

#include <benchmark/benchmark.h>

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

namespace fs = std::filesystem;

const std::vector<nerpipe::bench::corpus_doc>& ewt_docs() {
  static const std::vector<nerpipe::bench::corpus_doc> docs = [] {
    const std::string dir = std::string(NERPIPE_SOURCE_DIR) + "/tests/data/ewt/";
    auto d = nerpipe::bench::load_jsonl(dir + "dev.jsonl");
    const auto t = nerpipe::bench::load_jsonl(dir + "train.jsonl");
    d.insert(d.end(), t.begin(), t.end());
    return d;
  }();
  return docs;
}

struct models {
  std::shared_ptr<const nerpipe::spacy_model> ner;
  std::shared_ptr<const nerpipe::spacy_parser_model> sents;
};

/// en_core_web_<which>-3.8.0 with its parser and senter, loaded once per process; nullptr when absent.
const models* load(const std::string& which) {
  static std::map<std::string, std::unique_ptr<models>> cache;
  auto it = cache.find(which);
  if (it != cache.end()) return it->second.get();
  const fs::path dir = fs::path(NERPIPE_SOURCE_DIR) / "models" / ("en_core_web_" + which + "-3.8.0");
  std::unique_ptr<models> m;
  if (fs::exists(dir / "config.cfg")) {
    m = std::make_unique<models>();
    m->ner = std::make_shared<const nerpipe::spacy_model>(nerpipe::load_spacy_model(dir));
    m->sents = std::make_shared<const nerpipe::spacy_parser_model>(nerpipe::load_spacy_parser_model(dir, {true, true}));
  }
  return cache.emplace(which, std::move(m)).first->second.get();
}

// tokenizer + [tok2vec + parser | senter] + NER tok2vec + NER, documents in batches of 256 (spaCy's nlp.pipe).
void BM_spacy_default(benchmark::State& state) {
  const std::string which = state.range(0) == 0 ? "sm" : "md";
  const auto* m = load(which);
  if (m == nullptr) {
    state.SkipWithError(("en_core_web_" + which + "-3.8.0 not found: run scripts/get-model.sh").c_str());
    return;
  }
  const auto source = static_cast<nerpipe::spacy_sentences>(state.range(1));
  // The composed pipelines make_annotator picks for each source: NER-only, the parser's or the senter's sentence starts.
  const nerpipe::spacy_pipeline_model pm{m->ner, m->sents, source};
  nerpipe::pipeline_options o;
  o.batch_tokens = 2048;
  std::unique_ptr<nerpipe::annotator> nlp =
      nerpipe::make_spacy_annotator(nerpipe::cpu_policy(1), std::make_shared<const nerpipe::spacy_pipeline_model>(pm), o);
  const auto& docs = ewt_docs();
  std::vector<std::string_view> texts;
  for (const auto& d : docs) texts.push_back(d.text);
  constexpr std::size_t batch = 256;
  std::size_t words = 0, ents = 0;
  for (auto _ : state) {
    words = ents = 0;
    for (std::size_t i = 0; i < texts.size(); i += batch) {
      std::vector<nerpipe::document> part(std::min(batch, texts.size() - i));
      for (std::size_t k = 0; k < part.size(); ++k) part[k].text = std::string(texts[i + k]);
      nlp->annotate(part);
      words += nlp->last_token_count();
      for (const auto& d : part) ents += d.entities.size();
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * nerpipe::bench::total_bytes(docs)));
  state.counters["words/s"] = benchmark::Counter(static_cast<double>(words), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["words"] = static_cast<double>(words);
  state.counters["entities"] = static_cast<double>(ents);
}
BENCHMARK(BM_spacy_default)
    ->ArgNames({"md", "sentences"})
    ->Args({0, 0})
    ->Args({0, 1})
    ->Args({0, 2})
    ->Args({1, 0})
    ->Args({1, 1})
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime();

}  // namespace
