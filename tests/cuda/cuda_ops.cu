// SPDX-License-Identifier: Apache-2.0
//! @file cuda_policy and every CUDA op against the CPU policy (the oracle) and, for gemm, a double reference.
#include <catch2/catch.hpp>

#include <nerpipe/cuda.cuh>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numbers>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace {

using nerpipe::cpu_policy;
using nerpipe::cuda_policy;
using nerpipe::matrix_view;
namespace ops = nerpipe::ops;
using bf16 = nerpipe::bfloat16;
using f16 = nerpipe::float16;

const cuda_policy& gpu() {
  static const cuda_policy p{0};
  return p;
}
const cpu_policy& cpu() {
  static const cpu_policy p{};
  return p;
}

std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

template <class T>
T from_float(float f) {
  if constexpr (std::is_same_v<T, bf16>)
    return nerpipe::to_bfloat16(f);
  else if constexpr (std::is_same_v<T, f16>)
    return nerpipe::to_float16(f);
  else
    return f;
}
template <class T>
float to_f(T v) {
  if constexpr (std::is_same_v<T, float>)
    return v;
  else
    return nerpipe::to_float(v);
}
template <class T>
std::vector<T> convert(const std::vector<float>& v) {
  std::vector<T> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = from_float<T>(v[i]);
  return out;
}
template <class T>
std::vector<float> to_floats(const std::vector<T>& v) {
  std::vector<float> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = to_f(v[i]);
  return out;
}
/// Values as the device sees them after rounding to T (the oracle runs on these).
template <class T>
std::vector<float> rounded(const std::vector<float>& v) {
  return to_floats(convert<T>(v));
}

template <class T>
cuda_policy::buffer<T> upload(const std::vector<T>& host) {
  return gpu().upload(std::span<const T>(host));
}
template <class T>
std::vector<T> download(const cuda_policy::buffer<T>& b) {
  std::vector<T> host(b.size());
  gpu().download(b.span(), std::span<T>(host));
  return host;
}
/// All-ones bytes: NaN in fp32, bf16 and fp16, so an element an op forgets to write fails the comparison.
template <class T>
void poison(cuda_policy::buffer<T>& b) {
  NERPIPE_CUDA_CHECK(cudaMemsetAsync(b.data(), 0xff, b.size_bytes(), gpu().stream()));
}

/// Counts elements with |got - want| > atol + rtol * |want| (NaN counts); reports the worst one.
struct closeness {
  std::size_t bad = 0;
  std::size_t worst = 0;
  double worst_err = 0.0;
  double max_abs_err = 0.0;
};
closeness compare(const std::vector<float>& got, const std::vector<float>& want, double rtol, double atol,
                  const std::vector<double>* scale = nullptr) {
  REQUIRE(got.size() == want.size());
  closeness c;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
    const double ref = scale != nullptr ? (*scale)[i] : std::fabs(static_cast<double>(want[i]));
    const double allowed = atol + rtol * ref;
    if (!(err <= allowed)) ++c.bad;
    const double rel = err / (allowed > 0 ? allowed : 1.0);
    if (!(rel <= c.worst_err)) {
      c.worst_err = rel;
      c.worst = i;
    }
    if (!(err <= c.max_abs_err)) c.max_abs_err = err;
  }
  return c;
}
#define NERPIPE_REQUIRE_CLOSE(got, want, ...)                                                                 \
  do {                                                                                                        \
    const auto nerpipe_c_ = compare(got, want, __VA_ARGS__);                                                  \
    INFO("mismatches " << nerpipe_c_.bad << " of " << (got).size() << "; worst at " << nerpipe_c_.worst       \
                       << ": got " << (got)[nerpipe_c_.worst] << " want " << (want)[nerpipe_c_.worst]         \
                       << " (err/allowed " << nerpipe_c_.worst_err << ", max abs err " << nerpipe_c_.max_abs_err \
                       << ")");                                                                               \
    REQUIRE(nerpipe_c_.bad == 0);                                                                             \
  } while (0)

// ---- gemm reference in double -------------------------------------------------------------------------

struct gemm_case {
  std::size_t m, n, k;
  bool b_transposed;
  nerpipe::epilogue ep;
  float alpha, beta;
  std::size_t pad = 0;  // extra elements per row of A and C (odd strides)
};

double gelu_d(double x, bool tanh_form) {
  if (!tanh_form) return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
}

/// want = reference, scale = sum of |terms| per element (the natural size of fp rounding error).
void gemm_reference(const gemm_case& g, const std::vector<float>& a, std::size_t lda, const std::vector<float>& b,
                    std::size_t ldb, const std::vector<float>& c0, std::size_t ldc, const std::vector<float>& bias,
                    std::vector<float>& want, std::vector<double>& scale) {
  for (std::size_t i = 0; i < g.m; ++i)
    for (std::size_t j = 0; j < g.n; ++j) {
      double acc = 0.0, mag = 0.0;
      for (std::size_t p = 0; p < g.k; ++p) {
        const double bv = g.b_transposed ? b[j * ldb + p] : b[p * ldb + j];
        acc += static_cast<double>(a[i * lda + p]) * bv;
        mag += std::fabs(static_cast<double>(a[i * lda + p]) * bv);
      }
      double v = g.alpha * acc;
      mag = std::fabs(g.alpha) * mag;
      if (g.beta != 0.0f) {
        v += g.beta * static_cast<double>(c0[i * ldc + j]);
        mag += std::fabs(g.beta * static_cast<double>(c0[i * ldc + j]));
      }
      if (g.ep != nerpipe::epilogue::none) {
        v += bias[j];
        mag += std::fabs(bias[j]);
      }
      if (g.ep == nerpipe::epilogue::bias_gelu || g.ep == nerpipe::epilogue::bias_gelu_tanh)
        v = gelu_d(v, g.ep == nerpipe::epilogue::bias_gelu_tanh);
      want[i * g.n + j] = static_cast<float>(v);
      scale[i * g.n + j] = mag + std::fabs(v);
    }
}

template <class TA, class TC>
void run_gemm_case(const gemm_case& g, std::uint32_t seed, double rtol, bool fallback = false) {
  CAPTURE(g.m, g.n, g.k, g.b_transposed, static_cast<int>(g.ep), g.alpha, g.beta, g.pad, fallback);
  const std::size_t lda = g.k + g.pad, ldc = g.n + g.pad;
  const std::size_t b_rows = g.b_transposed ? g.n : g.k, ldb = g.b_transposed ? g.k : g.n;
  const auto a_f = rounded<TA>(random_floats(g.m * lda, seed));
  const auto b_f = rounded<TA>(random_floats(b_rows * ldb, seed + 1));
  const auto c_f = rounded<TC>(random_floats(g.m * ldc, seed + 2));
  const auto bias = random_floats(g.n, seed + 3);

  std::vector<float> want(g.m * g.n);
  std::vector<double> scale(g.m * g.n);
  gemm_reference(g, a_f, lda, b_f, ldb, c_f, ldc, bias, want, scale);

  auto a_d = upload(convert<TA>(a_f));
  auto b_d = upload(convert<TA>(b_f));
  auto c_d = upload(convert<TC>(c_f));
  auto bias_d = upload(bias);
  if (g.beta == 0.0f) poison(c_d);  // beta == 0 must not read C, NaN included
  nerpipe::gemm_args<const TA, const TA, TC> args;
  args.a = matrix_view<const TA>(a_d.data(), g.m, g.k, lda);
  args.b = matrix_view<const TA>(b_d.data(), b_rows, g.b_transposed ? g.k : g.n, ldb);
  args.c = matrix_view<TC>(c_d.data(), g.m, g.n, ldc);
  args.b_transposed = g.b_transposed;
  args.bias = g.ep == nerpipe::epilogue::none ? nullptr : bias_d.data();
  args.ep = g.ep;
  args.alpha = g.alpha;
  args.beta = g.beta;
  if (fallback) {
    using act = nerpipe::detail::kernels::act_kind;
    const act a = g.ep == nerpipe::epilogue::bias_gelu        ? act::gelu_erf
                  : g.ep == nerpipe::epilogue::bias_gelu_tanh ? act::gelu_tanh
                                                              : act::none;
    ops::gemm_impl<cuda_policy>::run_fallback(gpu(), args, args.bias, a);
  } else {
    ops::gemm(gpu(), args);
  }
  const auto c_all = to_floats(download(c_d));
  std::vector<float> got(g.m * g.n);
  for (std::size_t i = 0; i < g.m; ++i)
    for (std::size_t j = 0; j < g.n; ++j) got[i * g.n + j] = c_all[i * ldc + j];
  // Padding columns of C are outside the view and must be untouched.
  if (g.beta != 0.0f && g.pad != 0)
    for (std::size_t i = 0; i < g.m; ++i) REQUIRE(c_all[i * ldc + g.n] == c_f[i * ldc + g.n]);

  if constexpr (std::is_same_v<TC, float>) {
    NERPIPE_REQUIRE_CLOSE(got, want, rtol, 0.0, &scale);
  } else {
    // Half output: the result is rounded to 16 bits, and so is the bias (cuBLASLt's epilogue adds a bias
    // of the output type), each at most 2^-9 relative; scale covers |result| + |bias| + sum |a b|.
    NERPIPE_REQUIRE_CLOSE(got, want, 8e-3, 0.0, &scale);
  }

  if constexpr (std::is_same_v<TA, float> && std::is_same_v<TC, float>) {
    // The CPU policy is the oracle too: same tolerance against it.
    std::vector<float> c_cpu = c_f;
    nerpipe::gemm_args<const float, const float, float> ca;
    ca.a = matrix_view<const float>(a_f.data(), g.m, g.k, lda);
    ca.b = matrix_view<const float>(b_f.data(), b_rows, g.b_transposed ? g.k : g.n, ldb);
    ca.c = matrix_view<float>(c_cpu.data(), g.m, g.n, ldc);
    ca.b_transposed = g.b_transposed;
    ca.bias = args.bias != nullptr ? bias.data() : nullptr;
    ca.ep = g.ep;
    ca.alpha = g.alpha;
    ca.beta = g.beta;
    ops::gemm(cpu(), ca);
    std::vector<float> cpu_got(g.m * g.n);
    for (std::size_t i = 0; i < g.m; ++i)
      for (std::size_t j = 0; j < g.n; ++j) cpu_got[i * g.n + j] = c_cpu[i * ldc + j];
    NERPIPE_REQUIRE_CLOSE(got, cpu_got, 2 * rtol, 0.0, &scale);
  }
}

const std::vector<gemm_case>& gemm_cases() {
  using E = nerpipe::epilogue;
  static const std::vector<gemm_case> cases = {
      {1, 3, 17, true, E::none, 1.0f, 0.0f},
      {1, 3, 17, true, E::bias, 1.0f, 0.0f, 1},
      {7, 5, 3, false, E::none, 0.5f, 0.0f},
      {13, 9, 64, true, E::bias, 1.0f, 0.0f, 3},   // odd strides: 4-byte alignment only
      {33, 9, 768, true, E::bias_gelu, 1.0f, 0.0f},
      {64, 48, 96, false, E::bias_gelu_tanh, 1.0f, 0.0f},
      {40, 64, 128, true, E::bias, 1.0f, 1.0f},    // residual via beta
      {17, 31, 65, true, E::none, 2.0f, 0.5f, 5},
      {128, 768, 768, true, E::bias, 1.0f, 0.0f},   // BERT attention-out
      {96, 3072, 768, true, E::bias_gelu, 1.0f, 0.0f},  // BERT FFN1
      {96, 768, 3072, true, E::bias, 1.0f, 1.0f},  // BERT FFN2 + residual
      {5, 7, 0, true, E::bias, 1.0f, 0.5f},         // k == 0
  };
  return cases;
}

}  // namespace

// ---- the policy ---------------------------------------------------------------------------------------

TEST_CASE("cuda_policy: resources, buffers, transfers", "[gpu][cuda_policy]") {
  REQUIRE(nerpipe::cuda_device_count() >= 1);
  const cuda_policy& p = gpu();
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
    const auto host = random_floats(n, 7 + static_cast<std::uint32_t>(n));
    auto d = p.upload(std::span<const float>(host));
    REQUIRE(d.size() == n);
    REQUIRE(reinterpret_cast<std::uintptr_t>(d.data()) % 256 == 0);
    std::vector<float> back(n, -1.0f);
    p.download(d.span(), std::span<float>(back));
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
  const int count = nerpipe::cuda_device_count();
  try {
    cuda_policy bad{count + 3};
    FAIL("constructing a policy for a missing device must throw");
  } catch (const nerpipe::cuda_error& e) {
    REQUIRE(e.code() == nerpipe::errc::cuda_no_device);
  }
  try {
    cuda_policy::buffer<float> huge(gpu(), std::size_t{1} << 42);  // 16 TiB
    FAIL("a 16 TiB allocation must throw");
  } catch (const nerpipe::cuda_error& e) {
    REQUIRE(e.code() == nerpipe::errc::cuda_out_of_memory);
    REQUIRE(std::string(e.what()).find("cudaErrorMemoryAllocation") != std::string::npos);
  }
  // The policy still works after the failure.
  const std::vector<float> host = {1.0f, 2.0f};
  auto d = upload(host);
  REQUIRE(download(d) == host);
}

// ---- gemm -------------------------------------------------------------------------------------------

TEST_CASE("cuda gemm fp32 matches double and the CPU policy", "[gpu][gemm]") {
  std::uint32_t seed = 100;
  for (const auto& g : gemm_cases()) run_gemm_case<float, float>(g, seed += 10, 1e-5);
  // The plan cache hands the same algorithm to a repeated call: bitwise equal results.
  const gemm_case g{64, 256, 768, true, nerpipe::epilogue::bias, 1.0f, 0.0f};
  const auto a = random_floats(g.m * g.k, 1), b = random_floats(g.n * g.k, 2), bias = random_floats(g.n, 3);
  auto a_d = upload(a), b_d = upload(b), bias_d = upload(bias);
  cuda_policy::buffer<float> c1(gpu(), g.m * g.n), c2(gpu(), g.m * g.n);
  for (auto* c : {&c1, &c2}) {
    nerpipe::gemm_args<const float, const float, float> args{
        {a_d.data(), g.m, g.k}, {b_d.data(), g.n, g.k}, {c->data(), g.m, g.n}, true, bias_d.data(), g.ep};
    ops::gemm(gpu(), args);
  }
  REQUIRE(download(c1) == download(c2));
}

TEST_CASE("cuda gemm bf16/fp16 inputs, fp32 accumulation, fp32 or half output", "[gpu][gemm]") {
  std::uint32_t seed = 500;
  for (const auto& g : gemm_cases()) {  // odd pads: 2-byte aligned rows (cuBLASLt or the fallback kernel)
    run_gemm_case<bf16, float>(g, seed += 10, 1e-5);
    run_gemm_case<bf16, bf16>(g, seed += 10, 1e-5);
    run_gemm_case<f16, f16>(g, seed += 10, 1e-5);
  }
}

TEST_CASE("cuda gemm fallback kernel (for shapes cuBLASLt rejects) matches double", "[gpu][gemm]") {
  std::uint32_t seed = 700;
  for (const auto& g : gemm_cases()) {
    if (g.k == 0) continue;  // handled before any gemm kernel
    run_gemm_case<float, float>(g, seed += 10, 1e-5, true);
    run_gemm_case<bf16, bf16>(g, seed += 10, 1e-5, true);
  }
}

// ---- layer_norm / softmax -----------------------------------------------------------------------------

template <class T>
void run_layer_norm(std::size_t rows, std::size_t cols, bool with_residual, std::size_t pad, std::uint32_t seed,
                    double rtol, double atol) {
  CAPTURE(rows, cols, with_residual, pad);
  const std::size_t ld = cols + pad;
  auto x_f = rounded<T>(random_floats(rows * ld, seed, -3.0f, 5.0f));
  const auto r_f = rounded<T>(random_floats(rows * cols, seed + 1));
  const auto gamma = random_floats(cols, seed + 2, 0.5f, 1.5f), beta = random_floats(cols, seed + 3);
  auto x_d = upload(convert<T>(x_f));
  auto r_d = upload(convert<T>(r_f));
  auto g_d = upload(gamma), b_d = upload(beta);
  const matrix_view<const T> res_view =
      with_residual ? matrix_view<const T>(r_d.data(), rows, cols) : matrix_view<const T>{};
  ops::layer_norm(gpu(), matrix_view<T>(x_d.data(), rows, cols, ld), res_view, g_d.data(), b_d.data(), 1e-5f);
  const auto got_all = to_floats(download(x_d));

  std::vector<float> want = x_f;
  ops::layer_norm(cpu(), matrix_view<float>(want.data(), rows, cols, ld),
                  with_residual ? matrix_view<const float>(r_f.data(), rows, cols) : matrix_view<const float>{},
                  gamma.data(), beta.data(), 1e-5f);
  // The padding between rows is untouched.
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = cols; c < ld; ++c) REQUIRE(got_all[r * ld + c] == x_f[r * ld + c]);
  NERPIPE_REQUIRE_CLOSE(got_all, want, rtol, atol);
}

TEST_CASE("cuda layer_norm (fused residual) matches the CPU policy", "[gpu][layer_norm]") {
  std::uint32_t seed = 900;
  for (std::size_t cols : {std::size_t{3}, std::size_t{17}, std::size_t{64}, std::size_t{768}, std::size_t{1024},
                           std::size_t{3000}, std::size_t{9000}})
    for (std::size_t rows : {std::size_t{1}, std::size_t{5}, std::size_t{130}})
      for (bool res : {false, true}) {
        run_layer_norm<float>(rows, cols, res, cols % 2, seed += 7, 1e-5, 1e-5);
        run_layer_norm<bf16>(rows, cols, res, 0, seed += 7, 1e-2, 2e-2);
        if (cols == 768) run_layer_norm<f16>(rows, cols, res, 0, seed += 7, 2e-3, 2e-3);
      }
}

template <class T>
void run_softmax(std::size_t rows, std::size_t cols, std::uint32_t seed, double rtol, double atol) {
  CAPTURE(rows, cols);
  auto x_f = rounded<T>(random_floats(rows * cols, seed, -8.0f, 8.0f));
  auto x_d = upload(convert<T>(x_f));
  ops::softmax(gpu(), matrix_view<T>(x_d.data(), rows, cols));
  const auto got = to_floats(download(x_d));
  std::vector<float> want = x_f;
  ops::softmax(cpu(), matrix_view<float>(want.data(), rows, cols));
  NERPIPE_REQUIRE_CLOSE(got, want, rtol, atol);
}

TEST_CASE("cuda softmax matches the CPU policy", "[gpu][softmax]") {
  std::uint32_t seed = 1300;
  for (std::size_t cols : {std::size_t{1}, std::size_t{9}, std::size_t{33}, std::size_t{512}, std::size_t{2049},
                           std::size_t{10000}})
    for (std::size_t rows : {std::size_t{1}, std::size_t{7}, std::size_t{300}}) {
      run_softmax<float>(rows, cols, seed += 3, 1e-5, 1e-7);
      run_softmax<bf16>(rows, cols, seed += 3, 1e-2, 1e-4);
    }
}

// ---- gelu / gather / argmax -------------------------------------------------------------------------

TEST_CASE("cuda gelu (erf and tanh) matches the CPU policy", "[gpu][gelu]") {
  std::uint32_t seed = 1700;
  for (auto form : {nerpipe::gelu_form::erf, nerpipe::gelu_form::tanh})
    for (std::size_t n : {std::size_t{1}, std::size_t{1000}, std::size_t{100003}}) {
      CAPTURE(static_cast<int>(form), n);
      const auto x = random_floats(n, seed += 5, -6.0f, 6.0f);
      auto d = upload(x);
      ops::gelu(gpu(), d.data(), n, form);
      std::vector<float> want = x;
      ops::gelu(cpu(), want.data(), n, form);
      // For x << 0, 1 + erf(x / sqrt 2) cancels: tiny outputs carry ~1e-7 absolute error on either side.
      NERPIPE_REQUIRE_CLOSE(to_floats(download(d)), want, 1e-5, 2e-6);

      const auto xb = rounded<bf16>(x);
      auto db = upload(convert<bf16>(xb));
      ops::gelu(gpu(), db.data(), n, form);
      std::vector<float> wantb = xb;
      ops::gelu(cpu(), wantb.data(), n, form);
      NERPIPE_REQUIRE_CLOSE(to_floats(download(db)), wantb, 1e-2, 1e-3);
    }
}

template <class TT, class TO>
void run_gather(std::size_t vocab, std::size_t rows, std::size_t cols, bool accumulate, std::uint32_t seed) {
  CAPTURE(vocab, rows, cols, accumulate);
  const std::size_t ld_t = cols + 3, ld_o = cols + 1;
  const auto table_f = rounded<TT>(random_floats(vocab * ld_t, seed));
  const auto out_f = rounded<TO>(random_floats(rows * ld_o, seed + 1));
  std::vector<std::int32_t> ids(rows);
  std::mt19937 rng(seed + 2);
  for (auto& id : ids) id = static_cast<std::int32_t>(rng() % vocab);
  auto t_d = upload(convert<TT>(table_f));
  auto o_d = upload(convert<TO>(out_f));
  auto ids_d = upload(ids);
  ops::gather(gpu(), matrix_view<const TT>(t_d.data(), vocab, cols, ld_t), ids_d.data(),
              matrix_view<TO>(o_d.data(), rows, cols, ld_o), accumulate);
  std::vector<float> want = out_f;
  ops::gather(cpu(), matrix_view<const float>(table_f.data(), vocab, cols, ld_t), ids.data(),
              matrix_view<float>(want.data(), rows, cols, ld_o), accumulate);
  // The CPU result is rounded to TO as the device stores it; padding stays as it was.
  const double tol = std::is_same_v<TO, float> ? 0.0 : 1e-2;
  NERPIPE_REQUIRE_CLOSE(to_floats(download(o_d)), rounded<TO>(want), tol, 0.0);
}

TEST_CASE("cuda gather matches the CPU policy", "[gpu][gather]") {
  std::uint32_t seed = 2100;
  for (bool acc : {false, true})
    for (std::size_t cols : {std::size_t{1}, std::size_t{5}, std::size_t{768}}) {
      run_gather<float, float>(50, 37, cols, acc, seed += 4);
      run_gather<bf16, float>(1000, 300, cols, acc, seed += 4);
      run_gather<bf16, bf16>(3, 9, cols, acc, seed += 4);
    }
}

template <class T>
void run_argmax(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  CAPTURE(rows, cols);
  const std::size_t ld = cols + 2;
  auto x = rounded<T>(random_floats(rows * ld, seed, -2.0f, 2.0f));
  std::mt19937 rng(seed + 1);
  for (std::size_t r = 0; r < rows; ++r) {
    float* row = x.data() + r * ld;
    if (r % 3 == 0 && cols >= 2) {  // a tie for the maximum: the lower index wins
      const std::size_t i = rng() % cols, j = rng() % cols;
      row[i] = row[j] = 3.0f;
    }
    if (r % 5 == 1) std::fill(row, row + cols, 0.25f);  // all equal: index 0
    if (r % 7 == 2 && cols >= 3) row[rng() % (cols - 1) + 1] = std::nanf("");  // NaN past column 0 is skipped
    if (r % 11 == 3) row[0] = std::nanf("");  // NaN in column 0 wins, as in the sequential scan
  }
  auto x_d = upload(convert<T>(x));
  cuda_policy::buffer<std::int32_t> out_d(gpu(), rows);
  poison(out_d);
  ops::argmax(gpu(), matrix_view<const T>(x_d.data(), rows, cols, ld), out_d.data());
  std::vector<std::int32_t> want(rows);
  ops::argmax(cpu(), matrix_view<const float>(x.data(), rows, cols, ld), want.data());
  REQUIRE(download(out_d) == want);
}

TEST_CASE("cuda argmax matches the CPU policy exactly (ties: lowest index)", "[gpu][argmax]") {
  std::uint32_t seed = 2500;
  for (std::size_t cols : {std::size_t{1}, std::size_t{3}, std::size_t{9}, std::size_t{40}, std::size_t{1000}})
    for (std::size_t rows : {std::size_t{1}, std::size_t{33}, std::size_t{2000}}) {
      run_argmax<float>(rows, cols, seed += 2);
      run_argmax<bf16>(rows, cols, seed += 2);
    }
}

// ---- attention ---------------------------------------------------------------------------------------

namespace {

template <class T>
void run_attention_case(const std::vector<std::int32_t>& lengths, std::size_t heads, std::size_t head_dim,
                        nerpipe::detail::attention_path path, std::uint32_t seed, double atol) {
  CAPTURE(heads, head_dim, static_cast<int>(path));
  std::vector<std::int32_t> offsets{0};
  std::size_t max_len = 0;
  for (auto l : lengths) {
    offsets.push_back(offsets.back() + l);
    max_len = std::max<std::size_t>(max_len, static_cast<std::size_t>(l));
  }
  const auto tokens = static_cast<std::size_t>(offsets.back());
  const std::size_t width = heads * head_dim, ld = 3 * width;  // one fused [tokens, 3 * hidden] QKV matrix
  const auto qkv_f = rounded<T>(random_floats(tokens * ld, seed, -2.0f, 2.0f));
  auto qkv_d = upload(convert<T>(qkv_f));
  auto off_d = upload(offsets);
  cuda_policy::buffer<T> out_d(gpu(), tokens * width);
  poison(out_d);

  nerpipe::attention_args<T> a;
  a.q = matrix_view<const T>(qkv_d.data(), tokens, width, ld);
  a.k = matrix_view<const T>(qkv_d.data() + width, tokens, width, ld);
  a.v = matrix_view<const T>(qkv_d.data() + 2 * width, tokens, width, ld);
  a.out = matrix_view<T>(out_d.data(), tokens, width);
  a.seq_offsets = off_d.data();
  a.seq_offsets_host = offsets.data();
  a.num_seqs = lengths.size();
  a.heads = heads;
  a.head_dim = head_dim;
  a.max_seq_len = max_len;
  nerpipe::detail::run_attention(gpu(), a, path);
  const auto got = to_floats(download(out_d));

  std::vector<float> want(tokens * width);
  nerpipe::attention_args<float> c;
  c.q = matrix_view<const float>(qkv_f.data(), tokens, width, ld);
  c.k = matrix_view<const float>(qkv_f.data() + width, tokens, width, ld);
  c.v = matrix_view<const float>(qkv_f.data() + 2 * width, tokens, width, ld);
  c.out = matrix_view<float>(want.data(), tokens, width);
  c.seq_offsets = offsets.data();
  c.seq_offsets_host = offsets.data();
  c.num_seqs = lengths.size();
  c.heads = heads;
  c.head_dim = head_dim;
  c.max_seq_len = max_len;
  ops::attention(cpu(), c);
  // Outputs are convex combinations of values in [-2, 2]: an absolute tolerance is the meaningful one.
  NERPIPE_REQUIRE_CLOSE(got, rounded<T>(want), 0.0, atol);
}

}  // namespace

TEST_CASE("cuda attention over ragged packed sequences matches the CPU policy", "[gpu][attention]") {
  using nerpipe::detail::attention_path;
  const std::vector<std::int32_t> ragged{1, 7, 64, 200, 513};
  const std::vector<std::int32_t> with_empty{3, 0, 65, 1};
  std::uint32_t seed = 3000;
  SECTION("fp32, generic kernel, head dims 16..128") {
    for (std::size_t d : {std::size_t{16}, std::size_t{32}, std::size_t{64}, std::size_t{96}, std::size_t{128}})
      run_attention_case<float>(ragged, 2, d, attention_path::automatic, seed += 3, 2e-5);
    run_attention_case<float>(with_empty, 3, 24, attention_path::automatic, seed += 3, 2e-5);
  }
  SECTION("bf16 and fp16, tensor-core kernel, head dims 64 and 128") {
    for (std::size_t d : {std::size_t{64}, std::size_t{128}}) {
      run_attention_case<bf16>(ragged, 3, d, attention_path::tensor_core, seed += 3, 2e-2);
      run_attention_case<f16>(ragged, 2, d, attention_path::tensor_core, seed += 3, 4e-3);
      run_attention_case<bf16>(with_empty, 2, d, attention_path::tensor_core, seed += 3, 2e-2);
    }
  }
  SECTION("bf16, generic kernel (other head dims and the reference for the tensor-core one)") {
    for (std::size_t d : {std::size_t{16}, std::size_t{32}, std::size_t{64}})
      run_attention_case<bf16>(ragged, 2, d, attention_path::generic, seed += 3, 2e-2);
  }
  SECTION("the default path picks a kernel for every supported head dim") {
    run_attention_case<bf16>(ragged, 2, 64, attention_path::automatic, seed += 3, 2e-2);
    run_attention_case<bf16>(ragged, 2, 40, attention_path::automatic, seed += 3, 2e-2);
  }
}

TEST_CASE("cuda attention rejects what it cannot run", "[gpu][attention]") {
  std::vector<std::int32_t> offsets{0, 4};
  auto off_d = upload(offsets);
  cuda_policy::buffer<float> buf(gpu(), 4 * 3 * 256);
  nerpipe::attention_args<float> a;
  a.q = a.k = a.v = matrix_view<const float>(buf.data(), 4, 256, 3 * 256);
  a.out = matrix_view<float>(buf.data(), 4, 256);
  a.seq_offsets = off_d.data();
  a.seq_offsets_host = offsets.data();
  a.num_seqs = 1;
  a.heads = 1;
  a.head_dim = 256;
  REQUIRE_THROWS_AS(ops::attention(gpu(), a), nerpipe::config_error);
  a.head_dim = 64;
  REQUIRE_THROWS_AS(nerpipe::detail::run_attention(gpu(), a, nerpipe::detail::attention_path::tensor_core),
                    nerpipe::config_error);
}
