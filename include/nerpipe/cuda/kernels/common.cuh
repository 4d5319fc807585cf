// SPDX-License-Identifier: Apache-2.0
//! @file Device-side vocabulary for nerpipe's kernels: element-type mapping, fp32 conversions, warp reductions.
#pragma once
#if !defined(__CUDACC__)
#error "nerpipe: this header needs nvcc; include <nerpipe/cuda.cuh> from a .cu file"
#endif

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

NERPIPE_NAMESPACE_BEGIN
namespace detail::kernels {

/// nerpipe's host element types have the layout of CUDA's: device code reinterprets them.
template <class T>
struct device_type {
  using type = T;
};
template <>
struct device_type<bfloat16> {
  using type = __nv_bfloat16;
};
template <>
struct device_type<float16> {
  using type = __half;
};
template <class T>
using device_t = typename device_type<std::remove_const_t<T>>::type;

static_assert(sizeof(__nv_bfloat16) == sizeof(bfloat16));
static_assert(sizeof(__half) == sizeof(float16));

/// The same pointer, typed for device code (const is kept).
template <class T>
[[nodiscard]] inline auto as_device(T* p) noexcept {
  using D = std::conditional_t<std::is_const_v<T>, const device_t<T>, device_t<T>>;
  return reinterpret_cast<D*>(p);
}

/// Element types every kernel accepts.
template <class T>
inline constexpr bool is_kernel_type_v = std::is_same_v<std::remove_const_t<T>, float> ||
                                         std::is_same_v<std::remove_const_t<T>, bfloat16> ||
                                         std::is_same_v<std::remove_const_t<T>, float16>;

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }

template <class T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ float from_f32<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
template <>
__device__ __forceinline__ __half from_f32<__half>(float x) {
  return __float2half_rn(x);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/// Blocks for a grid-stride loop over n items: enough to fill the device, never more than needed.
[[nodiscard]] inline unsigned grid_for(std::size_t n, unsigned threads, int sm_count) {
  const std::size_t want = (n + threads - 1) / threads;
  const std::size_t cap = static_cast<std::size_t>(sm_count > 0 ? sm_count : 1) * 32;
  const std::size_t g = want < cap ? want : cap;
  return static_cast<unsigned>(g == 0 ? 1 : g);
}

}  // namespace detail::kernels
NERPIPE_NAMESPACE_END
