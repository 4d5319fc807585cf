// SPDX-License-Identifier: Apache-2.0
//! @file A plain tiled gemm with the full epilogue, for the rare shapes/alignments cuBLASLt has no algorithm for.
#pragma once
#if !defined(__CUDACC__)
#error "nerpipe: this header needs nvcc; include <nerpipe/cuda.cuh> from a .cu file"
#endif

#include <nerpipe/config/macros.hpp>
#include <nerpipe/cuda/kernels/common.cuh>
#include <nerpipe/cuda/kernels/elementwise.cuh>

#include <cstddef>

NERPIPE_NAMESPACE_BEGIN
namespace detail::kernels {

inline constexpr int gemm_fallback_tile = 16;

/// c(i, j) = act(alpha * sum_p a(i, p) b'(p, j) + beta * c(i, j) + bias[j]) with b' = b^T when b_transposed;
/// fp32 accumulation in ascending p. Block = 16 x 16 threads, one output each; grid-strides over row tiles.
template <class TA, class TC>
__global__ void __launch_bounds__(256)
    gemm_fallback_kernel(const TA* __restrict__ a, std::size_t lda, const TA* __restrict__ b, std::size_t ldb,
                         bool b_transposed, TC* __restrict__ c, std::size_t ldc, std::size_t m, std::size_t n,
                         std::size_t k, float alpha, float beta, const float* __restrict__ bias, act_kind act) {
  constexpr int t = gemm_fallback_tile;
  __shared__ float as[t][t + 1];
  __shared__ float bs[t][t + 1];  // bs[p][j]
  const std::size_t j = static_cast<std::size_t>(blockIdx.x) * t + threadIdx.x;
  for (std::size_t row0 = static_cast<std::size_t>(blockIdx.y) * t; row0 < m; row0 += static_cast<std::size_t>(gridDim.y) * t) {
    const std::size_t i = row0 + threadIdx.y;
    float acc = 0.0f;
    for (std::size_t p0 = 0; p0 < k; p0 += t) {
      const std::size_t pa = p0 + threadIdx.x, pb = p0 + threadIdx.y;
      as[threadIdx.y][threadIdx.x] = i < m && pa < k ? to_f32(a[i * lda + pa]) : 0.0f;
      const std::size_t jb = static_cast<std::size_t>(blockIdx.x) * t + threadIdx.x;
      float bv = 0.0f;
      if (jb < n && pb < k) bv = to_f32(b_transposed ? b[jb * ldb + pb] : b[pb * ldb + jb]);
      bs[threadIdx.y][threadIdx.x] = bv;
      __syncthreads();
#pragma unroll
      for (int q = 0; q < t; ++q) acc = fmaf(as[threadIdx.y][q], bs[q][threadIdx.x], acc);
      __syncthreads();
    }
    if (i < m && j < n) {
      TC* out = c + i * ldc + j;
      float v = alpha * acc;
      if (beta != 0.0f) v += beta * to_f32(*out);
      if (bias != nullptr) v += bias[j];
      *out = from_f32<TC>(apply_act(v, act));
    }
  }
}

}  // namespace detail::kernels
NERPIPE_NAMESPACE_END
