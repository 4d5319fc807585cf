// SPDX-License-Identifier: Apache-2.0
//! @file The compute ceiling of the spaCy NER family on one core: floating-point work per word from the
//! real weight shapes, and this machine's sgemm rate on exactly the GEMM shapes the pipeline runs.
//!
//! FLOP per word (a multiply-add counts 2; W = tok2vec width, na = hash tables, nI/nO/nP = the mixer's
//! Maxout, window w, depth L, nH/nP/nF = the NER's hidden width, pieces, state features, A = actions):
//!   embed  na * 3 * W                       (4 rows summed per table)
//!   mix    2 * nI * nO * nP + nO * nP       (Maxout GEMM + bias)
//!   enc    L * (2 * (2w+1)W * W * nP + W * nP)
//!   proj   2 * W * nH + nH
//!   lower  2 * nH * (nF * nH * nP)          (precomputed per token)
//!   step   (nF + 1) * nH * nP + 2 * nH * A + A   (3 feature rows + bias, upper layer + bias; one step per word)
//! Maxout comparisons, LayerNorm and the residual add (about 10 * W per layer) are not counted.
//! BM_spacy_sgemm_shapes runs the pipeline's GEMMs (M = 2048 rows, spacy_ner's batch cap, and 16384) one after another and
//! reports their FLOP/s; ceiling words/s = that rate / GEMM-FLOP per word. Single thread: run with
//! OPENBLAS_NUM_THREADS=1.
#include <nerpipe/cpu/ops.hpp>
#include "spacy/model.hpp"
#include <nerpipe/model/spacy/loader.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <vector>

namespace {

struct gemm_shape {
  std::size_t n, k;  // per row: C[., n] = A[., k] B^T
};

struct work {
  std::vector<gemm_shape> gemms;
  double gemm_flop = 0, other_flop = 0;
};

work count(const nerpipe::spacy_model& m) {
  const auto& w = m.ner;
  const double W = double(w.width), A = double(m.actions.size());
  work r;
  const double na = double(w.embeds.size());
  r.other_flop += na * 3 * W;
  r.gemms.push_back({w.mix.nO * w.mix.nP, w.mix.nI});
  r.other_flop += double(w.mix.nO * w.mix.nP);
  for (const auto& l : w.encoder) {
    r.gemms.push_back({l.nO * l.nP, l.nI});
    r.other_flop += double(l.nO * l.nP);
  }
  r.gemms.push_back({w.nH, w.width});
  r.other_flop += double(w.nH);
  r.gemms.push_back({w.nF * w.nH * w.nP, w.nH});
  for (const auto& g : r.gemms) r.gemm_flop += 2.0 * double(g.n) * double(g.k);
  r.gemm_flop += 2.0 * double(w.nH) * A;  // the upper layer, one step per word (a GEMV)
  r.other_flop += double((w.nF + 1) * w.nH * w.nP) + A;
  return r;
}

void BM_spacy_sgemm_shapes(benchmark::State& state) {
  const auto* m = nerpipe::bench::spacy_sm_model();
  if (m == nullptr) {
    state.SkipWithError("en_core_web_sm-3.8.0 not found: run scripts/get-model.sh or set NERPIPE_SPACY_MODEL");
    return;
  }
  using namespace nerpipe;
  const work wk = count(*m);
  const auto M = static_cast<std::size_t>(state.range(0));
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::size_t maxn = 0, maxk = 0;
  for (const auto& g : wk.gemms) {
    maxn = std::max(maxn, g.n);
    maxk = std::max(maxk, g.k);
  }
  std::vector<float> a(M * maxk), b(maxn * maxk), c(M * maxn);
  for (auto& x : a) x = u(rng);
  for (auto& x : b) x = u(rng);
  const cpu_policy p(1);
  double flop = 0;
  for (const auto& g : wk.gemms) flop += 2.0 * double(M) * double(g.n) * double(g.k);
  for (auto _ : state) {
    for (const auto& g : wk.gemms)
      ops::gemm(p, gemm_args<float, float, float>{{a.data(), M, g.k}, {b.data(), g.n, g.k}, {c.data(), M, g.n}, true});
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = benchmark::Counter(flop, benchmark::Counter::kIsIterationInvariantRate);
  // words/s if every GEMM-FLOP of a word (the decoder's per-step GEMV included) ran at this rate; pad rows not counted
  state.counters["ceiling_words/s"] = benchmark::Counter(flop / wk.gemm_flop, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["gemm_FLOP/word"] = wk.gemm_flop;
  state.counters["other_FLOP/word"] = wk.other_flop;
  state.counters["actions"] = double(m->actions.size());
}
BENCHMARK(BM_spacy_sgemm_shapes)->ArgName("rows")->Arg(2048)->Arg(16384)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime();

}  // namespace
