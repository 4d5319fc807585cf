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

/// The element types nerpipe stores tensors in.
enum class dtype : std::uint8_t { f32, f16, bf16 };

[[nodiscard]] constexpr std::string_view to_string(dtype t) noexcept {
  switch (t) {
    case dtype::f32: return "F32";
    case dtype::f16: return "F16";
    case dtype::bf16: return "BF16";
  }
  return "?";
}

[[nodiscard]] constexpr std::size_t size_of(dtype t) noexcept { return t == dtype::f32 ? 4 : 2; }

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

template <class T>
inline constexpr dtype dtype_of = dtype::f32;
template <>
inline constexpr dtype dtype_of<float16> = dtype::f16;
template <>
inline constexpr dtype dtype_of<bfloat16> = dtype::bf16;

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
