// SPDX-License-Identifier: Apache-2.0
//! @file The policy-generic op tests (tests/unit/ops_body.hpp) instantiated for cuda_policy — fp32, bf16 and
//! fp16 activations; gemm fp32->fp32, bf16->fp32, bf16->bf16, fp16->fp16 — plus what only cuda_policy has:
//! its resources and error ids, the plan cache, the fallback gemm kernel and the attention kernel paths, each
//! run through the same case runners and tolerance table as the public ops.
#include <catch2/catch.hpp>

#include <nerpipe/cuda.cuh>

#include "support/prerequisite.hpp"

#include <string>
#include <tuple>

namespace nerpipe::ops_test {
template <class In, class Out>
struct gemm_types;

/// cuda_policy on device 0 (one per process: the stream, cuBLASLt handle and plan cache are shared).
struct cuda_device0 {
  using policy = cuda_policy;
  using element_types = std::tuple<float, bfloat16, float16>;
  using gemm_types = std::tuple<ops_test::gemm_types<float, float>, ops_test::gemm_types<bfloat16, float>,
                                ops_test::gemm_types<bfloat16, bfloat16>, ops_test::gemm_types<float16, float16>>;
  static const cuda_policy& make() {
    static const cuda_policy p{0};
    return p;
  }
  static std::string label() { return "cuda_policy(0)"; }
  static bool available() { return test::require_devices(1); }  // skipped without a device
};
using ops_test_policies = std::tuple<cuda_device0>;
}  // namespace nerpipe::ops_test

#include "unit/ops_body.hpp"

namespace {

using nerpipe::cuda_policy;
using nerpipe::matrix_view;
using nerpipe::ops_test::cuda_device0;
namespace ops = nerpipe::ops;
using bf16 = nerpipe::bfloat16;
using f16 = nerpipe::float16;

/// The tiled CUDA-core gemm that serves the shapes cuBLASLt rejects, called on its own.
struct call_gemm_fallback {
  template <class Args>
  void operator()(const cuda_policy& p, const Args& g) const {
    using act = nerpipe::detail::kernels::act_kind;
    const act a = g.ep == nerpipe::epilogue::bias_gelu        ? act::gelu_erf
                  : g.ep == nerpipe::epilogue::bias_gelu_tanh ? act::gelu_tanh
                                                              : act::none;
    ops::gemm_impl<cuda_policy>::run_fallback(p, g, g.ep == nerpipe::epilogue::none ? nullptr : g.bias, a);
  }
};

/// One attention kernel, chosen explicitly.
struct call_attention_path {
  nerpipe::detail::attention_path path;
  template <class Args>
  void operator()(const cuda_policy& p, const Args& a) const {
    nerpipe::check_attention_args(a);
    nerpipe::detail::run_attention(p, a, path);
  }
};

}  // namespace

TEST_CASE("cuda_policy: resources, buffers, transfers", "[gpu][cuda_policy]") {
  if (!nerpipe::test::require_devices(1)) return;
  const cuda_policy& p = cuda_device0::make();
  STATIC_REQUIRE(cuda_policy::name() == "cuda");
  STATIC_REQUIRE(nerpipe::device_policy<cuda_policy>);
  STATIC_REQUIRE(std::is_same_v<cuda_policy::memory_space, nerpipe::cuda_space>);
  REQUIRE(p.device() == 0);
  REQUIRE(p.stream() != nullptr);
  REQUIRE(p.lt_handle() != nullptr);
  REQUIRE(p.workspace() != nullptr);
  REQUIRE(p.workspace_bytes() >= (std::size_t{4} << 20));
  REQUIRE(p.compute_dtype() == nerpipe::dtype::f32);

  const cuda_policy copy = p;  // copies share the stream and the handle
  REQUIRE(copy.stream() == p.stream());
  const cuda_policy fast = p.with_compute_dtype(nerpipe::dtype::bf16);
  REQUIRE(fast.compute_dtype() == nerpipe::dtype::bf16);
  REQUIRE(fast.stream() == p.stream());
  REQUIRE(p.compute_dtype() == nerpipe::dtype::f32);

  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{1000}, std::size_t{1} << 20}) {
    const auto host = nerpipe::ops_test::random_floats(n, 7 + n);
    auto d = p.upload(std::span<const float>(host));
    REQUIRE(d.size() == n);
    REQUIRE(reinterpret_cast<std::uintptr_t>(d.data()) % 256 == 0);
    std::vector<float> back(n, -1.0f);
    p.download(d.span(), std::span<float>(back));
    p.synchronize();
    REQUIRE(back == host);
  }

  cuda_policy::buffer<int> a(p, 10);
  int* raw = a.data();
  cuda_policy::buffer<int> b(std::move(a));
  REQUIRE(b.data() == raw);
  REQUIRE(a.data() == nullptr);
  REQUIRE(a.empty());
  b.reset();
  REQUIRE(b.empty());
}

// Tagged [api_errors]: these provoke CUDA API errors on purpose, which compute-sanitizer reports, so the
// memcheck run excludes them ("~[api_errors]").
TEST_CASE("cuda_policy: errors are cuda_error with stable ids", "[gpu][cuda_policy][api_errors]") {
  if (!nerpipe::test::require_devices(1)) return;
  const int count = nerpipe::cuda_device_count();
  try {
    cuda_policy bad{count + 3};
    FAIL("constructing a policy for a missing device must throw");
  } catch (const nerpipe::cuda_error& e) {
    REQUIRE(e.code() == nerpipe::errc::cuda_no_device);
  }
  try {
    cuda_policy::buffer<float> huge(cuda_device0::make(), std::size_t{1} << 42);  // 16 TiB
    FAIL("a 16 TiB allocation must throw");
  } catch (const nerpipe::cuda_error& e) {
    REQUIRE(e.code() == nerpipe::errc::cuda_out_of_memory);
    REQUIRE(std::string(e.what()).find("cudaErrorMemoryAllocation") != std::string::npos);
  }
  // The policy still works after the failure.
  const std::vector<float> host = {1.0f, 2.0f};
  const cuda_policy& p = cuda_device0::make();
  auto d = p.upload(std::span<const float>(host));
  std::vector<float> back(2);
  p.download(d.span(), std::span<float>(back));
  p.synchronize();
  REQUIRE(back == host);
}

TEST_CASE("cuda gemm: the plan cache hands a repeated call the same algorithm (bitwise equal results)", "[gpu][gemm]") {
  if (!nerpipe::test::require_devices(1)) return;
  const cuda_policy& p = cuda_device0::make();
  const std::size_t m = 64, n = 256, k = 768;
  const auto a = nerpipe::ops_test::random_floats(m * k, 1), b = nerpipe::ops_test::random_floats(n * k, 2),
             bias = nerpipe::ops_test::random_floats(n, 3);
  auto a_d = p.upload(std::span<const float>(a)), b_d = p.upload(std::span<const float>(b)),
       bias_d = p.upload(std::span<const float>(bias));
  cuda_policy::buffer<float> c1(p, m * n), c2(p, m * n);
  for (auto* c : {&c1, &c2}) {
    nerpipe::gemm_args<float, float, float> args{{a_d.data(), m, k}, {b_d.data(), n, k}, {c->data(), m, n}, true,
                                                 bias_d.data(), nerpipe::epilogue::bias};
    ops::gemm(p, args);
  }
  REQUIRE(nerpipe::ops_test::to_host<float>(p, c1) == nerpipe::ops_test::to_host<float>(p, c2));
}

TEST_CASE("cuda gemm fallback kernel (for shapes cuBLASLt rejects) matches the reference", "[gpu][gemm]") {
  if (!nerpipe::test::require_devices(1)) return;
  const cuda_policy& p = cuda_device0::make();
  std::uint64_t seed = 700;
  for (const auto& gc : nerpipe::ops_test::small_gemm_cases()) {
    if (gc.k == 0) continue;  // handled before any gemm kernel
    nerpipe::ops_test::run_gemm_case<float, float>(p, gc, ++seed, call_gemm_fallback{});
    nerpipe::ops_test::run_gemm_case<bf16, bf16>(p, gc, ++seed, call_gemm_fallback{});
  }
}

TEST_CASE("cuda attention: every kernel path matches the reference", "[gpu][attention]") {
  if (!nerpipe::test::require_devices(1)) return;
  using nerpipe::detail::attention_path;
  const cuda_policy& p = cuda_device0::make();
  std::uint64_t seed = 3100;
  for (const auto& ac : nerpipe::ops_test::attention_cases()) {
    // The generic kernel takes every head dim up to 128 and every type; the tensor-core one bf16/fp16 at 64 and 128.
    nerpipe::ops_test::run_attention_case<bf16>(p, ac, ++seed, call_attention_path{attention_path::generic});
    if (ac.head_dim == 64 || ac.head_dim == 128) {
      nerpipe::ops_test::run_attention_case<bf16>(p, ac, ++seed, call_attention_path{attention_path::tensor_core});
      nerpipe::ops_test::run_attention_case<f16>(p, ac, ++seed, call_attention_path{attention_path::tensor_core});
    }
  }
}

TEST_CASE("cuda attention rejects what it cannot run", "[gpu][attention]") {
  if (!nerpipe::test::require_devices(1)) return;
  const cuda_policy& p = cuda_device0::make();
  std::vector<std::int32_t> offsets{0, 4};
  auto off_d = p.upload(std::span<const std::int32_t>(offsets));
  cuda_policy::buffer<float> buf(p, 4 * 3 * 256);
  nerpipe::attention_args<float> a;
  a.q = a.k = a.v = matrix_view<const float>(buf.data(), 4, 256, 3 * 256);
  a.out = matrix_view<float>(buf.data(), 4, 256);
  a.seq_offsets = off_d.data();
  a.seq_offsets_host = offsets.data();
  a.num_seqs = 1;
  a.heads = 1;
  a.head_dim = 256;
  REQUIRE_THROWS_AS(ops::attention(p, a), nerpipe::config_error);
  a.head_dim = 64;
  REQUIRE_THROWS_AS(nerpipe::detail::run_attention(p, a, nerpipe::detail::attention_path::tensor_core),
                    nerpipe::config_error);
}

// ---- cuDNN's fused SDPA (cuda/cudnn_attention.cuh) --------------------------------------------------------

TEST_CASE("cuda attention: cuDNN's fused SDPA on packed sequences matches the reference", "[gpu][attention][cudnn]") {
  if (!nerpipe::test::require_devices(1)) return;
  using nerpipe::detail::attention_path;
  const cuda_policy& p = cuda_device0::make();
  if (!nerpipe::detail::cudnn_attention_compiled || !nerpipe::detail::cudnn_unavailable_reason().empty()) {
    // A device without cuDNN (or a build without its frontend) skips this case; under CI=true it fails.
    (void)nerpipe::test::missing_prerequisite("cuDNN SDPA: " + std::string(nerpipe::detail::cudnn_attention_status(p)));
    return;
  }
  std::uint64_t seed = 5100;
  std::size_t ran = 0;
  for (const auto& ac : nerpipe::ops_test::attention_cases()) {
    if (ac.head_dim != 64 && ac.head_dim != 128) continue;
    nerpipe::ops_test::run_attention_case<bf16>(p, ac, ++seed, call_attention_path{attention_path::cudnn});
    nerpipe::ops_test::run_attention_case<f16>(p, ac, ++seed, call_attention_path{attention_path::cudnn});
    ran += 2;
  }
  // BERT-like passes: many sequences, lengths 1..512 (several graph buckets), 12 heads of 64.
  std::mt19937 rng(77);
  for (const std::size_t seqs : {std::size_t{3}, std::size_t{37}, std::size_t{200}}) {
    nerpipe::ops_test::attention_case ac{{}, 12, 64, 0.0f, 2.0f};
    for (std::size_t s = 0; s < seqs; ++s) ac.lengths.push_back(static_cast<std::int32_t>(1 + rng() % (seqs == 200 ? 128 : 512)));
    nerpipe::ops_test::run_attention_case<bf16>(p, ac, ++seed, call_attention_path{attention_path::cudnn});
    ++ran;
  }
  WARN("cuDNN SDPA: " << ran << " packed cases against the double reference; build status: '"
                      << nerpipe::detail::cudnn_attention_status(p) << "'");
}

// ---- FP8 (e4m3) gemm: ops::fp8_gemm ------------------------------------------------------------------------

TEST_CASE("e4m3 conversion on the device equals nerpipe::to_float8_e4m3 for every bf16 value", "[gpu][fp8]") {
  if (!nerpipe::test::require_devices(1)) return;
  const cuda_policy& p = cuda_device0::make();
  std::vector<float> x(65536);
  for (std::uint32_t b = 0; b < 65536; ++b) x[b] = nerpipe::to_float(nerpipe::bfloat16{static_cast<std::uint16_t>(b)});
  auto dx = p.upload(std::span<const float>(x));
  cuda_policy::buffer<std::uint8_t> dq(p, x.size());
  nerpipe::detail::kernels::to_fp8_kernel<<<64, 256, 0, p.stream()>>>(dx.data(), x.size(),
                                                                       reinterpret_cast<__nv_fp8_storage_t*>(dq.data()));
  NERPIPE_CUDA_CHECK_LAUNCH();
  std::vector<std::uint8_t> q(x.size());
  p.download(std::span<const std::uint8_t>(dq.data(), q.size()), std::span<std::uint8_t>(q));
  std::size_t bad = 0;
  std::string first;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::uint8_t want = nerpipe::to_float8_e4m3(x[i]).bits;
    const bool nan = std::isnan(x[i]);
    if (nan ? (q[i] & 0x7f) != 0x7f : q[i] != want) {
      if (bad++ == 0) first = std::to_string(x[i]) + ": device " + std::to_string(q[i]) + ", host " + std::to_string(want);
    }
  }
  INFO("first difference: " << first);
  CHECK(bad == 0);
}

namespace {

/// One FP8 gemm against the reference on the same quantised operands: activations quantised on the host exactly
/// as the device does (amax, 448 / amax, round to nearest even), weights by detail::quantize_fp8_e4m3. The
/// device's quantised activations and scale are compared bit for bit too.
template <class Out>
void run_fp8_case(const cuda_policy& p, std::size_t m, std::size_t n, std::size_t k, nerpipe::epilogue ep,
                  std::uint64_t seed) {
  using namespace nerpipe::ops_test;
  std::ostringstream name;
  name << "fp8_gemm bf16->" << type_name<Out>() << " " << m << "x" << n << "x" << k << " ep=" << to_string(ep);
  INFO(name.str());
  host_matrix<bf16> a(m, k, k + 8);  // a strided activation view (ld != k)
  a.fill_random(seed * 5 + 1, -3.0f, 3.0f);
  const auto w = random_floats(n * k, seed * 5 + 2, -0.1f, 0.1f);
  const auto bias = random_floats(n, seed * 5 + 3, -0.5f, 0.5f);
  const auto qw = nerpipe::detail::quantize_fp8_e4m3(w);
  // The host quantisation of a.
  float amax = 0.0f;
  for (std::size_t r = 0; r < m; ++r)
    for (std::size_t c = 0; c < k; ++c) amax = std::max(amax, std::fabs(nerpipe::to_float(a(r, c))));
  const float inv = amax > 0.0f ? 448.0f / amax : 1.0f, sa = amax > 0.0f ? amax / 448.0f : 1.0f;
  std::vector<float> qa_f(m * k), qw_f(n * k);
  std::vector<std::uint8_t> qa_bits(m * k);
  for (std::size_t r = 0; r < m; ++r)
    for (std::size_t c = 0; c < k; ++c) {
      const auto q = nerpipe::to_float8_e4m3(nerpipe::to_float(a(r, c)) * inv);
      qa_bits[r * k + c] = q.bits;
      qa_f[r * k + c] = nerpipe::to_float(q);
    }
  for (std::size_t i = 0; i < n * k; ++i) qw_f[i] = nerpipe::to_float(qw.q[i]);

  host_matrix<Out> c(m, n, n + 8);
  c.fill(poison());
  auto da = to_device(p, a.v);
  auto dw = to_device(p, qw.q);
  const std::vector<float> sw{qw.scale};
  auto dsw = to_device(p, sw);
  auto dc = to_device(p, c.v);
  auto dbias = to_device(p, bias);
  nerpipe::fp8_gemm_args<bf16, Out> g{device_view<const bf16>(da, a),
                                      matrix_view<const nerpipe::float8_e4m3>(dw.data(), n, k),
                                      dsw.data(),
                                      device_view<Out>(dc, c),
                                      ep == nerpipe::epilogue::none ? nullptr : dbias.data(),
                                      ep};
  ops::fp8_gemm(p, g);
  const auto got = to_host<Out>(p, dc);

  // The device's quantised activations and scale (the policy's FP8 scratch, still holding this call's).
  {
    auto& cache = nerpipe::detail::gemm_cache_of(p.resources());
    std::vector<std::uint8_t> dev_q(m * k);
    float dev_scalars[2] = {0, 0};
    NERPIPE_CUDA_CHECK(cudaMemcpy(dev_q.data(), cache.fp8_act, m * k, cudaMemcpyDeviceToHost));
    NERPIPE_CUDA_CHECK(cudaMemcpy(dev_scalars, cache.fp8_scalars, sizeof dev_scalars, cudaMemcpyDeviceToHost));
    std::size_t diff = 0;
    for (std::size_t i = 0; i < m * k; ++i) diff += dev_q[i] != qa_bits[i];
    CHECK(diff == 0);
    CHECK(dev_scalars[1] == sa);
  }

  const matrix_view<const float> ha(qa_f.data(), m, k), hb(qw_f.data(), n, k);
  std::vector<Out> want_store(m * n);
  nerpipe::gemm_args<float, float, Out> hg{ha, hb, matrix_view<Out>(want_store.data(), m, n), true, bias.data(), ep,
                                           sa * qw.scale, 0.0f};
  // Out of the fp32-accumulated product: bf16 rounds once (the gemm table's 8e-3); fp32 output is bounded by
  // the FP8 tensor cores' accumulation and the bias, which cuBLASLt takes in bf16 for fp8 operands (2e-3 of the
  // magnitude, UNCONFIRMED until measured on the H200).
  const tolerance tol = std::is_same_v<Out, float> ? tolerance{1e-5, 2e-3} : tolerance_of<Out>(op_kind::gemm);
  comparison cmp(name.str(), tol);
  for (std::size_t r = 0; r < m; ++r)
    for (std::size_t col = 0; col < n; ++col) {
      const double want = ops::reference::gemm_element(hg, r, col, 0.0);
      cmp.add(r, col, to_double(got[r * c.ld + col]), want,
              ops::reference::gemm_element_magnitude(hg, r, col, 0.0) + std::abs(want));
    }
  INFO(cmp.describe());
  CHECK(cmp.ok());
  check_padding(got, c, name.str());
}

}  // namespace

TEST_CASE("cuda fp8_gemm equals the reference on the same e4m3 operands", "[gpu][fp8][gemm]") {
  if (!nerpipe::test::require_devices(1)) return;
  const cuda_policy& p = cuda_device0::make();
  if (p.compute_capability() < 89) {
    (void)nerpipe::test::missing_prerequisite("FP8 matrix units (sm_89+): this device is sm_" +
                                              std::to_string(p.compute_capability()));
    return;
  }
  using nerpipe::epilogue;
  std::uint64_t seed = 8800;
  struct shape {
    std::size_t m, n, k;
  };
  for (const shape s : {shape{1, 16, 16}, shape{7, 48, 128}, shape{96, 384, 128}, shape{300, 128, 512}, shape{64, 768, 768}})
    for (const epilogue ep : {epilogue::none, epilogue::bias, epilogue::bias_gelu, epilogue::bias_gelu_tanh}) {
      run_fp8_case<bf16>(p, s.m, s.n, s.k, ep, ++seed);
      if (ep == epilogue::bias) run_fp8_case<float>(p, s.m, s.n, s.k, ep, ++seed);
    }
  // Rejected shapes: k or n not a multiple of 16.
  cuda_policy::buffer<bf16> a(p, 16 * 24);
  cuda_policy::buffer<nerpipe::float8_e4m3> w(p, 16 * 24);
  cuda_policy::buffer<float> s(p, 1);
  nerpipe::fp8_gemm_args<bf16, bf16> g{matrix_view<const bf16>(a.data(), 16, 24), matrix_view<const nerpipe::float8_e4m3>(w.data(), 16, 24),
                                       s.data(), matrix_view<bf16>(a.data(), 16, 16)};
  REQUIRE_THROWS_AS(ops::fp8_gemm(p, g), nerpipe::config_error);
}
