// SPDX-License-Identifier: Apache-2.0
//! @file FP8 e4m3 on the host: the exact conversions the FP8 GEMM path quantises weights with (and that its GPU
//! test compares the device's cvt.rn.satfinite against): every code round-trips, midpoints round to even,
//! large values saturate to 448, NaN stays NaN; and the per-tensor weight quantisation maps amax to 448.
#include <catch2/catch.hpp>

#include <nerpipe/core/numeric.hpp>
#include <nerpipe/encoder/precision.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

using nerpipe::float8_e4m3;
using nerpipe::to_float;
using nerpipe::to_float8_e4m3;

TEST_CASE("e4m3: every code round-trips, in order, with the OCP values", "[numeric][fp8]") {
  CHECK(to_float(float8_e4m3{0x38}) == 1.0f);
  CHECK(to_float(float8_e4m3{0x7e}) == 448.0f);
  CHECK(to_float(float8_e4m3{0x08}) == std::ldexp(1.0f, -6));  // smallest normal
  CHECK(to_float(float8_e4m3{0x01}) == std::ldexp(1.0f, -9));  // smallest subnormal
  CHECK(std::isnan(to_float(float8_e4m3{0x7f})));
  CHECK(std::isnan(to_float(float8_e4m3{0xff})));
  float prev = -1.0f;
  for (unsigned c = 0; c < 256; ++c) {
    const float8_e4m3 v{static_cast<std::uint8_t>(c)};
    if ((c & 0x7fu) == 0x7fu) continue;
    INFO("code 0x" << std::hex << c);
    CHECK(to_float8_e4m3(to_float(v)).bits == c);
    if (c < 0x7f) {  // positive codes ascend
      CHECK(to_float(v) > prev);
      prev = to_float(v);
    }
  }
}

TEST_CASE("e4m3: round to nearest even between neighbours, saturation, NaN", "[numeric][fp8]") {
  for (unsigned c = 0; c + 1 < 0x7f; ++c) {
    const float lo = to_float(float8_e4m3{static_cast<std::uint8_t>(c)});
    const float hi = to_float(float8_e4m3{static_cast<std::uint8_t>(c + 1)});
    const float mid = 0.5f * (lo + hi);  // exact: one more mantissa bit than e4m3 has
    INFO("between codes " << c << " and " << c + 1);
    CHECK(to_float8_e4m3(mid).bits == ((c & 1u) == 0 ? c : c + 1));
    CHECK(to_float8_e4m3(std::nextafter(mid, 0.0f)).bits == c);
    CHECK(to_float8_e4m3(std::nextafter(mid, 1000.0f)).bits == c + 1);
    CHECK(to_float8_e4m3(-mid).bits == (((c & 1u) == 0 ? c : c + 1) | 0x80u));
  }
  CHECK(to_float8_e4m3(449.0f).bits == 0x7e);
  CHECK(to_float8_e4m3(1e30f).bits == 0x7e);
  CHECK(to_float8_e4m3(-1e30f).bits == 0xfe);
  CHECK(to_float8_e4m3(std::numeric_limits<float>::infinity()).bits == 0x7e);
  CHECK(to_float8_e4m3(std::ldexp(1.0f, -10)).bits == 0x00);  // a tie with 0: even
  CHECK(to_float8_e4m3(std::ldexp(3.0f, -11)).bits == 0x01);
  CHECK(to_float8_e4m3(1e-30f).bits == 0x00);
  CHECK(to_float8_e4m3(-0.0f).bits == 0x80);
  CHECK((to_float8_e4m3(std::numeric_limits<float>::quiet_NaN()).bits & 0x7fu) == 0x7fu);
}

TEST_CASE("quantize_fp8_e4m3: the largest magnitude maps to 448, the scale dequantises", "[numeric][fp8]") {
  const std::vector<float> w{-2.0f, 1.0f, 0.5f, 0.001f, 0.0f};
  const auto q = nerpipe::detail::quantize_fp8_e4m3(w);
  CHECK(q.scale == 2.0f / 448.0f);
  CHECK(q.q[0].bits == 0xfe);
  for (std::size_t i = 0; i < w.size(); ++i) {
    INFO(i);
    CHECK(std::fabs(to_float(q.q[i]) * q.scale - w[i]) <= std::fabs(w[i]) / 16 + q.scale * std::ldexp(1.0f, -9));
  }
  const std::vector<float> zeros(4, 0.0f);
  CHECK(nerpipe::detail::quantize_fp8_e4m3(zeros).scale == 1.0f);
}
