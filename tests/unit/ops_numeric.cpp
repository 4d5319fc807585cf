// SPDX-License-Identifier: Apache-2.0
//! @file fp16 / bf16 host conversions: exhaustive round trips, exact decoding, round-to-nearest-even.
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/ops/reference.hpp>

#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

using nerpipe::bfloat16;
using nerpipe::float16;

namespace {
bool is_nan16(std::uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x03ffu) != 0; }
bool is_nan_bf16(std::uint16_t h) { return (h & 0x7f80u) == 0x7f80u && (h & 0x007fu) != 0; }

// An independent decoder of binary16, by arithmetic instead of bit surgery.
double decode16(std::uint16_t h) {
  const int sign = (h & 0x8000u) ? -1 : 1;
  const int exp = (h >> 10) & 0x1f;
  const int man = h & 0x3ff;
  if (exp == 0x1f) return man ? std::numeric_limits<double>::quiet_NaN() : sign * HUGE_VAL;
  if (exp == 0) return sign * std::ldexp(man, -24);
  return sign * std::ldexp(1024 + man, exp - 25);
}

std::uint16_t f16_bits(float f) { return nerpipe::to_float16(f).bits; }
std::uint16_t bf16_bits(float f) { return nerpipe::to_bfloat16(f).bits; }
float f32(std::uint32_t bits) { return std::bit_cast<float>(bits); }
}  // namespace

TEST_CASE("f16 -> f32 decodes all 65536 bit patterns exactly", "[numeric][f16]") {
  int wrong = 0;
  for (std::uint32_t h = 0; h < 0x10000u; ++h) {
    const float f = nerpipe::to_float(float16{static_cast<std::uint16_t>(h)});
    const double want = decode16(static_cast<std::uint16_t>(h));
    if (is_nan16(static_cast<std::uint16_t>(h))
            ? !std::isnan(f)
            : (static_cast<double>(f) != want || std::signbit(f) != bool(h & 0x8000u)))
      ++wrong;
  }
  CHECK(wrong == 0);
}

TEST_CASE("f16 -> f32 -> f16 is the identity on every non-NaN pattern; NaN stays NaN", "[numeric][f16]") {
  int wrong = 0, nans = 0;
  for (std::uint32_t h = 0; h < 0x10000u; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    const std::uint16_t back = f16_bits(nerpipe::to_float(float16{bits}));
    if (is_nan16(bits)) {
      ++nans;
      if (!is_nan16(back) || (back & 0x8000u) != (bits & 0x8000u)) ++wrong;
    } else if (back != bits) {
      ++wrong;
    }
  }
  CHECK(nans == 2 * 1023);
  CHECK(wrong == 0);
}

TEST_CASE("bf16 -> f32 -> bf16 is the identity on every non-NaN pattern; NaN stays NaN", "[numeric][bf16]") {
  int wrong = 0, nans = 0;
  for (std::uint32_t h = 0; h < 0x10000u; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    const float f = nerpipe::to_float(bfloat16{bits});
    if (std::bit_cast<std::uint32_t>(f) != (h << 16)) ++wrong;  // decoding is a shift
    const std::uint16_t back = bf16_bits(f);
    if (is_nan_bf16(bits)) {
      ++nans;
      if (!is_nan_bf16(back) || (back & 0x8000u) != (bits & 0x8000u)) ++wrong;
    } else if (back != bits) {
      ++wrong;
    }
  }
  CHECK(nans == 2 * 127);
  CHECK(wrong == 0);
}

TEST_CASE("f32 -> f16 rounds to nearest even at every midpoint between adjacent f16 values", "[numeric][f16]") {
  // For each pair of adjacent finite non-negative f16 values (and the pair max-finite / infinity),
  // the f32 midpoint goes to the even one, and one f32 ulp either side goes to the nearer one.
  int wrong = 0;
  for (std::uint32_t h = 0; h < 0x7c00u; ++h) {
    const double lo = decode16(static_cast<std::uint16_t>(h));
    const double hi =
        h + 1 == 0x7c00u ? 65536.0 : decode16(static_cast<std::uint16_t>(h + 1));  // 65536: where inf starts
    const auto mid = static_cast<float>((lo + hi) / 2);
    REQUIRE(static_cast<double>(mid) == (lo + hi) / 2);  // exactly representable in f32
    const std::uint16_t even = (h % 2 == 0) ? static_cast<std::uint16_t>(h) : static_cast<std::uint16_t>(h + 1);
    for (float sign : {1.0f, -1.0f}) {
      const std::uint16_t s = sign < 0 ? 0x8000u : 0;
      if (f16_bits(sign * mid) != (even | s)) ++wrong;
      if (f16_bits(sign * std::nextafter(mid, 0.0f)) != (h | s)) ++wrong;
      if (f16_bits(sign * std::nextafter(mid, HUGE_VALF)) != ((h + 1) | s)) ++wrong;
    }
  }
  CHECK(wrong == 0);
}

TEST_CASE("f32 -> f16 on chosen cases", "[numeric][f16]") {
  CHECK(f16_bits(1.0f) == 0x3c00u);
  CHECK(f16_bits(-2.0f) == 0xc000u);
  CHECK(f16_bits(0.0f) == 0x0000u);
  CHECK(f16_bits(-0.0f) == 0x8000u);
  CHECK(f16_bits(1.0f + 0x1p-11f) == 0x3c00u);      // halfway 1 / 1+2^-10: to even (1)
  CHECK(f16_bits(1.0f + 3 * 0x1p-11f) == 0x3c02u);  // halfway 1+2^-10 / 1+2^-9: to even (up)
  CHECK(f16_bits(65504.0f) == 0x7bffu);             // largest finite
  CHECK(f16_bits(65519.996f) == 0x7bffu);           // just below the midpoint to 65536
  CHECK(f16_bits(65520.0f) == 0x7c00u);             // the midpoint rounds to even: infinity
  CHECK(f16_bits(1e9f) == 0x7c00u);
  CHECK(f16_bits(-HUGE_VALF) == 0xfc00u);
  CHECK(f16_bits(0x1p-24f) == 0x0001u);             // smallest subnormal
  CHECK(f16_bits(0x1p-25f) == 0x0000u);             // half of it: to even (0)
  CHECK(f16_bits(3 * 0x1p-25f) == 0x0002u);         // 1.5 subnormal units: to even (2)
  CHECK(f16_bits(-0x1p-26f) == 0x8000u);            // underflow keeps the sign
  CHECK(f16_bits(0x1p-14f - 0x1p-25f) == 0x0400u);  // halfway largest subnormal / smallest normal: to even
  CHECK(f16_bits(1e-30f) == 0x0000u);
  CHECK(is_nan16(f16_bits(std::numeric_limits<float>::quiet_NaN())));
  CHECK(is_nan16(f16_bits(f32(0x7f800001u))));  // a signalling NaN is not turned into infinity
}

TEST_CASE("f32 -> bf16 rounds to nearest even", "[numeric][bf16]") {
  CHECK(bf16_bits(1.0f) == 0x3f80u);
  CHECK(bf16_bits(1.0f + 0x1p-8f) == 0x3f80u);             // halfway 1 / 1+2^-7: to even (1)
  CHECK(bf16_bits(1.0f + 3 * 0x1p-8f) == 0x3f82u);         // halfway to 1+2^-6: to even (up)
  CHECK(bf16_bits(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81u);  // above halfway: up
  CHECK(bf16_bits(-1.0f - 0x1p-8f - 0x1p-20f) == 0xbf81u);
  CHECK(bf16_bits(f32(0x7f7f7fffu)) == 0x7f7fu);  // below the midpoint to infinity: largest finite
  CHECK(bf16_bits(f32(0x7f7f8000u)) == 0x7f80u);  // the midpoint rounds to even: infinity
  CHECK(bf16_bits(std::numeric_limits<float>::max()) == 0x7f80u);
  CHECK(bf16_bits(f32(0x00008000u)) == 0x0000u);  // subnormal halfway: to even (0)
  CHECK(bf16_bits(f32(0x00018000u)) == 0x0002u);  // subnormal halfway: to even (up)
  CHECK(bf16_bits(-0.0f) == 0x8000u);
  CHECK(is_nan_bf16(bf16_bits(std::numeric_limits<float>::quiet_NaN())));
  CHECK(is_nan_bf16(bf16_bits(f32(0x7f800001u))));  // payload only in the low half: still NaN
  CHECK(is_nan_bf16(bf16_bits(f32(0xff800001u))));
}

TEST_CASE("the reference stores half types through the same rounding", "[numeric][reference]") {
  // ops::reference computes in double and stores once; for half outputs that goes through f32.
  float16 h[3] = {nerpipe::to_float16(-3.0f), nerpipe::to_float16(0.5f), nerpipe::to_float16(2.0f)};
  nerpipe::ops::reference::gelu(h, 3, nerpipe::gelu_form::erf);
  CHECK(h[0].bits ==
        nerpipe::to_float16(static_cast<float>(nerpipe::ops::reference::gelu(-3.0, nerpipe::gelu_form::erf))).bits);
  CHECK(nerpipe::to_float(h[2]) == Approx(1.9545).epsilon(1e-3));
  bfloat16 table[2] = {nerpipe::to_bfloat16(1.5f), nerpipe::to_bfloat16(-2.25f)};
  bfloat16 out[2] = {};
  const std::int32_t ids[2] = {1, 0};
  nerpipe::ops::reference::gather(nerpipe::matrix_view<const bfloat16>(table, 2, 1), ids,
                                  nerpipe::matrix_view<bfloat16>(out, 2, 1));
  CHECK(nerpipe::to_float(out[0]) == -2.25f);
  CHECK(nerpipe::to_float(out[1]) == 1.5f);
}

TEST_CASE("the reference ops agree with hand-computed values", "[reference]") {
  namespace ref = nerpipe::ops::reference;
  using nerpipe::epilogue;
  using nerpipe::matrix_view;

  SECTION("gemm: every epilogue, alpha/beta, both B layouts") {
    const float a[6] = {1, 2, 3, 4, 5, 6};   // [2, 3]
    const float bt[6] = {1, 0, 2, 1, 0, 1};  // [2, 3]: nn.Linear layout
    const float bn[6] = {1, 1, 0, 0, 2, 1};  // the same matrix as [3, 2]
    const float bias[2] = {0.5f, -1.0f};
    float c[4] = {-1, -1, -1, -1};
    nerpipe::gemm_args<float, float, float> g{{a, 2, 3}, {bt, 2, 3}, {c, 2, 2}};
    ref::gemm(g);
    CHECK((c[0] == 7 && c[1] == 4 && c[2] == 16 && c[3] == 10));
    g.b = {bn, 3, 2};
    g.b_transposed = false;
    ref::gemm(g);
    CHECK((c[0] == 7 && c[1] == 4 && c[2] == 16 && c[3] == 10));
    // C = 2 AB + 0.5 C + bias
    g.alpha = 2.0f;
    g.beta = 0.5f;
    g.bias = bias;
    g.ep = epilogue::bias;
    ref::gemm(g);
    CHECK((c[0] == 18 && c[1] == 9 && c[2] == 40.5f && c[3] == 24));
    // One element with a given old C: alpha * 7 + beta * c_old + bias[0]; the GELU sees the old C too.
    CHECK(ref::gemm_element(g, 0, 0, 1.0) == Approx(14.0 + 0.5 + 0.5));
    g.ep = epilogue::bias_gelu;
    CHECK(ref::gemm_element(g, 0, 0, -30.0) == Approx(ref::gelu(14.0 - 15.0 + 0.5, nerpipe::gelu_form::erf)));
    CHECK(ref::gemm_element_magnitude(g, 0, 0, -30.0) == Approx(2 * 7 + 15 + 0.5));
    // k = 0: only beta C and the bias remain; beta = 0 never reads C (NaN stays out).
    float nan_c[1] = {std::numeric_limits<float>::quiet_NaN()};
    nerpipe::gemm_args<float, float, float> empty{{a, 1, 0}, {bt, 1, 0}, {nan_c, 1, 1}, true, bias, epilogue::bias};
    ref::gemm(empty);
    CHECK(nan_c[0] == 0.5f);
  }
  SECTION("gelu: both forms at known points") {
    CHECK(ref::gelu(1.0, nerpipe::gelu_form::erf) == Approx(0.8413447460685429).epsilon(1e-14));
    CHECK(ref::gelu(1.0, nerpipe::gelu_form::tanh) == Approx(0.8411919906082768).epsilon(1e-14));
    CHECK(ref::gelu(-3.0, nerpipe::gelu_form::erf) == Approx(-0.004049694).epsilon(1e-6));
  }
  SECTION("softmax, layer_norm, argmax") {
    float s[3] = {0.0f, std::log(2.0f), 1000.0f};
    ref::softmax(matrix_view<float>(s, 1, 2, 3));  // ld 3: the third value is not part of the row
    CHECK(s[0] == Approx(1.0 / 3));
    CHECK(s[1] == Approx(2.0 / 3));
    CHECK(s[2] == 1000.0f);
    float x[3] = {1, 2, 3};
    const float res[3] = {1, 1, 1}, gamma[3] = {1, 1, 2}, beta[3] = {0, 0, 1};
    ref::layer_norm(matrix_view<float>(x, 1, 3), matrix_view<const float>(res, 1, 3), gamma, beta, 0.0f);
    CHECK(x[0] == Approx(-1.224744871391589));
    CHECK(x[1] == Approx(0.0).margin(1e-12));
    CHECK(x[2] == Approx(2 * 1.224744871391589 + 1));
    const float l[6] = {1, 5, 5, -1, -2, -1};
    std::int32_t out[2] = {-1, -1};
    ref::argmax(matrix_view<const float>(l, 2, 3), out);
    CHECK(out[0] == 1);
    CHECK(out[1] == 0);
  }
  SECTION("attention: one head, head_dim 1, two sequences") {
    // tokens 0-1: sequence 0; token 2: sequence 1 (a lone token attends to itself: out = v).
    const float q[3] = {1, 0, 3}, k[3] = {1, 2, 4}, v[3] = {0, 1, 7};
    float o[3] = {-1, -1, -1};
    const std::int32_t offs[3] = {0, 2, 3};
    const nerpipe::attention_args<float> args{{q, 3, 1}, {k, 3, 1}, {v, 3, 1}, {o, 3, 1}, offs, nullptr,
                                              2,         1,         1,         2,         0.0f};
    ref::attention(args);
    CHECK(o[0] == Approx(1.0 / (1.0 + std::exp(-1.0))));  // softmax([1, 2]) . [0, 1]
    CHECK(o[1] == Approx(0.5));                           // q = 0: uniform
    CHECK(o[2] == 7.0f);
  }
}
