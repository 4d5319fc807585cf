// SPDX-License-Identifier: Apache-2.0
//! @file DeBERTa's disentangled attention over packed variable-length sequences: the fp32 online-softmax kernel
//! of attention.cuh with the c2p (q . pos_key[r]) and p2c (k . pos_query[r]) terms added to every score, r read
//! from the relative index table. A straightforward kernel (the position rows are read from global memory per
//! score, where the L1 / L2 caches hold the small tables); any head dim <= 128, float / bf16 / fp16.
#pragma once
#if !defined(__CUDACC__)
#error "nerpipe: this header needs nvcc; include <nerpipe/cuda.cuh> from a .cu file"
#endif

#include <nerpipe/config/macros.hpp>
#include <nerpipe/cuda/kernels/common.cuh>

#include <cstddef>
#include <cstdint>

NERPIPE_NAMESPACE_BEGIN
namespace detail::kernels {

inline constexpr int disentangled_rows = 16;  // query rows per block (4 warps x 4 rows)
inline constexpr int disentangled_keys = 32;  // keys per shared-memory tile (one per lane)

/// grid = (sequences, query tiles of the longest sequence, heads); a block whose tile starts past its sequence's
/// end exits. pos_key / pos_query may be null (no c2p / p2c term); rel_index[d + max_distance - 1] is the table
/// row of distance d = query - key.
template <class T, int DimsPerLane>
__global__ void __launch_bounds__(128)
    disentangled_attention_kernel(const T* __restrict__ q, std::size_t ldq, const T* __restrict__ k, std::size_t ldk,
                                  const T* __restrict__ v, std::size_t ldv, T* __restrict__ out, std::size_t ldo,
                                  const std::int32_t* __restrict__ offsets, const T* __restrict__ pos_key,
                                  std::size_t ldpk, const T* __restrict__ pos_query, std::size_t ldpq,
                                  const std::int32_t* __restrict__ rel_index, int max_distance, int head_dim,
                                  float scale) {
  constexpr int rows = disentangled_rows, keys = disentangled_keys, max_d = 32 * DimsPerLane;
  constexpr int rows_per_warp = rows / 4;
  __shared__ float qs[rows][max_d];
  __shared__ float ks[keys][max_d + 1];  // +1: lane j reads row j, so rows must not share banks
  __shared__ float vs[keys][max_d];

  const int seq = blockIdx.x, h = blockIdx.z;
  const int begin = offsets[seq];
  const int len = offsets[seq + 1] - begin;
  const int q0 = blockIdx.y * rows;
  if (q0 >= len) return;
  const int d_count = head_dim;
  const std::size_t col = static_cast<std::size_t>(h) * d_count;
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;

  for (int i = threadIdx.x; i < rows * d_count; i += blockDim.x) {
    const int r = i / d_count, d = i - r * d_count;
    qs[r][d] = q0 + r < len ? to_f32(q[static_cast<std::size_t>(begin + q0 + r) * ldq + col + d]) : 0.0f;
  }

  float m[rows_per_warp], l[rows_per_warp], o[rows_per_warp][DimsPerLane];
#pragma unroll
  for (int rr = 0; rr < rows_per_warp; ++rr) {
    m[rr] = -INFINITY;
    l[rr] = 0.0f;
#pragma unroll
    for (int i = 0; i < DimsPerLane; ++i) o[rr][i] = 0.0f;
  }

  for (int kt = 0; kt < len; kt += keys) {
    __syncthreads();
    for (int i = threadIdx.x; i < keys * d_count; i += blockDim.x) {
      const int j = i / d_count, d = i - j * d_count;
      const bool ok = kt + j < len;
      const std::size_t row = static_cast<std::size_t>(begin + kt + j);
      ks[j][d] = ok ? to_f32(k[row * ldk + col + d]) : 0.0f;
      vs[j][d] = ok ? to_f32(v[row * ldv + col + d]) : 0.0f;
    }
    __syncthreads();
    const int valid = len - kt < keys ? len - kt : keys;
#pragma unroll
    for (int rr = 0; rr < rows_per_warp; ++rr) {
      const int r = warp * rows_per_warp + rr;
      if (q0 + r >= len) break;  // warp-uniform
      float s = -INFINITY;
      if (lane < valid) {
        float acc = 0.0f;
        for (int d = 0; d < d_count; ++d) acc = fmaf(qs[r][d], ks[lane][d], acc);
        const int ridx = rel_index != nullptr ? rel_index[(q0 + r) - (kt + lane) + max_distance - 1] : 0;
        if (pos_key != nullptr) {
          const T* pk = pos_key + static_cast<std::size_t>(ridx) * ldpk + col;
          for (int d = 0; d < d_count; ++d) acc = fmaf(qs[r][d], to_f32(pk[d]), acc);
        }
        if (pos_query != nullptr) {
          const T* pq = pos_query + static_cast<std::size_t>(ridx) * ldpq + col;
          for (int d = 0; d < d_count; ++d) acc = fmaf(ks[lane][d], to_f32(pq[d]), acc);
        }
        s = acc * scale;
      }
      const float m_new = fmaxf(m[rr], warp_max(s));
      const float p = lane < valid ? expf(s - m_new) : 0.0f;
      const float corr = expf(m[rr] - m_new);
      l[rr] = l[rr] * corr + warp_sum(p);
#pragma unroll
      for (int i = 0; i < DimsPerLane; ++i) o[rr][i] *= corr;
      for (int j = 0; j < valid; ++j) {
        const float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
        for (int i = 0; i < DimsPerLane; ++i) {
          const int d = lane + 32 * i;
          if (d < d_count) o[rr][i] = fmaf(pj, vs[j][d], o[rr][i]);
        }
      }
      m[rr] = m_new;
    }
  }

#pragma unroll
  for (int rr = 0; rr < rows_per_warp; ++rr) {
    const int r = warp * rows_per_warp + rr;
    if (q0 + r >= len) break;
    const float inv = 1.0f / l[rr];
    T* dst = out + static_cast<std::size_t>(begin + q0 + r) * ldo + col;
#pragma unroll
    for (int i = 0; i < DimsPerLane; ++i) {
      const int d = lane + 32 * i;
      if (d < d_count) dst[d] = from_f32<T>(o[rr][i] * inv);
    }
  }
}

}  // namespace detail::kernels
NERPIPE_NAMESPACE_END
