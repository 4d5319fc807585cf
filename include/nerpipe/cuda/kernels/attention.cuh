// SPDX-License-Identifier: Apache-2.0
//! @file Attention over packed variable-length sequences: an fp32 online-softmax kernel for any head
//! dim <= 128 (the reference), and a FlashAttention-2 style mma.sync kernel for bf16/fp16 at head dim 64/128.
#pragma once
#if !defined(__CUDACC__)
#error "nerpipe: this header needs nvcc; include <nerpipe/cuda.cuh> from a .cu file"
#endif

#include <nerpipe/config/macros.hpp>
#include <nerpipe/cuda/kernels/common.cuh>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstddef>
#include <cstdint>

NERPIPE_NAMESPACE_BEGIN
namespace detail::kernels {

// Both kernels: grid = (sequences, query tiles of the longest sequence, heads); a block whose query tile
// starts past its sequence's end exits at once. Sequence s owns packed rows [offsets[s], offsets[s+1]);
// head h owns columns [h * D, (h+1) * D) of q, k, v and out. Keys are masked only by sequence length
// (BERT attention is bidirectional and packed, so there is no padding mask).

inline constexpr int attention_generic_rows = 16;  // query rows per block (4 warps x 4 rows)
inline constexpr int attention_generic_keys = 32;  // keys per shared-memory tile (one per lane)

/// fp32 everywhere: scores, exp, and the output accumulator. One warp owns 4 query rows; per key tile
/// lane j scores key j, then every lane accumulates its own head dims d = lane + 32 i.
template <class T, int DimsPerLane>
__global__ void __launch_bounds__(128)
    attention_generic_kernel(const T* __restrict__ q, std::size_t ldq, const T* __restrict__ k, std::size_t ldk,
                             const T* __restrict__ v, std::size_t ldv, T* __restrict__ out, std::size_t ldo,
                             const std::int32_t* __restrict__ offsets, int head_dim, float scale) {
  constexpr int rows = attention_generic_rows, keys = attention_generic_keys, max_d = 32 * DimsPerLane;
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
    __syncthreads();  // the previous tile is consumed (first pass: qs is written)
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
        s = acc * scale;
      }
      const float m_new = fmaxf(m[rr], warp_max(s));
      const float p = lane < valid ? expf(s - m_new) : 0.0f;
      const float corr = expf(m[rr] - m_new);  // 0 on the first tile (m = -inf)
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

// ---- tensor-core kernel ------------------------------------------------------------------------------

inline constexpr int attention_mma_rows = 64;  // query rows per block: 4 warps x 16 (one m16 tile each)
inline constexpr int attention_mma_keys = 64;  // keys per shared-memory tile

template <class T>
__device__ __forceinline__ std::uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ std::uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (lo) is the low half: the lower column
  return *reinterpret_cast<const std::uint32_t*>(&v);
}
template <>
__device__ __forceinline__ std::uint32_t pack2<__half>(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const std::uint32_t*>(&v);
}

/// d += a(16x16, row) * b(16x8, col), fp32 accumulate (PTX "mma.m16n8k16" fragment layout: lane = 4 g + t;
/// a0 = A[g][2t..2t+1], a1 = A[g+8][2t..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..]; b0 = B[2t..2t+1][g],
/// b1 = B[2t+8..][g]; d0,d1 = D[g][2t..2t+1], d2,d3 = D[g+8][2t..2t+1]).
template <class T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                          std::uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
#else
  __trap();  // the host side only launches this kernel on sm_80+
#endif
}

/// FlashAttention-2 forward for one (sequence, 64-query tile, head): each warp owns 16 query rows, keeps
/// Q fragments, the running max/sum and the output tile in registers, and walks the sequence's keys in
/// tiles of 64 staged in shared memory (K row-major, V transposed so both MMAs read 32-bit pairs).
/// P is re-used from the S accumulator registers as the A operand of P*V, rounded to T; everything
/// else is fp32. Requires 16-byte aligned rows (ld % 8 == 0, 16-byte aligned bases).
template <class T, int D>
__global__ void __launch_bounds__(128)
    attention_mma_kernel(const T* __restrict__ q, std::size_t ldq, const T* __restrict__ k, std::size_t ldk,
                         const T* __restrict__ v, std::size_t ldv, T* __restrict__ out, std::size_t ldo,
                         const std::int32_t* __restrict__ offsets, float scale_log2) {
  static_assert(D % 16 == 0 && D <= 128, "head dim must be a multiple of 16, at most 128");
  constexpr int rows = attention_mma_rows, keys = attention_mma_keys;
  constexpr int ks_stride = D + 8;     // +16 bytes: 8 consecutive rows start in different banks
  constexpr int vt_stride = keys + 8;
  constexpr int chunks = D / 8;        // 16-byte chunks per row
  __shared__ __align__(16) T ks[keys * ks_stride];
  __shared__ __align__(16) T vt[D * vt_stride];

  const int seq = blockIdx.x, h = blockIdx.z;
  const int begin = offsets[seq];
  const int len = offsets[seq + 1] - begin;
  const int q0 = blockIdx.y * rows;
  if (q0 >= len) return;
  const std::size_t col = static_cast<std::size_t>(h) * D;
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  const int r0 = q0 + warp * 16 + g, r1 = r0 + 8;  // the two query rows this lane holds

  auto load_q = [&](int r, int c) -> std::uint32_t {
    if (r >= len) return 0u;
    return *reinterpret_cast<const std::uint32_t*>(q + static_cast<std::size_t>(begin + r) * ldq + col + c);
  };
  std::uint32_t qf[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    qf[kk][0] = load_q(r0, kk * 16 + 2 * t);
    qf[kk][1] = load_q(r1, kk * 16 + 2 * t);
    qf[kk][2] = load_q(r0, kk * 16 + 8 + 2 * t);
    qf[kk][3] = load_q(r1, kk * 16 + 8 + 2 * t);
  }

  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;

  for (int kt = 0; kt < len; kt += keys) {
    __syncthreads();  // every warp is done with the previous tile
    // K: chunk-fastest order, so a warp reads whole rows (coalesced) and writes them contiguously.
    for (int i = threadIdx.x; i < keys * chunks; i += blockDim.x) {
      const int j = i / chunks, c = i - j * chunks;
      uint4 kv = make_uint4(0u, 0u, 0u, 0u);
      if (kt + j < len)
        kv = *reinterpret_cast<const uint4*>(k + static_cast<std::size_t>(begin + kt + j) * ldk + col + c * 8);
      *reinterpret_cast<uint4*>(&ks[j * ks_stride + c * 8]) = kv;
    }
    // V: key-fastest order, so the transposed 16-bit stores of a warp land in consecutive addresses.
    for (int i = threadIdx.x; i < keys * chunks; i += blockDim.x) {
      const int c = i / keys, j = i - c * keys;
      uint4 vv = make_uint4(0u, 0u, 0u, 0u);  // zero rows: 0 * garbage could be NaN
      if (kt + j < len)
        vv = *reinterpret_cast<const uint4*>(v + static_cast<std::size_t>(begin + kt + j) * ldv + col + c * 8);
      const T* e = reinterpret_cast<const T*>(&vv);
#pragma unroll
      for (int x = 0; x < 8; ++x) vt[(c * 8 + x) * vt_stride + j] = e[x];
    }
    __syncthreads();

    // S = Q K^T for this warp's 16 rows x 64 keys (8 n-tiles of 8 keys).
    float s[keys / 8][4];
#pragma unroll
    for (int nt = 0; nt < keys / 8; ++nt) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        const T* kr = &ks[(nt * 8 + g) * ks_stride + kk * 16 + 2 * t];
        mma_16816<T>(s[nt], qf[kk], *reinterpret_cast<const std::uint32_t*>(kr),
                     *reinterpret_cast<const std::uint32_t*>(kr + 8));
      }
    }

    // Online softmax on rows r0 (s[.][0..1]) and r1 (s[.][2..3]); a row's 64 scores live in the 4 lanes of a quad.
    const int valid = len - kt;
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < keys / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        if (nt * 8 + 2 * t + e >= valid) s[nt][e] = s[nt][2 + e] = -INFINITY;
        mx0 = fmaxf(mx0, s[nt][e]);
        mx1 = fmaxf(mx1, s[nt][2 + e]);
      }
    }
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);  // finite: key kt is always valid
    const float c0 = exp2f((m0 - mn0) * scale_log2), c1 = exp2f((m1 - mn1) * scale_log2);
    m0 = mn0;
    m1 = mn1;
    float rs0 = 0.0f, rs1 = 0.0f;
#pragma unroll
    for (int nt = 0; nt < keys / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        s[nt][e] = exp2f((s[nt][e] - mn0) * scale_log2);
        s[nt][2 + e] = exp2f((s[nt][2 + e] - mn1) * scale_log2);
        rs0 += s[nt][e];
        rs1 += s[nt][2 + e];
      }
    }
    l0 = l0 * c0 + rs0;  // this lane's partial sums; the quad is reduced once at the end
    l1 = l1 * c1 + rs1;
#pragma unroll
    for (int i = 0; i < D / 8; ++i) {
      o[i][0] *= c0;
      o[i][1] *= c0;
      o[i][2] *= c1;
      o[i][3] *= c1;
    }

    // O += P V: the S accumulators of n-tiles 2u and 2u+1 are exactly the A fragment of k-step u.
#pragma unroll
    for (int u = 0; u < keys / 16; ++u) {
      const std::uint32_t a[4] = {pack2<T>(s[2 * u][0], s[2 * u][1]), pack2<T>(s[2 * u][2], s[2 * u][3]),
                                  pack2<T>(s[2 * u + 1][0], s[2 * u + 1][1]),
                                  pack2<T>(s[2 * u + 1][2], s[2 * u + 1][3])};
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        const T* vr = &vt[(dt * 8 + g) * vt_stride + u * 16 + 2 * t];
        mma_16816<T>(o[dt], a, *reinterpret_cast<const std::uint32_t*>(vr),
                     *reinterpret_cast<const std::uint32_t*>(vr + 8));
      }
    }
  }

  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt) {
    const int d = dt * 8 + 2 * t;
    if (r0 < len)
      *reinterpret_cast<std::uint32_t*>(out + static_cast<std::size_t>(begin + r0) * ldo + col + d) =
          pack2<T>(o[dt][0] * inv0, o[dt][1] * inv0);
    if (r1 < len)
      *reinterpret_cast<std::uint32_t*>(out + static_cast<std::size_t>(begin + r1) * ldo + col + d) =
          pack2<T>(o[dt][2] * inv1, o[dt][3] * inv1);
  }
}

}  // namespace detail::kernels
NERPIPE_NAMESPACE_END
