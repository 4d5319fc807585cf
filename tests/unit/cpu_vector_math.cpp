// SPDX-License-Identifier: Apache-2.0
//! @file Tests of the vectorised CPU kernels (cpu/vector_math.hpp) at every instruction-set level this CPU runs.
//!
//! ops_cpu.cpp checks the ops through the policy (which picks one level); this file calls the baseline,
//! AVX2 and AVX-512 copies directly, so a level that only some machines take is still tested where it can run.
#include <nerpipe/cpu/vector_math.hpp>

#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {
namespace vm = nerpipe::detail::vmath;

struct level {
  std::string name;
  void (*bias_act)(float*, const float*, std::size_t, vm::act);
  void (*softmax)(float*, std::size_t);
  void (*layer_norm)(float*, const float*, const float*, const float*, std::size_t, float);
};

std::vector<level> levels() {
  std::vector<level> v{{"baseline", vm::bias_act_generic, vm::softmax_generic, vm::layer_norm_generic}};
#if NERPIPE_VMATH_DISPATCH
  if (vm::cpu_level() >= 1) v.push_back({"avx2", vm::bias_act_avx2, vm::softmax_avx2, vm::layer_norm_avx2});
  if (vm::cpu_level() >= 2) v.push_back({"avx512", vm::bias_act_avx512, vm::softmax_avx512, vm::layer_norm_avx512});
#endif
  // The entry point the ops use, whichever level it picks.
  v.push_back({"dispatched", vm::bias_act, vm::softmax_row, vm::layer_norm_row});
  return v;
}

double gelu_erf_ref(double x) { return x * 0.5 * std::erfc(-x / std::sqrt(2.0)); }  // no 1 + erf cancellation
double gelu_tanh_ref(double x) {
  const long double u = 0.79788456080286536L * (x + 0.044715L * x * x * x);
  return static_cast<double>(x / (1.0L + std::exp(-2.0L * u)));  // = x/2 (1 + tanh u), without its cancellation
}

/// Relative error for normal results; subnormal results may be off by one subnormal step.
struct error_tracker {
  double worst_rel = 0, worst_x = 0;
  std::size_t bad = 0;
  void add(float x, float got, double want) {
    if (std::abs(want) < std::numeric_limits<float>::min()) {
      if (!(std::abs(got - want) <= std::numeric_limits<float>::denorm_min())) ++bad;
      return;
    }
    const double rel = std::abs(static_cast<double>(got) - want) / std::abs(want);
    if (!(rel <= worst_rel)) {
      worst_rel = rel;
      worst_x = x;
    }
  }
};

std::vector<float> floats_within(float limit, std::uint32_t stride) {
  std::vector<float> xs;
  const auto top = std::bit_cast<std::uint32_t>(limit);
  for (std::uint32_t b = 0; b <= top; b += stride) {
    xs.push_back(std::bit_cast<float>(b));
    xs.push_back(-std::bit_cast<float>(b));
  }
  xs.push_back(limit);
  xs.push_back(-limit);
  return xs;
}
}  // namespace

TEST_CASE("vector_math gelu (erf and tanh) is within 2e-7 relative of double GELU on [-10, 10]", "[cpu][vector_math]") {
  // Every 401st float of [-10, 10] (2.7 million of each sign): all binades, from subnormals to 10.
  const auto xs = floats_within(10.0f, 401);
  for (const auto& lv : levels())
    for (auto form : {vm::act::gelu_erf, vm::act::gelu_tanh}) {
      const bool erf = form == vm::act::gelu_erf;
      INFO("level " << lv.name << ", form " << (erf ? "erf" : "tanh") << ", " << xs.size() << " values");
      auto y = xs;
      lv.bias_act(y.data(), nullptr, y.size(), form);
      error_tracker e;
      for (std::size_t i = 0; i < xs.size(); ++i) e.add(xs[i], y[i], erf ? gelu_erf_ref(xs[i]) : gelu_tanh_ref(xs[i]));
      INFO("worst relative error " << e.worst_rel << " at x = " << e.worst_x << "; subnormal misses " << e.bad);
      CHECK(e.worst_rel <= 2e-7);
      CHECK(e.bad == 0);
    }
}

TEST_CASE("vector_math gelu has the right limits and keeps NaN", "[cpu][vector_math]") {
  const float inf = std::numeric_limits<float>::infinity();
  for (const auto& lv : levels())
    for (auto form : {vm::act::gelu_erf, vm::act::gelu_tanh}) {
      INFO("level " << lv.name << ", form " << (form == vm::act::gelu_erf ? "erf" : "tanh"));
      std::vector<float> x{inf, -inf, 1e30f, -1e30f, 40.0f, -40.0f, 0.0f, -0.0f, std::nanf("")};
      lv.bias_act(x.data(), nullptr, x.size(), form);
      CHECK(x[0] == inf);
      CHECK(x[1] == 0.0f);
      CHECK(std::signbit(x[1]));
      CHECK(x[2] == 1e30f);
      CHECK(x[3] == 0.0f);
      CHECK(x[4] == 40.0f);
      CHECK(x[5] == 0.0f);
      CHECK(x[6] == 0.0f);
      CHECK(x[7] == 0.0f);
      CHECK(std::isnan(x[8]));
    }
}

TEST_CASE("vector_math bias_act adds the bias, covers every tail length and writes nothing past n",
          "[cpu][vector_math]") {
  std::mt19937_64 gen(41);
  std::uniform_real_distribution<float> dist(-6.0f, 6.0f);
  const float sentinel = -7777.25f;
  for (const auto& lv : levels())
    for (auto form : {vm::act::none, vm::act::gelu_erf, vm::act::gelu_tanh})
      for (std::size_t n = 0; n <= 53; ++n) {
        INFO("level " << lv.name << ", act " << static_cast<int>(form) << ", n " << n);
        std::vector<float> x(n + 1), bias(n + 1);
        for (auto& v : x) v = dist(gen);
        for (auto& v : bias) v = dist(gen) * 0.25f;
        x[n] = sentinel;
        auto y = x;
        lv.bias_act(y.data(), bias.data(), n, form);
        error_tracker e;
        bool exact = true;
        for (std::size_t i = 0; i < n; ++i) {
          const float v = x[i] + bias[i];  // the bias is added in float, as the op does
          if (form == vm::act::none)
            exact = exact && std::bit_cast<std::uint32_t>(y[i]) == std::bit_cast<std::uint32_t>(v);
          else
            e.add(v, y[i], form == vm::act::gelu_erf ? gelu_erf_ref(v) : gelu_tanh_ref(v));
        }
        CHECK(exact);
        CHECK(e.worst_rel <= 2e-7);
        CHECK(e.bad == 0);
        CHECK(y[n] == sentinel);
      }
}

TEST_CASE("vector_math exp_f is within 2e-7 relative of exp and saturates to 0", "[cpu][vector_math]") {
  error_tracker e;
  std::mt19937_64 gen(7);
  std::uniform_real_distribution<float> dist(-87.3f, 88.0f);
  std::vector<float> xs{0.0f, -0.0f, 1.0f, -1.0f, 88.0f, -87.3f, 0.34657359f, -0.34657359f, 1e-8f, -1e-8f};
  for (int i = 0; i < 200000; ++i) xs.push_back(dist(gen));
  for (float x : xs) e.add(x, vm::exp_f(x), std::exp(static_cast<double>(x)));
  INFO("worst relative error " << e.worst_rel << " at x = " << e.worst_x);
  CHECK(e.worst_rel <= 2e-7);
  CHECK(vm::exp_f(-std::numeric_limits<float>::infinity()) == 0.0f);
  CHECK(vm::exp_f(-100.0f) == 0.0f);
  CHECK(vm::exp_f(0.0f) == 1.0f);
  CHECK(std::isnan(vm::exp_f(std::nanf(""))));
}

TEST_CASE("vector_math softmax_row matches a double softmax, including -inf and large entries", "[cpu][vector_math]") {
  std::mt19937_64 gen(11);
  std::uniform_real_distribution<float> dist(-30.0f, 30.0f);
  for (const auto& lv : levels())
    for (std::size_t n : {1, 2, 15, 16, 17, 33, 128, 129, 1000}) {
      INFO("level " << lv.name << ", n " << n);
      std::vector<float> x(n + 1);
      for (auto& v : x) v = dist(gen);
      x[0] += 90.0f;  // exp would overflow without the max shift
      if (n > 3) x[2] = -std::numeric_limits<float>::infinity();  // a masked score
      x[n] = -7777.25f;
      auto y = x;
      lv.softmax(y.data(), n);
      double mx = -INFINITY, sum = 0;
      for (std::size_t i = 0; i < n; ++i) mx = std::max(mx, static_cast<double>(x[i]));
      for (std::size_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - mx);
      std::size_t bad = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const double want = std::exp(static_cast<double>(x[i]) - mx) / sum;
        if (!(std::abs(y[i] - want) <= 1e-7 + 1e-5 * want)) ++bad;  // the op tests' softmax tolerance
      }
      CHECK(bad == 0);
      if (n > 3) CHECK(y[2] == 0.0f);
      CHECK(y[n] == -7777.25f);
    }
}

TEST_CASE("vector_math layer_norm_row matches a double LayerNorm with and without residual", "[cpu][vector_math]") {
  std::mt19937_64 gen(13);
  std::uniform_real_distribution<float> dist(1.0f, 5.0f), unit(-1.0f, 1.0f);
  for (const auto& lv : levels())
    for (std::size_t n : {1, 5, 16, 17, 33, 384, 768, 1000})
      for (bool with_residual : {false, true}) {
        INFO("level " << lv.name << ", n " << n << ", residual " << with_residual);
        std::vector<float> x(n + 1), res(n), gamma(n), beta(n);
        for (auto& v : x) v = dist(gen);
        for (auto& v : res) v = 2.0f * unit(gen);
        for (auto& v : gamma) v = 1.0f + 0.5f * unit(gen);
        for (auto& v : beta) v = 0.5f * unit(gen);
        x[n] = -7777.25f;
        auto y = x;
        lv.layer_norm(y.data(), with_residual ? res.data() : nullptr, gamma.data(), beta.data(), n, 1e-5f);
        std::vector<double> s(n);
        double mean = 0, var = 0;
        for (std::size_t i = 0; i < n; ++i) mean += (s[i] = double(x[i]) + (with_residual ? double(res[i]) : 0.0));
        mean /= double(n);
        for (std::size_t i = 0; i < n; ++i) var += (s[i] - mean) * (s[i] - mean);
        var /= double(n);
        std::size_t bad = 0;
        for (std::size_t i = 0; i < n; ++i) {
          const double want = (s[i] - mean) / std::sqrt(var + 1e-5) * gamma[i] + beta[i];
          if (!(std::abs(y[i] - want) <= 2e-5 + 2e-5 * std::abs(want))) ++bad;  // the op tests' tolerance
        }
        CHECK(bad == 0);
        CHECK(y[n] == -7777.25f);
      }
}
