// SPDX-License-Identifier: Apache-2.0
//! @file Microbenchmarks of every cpu_policy operation on BERT-base shapes (512 tokens, hidden 768, 12 heads).
//!
//! The last argument of each benchmark is the policy's thread count. Wall-clock time throughout
//! (UseRealTime): the pool's worker threads do not show up in the main thread's CPU time.
#include <nerpipe/cpu/ops.hpp>
#include <nerpipe/policy/cpu_policy.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace {
using namespace nerpipe;

std::vector<float> random_floats(std::size_t n, std::uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) {
    do x = dist(gen);
    while (x == 0.0f);
  }
  return v;
}

unsigned threads_arg(const benchmark::State& state, int index) { return static_cast<unsigned>(state.range(index)); }

void set_rate(benchmark::State& state, const char* name, double per_iteration) {
  state.counters[name] = benchmark::Counter(per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

// ---- gemm: C[m, n] = A[m, k] W[n, k]^T (nn.Linear layout), args {m, n, k, epilogue, threads} ----
void BM_gemm(benchmark::State& state) {
  const auto m = static_cast<std::size_t>(state.range(0)), n = static_cast<std::size_t>(state.range(1)),
             k = static_cast<std::size_t>(state.range(2));
  const auto ep = static_cast<epilogue>(state.range(3));
  const cpu_policy p(threads_arg(state, 4));
  const auto a = random_floats(m * k, 1), w = random_floats(n * k, 2), bias = random_floats(n, 3);
  std::vector<float> c(m * n);
  const gemm_args<float, float, float> g{{a.data(), m, k}, {w.data(), n, k}, {c.data(), m, n}, true, bias.data(), ep};
  for (auto _ : state) {
    ops::gemm(p, g);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_rate(state, "FLOP/s", 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * m));  // tokens
}
void gemm_args_list(benchmark::internal::Benchmark* b) {
  b->ArgNames({"m", "n", "k", "ep", "threads"});
  const int none = static_cast<int>(epilogue::none), bias_gelu = static_cast<int>(epilogue::bias_gelu);
  for (int threads : {1, 2}) {
    b->Args({512, 768, 768, none, threads});        // attention projections
    b->Args({512, 3072, 768, none, threads});       // FFN up
    b->Args({512, 768, 3072, none, threads});       // FFN down
    b->Args({512, 3072, 768, bias_gelu, threads});  // FFN up with its fused bias + erf-GELU epilogue
  }
}
BENCHMARK(BM_gemm)->Apply(gemm_args_list)->UseRealTime()->Unit(benchmark::kMillisecond);

// ---- residual + layer_norm over [tokens, 768], args {tokens, threads} ----
void BM_layer_norm(benchmark::State& state) {
  const auto rows = static_cast<std::size_t>(state.range(0)), cols = std::size_t{768};
  const cpu_policy p(threads_arg(state, 1));
  auto x = random_floats(rows * cols, 1);
  const auto res = random_floats(rows * cols, 2), gamma = random_floats(cols, 3, 0.5f, 1.5f),
             beta = random_floats(cols, 4);
  for (auto _ : state) {
    ops::layer_norm(p, matrix_view<float>(x.data(), rows, cols), matrix_view<const float>(res.data(), rows, cols),
                    gamma.data(), beta.data(), 1e-12f);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(
      static_cast<std::int64_t>(state.iterations() * rows * cols * sizeof(float) * 3));  // x, res, x
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * rows));
}
BENCHMARK(BM_layer_norm)->ArgNames({"tokens", "threads"})->Args({512, 1})->Args({512, 2})->UseRealTime();

// ---- softmax over attention-score rows: 8 sequences x 12 heads x 128 rows of 128, args {cols, threads} ----
void BM_softmax(benchmark::State& state) {
  const auto cols = static_cast<std::size_t>(state.range(0)), rows = std::size_t{8 * 12} * cols;
  const cpu_policy p(threads_arg(state, 1));
  auto x = random_floats(rows * cols, 1, -8.0f, 8.0f);
  for (auto _ : state) {
    ops::softmax(p, matrix_view<float>(x.data(), rows, cols));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * rows * cols * sizeof(float) * 2));
}
BENCHMARK(BM_softmax)->ArgNames({"cols", "threads"})->Args({128, 1})->Args({128, 2})->UseRealTime();

// ---- gelu over the FFN activations [512, 3072], args {form, threads} ----
void BM_gelu(benchmark::State& state) {
  const std::size_t n = 512 * 3072;
  const auto form = static_cast<gelu_form>(state.range(0));
  const cpu_policy p(threads_arg(state, 1));
  auto x = random_floats(n, 1, -4.0f, 4.0f);
  for (auto _ : state) {
    ops::gelu(p, x.data(), n, form);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * sizeof(float) * 2));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}
BENCHMARK(BM_gelu)
    ->ArgNames({"tanh", "threads"})
    ->Args({static_cast<int>(gelu_form::erf), 1})
    ->Args({static_cast<int>(gelu_form::erf), 2})
    ->Args({static_cast<int>(gelu_form::tanh), 1})
    ->UseRealTime();

// ---- gather: 512 word-piece rows out of a 30522 x 768 table, args {accumulate, threads} ----
void BM_gather(benchmark::State& state) {
  const std::size_t vocab = 30522, hidden = 768, rows = 512;
  const bool accumulate = state.range(0) != 0;
  const cpu_policy p(threads_arg(state, 1));
  const auto table = random_floats(vocab * hidden, 1);
  std::vector<float> out = random_floats(rows * hidden, 2);
  std::mt19937 gen(3);
  std::uniform_int_distribution<std::int32_t> pick(0, static_cast<std::int32_t>(vocab) - 1);
  std::vector<std::int32_t> ids(rows);
  for (auto& id : ids) id = pick(gen);
  for (auto _ : state) {
    ops::gather(p, matrix_view<const float>(table.data(), vocab, hidden), ids.data(),
                matrix_view<float>(out.data(), rows, hidden), accumulate);
    benchmark::ClobberMemory();
  }
  // Table rows read + output written (+ output read when accumulating).
  state.SetBytesProcessed(
      static_cast<std::int64_t>(state.iterations() * rows * hidden * sizeof(float) * (accumulate ? 3 : 2)));
}
BENCHMARK(BM_gather)->ArgNames({"accumulate", "threads"})->Args({0, 1})->Args({1, 1})->Args({1, 2})->UseRealTime();

// ---- argmax over token logits, args {tokens, labels, threads} ----
void BM_argmax(benchmark::State& state) {
  const auto rows = static_cast<std::size_t>(state.range(0)), cols = static_cast<std::size_t>(state.range(1));
  const cpu_policy p(threads_arg(state, 2));
  const auto x = random_floats(rows * cols, 1);
  std::vector<std::int32_t> out(rows);
  for (auto _ : state) {
    ops::argmax(p, matrix_view<const float>(x.data(), rows, cols), out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * rows * cols * sizeof(float)));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * rows));
}
BENCHMARK(BM_argmax)->ArgNames({"tokens", "labels", "threads"})->Args({512, 9, 1})->Args({4096, 50, 1})->UseRealTime();

// ---- attention: 8 packed sequences of 128 tokens, 12 heads x 64, q/k/v slices of one [T, 3H] matrix ----
void BM_attention(benchmark::State& state) {
  const auto seqs = static_cast<std::size_t>(state.range(0)), len = static_cast<std::size_t>(state.range(1));
  const std::size_t heads = 12, head_dim = 64, hidden = heads * head_dim, tokens = seqs * len;
  const cpu_policy p(threads_arg(state, 2));
  const auto qkv = random_floats(tokens * 3 * hidden, 1);
  std::vector<float> out(tokens * hidden);
  std::vector<std::int32_t> offsets(seqs + 1);
  for (std::size_t s = 0; s <= seqs; ++s) offsets[s] = static_cast<std::int32_t>(s * len);
  const matrix_view<const float> fused(qkv.data(), tokens, 3 * hidden);
  const attention_args<float> a{fused.slice_cols(0, hidden),
                                fused.slice_cols(hidden, hidden),
                                fused.slice_cols(2 * hidden, hidden),
                                matrix_view<float>(out.data(), tokens, hidden),
                                offsets.data(),
                                offsets.data(),
                                seqs,
                                heads,
                                head_dim,
                                len,
                                0.0f};
  for (auto _ : state) {
    ops::attention(p, a);
    benchmark::ClobberMemory();
  }
  // q k^T and P v: 2 * 2 * len^2 * head_dim per sequence and head.
  set_rate(state, "FLOP/s", 4.0 * static_cast<double>(seqs * heads) * static_cast<double>(len * len * head_dim));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * tokens));  // tokens
}
BENCHMARK(BM_attention)
    ->ArgNames({"seqs", "len", "threads"})
    ->Args({8, 128, 1})
    ->Args({8, 128, 2})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
