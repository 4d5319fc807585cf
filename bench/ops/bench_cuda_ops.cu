// SPDX-License-Identifier: Apache-2.0
//! @file CUDA op throughput on BERT-base shapes: gemm TFLOP/s (fp32, bf16, FP8 e4m3 with its per-call activation
//! quantisation), packed attention TFLOP/s (nerpipe's tensor-core kernel and cuDNN's fused SDPA, head dim 64 at
//! sequence lengths 128-512, 128 at 512), layer_norm and the encoder's erf-GELU pass in GB/s. Timed with CUDA
//! events (manual time); rates are computed from the event time.
#include <benchmark/benchmark.h>

#include <nerpipe/cuda.cuh>

#include <cstdint>
#include <exception>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace {

using nerpipe::cuda_policy;
using nerpipe::matrix_view;
namespace ops = nerpipe::ops;

const cuda_policy& gpu() {
  static const cuda_policy p{0};
  return p;
}

/// False (and the benchmark marked skipped with a reason) on a machine without a CUDA device.
bool have_gpu(benchmark::State& state) {
  if (nerpipe::cuda_device_count() > 0) return true;
  state.SkipWithError("no CUDA device");
  return false;
}

template <class T>
cuda_policy::buffer<T> random_buffer(std::size_t n, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<T> host(n);
  for (auto& x : host) {
    const float f = dist(rng);
    if constexpr (std::is_same_v<T, nerpipe::bfloat16>)
      x = nerpipe::to_bfloat16(f);
    else if constexpr (std::is_same_v<T, nerpipe::float16>)
      x = nerpipe::to_float16(f);
    else
      x = f;
  }
  return gpu().upload(std::span<const T>(host));
}

template <class Body>
void time_gpu_impl(benchmark::State& state, Body& body, double work_per_call, const char* rate_name,
                   double rate_unit, int reps);

/// Times `reps` back-to-back launches of `body` per benchmark iteration with CUDA events; reports
/// `work_per_call / seconds` as `rate_name` (a plain counter, so Google Benchmark does not divide it by CPU time).
template <class Body>
void time_gpu(benchmark::State& state, Body&& body, double work_per_call, const char* rate_name, double rate_unit,
              int reps = 20) {
  try {
    time_gpu_impl(state, body, work_per_call, rate_name, rate_unit, reps);
  } catch (const std::exception& e) {  // one unsupported shape must not abort the whole run
    state.SkipWithError(e.what());
  }
}

template <class Body>
void time_gpu_impl(benchmark::State& state, Body& body, double work_per_call, const char* rate_name,
                   double rate_unit, int reps) {
  cudaStream_t s = gpu().stream();
  cudaEvent_t start = nullptr, stop = nullptr;
  NERPIPE_CUDA_CHECK(cudaEventCreate(&start));
  NERPIPE_CUDA_CHECK(cudaEventCreate(&stop));
  body();  // warm-up: plan creation, heuristics, first-touch
  gpu().synchronize();
  double total_s = 0.0;
  std::int64_t calls = 0;
  for (auto _ : state) {
    NERPIPE_CUDA_CHECK(cudaEventRecord(start, s));
    for (int i = 0; i < reps; ++i) body();
    NERPIPE_CUDA_CHECK(cudaEventRecord(stop, s));
    NERPIPE_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    NERPIPE_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    const double sec = static_cast<double>(ms) * 1e-3;
    state.SetIterationTime(sec / reps);
    total_s += sec;
    calls += reps;
  }
  state.counters[rate_name] = total_s > 0 ? work_per_call * static_cast<double>(calls) / total_s / rate_unit : 0.0;
  state.counters["us/call"] = calls > 0 ? total_s / static_cast<double>(calls) * 1e6 : 0.0;
  (void)cudaEventDestroy(start);
  (void)cudaEventDestroy(stop);
}

// ---- gemm: tokens x (out, in), nn.Linear layout, fp32 accumulation ---------------------------------------

template <class T>
void bm_gemm(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const auto m = static_cast<std::size_t>(state.range(0));
  const auto n = static_cast<std::size_t>(state.range(1));
  const auto k = static_cast<std::size_t>(state.range(2));
  const auto ep = static_cast<nerpipe::epilogue>(state.range(3));
  auto a = random_buffer<T>(m * k, 1);
  auto w = random_buffer<T>(n * k, 2);
  auto bias = random_buffer<float>(n, 3);
  cuda_policy::buffer<T> c(gpu(), m * n);
  nerpipe::gemm_args<const T, const T, T> args;
  args.a = matrix_view<const T>(a.data(), m, k);
  args.b = matrix_view<const T>(w.data(), n, k);
  args.c = matrix_view<T>(c.data(), m, n);
  args.bias = bias.data();
  args.ep = ep;
  time_gpu(state, [&] { ops::gemm(gpu(), args); }, 2.0 * static_cast<double>(m) * n * k, "TFLOP/s", 1e12);
}

void gemm_shapes(benchmark::internal::Benchmark* b) {
  const auto bias = static_cast<std::int64_t>(nerpipe::epilogue::bias);
  const auto gelu = static_cast<std::int64_t>(nerpipe::epilogue::bias_gelu);
  for (std::int64_t tokens : {4096, 16384}) {
    b->Args({tokens, 2304, 768, bias});   // fused QKV
    b->Args({tokens, 768, 768, bias});    // attention out
    b->Args({tokens, 3072, 768, bias});   // FFN1, bias only (the price of the erf-GELU pass is the next row)
    b->Args({tokens, 3072, 768, gelu});   // FFN1 + erf GELU
    b->Args({tokens, 768, 3072, bias});   // FFN2
  }
  b->ArgNames({"tokens", "n", "k", "epilogue"});
}

BENCHMARK_TEMPLATE(bm_gemm, float)->Apply(gemm_shapes)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(bm_gemm, nerpipe::bfloat16)->Apply(gemm_shapes)->UseManualTime()->Unit(benchmark::kMicrosecond);

/// FP8 e4m3 gemm as the encoder runs it: bf16 activations in (amax + quantisation on the device, counted in the
/// time), an e4m3 weight with its scale, bf16 out with the bias (and erf-GELU pass) epilogue.
void bm_fp8_gemm(benchmark::State& state) {
  if (!have_gpu(state)) return;
  if (gpu().compute_capability() < 89) {
    state.SkipWithError("no FP8 matrix units (sm_89+)");
    return;
  }
  using bf16 = nerpipe::bfloat16;
  const auto m = static_cast<std::size_t>(state.range(0));
  const auto n = static_cast<std::size_t>(state.range(1));
  const auto k = static_cast<std::size_t>(state.range(2));
  const auto ep = static_cast<nerpipe::epilogue>(state.range(3));
  auto a = random_buffer<bf16>(m * k, 1);
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> dist(-0.05f, 0.05f);
  std::vector<float> w(n * k);
  for (auto& x : w) x = dist(rng);
  const auto q = nerpipe::detail::quantize_fp8_e4m3(w);
  auto wq = gpu().upload(std::span<const nerpipe::float8_e4m3>(q.q));
  const float scale[1] = {q.scale};
  auto ws = gpu().upload(std::span<const float>(scale, 1));
  auto bias = random_buffer<float>(n, 3);
  cuda_policy::buffer<bf16> c(gpu(), m * n);
  nerpipe::fp8_gemm_args<bf16, bf16> args{matrix_view<const bf16>(a.data(), m, k),
                                          matrix_view<const nerpipe::float8_e4m3>(wq.data(), n, k), ws.data(),
                                          matrix_view<bf16>(c.data(), m, n), bias.data(), ep};
  time_gpu(state, [&] { ops::fp8_gemm(gpu(), args); }, 2.0 * static_cast<double>(m) * n * k, "TFLOP/s", 1e12);
}
void fp8_gemm_shapes(benchmark::internal::Benchmark* b) {
  const auto bias = static_cast<std::int64_t>(nerpipe::epilogue::bias);
  const auto gelu = static_cast<std::int64_t>(nerpipe::epilogue::bias_gelu);
  for (std::int64_t tokens : {16384}) {
    b->Args({tokens, 2304, 768, bias});
    b->Args({tokens, 768, 768, bias});
    b->Args({tokens, 3072, 768, gelu});
    b->Args({tokens, 768, 3072, bias});
  }
  b->ArgNames({"tokens", "n", "k", "epilogue"});
}
BENCHMARK(bm_fp8_gemm)->Apply(fp8_gemm_shapes)->UseManualTime()->Unit(benchmark::kMicrosecond);

// ---- attention: B sequences of length S packed to B*S tokens, 12 heads of 64 -------------------------------

/// state.range: seq_len, tokens, path (0 automatic, 1 generic, 2 nerpipe's tensor-core kernel, 3 cuDNN), head_dim.
template <class T>
void bm_attention(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const auto seq_len = static_cast<std::int32_t>(state.range(0));
  const auto tokens = static_cast<std::int32_t>(state.range(1));
  const auto path = static_cast<nerpipe::detail::attention_path>(state.range(2));
  const auto head_dim = static_cast<std::size_t>(state.range(3));
  const std::size_t hidden = 768, heads = hidden / head_dim;
  const std::int32_t seqs = tokens / seq_len;
  std::vector<std::int32_t> offsets(static_cast<std::size_t>(seqs) + 1);
  for (std::int32_t s = 0; s <= seqs; ++s) offsets[static_cast<std::size_t>(s)] = s * seq_len;
  const auto t = static_cast<std::size_t>(offsets.back());
  auto qkv = random_buffer<T>(t * 3 * hidden, 5);
  auto off = gpu().upload(std::span<const std::int32_t>(offsets));
  cuda_policy::buffer<T> out(gpu(), t * hidden);
  nerpipe::attention_args<T> a;
  a.q = matrix_view<const T>(qkv.data(), t, hidden, 3 * hidden);
  a.k = matrix_view<const T>(qkv.data() + hidden, t, hidden, 3 * hidden);
  a.v = matrix_view<const T>(qkv.data() + 2 * hidden, t, hidden, 3 * hidden);
  a.out = matrix_view<T>(out.data(), t, hidden);
  a.seq_offsets = off.data();
  a.seq_offsets_host = offsets.data();
  a.num_seqs = static_cast<std::size_t>(seqs);
  a.heads = heads;
  a.head_dim = head_dim;
  a.max_seq_len = static_cast<std::size_t>(seq_len);
  // 2 gemms of 2 * len^2 * d per sequence and head.
  const double flops = 4.0 * seqs * static_cast<double>(seq_len) * seq_len * head_dim * heads;
  if (path == nerpipe::detail::attention_path::cudnn && !nerpipe::detail::cudnn_unavailable_reason().empty()) {
    state.SkipWithError(("cuDNN: " + nerpipe::detail::cudnn_attention_status(gpu())).c_str());
    return;
  }
  time_gpu(state, [&] { nerpipe::detail::run_attention(gpu(), a, path); }, flops, "TFLOP/s", 1e12, 5);
}
void attention_shapes_fp32(benchmark::internal::Benchmark* b) {
  for (std::int64_t s : {128, 512}) b->Args({s, 16384, 1, 64});
  b->ArgNames({"seq_len", "tokens", "path", "head_dim"});
}
/// 12 x 64 (BERT-base) at 128-512 with the own tensor-core kernel (2) and cuDNN (3); 6 x 128 at 512.
void attention_shapes_16(benchmark::internal::Benchmark* b) {
  for (std::int64_t path : {2, 3}) {
    for (std::int64_t s : {128, 256, 384, 512}) b->Args({s, 32768, path, 64});
    b->Args({512, 32768, path, 128});
  }
  b->ArgNames({"seq_len", "tokens", "path", "head_dim"});
}
BENCHMARK_TEMPLATE(bm_attention, float)->Apply(attention_shapes_fp32)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(bm_attention, nerpipe::bfloat16)
    ->Apply(attention_shapes_16)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// ---- layer_norm with a fused residual: reads x and residual, writes x --------------------------------------

template <class T>
void bm_layer_norm(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const auto rows = static_cast<std::size_t>(state.range(0));
  const auto cols = static_cast<std::size_t>(state.range(1));
  auto x = random_buffer<T>(rows * cols, 7);
  auto r = random_buffer<T>(rows * cols, 8);
  auto gamma = random_buffer<float>(cols, 9, 0.5f, 1.5f);
  auto beta = random_buffer<float>(cols, 10);
  const matrix_view<T> xv(x.data(), rows, cols);
  const matrix_view<const T> rv(r.data(), rows, cols);
  const double bytes = 3.0 * static_cast<double>(rows * cols * sizeof(T));
  time_gpu(state, [&] { ops::layer_norm(gpu(), xv, rv, gamma.data(), beta.data(), 1e-12f); }, bytes, "GB/s", 1e9);
}
BENCHMARK_TEMPLATE(bm_layer_norm, float)->Args({16384, 768})->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(bm_layer_norm, nerpipe::bfloat16)->Args({16384, 768})->UseManualTime()->Unit(benchmark::kMicrosecond);

// ---- erf GELU in place over the FFN1 output: the pass the encoder runs after cuBLASLt's bias epilogue ---------
// (launch_bias_act: bias_act_vec_kernel, 16-byte vectors; the flat ops::gelu kernel is not on the encoder's path).

template <class T>
void bm_gelu(benchmark::State& state) {
  if (!have_gpu(state)) return;
  const auto rows = static_cast<std::size_t>(state.range(0)), cols = static_cast<std::size_t>(state.range(1));
  auto x = random_buffer<T>(rows * cols, 11);
  const matrix_view<T> xv(x.data(), rows, cols);
  time_gpu(state, [&] { nerpipe::detail::launch_bias_act(gpu(), xv, nullptr, nerpipe::detail::kernels::act_kind::gelu_erf); },
           2.0 * static_cast<double>(rows * cols * sizeof(T)), "GB/s", 1e9);
}
BENCHMARK_TEMPLATE(bm_gelu, nerpipe::bfloat16)->Args({16384, 3072})->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace

// The shared bench main (bench/common/main.cpp) calls this weak hook to record the device.
namespace nerpipe::bench {
void add_device_context() {
  if (nerpipe::cuda_device_count() == 0) {
    benchmark::AddCustomContext("gpu", "none");
    return;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return;
  int driver = 0, runtime = 0;
  (void)cudaDriverGetVersion(&driver);
  (void)cudaRuntimeGetVersion(&runtime);
  benchmark::AddCustomContext("gpu", prop.name);
  benchmark::AddCustomContext("gpu_compute_capability", std::to_string(prop.major) + "." + std::to_string(prop.minor));
  benchmark::AddCustomContext("gpu_sms", std::to_string(prop.multiProcessorCount));
  benchmark::AddCustomContext("cuda_driver", std::to_string(driver));
  benchmark::AddCustomContext("cuda_runtime", std::to_string(runtime));
  benchmark::AddCustomContext("cublaslt", std::to_string(cublasLtGetVersion()));
}
}  // namespace nerpipe::bench
