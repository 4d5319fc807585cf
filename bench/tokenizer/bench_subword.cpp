// SPDX-License-Identifier: Apache-2.0
//! @file Single-thread throughput of the byte-level BPE and Unigram tokenizers on EWT (dev + train, 858
//! documents, tests/data/ewt).
//!
//! Compare with tools/peers/tokenizers_peer.py (the same documents through tokenizers 0.22.2, one thread):
//!   RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false python tools/peers/tokenizers_peer.py
//!       tests/fixtures/hf/tokenizer/bpe-roberta tests/data/ewt --only encode
//! Args: {tokenizer: 0 = bpe-roberta, 1 = unigram-xlmr, 2 = unigram-deberta}.
#include <nerpipe/model/hf/subword_tokenizer_json.hpp>
#include <nerpipe/tokenizer/subword_tokenizer.hpp>

#include "common/corpus.hpp"

#include <benchmark/benchmark.h>

#include <array>
#include <memory>
#include <cstddef>
#include <string>
#include <vector>

namespace {

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

const nerpipe::subword_tokenizer& tokenizer(long which) {
  static const std::array<const char*, 3> names = {"bpe-roberta", "unigram-xlmr", "unigram-deberta"};
  static std::array<std::unique_ptr<nerpipe::subword_tokenizer>, 3> loaded;
  auto& t = loaded[static_cast<std::size_t>(which)];
  if (!t) {
    const std::string dir = std::string(NERPIPE_SOURCE_DIR) + "/tests/fixtures/hf/tokenizer/" + names[static_cast<std::size_t>(which)];
    t = std::make_unique<nerpipe::subword_tokenizer>(std::move(*nerpipe::load_any_tokenizer(dir).tokenizer.subword()));
  }
  return *t;
}

// encode(): whole documents, specials added, ids + code-point and byte offsets + word ids. The per-thread word
// cache is warm after the first iteration, as it is for tokenizers' own cache in the peer's repeated passes.
void BM_subword_encode(benchmark::State& state) {
  const auto& docs = ewt_docs();
  const auto& tok = tokenizer(state.range(0));
  nerpipe::encoding enc;
  std::size_t tokens = 0;
  for (auto _ : state) {
    tokens = 0;
    for (const auto& d : docs) {
      tok.encode(d.text, enc);
      tokens += enc.size();
    }
    benchmark::DoNotOptimize(enc.ids.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * nerpipe::bench::total_bytes(docs)));
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens"] = static_cast<double>(tokens);
}
BENCHMARK(BM_subword_encode)->ArgName("tokenizer")->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

// encode_windows(): the pipeline's long-document path, max_length 512, stride 128.
void BM_subword_windows(benchmark::State& state) {
  const auto& docs = ewt_docs();
  const auto& tok = tokenizer(state.range(0));
  std::vector<nerpipe::encoding> wins;
  std::size_t tokens = 0;
  for (auto _ : state) {
    tokens = 0;
    for (const auto& d : docs) {
      tok.encode_windows(d.text, 512, 128, wins);
      for (const auto& w : wins) tokens += w.size();
    }
    benchmark::DoNotOptimize(wins.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * nerpipe::bench::total_bytes(docs)));
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_subword_windows)->ArgName("tokenizer")->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

}  // namespace
