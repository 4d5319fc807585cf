// SPDX-License-Identifier: Apache-2.0
//! @file Single-thread throughput of the Hugging Face WordPiece tokenizer on EWT (dev + train, 858 documents).
//!
//! Compare with tools/peers/tokenizers_peer.py (the same documents through tokenizers 0.22.2, one thread).
//! Args: {vocabulary: 0 = bert-base-uncased, 1 = cased fixture vocabulary}.
#include <nerpipe/model/hf/tokenizer_json.hpp>
#include <nerpipe/tokenizer/wordpiece_tokenizer.hpp>

#include "common/corpus.hpp"

#include <benchmark/benchmark.h>

#include <cstddef>
#include <string>
#include <vector>

namespace {

using nerpipe::bench::ewt_all;

const nerpipe::hf_tokenizer& vocab(long which) {
  static const nerpipe::hf_tokenizer uncased =
      nerpipe::load_hf_tokenizer(std::string(NERPIPE_SOURCE_DIR) + "/tests/fixtures/hf/tokenizer/uncased");
  static const nerpipe::hf_tokenizer cased =
      nerpipe::load_hf_tokenizer(std::string(NERPIPE_SOURCE_DIR) + "/tests/fixtures/hf/tokenizer/cased");
  return which == 0 ? uncased : cased;
}

// encode(): whole documents, [CLS]/[SEP] added, ids + code-point and byte offsets + word ids.
void BM_wordpiece_encode(benchmark::State& state) {
  const auto& docs = ewt_all();
  const auto& tok = vocab(state.range(0)).tokenizer;
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
  state.counters["docs"] = static_cast<double>(docs.size());
  state.counters["tokens"] = static_cast<double>(tokens);
}
BENCHMARK(BM_wordpiece_encode)->ArgName("cased")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

// encode_windows(): the pipeline's long-document path, max_length 512, stride 128.
void BM_wordpiece_windows(benchmark::State& state) {
  const auto& docs = ewt_all();
  const auto& tok = vocab(state.range(0)).tokenizer;
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
BENCHMARK(BM_wordpiece_windows)->ArgName("cased")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace
