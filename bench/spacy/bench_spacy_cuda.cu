// SPDX-License-Identifier: Apache-2.0
//! @file spaCy NER (en_core_web_sm / md) on one GPU: text -> spaCy tokenizer + lexeme attributes (host) ->
//! multi_hash_embed -> maxout_window_encoder -> transition_ner<cuda_policy> -> entities, end to end.
//!
//! Text: EWT dev + train (858 documents; tests/data/ewt) repeated to NERPIPE_SPACY_DOCS documents (default 20000), annotated
//! in chunks of 2000 documents. R = 1, 2, 4, 8 worker threads each own a cuda_policy{0} (its own stream) and
//! a spacy_ner replica and take chunks from a shared counter, so host tokenisation runs in parallel while
//! the GPU is shared. Words = spaCy tokens. Replicas are built and warmed up (cuBLASLt plans, lexeme caches
//! of the first 2000 documents) before the clock starts. For R = 1 a second pass measures the stages
//! (pipeline stage timing: one device synchronisation per stage and pass, so the stage sum exceeds the
//! unsynchronised end-to-end time a little).
//! Models: $NERPIPE_SPACY_MODEL (sm) / $NERPIPE_SPACY_MD_MODEL (md), else models/en_core_web_{sm,md}-3.8.0.
//! Output lines start with "SPACY-GPU ".
#include <benchmark/benchmark.h>

#include <nerpipe/cuda.cuh>

#include <common/corpus.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace nerpipe;

constexpr std::size_t chunk_docs = 2000;

/// The sm (0) or md (1) pipeline, loaded once per process; nullptr when absent.
const spacy_model* spacy_pipeline(int which) {
  static std::mutex mu;
  static std::unique_ptr<spacy_model> models[2];
  static bool tried[2] = {false, false};
  std::lock_guard<std::mutex> lock(mu);
  if (!tried[which]) {
    tried[which] = true;
    const char* env = std::getenv(which == 0 ? "NERPIPE_SPACY_MODEL" : "NERPIPE_SPACY_MD_MODEL");
    const std::filesystem::path dir = env != nullptr && *env != '\0'
                                          ? std::filesystem::path(env)
                                          : std::filesystem::path(NERPIPE_SOURCE_DIR) / "models" /
                                                (which == 0 ? "en_core_web_sm-3.8.0" : "en_core_web_md-3.8.0");
    if (std::filesystem::exists(dir / "config.cfg")) models[which] = std::make_unique<spacy_model>(load_spacy_model(dir));
  }
  return models[which].get();
}

std::size_t env_size(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  const long long n = std::atoll(v);
  return n > 0 ? static_cast<std::size_t>(n) : fallback;
}

/// state.range(0): 0 = sm, 1 = md; state.range(1): worker threads (replicas).
void bm_spacy_gpu_e2e(benchmark::State& state) {
  if (cuda_device_count() == 0) {
    state.SkipWithError("no CUDA device");
    return;
  }
  const int which = static_cast<int>(state.range(0));
  const auto R = static_cast<std::size_t>(state.range(1));
  const char* name = which == 0 ? "sm" : "md";
  try {
    const spacy_model* m = spacy_pipeline(which);
    if (m == nullptr) {
      std::printf("SPACY-GPU %s: model not found (set %s or run scripts/get-model.sh); skipped\n", name,
                  which == 0 ? "NERPIPE_SPACY_MODEL" : "NERPIPE_SPACY_MD_MODEL");
      state.SkipWithError("spaCy model not found");
      return;
    }
    const auto& base = bench::ewt_all();  // tests/data/ewt (or $NERPIPE_TEST_DATA/ewt)
    if (base.empty()) {
      state.SkipWithError("EWT corpus is empty");
      return;
    }
    const std::size_t n_docs = env_size("NERPIPE_SPACY_DOCS", 20000);
    std::vector<std::string_view> texts;
    texts.reserve(n_docs);
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < n_docs; ++i) {
      texts.push_back(base[i % base.size()].text);
      bytes += texts.back().size();
    }

    const auto t_load0 = std::chrono::steady_clock::now();
    std::vector<std::unique_ptr<spacy_ner<cuda_policy>>> replicas;
    for (std::size_t r = 0; r < R; ++r) replicas.push_back(std::make_unique<spacy_ner<cuda_policy>>(cuda_policy{0}, *m));
    for (auto& rep : replicas) {
      (void)(*rep)(std::span<const std::string_view>(texts.data(), std::min(chunk_docs, texts.size())));  // warm-up
      rep->policy().synchronize();
    }
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load0).count();

    // One pass over all chunks with R workers; returns {seconds, tokens, entities}.
    auto pass = [&](bool timed) {
      std::atomic<std::size_t> next{0}, tokens{0}, entities{0};
      std::exception_ptr error;
      std::mutex error_mu;
      if (timed) {
        replicas[0]->reset_stage_seconds();
        replicas[0]->time_stages(true);
      }
      const auto t0 = std::chrono::steady_clock::now();
      auto work = [&](std::size_t r) {
        try {
          std::size_t tok = 0, ent = 0;
          for (std::size_t c = next.fetch_add(1); c * chunk_docs < texts.size(); c = next.fetch_add(1)) {
            const std::size_t b = c * chunk_docs, n = std::min(chunk_docs, texts.size() - b);
            const auto out = (*replicas[r])(std::span<const std::string_view>(texts.data() + b, n));
            for (const auto& d : out) {
              tok += d.tokens.size();
              ent += d.entities.size();
            }
          }
          tokens += tok;
          entities += ent;
        } catch (...) {
          std::lock_guard<std::mutex> lock(error_mu);
          if (!error) error = std::current_exception();
          next = texts.size();  // the others stop after their current chunk
        }
      };
      std::vector<std::thread> threads;
      for (std::size_t r = 1; r < R; ++r) threads.emplace_back(work, r);
      work(0);
      for (auto& t : threads) t.join();
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (timed) replicas[0]->time_stages(false);
      if (error) std::rethrow_exception(error);
      struct result {
        double secs;
        std::size_t tokens, entities;
      };
      return result{secs, tokens.load(), entities.load()};
    };

    for (auto _ : state) {
      const auto res = pass(false);
      state.SetIterationTime(res.secs);
      const double wps = static_cast<double>(res.tokens) / res.secs;
      state.counters["words/s"] = wps;
      state.counters["docs/s"] = static_cast<double>(texts.size()) / res.secs;
      state.counters["words"] = static_cast<double>(res.tokens);
      state.counters["entities"] = static_cast<double>(res.entities);
      std::printf("SPACY-GPU %s R=%zu: %.3f M words/s end to end (%zu docs, %.1f MB, %zu words, %zu entities, %.3f s; "
                  "chunks of %zu docs; %zu replicas built + warmed in %.2f s)\n",
                  name, R, wps / 1e6, texts.size(), static_cast<double>(bytes) / 1e6, res.tokens, res.entities, res.secs,
                  chunk_docs, R, load_s);
      std::fflush(stdout);
    }
    if (R == 1) {
      const auto res = pass(true);
      const auto& st = replicas[0]->stage_seconds();
      double total = 0;
      for (const double x : st) total += x;
      std::printf("SPACY-GPU %s stages (R=1, synchronised per stage, %.3f s, %.3f M words/s):", name, res.secs,
                  static_cast<double>(res.tokens) / res.secs / 1e6);
      for (std::size_t i = 0; i < st.size(); ++i)
        std::printf(" %s %.3f s (%.0f%%, %.2f M words/s alone)%s", std::string(spacy_ner<cuda_policy>::names[i]).c_str(), st[i],
                    total > 0 ? 100.0 * st[i] / total : 0.0, static_cast<double>(res.tokens) / std::max(st[i], 1e-9) / 1e6,
                    i + 1 < st.size() ? " |" : "");
      std::printf(" | other %.3f s\n", std::max(0.0, res.secs - total));
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::printf("SPACY-GPU %s R=%zu: failed: %s\n", name, R, e.what());
    std::fflush(stdout);
    state.SkipWithError(e.what());
  }
}

BENCHMARK(bm_spacy_gpu_e2e)
    ->ArgNames({"md", "replicas"})
    ->Args({1, 1})
    ->Args({1, 2})
    ->Args({1, 4})
    ->Args({1, 8})
    ->Args({0, 1})
    ->Args({0, 2})
    ->Args({0, 4})
    ->Args({0, 8})
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
