// SPDX-License-Identifier: Apache-2.0
//! @file Element types (fp32, fp16, bf16), their host conversions, and row-major matrix views.
#pragma once

#include <nerpipe/config/macros.hpp>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

NERPIPE_NAMESPACE_BEGIN

/// The element types nerpipe stores tensors in. fp8_e4m3 is a compute precision for GEMM weights and
/// inputs only (per-tensor scales; activations between operations stay bf16 in that mode).
enum class dtype : std::uint8_t { f32, f16, bf16, fp8_e4m3 };

[[nodiscard]] constexpr std::string_view to_string(dtype t) noexcept {
  switch (t) {
    case dtype::f32: return "F32";
    case dtype::f16: return "F16";
    case dtype::bf16: return "BF16";
    case dtype::fp8_e4m3: return "F8_E4M3";
  }
  return "?";
}

[[nodiscard]] constexpr std::size_t size_of(dtype t) noexcept {
  return t == dtype::f32 ? 4 : t == dtype::fp8_e4m3 ? 1 : 2;
}

/// IEEE binary16, stored as bits. Same layout as CUDA's __half, so device code reinterprets it.
struct float16 {
  std::uint16_t bits = 0;
};
/// bfloat16, stored as bits. Same layout as CUDA's __nv_bfloat16.
struct bfloat16 {
  std::uint16_t bits = 0;
};
static_assert(sizeof(float16) == 2 && sizeof(bfloat16) == 2);

/// bf16 -> f32 is exact: the bf16 bits are the high half of the f32.
[[nodiscard]] inline float to_float(bfloat16 v) noexcept { return std::bit_cast<float>(std::uint32_t{v.bits} << 16); }

/// f32 -> bf16 with round-to-nearest-even (what PyTorch and CUDA do); NaN stays NaN.
[[nodiscard]] inline bfloat16 to_bfloat16(float f) noexcept {
  auto u = std::bit_cast<std::uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bfloat16{static_cast<std::uint16_t>((u >> 16) | 0x40u)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return bfloat16{static_cast<std::uint16_t>(u >> 16)};
}

/// f16 -> f32, exact, including subnormals, infinities and NaN.
[[nodiscard]] inline float to_float(float16 v) noexcept {
  const std::uint32_t sign = std::uint32_t{v.bits & 0x8000u} << 16;
  const std::uint32_t exp = (v.bits >> 10) & 0x1fu;
  std::uint32_t man = v.bits & 0x3ffu;
  std::uint32_t out;
  if (exp == 0) {
    if (man == 0) {
      out = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do { ++e; man <<= 1; } while ((man & 0x400u) == 0);
      out = sign | (static_cast<std::uint32_t>(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    out = sign | 0x7f800000u | (man << 13);
  } else {
    out = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  return std::bit_cast<float>(out);
}

/// f32 -> f16 with round-to-nearest-even; overflow gives infinity.
[[nodiscard]] inline float16 to_float16(float f) noexcept {
  const auto u = std::bit_cast<std::uint32_t>(f);
  const std::uint16_t sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  const std::uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return float16{static_cast<std::uint16_t>(sign | 0x7e00u)};  // NaN
  if (abs >= 0x477ff000u) return float16{static_cast<std::uint16_t>(sign | 0x7c00u)};  // rounds to inf
  if (abs < 0x38800000u) {  // result is subnormal or zero
    const float scaled = std::bit_cast<float>(abs) * 16777216.0f;  // 2^24: units of the smallest subnormal
    return float16{static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(std::nearbyint(scaled)))};
  }
  std::uint32_t r = abs - 0x38000000u;  // rebias exponent 127 -> 15 (in the f32 bit positions)
  r += 0xfffu + ((r >> 13) & 1u);
  return float16{static_cast<std::uint16_t>(sign | (r >> 13))};
}

/// OCP FP8 E4M3 ("e4m3fn": 4 exponent bits, bias 7, 3 mantissa bits, no infinities, one NaN pattern per
/// sign, largest finite 448), stored as bits. Same layout as CUDA's __nv_fp8_e4m3.
struct float8_e4m3 {
  std::uint8_t bits = 0;
};
static_assert(sizeof(float8_e4m3) == 1);

/// The largest finite e4m3 value.
inline constexpr float fp8_e4m3_max = 448.0f;

/// e4m3 -> f32, exact.
[[nodiscard]] inline float to_float(float8_e4m3 v) noexcept {
  const unsigned e = (v.bits >> 3) & 0xfu, m = v.bits & 7u;
  const float sign = (v.bits & 0x80u) != 0 ? -1.0f : 1.0f;
  if (e == 0xfu && m == 7u) return std::bit_cast<float>(0x7fc00000u);
  const float mag = e == 0 ? std::ldexp(static_cast<float>(m), -9) : std::ldexp(static_cast<float>(8u + m), static_cast<int>(e) - 10);
  return sign * mag;
}

/// f32 -> e4m3 with round-to-nearest-even and saturation to +-448 (CUDA's __nv_cvt_float_to_fp8 with
/// __NV_SATFINITE, i.e. cvt.rn.satfinite.e4m3x2.f32); NaN stays NaN.
[[nodiscard]] inline float8_e4m3 to_float8_e4m3(float f) noexcept {
  const auto u = std::bit_cast<std::uint32_t>(f);
  const auto sign = static_cast<std::uint8_t>((u >> 24) & 0x80u);
  const float a = std::fabs(f);
  if (std::isnan(f)) return float8_e4m3{static_cast<std::uint8_t>(sign | 0x7fu)};
  if (a >= fp8_e4m3_max) return float8_e4m3{static_cast<std::uint8_t>(sign | 0x7eu)};  // saturate (inf too)
  if (a == 0.0f) return float8_e4m3{sign};
  int e = 0;
  (void)std::frexp(a, &e);                 // a = f * 2^e, f in [0.5, 1): the binade's exponent is e - 1
  int E = e - 1 < -6 ? -6 : e - 1;         // subnormals share the exponent of the smallest normal binade
  // a in units of the binade's last mantissa bit: [8, 16) for normals, [0, 8) for subnormals; exact, then RNE.
  const auto q = static_cast<int>(std::nearbyint(std::ldexp(a, 3 - E)));
  // q == 16 carries into the next binade; ((E + 6) << 3) + q encodes normals and subnormals alike.
  const int bits = ((E + 6) << 3) + q;
  return float8_e4m3{static_cast<std::uint8_t>(sign | (bits > 0x7e ? 0x7e : bits))};
}

template <class T>
inline constexpr dtype dtype_of = dtype::f32;
template <>
inline constexpr dtype dtype_of<float16> = dtype::f16;
template <>
inline constexpr dtype dtype_of<bfloat16> = dtype::bf16;
template <>
inline constexpr dtype dtype_of<float8_e4m3> = dtype::fp8_e4m3;

/// A non-owning row-major matrix: element (r, c) is at data[r * ld + c]. The memory lives in
/// whatever space the policy that receives it works in.
template <class T>
struct matrix_view {
  T* data = nullptr;
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::size_t ld = 0;  ///< elements between the starts of two consecutive rows (>= cols)

  constexpr matrix_view() = default;
  constexpr matrix_view(T* d, std::size_t r, std::size_t c) : data(d), rows(r), cols(c), ld(c) {}
  constexpr matrix_view(T* d, std::size_t r, std::size_t c, std::size_t l) : data(d), rows(r), cols(c), ld(l) {}
  /// A view of mutable elements converts to a view of const ones.
  template <class U>
    requires std::is_same_v<T, const U>
  constexpr matrix_view(const matrix_view<U>& o) : data(o.data), rows(o.rows), cols(o.cols), ld(o.ld) {}

  NERPIPE_HOST_DEVICE T& operator()(std::size_t r, std::size_t c) const { return data[r * ld + c]; }
  NERPIPE_HOST_DEVICE T* row(std::size_t r) const { return data + r * ld; }
  [[nodiscard]] constexpr bool empty() const noexcept { return data == nullptr || rows == 0 || cols == 0; }
  /// Rows [first, first + count) of this view.
  [[nodiscard]] constexpr matrix_view slice_rows(std::size_t first, std::size_t count) const {
    return {data + first * ld, count, cols, ld};
  }
  /// Columns [first, first + count) of this view (same rows, same ld).
  [[nodiscard]] constexpr matrix_view slice_cols(std::size_t first, std::size_t count) const {
    return {data + first, rows, count, ld};
  }
};

NERPIPE_NAMESPACE_END
