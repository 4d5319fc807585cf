// SPDX-License-Identifier: Apache-2.0
// Executor scaling: round_robin<cpu_policy> with 1 and 2 single-threaded CPU workers over the EWT
// training documents, with a real model (NERPIPE_BENCH_MODEL, else models/en_core_web_sm-3.8.0,
// else the tiny BERT fixture). Counters: docs/s and tokens/s; compare workers:1 with workers:2.
// On a shared machine wall time is noisy; cpu_ms/doc (user + sys of every thread of the process) and
// cores ((user + sys) / wall) are not: equal cpu_ms/doc for 1 and 2 workers means the workers do not
// slow each other down, and cores below 2 with 2 workers means the machine's other load took the rest
// (see worker_scaling.sh for a run that takes the cores).
#include <nerpipe/io/jsonl_reader.hpp>
#include <nerpipe/pipeline/executor.hpp>
#include <nerpipe/pipeline/model.hpp>

#include <benchmark/benchmark.h>

#include "common/corpus.hpp"

#include <sys/resource.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace {

struct bench_corpus {
  std::vector<nerpipe::document> docs;
  std::size_t bytes = 0;
};

const bench_corpus& corpus() {
  static const bench_corpus c = [] {
    bench_corpus c;
    nerpipe::jsonl_reader r(nerpipe::bench::ewt_path("train"));
    nerpipe::document d;
    while (r.next(d)) {
      c.bytes += d.text.size();
      c.docs.push_back(d);
    }
    return c;
  }();
  return c;
}

const nerpipe::model* bench_model() {
  static const std::unique_ptr<nerpipe::model> m = []() -> std::unique_ptr<nerpipe::model> {
    std::vector<std::filesystem::path> candidates;
    if (const char* env = std::getenv("NERPIPE_BENCH_MODEL")) candidates.emplace_back(env);
    candidates.emplace_back(NERPIPE_SOURCE_DIR "/models/en_core_web_sm-3.8.0");
    candidates.emplace_back(NERPIPE_SOURCE_DIR "/tests/fixtures/hf/models/bert");
    for (const auto& p : candidates) {
      try {
        if (std::filesystem::is_directory(p)) return std::make_unique<nerpipe::model>(nerpipe::load_model(p));
      } catch (const std::exception&) {
      }
    }
    return nullptr;
  }();
  return m.get();
}

/// User + sys seconds of every thread of this process so far.
double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

struct replay_source {
  const std::vector<nerpipe::document>* docs;
  std::size_t i = 0;
  bool next(nerpipe::document& d) {
    if (i >= docs->size()) return false;
    d = (*docs)[i++];
    return true;
  }
};

void BM_round_robin_cpu(benchmark::State& state) {
  const auto* m = bench_model();
  if (!m) {
    state.SkipWithError("no model (set NERPIPE_BENCH_MODEL)");
    return;
  }
  const auto workers = static_cast<std::size_t>(state.range(0));
  const auto& c = corpus();
  std::uint64_t docs = 0, tokens = 0;
  const double cpu0 = process_cpu_seconds();
  const auto wall0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    std::vector<nerpipe::cpu_policy> replicas;
    for (std::size_t w = 0; w < workers; ++w) replicas.emplace_back(1u);
    nerpipe::round_robin<nerpipe::cpu_policy> rr(std::move(replicas));
    replay_source src{&c.docs};
    std::size_t entities = 0;
    const auto stats = rr.run([&](nerpipe::cpu_policy& p, std::size_t) { return nerpipe::make_annotator(p, *m); }, src,
                              [&](nerpipe::document& d) { entities += d.entities.size(); });
    benchmark::DoNotOptimize(entities);
    docs += stats.docs;
    tokens += stats.tokens;
  }
  const double cpu = process_cpu_seconds() - cpu0;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  state.counters["cpu_ms/doc"] = docs ? 1000.0 * cpu / static_cast<double>(docs) : 0.0;
  state.counters["cores"] = wall > 0 ? cpu / wall : 0.0;
  state.counters["docs/s"] = benchmark::Counter(static_cast<double>(docs), benchmark::Counter::kIsRate);
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<std::int64_t>(c.bytes) * state.iterations());
  state.SetLabel(std::string(nerpipe::to_string(m->family)) + " " + m->dir.filename().string());
}
BENCHMARK(BM_round_robin_cpu)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

}  // namespace
