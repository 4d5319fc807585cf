// SPDX-License-Identifier: Apache-2.0
//! @file Policy-generic op tests: every op against the double-precision host reference.
//!
//! Written once, run per policy (style anchors R13). The including TU first defines
//! `nerpipe::ops_test::ops_test_policies`, a std::tuple of policy makers:
//!   struct cpu_threads_3 {
//!     using policy = nerpipe::cpu_policy;
//!     static policy make() { return policy(3); }
//!     static std::string label() { return "cpu_policy(3)"; }  // Catch names instances only by index
//!   };
//! and includes the op specialisations of those policies. Data moves only through the policy
//! interface (buffer, upload, download, synchronize), so the same bodies run on device memory.
#pragma once

#include <nerpipe/core/numeric.hpp>
#include <nerpipe/ops/ops.hpp>
#include <nerpipe/ops/reference.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace nerpipe::ops_test {

// ---------------------------------------------------------------------------------------------
// The tolerance table. A result passes when |got - want| <= abs + rel * magnitude, where `want` is
// the double reference and `magnitude` is |want|, except for gemm, where it is the sum of the
// absolute values of the terms (|alpha| sum_k |a b| + |beta c| + |bias|): the error of a dot
// product scales with its terms, not with its possibly cancelling result.
// fp32 values: the worst err/bound measured (NERPIPE_OPS_REPORT=1) on cpu_policy is 0.02 for gemm,
// 0.23 for layer_norm, 0.09 for softmax, 0.10 for gelu, 0.02 for attention; on cuda_policy (H100,
// NVIDIA_TF32_OVERRIDE=0) 0.35 for gemm (the tanh-GELU epilogue), 0.03, 0.02, 0.12 and 0.03.
// fp16 / bf16 values are starting points (CTranslate2's), not yet measured on any kernel.
// gather and argmax are exact for every type.
// ---------------------------------------------------------------------------------------------
enum class op_kind { gemm, layer_norm, softmax, gelu, gather, attention };

struct tolerance {
  double abs;
  double rel;
};

template <class T>
constexpr tolerance tolerance_of(op_kind op) {
  constexpr bool half = std::is_same_v<T, float16>, bhalf = std::is_same_v<T, bfloat16>;
  switch (op) {
    case op_kind::gemm:
      return half ? tolerance{0, 1e-2} : bhalf ? tolerance{0, 4e-2} : tolerance{0, 1e-5};
    // fp32 sums of ~1000 values with a non-zero mean: the CPU's float mean is off by a few 1e-6.
    case op_kind::layer_norm:
      return half ? tolerance{1e-2, 1e-2} : bhalf ? tolerance{4e-2, 4e-2} : tolerance{2e-5, 2e-5};
    case op_kind::softmax:
      return half ? tolerance{1e-3, 1e-2} : bhalf ? tolerance{4e-3, 4e-2} : tolerance{1e-7, 1e-5};
    // 1 + erf(x / sqrt 2) cancels for x << 0; fp32 erff's absolute error then dominates.
    case op_kind::gelu:
      return half ? tolerance{1e-3, 1e-2} : bhalf ? tolerance{4e-3, 4e-2} : tolerance{1e-6, 1e-6};
    case op_kind::gather:
      return tolerance{0, 0};
    case op_kind::attention:
      return half ? tolerance{1e-2, 1e-2} : bhalf ? tolerance{4e-2, 4e-2} : tolerance{1e-5, 1e-5};
  }
  return {0, 0};
}

// ---------------------------------------------------------------------------------------------
// Data helpers
// ---------------------------------------------------------------------------------------------
inline constexpr float pad_sentinel = -7777.25f;  // fills [cols, ld) of every strided matrix; must survive

inline float poison() { return std::numeric_limits<float>::quiet_NaN(); }

/// Uniform in [lo, hi), never exactly zero (zeros hide missing writes and wrong strides).
inline std::vector<float> random_floats(std::size_t n, std::uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) {
    do x = dist(gen);
    while (x == 0.0f);
  }
  return v;
}

/// A row-major host matrix whose padding columns hold pad_sentinel.
struct host_matrix {
  std::vector<float> v;
  std::size_t rows = 0, cols = 0, ld = 0;

  host_matrix(std::size_t r, std::size_t c, std::size_t l) : v(r * l, pad_sentinel), rows(r), cols(c), ld(l) {}
  float& operator()(std::size_t r, std::size_t c) { return v[r * ld + c]; }
  float operator()(std::size_t r, std::size_t c) const { return v[r * ld + c]; }
  matrix_view<float> view() { return {v.data(), rows, cols, ld}; }
  matrix_view<const float> cview() const { return {v.data(), rows, cols, ld}; }

  void fill_random(std::uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
    const auto r = random_floats(rows * cols, seed, lo, hi);
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) (*this)(i, j) = r[i * cols + j];
  }
  void fill(float x) {
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) (*this)(i, j) = x;
  }
};

template <class P, class T>
auto to_device(const P& p, const std::vector<T>& host) {
  return p.upload(std::span<const T>(host.data(), host.size()));
}

template <class T, class P, class Buffer>
std::vector<T> to_host(const P& p, const Buffer& buf) {
  p.synchronize();
  std::vector<T> out(buf.size());
  p.download(std::span<const T>(buf.data(), buf.size()), std::span<T>(out));
  p.synchronize();
  return out;
}

template <class T, class Buffer>
matrix_view<T> device_view(Buffer& buf, const host_matrix& shape) {
  return {buf.data(), shape.rows, shape.cols, shape.ld};
}

/// Collects element mismatches; one Catch assertion per matrix, not per element.
class comparison {
 public:
  comparison(std::string what, tolerance tol) : what_(std::move(what)), tol_(tol) {}

  void add(std::size_t r, std::size_t c, double got, double want, double magnitude) {
    ++checked_;
    const double err = std::abs(got - want);
    const double bound = tol_.abs + tol_.rel * magnitude;
    if (bound > 0) worst_ = std::max(worst_, err / bound);
    if (!(err <= bound)) {  // written so that NaN fails
      if (bad_ == 0) {
        std::ostringstream s;
        s.precision(9);
        s << "first mismatch at (" << r << ", " << c << "): got " << got << ", want " << want << ", |err| " << err
          << " > bound " << bound;
        first_ = s.str();
      }
      ++bad_;
    }
  }
  /// Bit-exact expectation (padding, exact ops).
  void add_exact(std::size_t r, std::size_t c, float got, float want) {
    ++checked_;
    if (std::bit_cast<std::uint32_t>(got) != std::bit_cast<std::uint32_t>(want)) {
      if (bad_ == 0) {
        std::ostringstream s;
        s.precision(9);
        s << "first mismatch at (" << r << ", " << c << "): got " << got << ", want exactly " << want;
        first_ = s.str();
      }
      ++bad_;
    }
  }
  /// With NERPIPE_OPS_REPORT set, every comparison prints its summary (to measure tolerance headroom).
  ~comparison() {
    if (std::getenv("NERPIPE_OPS_REPORT") != nullptr) std::printf("%s\n", describe().c_str());
  }
  comparison(const comparison&) = delete;
  comparison& operator=(const comparison&) = delete;
  [[nodiscard]] bool ok() const { return bad_ == 0 && checked_ > 0; }
  [[nodiscard]] std::string describe() const {
    std::ostringstream s;
    s << what_ << ": " << bad_ << " of " << checked_ << " elements out of tolerance (abs " << tol_.abs << ", rel "
      << tol_.rel << "); worst err/bound " << worst_;
    if (bad_) s << "; " << first_;
    return s.str();
  }
  [[nodiscard]] double worst() const { return worst_; }

 private:
  std::string what_;
  tolerance tol_;
  std::size_t checked_ = 0, bad_ = 0;
  double worst_ = 0;
  std::string first_;
};

/// Checks that the padding columns of `got` (same shape as `like`) still hold pad_sentinel.
inline void check_padding(const std::vector<float>& got, const host_matrix& like, const std::string& what) {
  if (like.ld == like.cols || like.rows == 0) return;
  comparison cmp(what + " padding", {0, 0});
  for (std::size_t r = 0; r < like.rows; ++r)
    for (std::size_t c = like.cols; c < like.ld; ++c) cmp.add_exact(r, c, got[r * like.ld + c], pad_sentinel);
  INFO(cmp.describe());
  CHECK(cmp.ok());
}

inline std::string describe_shape(std::size_t a, std::size_t b, std::size_t c = 0) {
  std::ostringstream s;
  s << a << "x" << b;
  if (c) s << "x" << c;
  return s.str();
}

// ---------------------------------------------------------------------------------------------
// gemm
// ---------------------------------------------------------------------------------------------
struct gemm_case {
  std::size_t m, n, k;
  epilogue ep;
  float alpha, beta;
  bool b_transposed;
  bool strided;
  std::size_t check_every = 1;  // check every n-th output element (large shapes)
};

inline const char* to_string(epilogue ep) {
  switch (ep) {
    case epilogue::none:
      return "none";
    case epilogue::bias:
      return "bias";
    case epilogue::bias_gelu:
      return "bias_gelu";
    case epilogue::bias_gelu_tanh:
      return "bias_gelu_tanh";
  }
  return "?";
}

template <class P>
double run_gemm_case(const P& p, const gemm_case& gc, std::uint64_t seed) {
  std::ostringstream name;
  name << "gemm " << gc.m << "x" << gc.n << "x" << gc.k << " ep=" << to_string(gc.ep) << " alpha=" << gc.alpha
       << " beta=" << gc.beta << " b_transposed=" << gc.b_transposed << " strided=" << gc.strided;
  INFO(name.str());
  const std::size_t pad_a = gc.strided ? 3 : 0, pad_b = gc.strided ? 5 : 0, pad_c = gc.strided ? 2 : 0;
  host_matrix a(gc.m, gc.k, gc.k + pad_a);
  host_matrix b = gc.b_transposed ? host_matrix(gc.n, gc.k, gc.k + pad_b) : host_matrix(gc.k, gc.n, gc.n + pad_b);
  host_matrix c(gc.m, gc.n, gc.n + pad_c);
  a.fill_random(seed * 7 + 1);
  b.fill_random(seed * 7 + 2);
  // beta == 0 must not read C: poison it. Otherwise C is the residual.
  if (gc.beta != 0.0f)
    c.fill_random(seed * 7 + 3, -2.0f, 2.0f);
  else
    c.fill(poison());
  const auto bias = random_floats(gc.n, seed * 7 + 4, -0.5f, 0.5f);

  auto da = to_device(p, a.v);
  auto db = to_device(p, b.v);
  auto dc = to_device(p, c.v);
  auto dbias = to_device(p, bias);
  gemm_args<float, float, float> g{device_view<const float>(da, a),
                                   device_view<const float>(db, b),
                                   device_view<float>(dc, c),
                                   gc.b_transposed,
                                   gc.ep == epilogue::none ? nullptr : dbias.data(),
                                   gc.ep,
                                   gc.alpha,
                                   gc.beta};
  ops::gemm(p, g);
  const auto got = to_host<float>(p, dc);

  gemm_args<float, float, float> hg{a.cview(),   b.cview(), c.view(), gc.b_transposed,
                                    bias.data(), gc.ep,     gc.alpha, gc.beta};
  comparison cmp(name.str(), tolerance_of<float>(op_kind::gemm));
  std::size_t i = 0;
  for (std::size_t r = 0; r < gc.m; ++r)
    for (std::size_t col = 0; col < gc.n; ++col, ++i) {
      if (i % gc.check_every != 0 && !(r + 1 == gc.m && col + 1 == gc.n)) continue;  // always check the last one
      const double old = gc.beta != 0.0f ? c(r, col) : 0.0;
      cmp.add(r, col, got[r * c.ld + col], ops::reference::gemm_element(hg, r, col, old),
              ops::reference::gemm_element_magnitude(hg, r, col, old));
    }
  INFO(cmp.describe());
  CHECK(cmp.ok());
  check_padding(got, c, name.str());
  return cmp.worst();
}

}  // namespace nerpipe::ops_test

TEMPLATE_LIST_TEST_CASE("ops::gemm matches the reference on small and odd shapes", "[ops][gemm]",
                        nerpipe::ops_test::ops_test_policies) {
  using namespace nerpipe;
  using namespace nerpipe::ops_test;
  const auto p = TestType::make();
  INFO("policy: " << TestType::label());
  struct shape {
    std::size_t m, n, k;
  };
  const shape shapes[] = {{1, 1, 1}, {3, 5, 7}, {17, 33, 65}, {4, 6, 0}, {40, 3, 2}};
  const epilogue eps[] = {epilogue::none, epilogue::bias, epilogue::bias_gelu, epilogue::bias_gelu_tanh};
  const std::pair<float, float> scales[] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-1.25f, 0.75f}};
  std::uint64_t seed = 100;
  double worst = 0;
  for (const auto& s : shapes)
    for (auto ep : eps)
      for (auto [alpha, beta] : scales)
        for (bool bt : {true, false})
          for (bool strided : {false, true})
            worst = std::max(worst, run_gemm_case(p, {s.m, s.n, s.k, ep, alpha, beta, bt, strided}, ++seed));
  INFO("worst err/bound over all small gemm cases: " << worst);
  CHECK(worst < 1.0);
}

TEMPLATE_LIST_TEST_CASE("ops::gemm matches the reference on a BERT-sized shape (subsampled check)", "[ops][gemm]",
                        nerpipe::ops_test::ops_test_policies) {
  using namespace nerpipe;
  using namespace nerpipe::ops_test;
  const auto p = TestType::make();
  INFO("policy: " << TestType::label());
  run_gemm_case(p, {128, 768, 768, epilogue::bias_gelu, 1.0f, 0.0f, true, false, 37}, 9001);
  run_gemm_case(p, {128, 768, 768, epilogue::none, 1.0f, 1.0f, false, true, 41}, 9002);
  run_gemm_case(p, {128, 768, 768, epilogue::bias_gelu_tanh, 0.5f, 0.75f, true, true, 43}, 9003);
  run_gemm_case(p, {128, 768, 768, epilogue::bias, 1.0f, 1.0f, true, true, 47}, 9004);
}

// ---------------------------------------------------------------------------------------------
// layer_norm, softmax, gelu
// ---------------------------------------------------------------------------------------------
TEMPLATE_LIST_TEST_CASE("ops::layer_norm (with and without residual) matches the reference", "[ops][layer_norm]",
                        nerpipe::ops_test::ops_test_policies) {
  using namespace nerpipe;
  using namespace nerpipe::ops_test;
  const auto p = TestType::make();
  INFO("policy: " << TestType::label());
  struct shape {
    std::size_t rows, cols;
  };
  const shape shapes[] = {{1, 1}, {3, 5}, {17, 33}, {8, 768}, {70, 384}, {2, 1000}};
  std::uint64_t seed = 500;
  for (const auto& s : shapes)
    for (bool with_residual : {false, true})
      for (bool strided : {false, true})
        for (float eps : {1e-12f, 1e-5f}) {
          ++seed;
          std::ostringstream name;
          name << "layer_norm " << describe_shape(s.rows, s.cols) << " residual=" << with_residual
               << " strided=" << strided << " eps=" << eps;
          INFO(name.str());
          host_matrix x(s.rows, s.cols, s.cols + (strided ? 3 : 0));
          host_matrix res(s.rows, s.cols, s.cols + (strided ? 1 : 0));
          x.fill_random(seed * 5 + 1, 1.0f, 5.0f);  // a non-zero mean, so centring matters
          res.fill_random(seed * 5 + 2, -2.0f, 2.0f);
          const auto gamma = random_floats(s.cols, seed * 5 + 3, 0.5f, 1.5f);
          const auto beta = random_floats(s.cols, seed * 5 + 4, -0.5f, 0.5f);

          auto dx = to_device(p, x.v);
          auto dres = to_device(p, res.v);
          auto dgamma = to_device(p, gamma);
          auto dbeta = to_device(p, beta);
          const matrix_view<const float> dres_view =
              with_residual ? device_view<const float>(dres, res) : matrix_view<const float>{};
          ops::layer_norm(p, device_view<float>(dx, x), dres_view, dgamma.data(), dbeta.data(), eps);
          const auto got = to_host<float>(p, dx);

          host_matrix want = x;
          ops::reference::layer_norm(want.view(), with_residual ? res.cview() : matrix_view<const float>{},
                                     gamma.data(), beta.data(), eps);
          comparison cmp(name.str(), tolerance_of<float>(op_kind::layer_norm));
          for (std::size_t r = 0; r < s.rows; ++r)
            for (std::size_t c = 0; c < s.cols; ++c)
              cmp.add(r, c, got[r * x.ld + c], want(r, c), std::abs(static_cast<double>(want(r, c))));
          INFO(cmp.describe());
          CHECK(cmp.ok());
          check_padding(got, x, name.str());
        }
}

TEMPLATE_LIST_TEST_CASE("ops::softmax matches the reference, including rows that would overflow exp", "[ops][softmax]",
                        nerpipe::ops_test::ops_test_policies) {
  using namespace nerpipe;
  using namespace nerpipe::ops_test;
  const auto p = TestType::make();
  INFO("policy: " << TestType::label());
  struct shape {
    std::size_t rows, cols;
  };
  const shape shapes[] = {{1, 1}, {3, 5}, {17, 33}, {48, 129}, {2, 1000}};
  std::uint64_t seed = 900;
  for (const auto& s : shapes)
    for (bool strided : {false, true}) {
      ++seed;
      std::ostringstream name;
      name << "softmax " << describe_shape(s.rows, s.cols) << " strided=" << strided;
      INFO(name.str());
      host_matrix x(s.rows, s.cols, s.cols + (strided ? 7 : 0));
      x.fill_random(seed, -8.0f, 8.0f);
      for (std::size_t c = 0; c < s.cols; ++c) x(0, c) += 90.0f;  // exp(90) is inf in fp32 without the max shift
      auto dx = to_device(p, x.v);
      ops::softmax(p, device_view<float>(dx, x));
      const auto got = to_host<float>(p, dx);
      host_matrix want = x;
      ops::reference::softmax(want.view());
      comparison cmp(name.str(), tolerance_of<float>(op_kind::softmax));
      for (std::size_t r = 0; r < s.rows; ++r)
        for (std::size_t c = 0; c < s.cols; ++c)
          cmp.add(r, c, got[r * x.ld + c], want(r, c), std::abs(static_cast<double>(want(r, c))));
      INFO(cmp.describe());
      CHECK(cmp.ok());
      check_padding(got, x, name.str());
    }
}

TEMPLATE_LIST_TEST_CASE("ops::gelu (erf and tanh forms) matches the reference", "[ops][gelu]",
                        nerpipe::ops_test::ops_test_policies) {
  using namespace nerpipe;
  using namespace nerpipe::ops_test;
  const auto p = TestType::make();
  INFO("policy: " << TestType::label());
  std::uint64_t seed = 1300;
  for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{4097}, std::size_t{100003}})
    for (gelu_form form : {gelu_form::erf, gelu_form::tanh}) {
      ++seed;
      std::ostringstream name;
      name << "gelu n=" << n << " form=" << (form == gelu_form::erf ? "erf" : "tanh");
      INFO(name.str());
      // One extra trailing element must stay untouched.
      auto x = random_floats(n + 1, seed, -6.0f, 6.0f);
      x[n] = pad_sentinel;
      auto dx = to_device(p, x);
      ops::gelu(p, dx.data(), n, form);
      const auto got = to_host<float>(p, dx);
      auto want = x;
      ops::reference::gelu(want.data(), n, form);
      comparison cmp(name.str(), tolerance_of<float>(op_kind::gelu));
      for (std::size_t i = 0; i < n; ++i) cmp.add(0, i, got[i], want[i], std::abs(static_cast<double>(want[i])));
      cmp.add_exact(0, n, got[n], pad_sentinel);
      INFO(cmp.describe());
      CHECK(cmp.ok());
    }
}

// ---------------------------------------------------------------------------------------------
// gather, argmax (exact)
// ---------------------------------------------------------------------------------------------
TEMPLATE_LIST_TEST_CASE("ops::gather copies or accumulates table rows exactly", "[ops][gather]",
                        nerpipe::ops_test::ops_test_policies) {
  using namespace nerpipe;
  using namespace nerpipe::ops_test;
  const auto p = TestType::make();
  INFO("policy: " << TestType::label());
  std::uint64_t seed = 1700;
  for (std::size_t vocab : {std::size_t{1}, std::size_t{50}})
    for (std::size_t hidden : {std::size_t{1}, std::size_t{7}, std::size_t{768}})
      for (std::size_t rows : {std::size_t{1}, std::size_t{5}, std::size_t{300}})
        for (bool accumulate : {false, true})
          for (bool strided : {false, true}) {
            ++seed;
            std::ostringstream name;
            name << "gather vocab=" << vocab << " hidden=" << hidden << " rows=" << rows << " accumulate=" << accumulate
                 << " strided=" << strided;
            INFO(name.str());
            host_matrix table(vocab, hidden, hidden + (strided ? 2 : 0));
            table.fill_random(seed * 3 + 1, -3.0f, 3.0f);
            host_matrix out(rows, hidden, hidden + (strided ? 5 : 0));
            if (accumulate)
              out.fill_random(seed * 3 + 2, -3.0f, 3.0f);
            else
              out.fill(poison());
            std::mt19937 gen(static_cast<std::uint32_t>(seed));
            std::uniform_int_distribution<std::int32_t> pick(0, static_cast<std::int32_t>(vocab) - 1);
            std::vector<std::int32_t> ids(rows);
            for (auto& id : ids) id = pick(gen);
            ids[0] = static_cast<std::int32_t>(vocab) - 1;  // the last table row, and
            if (rows > 1) ids[rows - 1] = 0;                // the first

            auto dtable = to_device(p, table.v);
            auto dout = to_device(p, out.v);
            auto dids = to_device(p, ids);
            ops::gather(p, device_view<const float>(dtable, table), dids.data(), device_view<float>(dout, out),
                        accumulate);
            const auto got = to_host<float>(p, dout);
            host_matrix want = out;
            ops::reference::gather(table.cview(), ids.data(), want.view(), accumulate);
            comparison cmp(name.str(), tolerance_of<float>(op_kind::gather));
            for (std::size_t r = 0; r < rows; ++r)
              for (std::size_t c = 0; c < hidden; ++c) cmp.add_exact(r, c, got[r * out.ld + c], want(r, c));
            INFO(cmp.describe());
            CHECK(cmp.ok());
            check_padding(got, out, name.str());
          }
}

TEMPLATE_LIST_TEST_CASE("ops::argmax returns the lowest index of the row maximum", "[ops][argmax]",
                        nerpipe::ops_test::ops_test_policies) {
  using namespace nerpipe;
  using namespace nerpipe::ops_test;
  const auto p = TestType::make();
  INFO("policy: " << TestType::label());
  struct shape {
    std::size_t rows, cols;
  };
  const shape shapes[] = {{1, 1}, {3, 5}, {17, 33}, {300, 9}, {4, 1000}};
  std::uint64_t seed = 2100;
  for (const auto& s : shapes)
    for (bool strided : {false, true}) {
      ++seed;
      std::ostringstream name;
      name << "argmax " << describe_shape(s.rows, s.cols) << " strided=" << strided;
      INFO(name.str());
      host_matrix x(s.rows, s.cols, s.cols + (strided ? 4 : 0));
      x.fill_random(seed, -4.0f, 4.0f);
      // Plant the maximum in every row; in odd rows twice, so ties must resolve to the lower index.
      std::mt19937 gen(static_cast<std::uint32_t>(seed));
      std::vector<std::int32_t> planted(s.rows);
      for (std::size_t r = 0; r < s.rows; ++r) {
        std::uniform_int_distribution<std::size_t> col(0, s.cols - 1);
        std::size_t c1 = col(gen), c2 = col(gen);
        x(r, c1) = 10.0f + static_cast<float>(r % 3);
        if (r % 2 == 1) x(r, c2) = x(r, c1);
        planted[r] = static_cast<std::int32_t>(r % 2 == 1 ? std::min(c1, c2) : c1);
      }
      // The pad columns hold -7777.25, and a larger value in the padding must never be picked.
      if (strided) x.v[x.cols] = 1e30f;
      std::vector<std::int32_t> poisoned(s.rows, -1);
      auto dx = to_device(p, x.v);
      auto dout = to_device(p, poisoned);
      ops::argmax(p, device_view<const float>(dx, x), dout.data());
      const auto got = to_host<std::int32_t>(p, dout);
      std::vector<std::int32_t> want(s.rows, -1);
      ops::reference::argmax(x.cview(), want.data());
      CHECK(want == planted);  // the reference itself
      CHECK(got == want);
    }
}

// ---------------------------------------------------------------------------------------------
// attention over packed variable-length sequences, q/k/v as column slices of one fused matrix
// ---------------------------------------------------------------------------------------------
namespace nerpipe::ops_test {
struct attention_case {
  std::vector<std::int32_t> lengths;
  std::size_t heads, head_dim;
  float scale;    // 0: the default 1/sqrt(head_dim)
  float q_range;  // larger values give peakier softmax rows
};

template <class P>
void run_attention_case(const P& p, const attention_case& ac, std::uint64_t seed) {
  std::ostringstream name;
  name << "attention lengths=[";
  for (auto l : ac.lengths) name << l << " ";
  name << "] heads=" << ac.heads << " head_dim=" << ac.head_dim << " scale=" << ac.scale << " q_range=" << ac.q_range;
  INFO(name.str());
  std::vector<std::int32_t> offsets{0};
  std::size_t max_len = 0;
  for (auto l : ac.lengths) {
    offsets.push_back(offsets.back() + l);
    max_len = std::max<std::size_t>(max_len, static_cast<std::size_t>(l));
  }
  const auto tokens = static_cast<std::size_t>(offsets.back());
  const std::size_t hidden = ac.heads * ac.head_dim;
  host_matrix qkv(tokens, 3 * hidden, 3 * hidden + 1);  // fused [T, 3H] (+1: an odd ld)
  qkv.fill_random(seed, -1.0f, 1.0f);
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t c = 0; c < hidden; ++c) qkv(t, c) *= ac.q_range;
  host_matrix out(tokens, hidden, hidden + 4);
  out.fill(poison());

  auto dqkv = to_device(p, qkv.v);
  auto dout = to_device(p, out.v);
  auto doffs = to_device(p, offsets);
  const matrix_view<const float> fused = device_view<const float>(dqkv, qkv);
  attention_args<float> a{fused.slice_cols(0, hidden),
                          fused.slice_cols(hidden, hidden),
                          fused.slice_cols(2 * hidden, hidden),
                          device_view<float>(dout, out),
                          doffs.data(),
                          offsets.data(),
                          ac.lengths.size(),
                          ac.heads,
                          ac.head_dim,
                          max_len,
                          ac.scale};
  ops::attention(p, a);
  const auto got = to_host<float>(p, dout);

  host_matrix want = out;
  const matrix_view<const float> hfused = qkv.cview();
  attention_args<float> ha = a;
  ha.q = hfused.slice_cols(0, hidden);
  ha.k = hfused.slice_cols(hidden, hidden);
  ha.v = hfused.slice_cols(2 * hidden, hidden);
  ha.out = want.view();
  ha.seq_offsets = offsets.data();
  ops::reference::attention(ha);
  comparison cmp(name.str(), tolerance_of<float>(op_kind::attention));
  for (std::size_t r = 0; r < tokens; ++r)
    for (std::size_t c = 0; c < hidden; ++c)
      cmp.add(r, c, got[r * out.ld + c], want(r, c), std::abs(static_cast<double>(want(r, c))));
  INFO(cmp.describe());
  CHECK(cmp.ok());
  check_padding(got, out, name.str());
}
}  // namespace nerpipe::ops_test

TEMPLATE_LIST_TEST_CASE("ops::attention matches the reference on ragged packed sequences", "[ops][attention]",
                        nerpipe::ops_test::ops_test_policies) {
  using namespace nerpipe::ops_test;
  const auto p = TestType::make();
  INFO("policy: " << TestType::label());
  const std::vector<std::int32_t> ragged{1, 2, 7, 64, 129};
  run_attention_case(p, {ragged, 2, 8, 0.0f, 1.0f}, 3001);
  run_attention_case(p, {ragged, 3, 32, 0.0f, 4.0f}, 3002);
  run_attention_case(p, {ragged, 12, 64, 0.0f, 1.0f}, 3003);
  run_attention_case(p, {{129, 1, 64, 2, 7}, 4, 16, 0.3f, 2.0f}, 3004);  // another order, explicit scale
  run_attention_case(p, {{1}, 1, 1, 0.0f, 1.0f}, 3005);
  run_attention_case(p, {{5}, 2, 3, 0.0f, 1.0f}, 3006);  // odd head_dim
}
