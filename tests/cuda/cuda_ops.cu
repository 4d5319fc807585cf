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
