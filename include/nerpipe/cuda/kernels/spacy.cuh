// SPDX-License-Identifier: Apache-2.0
//! @file Kernels of the spaCy family: hashed embeddings, bias + maxout, window layout, row moves, greedy NER decode.
//! Float arithmetic is spelled out with __fadd_rn / __fmul_rn (never contracted into FMAs) in the order of
//! the host kernels (cpu/spacy_ops.hpp), so equal inputs give equal floats.
#pragma once
#if !defined(__CUDACC__)
#error "nerpipe: this header needs nvcc; include <nerpipe/cuda.cuh> from a .cu file"
#endif

#include <nerpipe/config/macros.hpp>
#include <nerpipe/cuda/kernels/common.cuh>
#include <nerpipe/ops/spacy.hpp>

#include <cstddef>
#include <cstdint>

NERPIPE_NAMESPACE_BEGIN
namespace detail::kernels {

/// One warp per token row (grid-stride): out.row(i) = ((E[h0] + E[h1]) + E[h2]) + E[h3].
template <int Variant = 0>  // a template (like every nerpipe kernel): several .cu files of one program may include it
__global__ void hash_embed_kernel(const std::uint64_t* __restrict__ feats, std::size_t stride, std::size_t col,
                                  std::uint32_t seed, const float* __restrict__ table, std::size_t table_rows,
                                  std::size_t table_ld, float* __restrict__ out, std::size_t rows, std::size_t cols,
                                  std::size_t out_ld) {
  const unsigned lane = threadIdx.x & 31u;
  const std::size_t warps = static_cast<std::size_t>(gridDim.x) * (blockDim.x / 32);
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; i < rows; i += warps) {
    std::uint32_t h[4];
    murmurhash3_x64_128_u64_words(feats[i * stride + col], seed, h);
    const float* r0 = table + static_cast<std::size_t>(h[0] % table_rows) * table_ld;
    const float* r1 = table + static_cast<std::size_t>(h[1] % table_rows) * table_ld;
    const float* r2 = table + static_cast<std::size_t>(h[2] % table_rows) * table_ld;
    const float* r3 = table + static_cast<std::size_t>(h[3] % table_rows) * table_ld;
    float* dst = out + i * out_ld;
    for (std::size_t c = lane; c < cols; c += 32) dst[c] = __fadd_rn(__fadd_rn(__fadd_rn(r0[c], r1[c]), r2[c]), r3[c]);
  }
}

/// out(r, o) = max_p (y[r, p * nO + o] + b[p * nO + o]), pieces in order, first maximum kept.
template <int Variant = 0>
__global__ void bias_maxout_kernel(const float* __restrict__ y, const float* __restrict__ b, std::size_t rows, std::size_t nO,
                                   std::size_t nP, float* __restrict__ out, std::size_t out_ld) {
  const std::size_t n = rows * nO, step = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t idx = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n; idx += step) {
    const std::size_t r = idx / nO, o = idx - r * nO;
    const float* yr = y + r * nO * nP;
    float m = __fadd_rn(yr[o], b[o]);
    for (std::size_t p = 1; p < nP; ++p) {
      const float v = __fadd_rn(yr[p * nO + o], b[p * nO + o]);
      m = v > m ? v : m;
    }
    out[r * out_ld + o] = m;
  }
}

template <int Variant = 0>
__global__ void spacy_fill_kernel(float* __restrict__ x, std::size_t n, float value) {
  const std::size_t step = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) x[i] = value;
}

template <int Variant = 0>
__global__ void spacy_add_kernel(float* __restrict__ dst, const float* __restrict__ src, std::size_t n) {
  const std::size_t step = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step)
    dst[i] = __fadd_rn(dst[i], src[i]);
}

/// Block per listed row (grid-stride): x.row(rows[i]) = 0.
template <int Variant = 0>
__global__ void zero_rows_kernel(float* __restrict__ x, std::size_t cols, std::size_t ld, const std::int32_t* __restrict__ rows,
                                 std::size_t count) {
  for (std::size_t i = blockIdx.x; i < count; i += gridDim.x) {
    float* r = x + static_cast<std::size_t>(rows[i]) * ld;
    for (std::size_t c = threadIdx.x; c < cols; c += blockDim.x) r[c] = 0.0f;
  }
}

/// Block per source row (grid-stride): dst.row(ids[i]) = src.row(i).
template <int Variant = 0>
__global__ void scatter_rows_kernel(const float* __restrict__ src, std::size_t rows, std::size_t cols, std::size_t src_ld,
                                    const std::int32_t* __restrict__ ids, float* __restrict__ dst, std::size_t dst_ld) {
  for (std::size_t i = blockIdx.x; i < rows; i += gridDim.x) {
    const float* s = src + i * src_ld;
    float* d = dst + static_cast<std::size_t>(ids[i]) * dst_ld;
    for (std::size_t c = threadIdx.x; c < cols; c += blockDim.x) d[c] = s[c];
  }
}

/// out[s] = sum of x[rows[k]] * (float)(1.0 / n) over the segment's rows in order (thinc's cpu_reduce_mean; the
/// products and sums rounded apart, never contracted); zero for an empty segment.
template <int Variant = 0>
__global__ void reduce_mean_kernel(const float* __restrict__ x, std::size_t x_ld, const std::int32_t* __restrict__ rows,
                                   const std::int32_t* __restrict__ offsets, std::size_t segments, std::size_t cols,
                                   float* __restrict__ out, std::size_t out_ld) {
  for (std::size_t s = blockIdx.x; s < segments; s += gridDim.x) {
    const int b = offsets[s], e = offsets[s + 1];
    const float scale = e > b ? static_cast<float>(1.0 / static_cast<double>(e - b)) : 0.0f;
    for (std::size_t c = threadIdx.x; c < cols; c += blockDim.x) {
      float acc = 0.0f;
      for (int k = b; k < e; ++k) acc = __fadd_rn(acc, __fmul_rn(x[static_cast<std::size_t>(rows[k]) * x_ld + c], scale));
      out[s * out_ld + c] = acc;
    }
  }
}

/// c[i, k * w + col] = z[i + k - nw, col], zero outside [0, rows).
template <int Variant = 0>
__global__ void seq2col_kernel(const float* __restrict__ z, std::size_t rows, std::size_t w, std::size_t nw, float* __restrict__ c) {
  const std::size_t K = w * (2 * nw + 1), n = rows * K, step = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t idx = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n; idx += step) {
    const std::size_t i = idx / K, rem = idx - i * K, k = rem / w, col = rem - k * w;
    const std::size_t j = i + k;  // z row j - nw
    c[idx] = (j < nw || j - nw >= rows) ? 0.0f : z[(j - nw) * w + col];
  }
}

/// Threads per block of ner_decode_kernel: one warp per document.
inline constexpr int ner_decode_warps = 4;
/// Valid classes per lane scored together in one pass over the hidden units (74 classes: at most 3 per lane).
inline constexpr int ner_decode_ilp = 3;

/// The warp's total order on (score, class) candidates, as a 64-bit key whose maximum is the decision of the
/// CPU's sequential scan (cpu/spacy_ops.hpp: best = first valid class, replaced by a strictly greater score):
/// higher scores first, equal scores (-0 == +0) to the lower class; a NaN never replaces, so a NaN scores key 0
/// (below every number) unless it is the state's first valid class, which then keeps the decision (key max).
/// Every lane reduces the same keys with max, so the warp agrees on one class even with NaN scores.
__device__ __forceinline__ unsigned long long ner_decision_key(float s, unsigned c, bool first_valid) {
  if (s != s) return first_valid ? ~0ull : 0ull;
  if (s == 0.0f) s = 0.0f;  // -0 and +0 are equal scores
  unsigned u = __float_as_uint(s);
  u = (u & 0x80000000u) != 0 ? ~u : (u | 0x80000000u);  // monotone in s; > 0 for every number
  return (static_cast<unsigned long long>(u) << 32) | (0xffffffffu - c);
}

/// Greedy BILUO decode, one warp per document (grid-stride over documents). NF state features (3 for NER), at
/// most MAXO hidden units and MAXP maxout pieces per lane (registers; nH <= 32 * MAXO, nP <= MAXP).
/// In shared memory: the upper layer and its bias, each warp's hidden layer, and (when the caller gives
/// valid_count) the validity table and the classes. Per step a lane first issues every load it needs (its
/// units' feature rows and the token flags), then adds them in the CPU's order: u = (((0 + f0) + f1) + f2) + b
/// per unit and piece (__fadd_rn: never contracted), maxout over pieces in order. Lanes then split the valid
/// classes (each lane's in ascending order), score them with the CPU's o-ordered mul/add chains, and a warp
/// max-reduction of ner_decision_key picks the class.
template <int NF, int MAXO, int MAXP>
__global__ void __launch_bounds__(ner_decode_warps * 32) ner_decode_kernel(ner_decode_args a, bool tables_in_smem) {
  extern __shared__ float smem[];
  const std::size_t nH = a.nH, nP = a.nP, Ap = a.classes_pad, HP = nH * nP, FHP = NF * HP;
  float* wt = smem;            // nH * Ap
  float* ub = wt + nH * Ap;    // Ap
  const unsigned warp = threadIdx.x / 32, lane = threadIdx.x & 31u;
  float* h = ub + Ap + warp * nH;  // this warp's hidden layer
  auto* s_voff = reinterpret_cast<std::uint32_t*>(ub + Ap + ner_decode_warps * nH);  // valid_keys + 1
  std::uint32_t* s_vlist = s_voff + a.valid_keys + 1;                                // valid_count
  auto* s_classes = reinterpret_cast<ner_class*>(s_vlist + a.valid_count);            // classes_n
  for (std::size_t i = threadIdx.x; i < nH * Ap; i += blockDim.x) wt[i] = a.upper_wt[i];
  for (std::size_t i = threadIdx.x; i < Ap; i += blockDim.x) ub[i] = a.upper_b[i];
  if (tables_in_smem) {
    for (std::size_t i = threadIdx.x; i <= a.valid_keys; i += blockDim.x) s_voff[i] = a.valid_offsets[i];
    for (std::size_t i = threadIdx.x; i < a.valid_count; i += blockDim.x) s_vlist[i] = a.valid_list[i];
    for (std::size_t i = threadIdx.x; i < a.classes_n; i += blockDim.x) s_classes[i] = a.classes[i];
  }
  __syncthreads();
  const std::uint32_t* voff = tables_in_smem ? s_voff : a.valid_offsets;
  const std::uint32_t* vlist = tables_in_smem ? s_vlist : a.valid_list;
  const ner_class* classes = tables_in_smem ? s_classes : a.classes;

  // This lane's units: o = lane + 32 i. Their lower bias and the absent-feature rows stay in registers.
  float lb[MAXO][MAXP], pad[NF][MAXO][MAXP];
#pragma unroll
  for (int i = 0; i < MAXO; ++i)
#pragma unroll
    for (int p = 0; p < MAXP; ++p) {
      const std::size_t o = lane + 32u * i;
      const bool in = o < nH && static_cast<std::size_t>(p) < nP;
      lb[i][p] = in ? a.lower_b[p * nH + o] : 0.0f;
#pragma unroll
      for (int f = 0; f < NF; ++f) pad[f][i][p] = in ? a.lower_pad[f * HP + p * nH + o] : 0.0f;
    }

  for (std::size_t doc = static_cast<std::size_t>(blockIdx.x) * ner_decode_warps + warp; doc < a.docs;
       doc += static_cast<std::size_t>(gridDim.x) * ner_decode_warps) {
    const auto offset = static_cast<std::size_t>(a.doc_offsets[doc]);
    const std::size_t n = static_cast<std::size_t>(a.doc_offsets[doc + 1]) - offset;
    std::int32_t* ents = a.ents + offset * 3;
    std::int32_t count = 0;
    bool open = false;
    std::size_t ent_start = 0;
    std::uint32_t ent_label = 0;
    for (std::size_t b0 = 0; b0 < n; ++b0) {
      // Feature rows: B0, and while an entity is open its first token and B0 - 1 (else the padding rows).
      const float* row[NF];
      row[0] = a.cached + (offset + b0) * FHP;
      if constexpr (NF > 1) row[1] = open ? a.cached + (offset + ent_start) * FHP + HP : nullptr;
      if constexpr (NF > 2) row[2] = open ? a.cached + (offset + b0 - 1) * FHP + 2 * HP : nullptr;
      // Every load of the step first...
      float r[NF][MAXO][MAXP];
#pragma unroll
      for (int i = 0; i < MAXO; ++i)
#pragma unroll
        for (int p = 0; p < MAXP; ++p) {
          const std::size_t o = lane + 32u * i;
          const bool in = o < nH && static_cast<std::size_t>(p) < nP;
#pragma unroll
          for (int f = 0; f < NF; ++f)
            r[f][i][p] = !in ? 0.0f : (f == 0 || row[f] != nullptr) ? row[f][p * nH + o] : pad[f][i][p];
        }
      // buffer_length < 2, or the next token starts a sentence: both forbid exactly B and I.
      const bool last = b0 + 1 >= n || (a.sent_start != nullptr && a.sent_start[offset + b0 + 1] != 0);
      const bool space = a.is_space[offset + b0] != 0;
      // ...then the adds, in the CPU's order.
#pragma unroll
      for (int i = 0; i < MAXO; ++i) {
        const std::size_t o = lane + 32u * i;
        if (o >= nH) continue;
        float m = 0.0f;
#pragma unroll
        for (int p = 0; p < MAXP; ++p) {
          if (static_cast<std::size_t>(p) >= nP) continue;
          float u = 0.0f;
#pragma unroll
          for (int f = 0; f < NF; ++f) u = __fadd_rn(u, r[f][i][p]);
          u = __fadd_rn(u, lb[i][p]);
          m = p == 0 ? u : (u > m ? u : m);
        }
        h[o] = m;
      }
      __syncwarp();
      const std::size_t key = ner_valid_key(open, ent_label, last, space);
      const std::uint32_t v0 = voff[key], v1 = voff[key + 1];
      unsigned long long best = 0;
      // Each lane's first ner_decode_ilp classes are summed together (independent add chains in flight;
      // every class still adds its products in o order), any further ones one at a time.
      std::uint32_t v = v0 + lane;
      {
        std::uint32_t cls[ner_decode_ilp];
        float acc[ner_decode_ilp];
        int nc = 0;
#pragma unroll
        for (int j = 0; j < ner_decode_ilp; ++j) {
          cls[j] = v < v1 ? vlist[v] : 0u;
          acc[j] = 0.0f;
          nc += v < v1;
          v += 32;
        }
        if (nc > 0) {
          for (std::size_t o = 0; o < nH; ++o) {
            const float ho = h[o];
            const float* w = wt + o * Ap;
#pragma unroll
            for (int j = 0; j < ner_decode_ilp; ++j) acc[j] = __fadd_rn(acc[j], __fmul_rn(ho, w[cls[j]]));
          }
#pragma unroll
          for (int j = 0; j < ner_decode_ilp; ++j)
            if (j < nc) {
              const unsigned long long k = ner_decision_key(__fadd_rn(acc[j], ub[cls[j]]), cls[j], lane == 0 && j == 0);
              best = k > best ? k : best;
            }
        }
      }
      for (; v < v1; v += 32) {
        const std::uint32_t c = vlist[v];
        float s = 0.0f;
        for (std::size_t o = 0; o < nH; ++o) s = __fadd_rn(s, __fmul_rn(h[o], wt[o * Ap + c]));
        const unsigned long long k = ner_decision_key(__fadd_rn(s, ub[c]), c, false);
        best = k > best ? k : best;
      }
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) {
        const unsigned long long other = __shfl_xor_sync(0xffffffffu, best, off);
        best = other > best ? other : best;
      }
      __syncwarp();  // h is rewritten by the next step
      if (best == 0) break;  // no valid class: cannot happen (O or L is always valid); uniform across the warp
      const auto best_c = static_cast<std::uint32_t>(0xffffffffu - static_cast<std::uint32_t>(best & 0xffffffffu));
      const ner_class act = classes[best_c];
      if (act.mv == ner_move::begin) {
        open = true;
        ent_start = b0;
        ent_label = act.label;
      } else if (act.mv == ner_move::last) {
        if (lane == 0) {
          ents[count * 3] = static_cast<std::int32_t>(ent_start);
          ents[count * 3 + 1] = static_cast<std::int32_t>(b0 + 1);
          ents[count * 3 + 2] = static_cast<std::int32_t>(ent_label - 1);
        }
        ++count;
        open = false;
      } else if (act.mv == ner_move::unit) {
        if (lane == 0) {
          ents[count * 3] = static_cast<std::int32_t>(b0);
          ents[count * 3 + 1] = static_cast<std::int32_t>(b0 + 1);
          ents[count * 3 + 2] = static_cast<std::int32_t>(act.label - 1);
        }
        ++count;
      }
    }
    if (lane == 0) a.counts[doc] = count;
  }
}

}  // namespace detail::kernels
NERPIPE_NAMESPACE_END
