// SPDX-License-Identifier: Apache-2.0
//! @file Row kernels: fused residual + LayerNorm, and softmax; one block per row, fp32 math, CUB block reductions.
#pragma once
#if !defined(__CUDACC__)
#error "nerpipe: this header needs nvcc; include <nerpipe/cuda.cuh> from a .cu file"
#endif

#include <nerpipe/config/macros.hpp>
#include <nerpipe/cuda/kernels/common.cuh>

#include <cub/block/block_reduce.cuh>

#include <cstddef>

NERPIPE_NAMESPACE_BEGIN
namespace detail::kernels {

/// Rows up to this many columns keep their fp32 values in shared memory between passes; longer rows
/// re-read global memory (still correct, just more traffic).
inline constexpr std::size_t row_cache_max_cols = 8192;

/// x(r, :) = (v - mean) / sqrt(var + eps) * gamma + beta with v = x(r, :) + residual(r, :) (residual may be
/// null). Two passes over v (mean, then centred squares) like torch; the sum is kept in fp32 and never
/// rounded to T before normalising. Dynamic shared memory: cols floats when cache_row.
template <class T, int Block>
__global__ void __launch_bounds__(Block) layer_norm_kernel(T* __restrict__ x, std::size_t ld, const T* __restrict__ res,
                                                           std::size_t ld_res, std::size_t rows, std::size_t cols,
                                                           const float* __restrict__ gamma,
                                                           const float* __restrict__ beta, float eps, bool cache_row) {
  extern __shared__ float row_cache[];
  using reduce_t = cub::BlockReduce<float, Block>;
  __shared__ typename reduce_t::TempStorage tmp;
  __shared__ float shared_value;
  const float inv_n = 1.0f / static_cast<float>(cols);
  for (std::size_t r = blockIdx.x; r < rows; r += gridDim.x) {
    T* xr = x + r * ld;
    const T* rr = res != nullptr ? res + r * ld_res : nullptr;
    auto value = [&](std::size_t c) {
      return cache_row ? row_cache[c] : to_f32(xr[c]) + (rr != nullptr ? to_f32(rr[c]) : 0.0f);
    };
    float s = 0.0f;
    for (std::size_t c = threadIdx.x; c < cols; c += Block) {
      const float v = to_f32(xr[c]) + (rr != nullptr ? to_f32(rr[c]) : 0.0f);
      if (cache_row) row_cache[c] = v;
      s += v;
    }
    const float total = reduce_t(tmp).Sum(s);
    if (threadIdx.x == 0) shared_value = total * inv_n;
    __syncthreads();
    const float mean = shared_value;
    float q = 0.0f;
    for (std::size_t c = threadIdx.x; c < cols; c += Block) {
      const float d = value(c) - mean;
      q += d * d;
    }
    __syncthreads();  // tmp and shared_value are reused
    const float total_q = reduce_t(tmp).Sum(q);
    if (threadIdx.x == 0) shared_value = total_q * inv_n;
    __syncthreads();
    const float inv = 1.0f / sqrtf(shared_value + eps);
    for (std::size_t c = threadIdx.x; c < cols; c += Block)
      xr[c] = from_f32<T>((value(c) - mean) * inv * gamma[c] + beta[c]);
    __syncthreads();  // before the next row overwrites the cache and shared_value
  }
}

/// layer_norm_kernel for short rows (BERT's 768): one warp per row holding the row in registers, 16-byte
/// loads and stores, warp shuffles instead of block reductions and barriers. Same two-pass fp32 math; only
/// the order of the fp32 partial sums differs. Needs 16-byte aligned rows, cols a multiple of the vector
/// width and at most 32 * MaxVec vectors per row.
template <class T, int MaxVec>
__global__ void __launch_bounds__(256)
    layer_norm_warp_kernel(T* __restrict__ x, std::size_t ld, const T* __restrict__ res, std::size_t ld_res,
                           std::size_t rows, std::size_t cols, const float* __restrict__ gamma,
                           const float* __restrict__ beta, float eps) {
  constexpr int width = 16 / static_cast<int>(sizeof(T));
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const std::size_t warps_per_block = blockDim.x / 32;
  const std::size_t total_warps = static_cast<std::size_t>(gridDim.x) * warps_per_block;
  const std::size_t vectors = cols / width;
  const float inv_n = 1.0f / static_cast<float>(cols);
  for (std::size_t r = blockIdx.x * warps_per_block + threadIdx.x / 32; r < rows; r += total_warps) {
    T* xr = x + r * ld;
    const T* rr = res != nullptr ? res + r * ld_res : nullptr;
    float v[MaxVec][width];
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < MaxVec; ++i) {
      const std::size_t vi = static_cast<std::size_t>(lane) + 32u * static_cast<std::size_t>(i);
      if (vi >= vectors) break;
      const uint4 a = *reinterpret_cast<const uint4*>(xr + vi * width);
      uint4 b = make_uint4(0u, 0u, 0u, 0u);
      if (rr != nullptr) b = *reinterpret_cast<const uint4*>(rr + vi * width);
      const T* ae = reinterpret_cast<const T*>(&a);
      const T* be = reinterpret_cast<const T*>(&b);
#pragma unroll
      for (int j = 0; j < width; ++j) {
        const float t = to_f32(ae[j]) + (rr != nullptr ? to_f32(be[j]) : 0.0f);
        v[i][j] = t;
        s += t;
      }
    }
    const float mean = warp_sum(s) * inv_n;
    float q = 0.0f;
#pragma unroll
    for (int i = 0; i < MaxVec; ++i) {
      const std::size_t vi = static_cast<std::size_t>(lane) + 32u * static_cast<std::size_t>(i);
      if (vi >= vectors) break;
#pragma unroll
      for (int j = 0; j < width; ++j) {
        const float d = v[i][j] - mean;
        q += d * d;
      }
    }
    const float inv = 1.0f / sqrtf(warp_sum(q) * inv_n + eps);
#pragma unroll
    for (int i = 0; i < MaxVec; ++i) {
      const std::size_t vi = static_cast<std::size_t>(lane) + 32u * static_cast<std::size_t>(i);
      if (vi >= vectors) break;
      uint4 o;
      T* oe = reinterpret_cast<T*>(&o);
#pragma unroll
      for (int j = 0; j < width; ++j) {
        const std::size_t c = vi * width + static_cast<std::size_t>(j);
        oe[j] = from_f32<T>((v[i][j] - mean) * inv * gamma[c] + beta[c]);
      }
      *reinterpret_cast<uint4*>(xr + vi * width) = o;
    }
  }
}

/// x(r, :) = exp(x - max) / sum(exp(x - max)), in place. Dynamic shared memory: cols floats when cache_row.
template <class T, int Block>
__global__ void __launch_bounds__(Block) softmax_kernel(T* __restrict__ x, std::size_t ld, std::size_t rows,
                                                        std::size_t cols, bool cache_row) {
  extern __shared__ float row_cache[];
  using reduce_t = cub::BlockReduce<float, Block>;
  __shared__ typename reduce_t::TempStorage tmp;
  __shared__ float shared_value;
  for (std::size_t r = blockIdx.x; r < rows; r += gridDim.x) {
    T* xr = x + r * ld;
    float m = -INFINITY;
    for (std::size_t c = threadIdx.x; c < cols; c += Block) m = fmaxf(m, to_f32(xr[c]));
    const float row_max = reduce_t(tmp).Reduce(m, [](float a, float b) { return fmaxf(a, b); });
    if (threadIdx.x == 0) shared_value = row_max;
    __syncthreads();
    const float mx = shared_value;
    float s = 0.0f;
    for (std::size_t c = threadIdx.x; c < cols; c += Block) {
      const float e = expf(to_f32(xr[c]) - mx);
      if (cache_row) row_cache[c] = e;
      s += e;
    }
    __syncthreads();
    const float total = reduce_t(tmp).Sum(s);
    if (threadIdx.x == 0) shared_value = total;
    __syncthreads();
    const float inv = 1.0f / shared_value;
    for (std::size_t c = threadIdx.x; c < cols; c += Block) {
      const float e = cache_row ? row_cache[c] : expf(to_f32(xr[c]) - mx);
      xr[c] = from_f32<T>(e * inv);
    }
    __syncthreads();
  }
}

}  // namespace detail::kernels
NERPIPE_NAMESPACE_END
