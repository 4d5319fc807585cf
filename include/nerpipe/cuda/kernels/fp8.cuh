// SPDX-License-Identifier: Apache-2.0
//! @file Per-tensor FP8 (e4m3) quantisation of activations on the device: amax, then scale and convert.
//! The scale never leaves the device: cuBLASLt reads it through CUBLASLT_MATMUL_DESC_B_SCALE_POINTER.
#pragma once
#if !defined(__CUDACC__)
#error "nerpipe: this header needs nvcc; include <nerpipe/cuda.cuh> from a .cu file"
#endif

#include <nerpipe/config/macros.hpp>
#include <nerpipe/cuda/kernels/common.cuh>

#include <cuda_fp8.h>

#include <cstddef>
#include <cstdint>

NERPIPE_NAMESPACE_BEGIN
namespace detail::kernels {

/// *amax_bits = max(*amax_bits, bits of max |x|) over the matrix (non-negative floats order like their bits;
/// a NaN wins, and the scale then makes the whole product NaN, as a bf16 GEMM would). *amax_bits starts at 0.
template <class T>
__global__ void amax_kernel(const T* __restrict__ x, std::size_t rows, std::size_t cols, std::size_t ld,
                            unsigned* __restrict__ amax_bits) {
  float m = 0.0f;
  const std::size_t n = rows * cols, step = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const std::size_t r = i / cols, c = i - r * cols;
    const float v = fabsf(to_f32(x[r * ld + c]));
    m = v > m || v != v ? v : m;
  }
  unsigned bits = __float_as_uint(m);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) bits = max(bits, __shfl_xor_sync(0xffffffffu, bits, o));
  if ((threadIdx.x & 31u) == 0) atomicMax(amax_bits, bits);
}

/// The same over 16-byte vectors (cols and ld multiples of 8 elements, 16-byte aligned rows).
template <class T>
__global__ void amax_vec_kernel(const T* __restrict__ x, std::size_t rows, std::size_t cols, std::size_t ld,
                                unsigned* __restrict__ amax_bits) {
  static_assert(sizeof(T) == 2, "16-bit activations");
  const std::size_t vpr = cols / 8, n = rows * vpr, step = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  float m = 0.0f;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const std::size_t r = i / vpr, c = (i - r * vpr) * 8;
    const uint4 raw = *reinterpret_cast<const uint4*>(x + r * ld + c);
    const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float v = fabsf(to_f32(e[j]));
      m = v > m || v != v ? v : m;
    }
  }
  unsigned bits = __float_as_uint(m);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) bits = max(bits, __shfl_xor_sync(0xffffffffu, bits, o));
  if ((threadIdx.x & 31u) == 0) atomicMax(amax_bits, bits);
}

/// q[r * cols + c] = e4m3(x[r, c] * (448 / amax)), round to nearest even, saturating; q is dense ([rows, cols]).
/// Block 0 writes the dequantisation scale amax / 448 (1 when amax is 0) to *scale.
template <class T>
__global__ void quantize_fp8_kernel(const T* __restrict__ x, std::size_t rows, std::size_t cols, std::size_t ld,
                                    const unsigned* __restrict__ amax_bits, __nv_fp8_storage_t* __restrict__ q,
                                    float* __restrict__ scale) {
  const float amax = __uint_as_float(*amax_bits);
  const float inv = amax > 0.0f ? __fdiv_rn(448.0f, amax) : 1.0f;
  if (blockIdx.x == 0 && threadIdx.x == 0) *scale = amax > 0.0f ? __fdiv_rn(amax, 448.0f) : 1.0f;
  const std::size_t n = rows * cols, step = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  if (sizeof(T) == 2 && cols % 8 == 0 && ld % 8 == 0 && reinterpret_cast<std::uintptr_t>(x) % 16 == 0) {
    const std::size_t vpr = cols / 8, nv = rows * vpr;
    for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < nv; i += step) {
      const std::size_t r = i / vpr, c = (i - r * vpr) * 8;
      const uint4 raw = *reinterpret_cast<const uint4*>(x + r * ld + c);
      const T* e = reinterpret_cast<const T*>(&raw);
      __nv_fp8_storage_t out[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) out[j] = __nv_cvt_float_to_fp8(__fmul_rn(to_f32(e[j]), inv), __NV_SATFINITE, __NV_E4M3);
      *reinterpret_cast<uint2*>(q + r * cols + c) = *reinterpret_cast<const uint2*>(out);
    }
    return;
  }
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const std::size_t r = i / cols, c = i - r * cols;
    q[i] = __nv_cvt_float_to_fp8(__fmul_rn(to_f32(x[r * ld + c]), inv), __NV_SATFINITE, __NV_E4M3);
  }
}

/// Converts n floats to e4m3 one by one (the conversion test: device vs nerpipe::to_float8_e4m3).
template <int Variant = 0>
__global__ void to_fp8_kernel(const float* __restrict__ x, std::size_t n, __nv_fp8_storage_t* __restrict__ q) {
  const std::size_t step = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step)
    q[i] = __nv_cvt_float_to_fp8(x[i], __NV_SATFINITE, __NV_E4M3);
}

}  // namespace detail::kernels
NERPIPE_NAMESPACE_END
