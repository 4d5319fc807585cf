// SPDX-License-Identifier: Apache-2.0
//! @file The Hugging Face post-processing on the host (softmax, pre-entities, aggregation, grouping,
//! window merge) over EWT documents: the host work a GPU replica does per batch besides tokenizing.
//!
//! Windows come from the committed bert-base-uncased WordPiece tokenizer (512 tokens, stride 127); the
//! logits are seeded random with "O" raised as in bench_bert_cuda.cu (about 5 entities per 100 tokens,
//! as with a trained NER model), so the work per token is what a real run does. One thread.
#include <nerpipe/hf.hpp>

#include <benchmark/benchmark.h>

#include "common/corpus.hpp"
#include "common/hf_tokenizer.hpp"

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {
using namespace nerpipe;

struct prepared_doc {
  std::string_view text;
  std::vector<encoding> windows;
  std::vector<std::vector<std::size_t>> starts, ends;
  std::vector<std::vector<float>> logits;
  std::vector<hf_chunk> chunks;
};

const std::vector<std::string> labels = {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"};

/// Every EWT document (dev + train) as windows with logits, built once.
const std::vector<prepared_doc>& prepared() {
  static const std::vector<prepared_doc> docs = [] {
    const auto& tok = *bench::uncased_wordpiece().tokenizer;
    std::vector<prepared_doc> out;
    std::mt19937_64 gen(20240601);
    std::normal_distribution<float> dist(0.0f, 1.4f);
    for (const auto& d : bench::ewt_all()) {
      prepared_doc p;
      p.text = d.text;
      tok.encode_windows(p.text, 512, 127, p.windows);
      for (const auto& w : p.windows) {
        std::vector<std::size_t> s, e;
        for (const auto& o : w.offsets) {
          s.push_back(o.begin);
          e.push_back(o.end);
        }
        std::vector<float> l(w.size() * labels.size());
        for (std::size_t t = 0; t < w.size(); ++t)
          for (std::size_t j = 0; j < labels.size(); ++j) l[t * labels.size() + j] = dist(gen) + (j == 0 ? 3.5f : 0.0f);
        p.starts.push_back(std::move(s));
        p.ends.push_back(std::move(e));
        p.logits.push_back(std::move(l));
      }
      for (std::size_t k = 0; k < p.windows.size(); ++k)
        p.chunks.push_back(hf_chunk{p.windows[k].ids, p.starts[k], p.ends[k], p.windows[k].special_tokens_mask, p.logits[k]});
      out.push_back(std::move(p));
    }
    return out;
  }();
  return docs;
}

/// state.range(0): the aggregation strategy (0 none, 1 simple, 2 first, 3 average, 4 max).
void bm_hf_postprocess(benchmark::State& state) {
  const auto& docs = prepared();
  if (docs.empty()) {
    state.SkipWithError("no EWT corpus (tests/data/ewt)");
    return;
  }
  const auto strategy = static_cast<aggregation>(state.range(0));
  const hf_postprocessor post(labels, bench::uncased_wordpiece().vocab.get());
  const std::vector<std::string> ignore{"O"};
  std::size_t tokens = 0, entities = 0;
  for (const auto& d : docs)
    for (const auto& w : d.windows) tokens += w.size();
  for (auto _ : state) {
    std::size_t n = 0;
    for (const auto& d : docs) n += post.run(d.text, d.chunks, strategy, ignore).size();
    entities = n;
    benchmark::DoNotOptimize(n);
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["docs/s"] = benchmark::Counter(static_cast<double>(docs.size()), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["entities"] = static_cast<double>(entities);
}

}  // namespace

BENCHMARK(bm_hf_postprocess)->ArgName("strategy")->DenseRange(0, 4)->Unit(benchmark::kMillisecond);
