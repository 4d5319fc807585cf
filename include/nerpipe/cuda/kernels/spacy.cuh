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

/// Greedy BILUO decode, one warp per document (grid-stride over documents). The upper layer and its bias
/// sit in shared memory; lanes split the hidden units, then the valid classes (each lane's classes in
/// ascending order), and a warp reduction picks the highest score, ties to the lowest class.
template <int Variant = 0>
__global__ void __launch_bounds__(ner_decode_warps * 32) ner_decode_kernel(ner_decode_args a) {
  extern __shared__ float smem[];
  const std::size_t nH = a.nH, nP = a.nP, nF = a.nF, Ap = a.classes_pad, HP = nH * nP, FHP = nF * HP;
  float* wt = smem;            // nH * Ap
  float* ub = wt + nH * Ap;    // Ap
  const unsigned warp = threadIdx.x / 32, lane = threadIdx.x & 31u;
  float* h = ub + Ap + warp * nH;  // this warp's hidden layer
  for (std::size_t i = threadIdx.x; i < nH * Ap; i += blockDim.x) wt[i] = a.upper_wt[i];
  for (std::size_t i = threadIdx.x; i < Ap; i += blockDim.x) ub[i] = a.upper_b[i];
  __syncthreads();
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
      const float* feat[3];
      feat[0] = a.cached + (offset + b0) * FHP;
      feat[1] = open ? a.cached + (offset + ent_start) * FHP + HP : a.lower_pad + HP;
      feat[2] = open ? a.cached + (offset + b0 - 1) * FHP + 2 * HP : a.lower_pad + 2 * HP;
      for (std::size_t o = lane; o < nH; o += 32) {
        float m = 0.0f;
        for (std::size_t p = 0; p < nP; ++p) {
          float u = 0.0f;
          for (std::size_t f = 0; f < nF; ++f) u = __fadd_rn(u, feat[f][p * nH + o]);
          u = __fadd_rn(u, a.lower_b[p * nH + o]);
          m = p == 0 ? u : (u > m ? u : m);
        }
        h[o] = m;
      }
      __syncwarp();
      // buffer_length < 2, or the next token starts a sentence: both forbid exactly B and I.
      const bool last = b0 + 1 >= n || (a.sent_start != nullptr && a.sent_start[offset + b0 + 1] != 0);
      const bool space = a.is_space[offset + b0] != 0;
      const std::size_t key = ner_valid_key(open, ent_label, last, space);
      const std::uint32_t v1 = a.valid_offsets[key + 1];
      float best_s = 0.0f;
      int best_c = -1;
      // Each lane's first ner_decode_ilp classes are summed together (independent add chains in flight;
      // every class still adds its products in o order), any further ones one at a time. A lane's classes
      // come in ascending order, so the strict > keeps the lowest of equal scores.
      std::uint32_t v = a.valid_offsets[key] + lane;
      {
        std::uint32_t cls[ner_decode_ilp];
        float acc[ner_decode_ilp];
        int nc = 0;
#pragma unroll
        for (int j = 0; j < ner_decode_ilp; ++j) {
          cls[j] = v < v1 ? a.valid_list[v] : 0u;
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
          for (int j = 0; j < ner_decode_ilp; ++j) {
            const float s = __fadd_rn(acc[j], ub[cls[j]]);
            if (j < nc && (best_c < 0 || s > best_s)) {
              best_s = s;
              best_c = static_cast<int>(cls[j]);
            }
          }
        }
      }
      for (; v < v1; v += 32) {
        const std::uint32_t c = a.valid_list[v];
        float s = 0.0f;
        for (std::size_t o = 0; o < nH; ++o) s = __fadd_rn(s, __fmul_rn(h[o], wt[o * Ap + c]));
        s = __fadd_rn(s, ub[c]);
        if (best_c < 0 || s > best_s) {
          best_s = s;
          best_c = static_cast<int>(c);
        }
      }
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) {
        const float os = __shfl_xor_sync(0xffffffffu, best_s, off);
        const int oc = __shfl_xor_sync(0xffffffffu, best_c, off);
        if (oc >= 0 && (best_c < 0 || os > best_s || (os == best_s && oc < best_c))) {
          best_s = os;
          best_c = oc;
        }
      }
      __syncwarp();  // h is rewritten by the next step
      if (best_c < 0) break;  // cannot happen: O or L is always valid
      const ner_class act = a.classes[best_c];
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
