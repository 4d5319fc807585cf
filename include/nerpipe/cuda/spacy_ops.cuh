// SPDX-License-Identifier: Apache-2.0
//! @file The cuda_policy specialisations of the spaCy family's operations (ops/spacy.hpp). fp32 only.
#pragma once
#if !defined(__CUDACC__)
#error "nerpipe: this header needs nvcc; include <nerpipe/cuda.cuh> from a .cu file"
#endif

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/cuda/cuda_policy.cuh>
#include <nerpipe/cuda/error.cuh>
#include <nerpipe/cuda/kernels/common.cuh>
#include <nerpipe/cuda/kernels/spacy.cuh>
#include <nerpipe/ops/spacy.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

NERPIPE_NAMESPACE_BEGIN
namespace ops {

template <>
struct hash_embed_impl<cuda_policy> {
  static void run(const cuda_policy& p, const std::uint64_t* feats, std::size_t stride, std::size_t col, std::uint32_t seed,
                  matrix_view<const float> table, matrix_view<float> out) {
    namespace kn = ::nerpipe::detail::kernels;
    if (out.rows == 0 || out.cols == 0) return;  // shapes checked by ops::hash_embed
    ::nerpipe::detail::device_guard guard(p.device());
    constexpr unsigned threads = 256;  // 8 rows per block
    kn::hash_embed_kernel<0><<<kn::grid_for(out.rows, threads / 32, p.sm_count()), threads, 0, p.stream()>>>(
        feats, stride, col, seed, table.data, table.rows, table.ld, out.data, out.rows, out.cols, out.ld);
    NERPIPE_CUDA_CHECK_LAUNCH();
  }
};

template <>
struct bias_maxout_impl<cuda_policy> {
  static void run(const cuda_policy& p, const float* y, const float* b, std::size_t nO, std::size_t nP, matrix_view<float> out) {
    namespace kn = ::nerpipe::detail::kernels;
    if (out.rows == 0 || nO == 0) return;  // nP checked by ops::bias_maxout
    ::nerpipe::detail::device_guard guard(p.device());
    constexpr unsigned threads = 256;
    kn::bias_maxout_kernel<0><<<kn::grid_for(out.rows * nO, threads, p.sm_count()), threads, 0, p.stream()>>>(y, b, out.rows, nO, nP,
                                                                                                          out.data, out.ld);
    NERPIPE_CUDA_CHECK_LAUNCH();
  }
};

template <>
struct fill_impl<cuda_policy> {
  static void run(const cuda_policy& p, float* x, std::size_t n, float value) {
    namespace kn = ::nerpipe::detail::kernels;
    if (n == 0) return;
    ::nerpipe::detail::device_guard guard(p.device());
    kn::spacy_fill_kernel<0><<<kn::grid_for(n, 256, p.sm_count()), 256, 0, p.stream()>>>(x, n, value);
    NERPIPE_CUDA_CHECK_LAUNCH();
  }
};

template <>
struct add_impl<cuda_policy> {
  static void run(const cuda_policy& p, float* dst, const float* src, std::size_t n) {
    namespace kn = ::nerpipe::detail::kernels;
    if (n == 0) return;
    ::nerpipe::detail::device_guard guard(p.device());
    kn::spacy_add_kernel<0><<<kn::grid_for(n, 256, p.sm_count()), 256, 0, p.stream()>>>(dst, src, n);
    NERPIPE_CUDA_CHECK_LAUNCH();
  }
};

template <>
struct zero_rows_impl<cuda_policy> {
  static void run(const cuda_policy& p, matrix_view<float> x, const std::int32_t* rows, std::size_t count) {
    namespace kn = ::nerpipe::detail::kernels;
    if (count == 0 || x.cols == 0) return;
    ::nerpipe::detail::device_guard guard(p.device());
    const auto grid = static_cast<unsigned>(count < (std::size_t{1} << 20) ? count : (std::size_t{1} << 20));
    kn::zero_rows_kernel<0><<<grid, 128, 0, p.stream()>>>(x.data, x.cols, x.ld, rows, count);
    NERPIPE_CUDA_CHECK_LAUNCH();
  }
};

template <>
struct scatter_rows_impl<cuda_policy> {
  static void run(const cuda_policy& p, matrix_view<const float> src, const std::int32_t* ids, matrix_view<float> dst) {
    namespace kn = ::nerpipe::detail::kernels;
    if (src.rows == 0 || src.cols == 0) return;  // shapes checked by ops::scatter_rows
    ::nerpipe::detail::device_guard guard(p.device());
    const auto grid = static_cast<unsigned>(src.rows < (std::size_t{1} << 20) ? src.rows : (std::size_t{1} << 20));
    kn::scatter_rows_kernel<0><<<grid, 128, 0, p.stream()>>>(src.data, src.rows, src.cols, src.ld, ids, dst.data, dst.ld);
    NERPIPE_CUDA_CHECK_LAUNCH();
  }
};

template <>
struct seq2col_impl<cuda_policy> {
  static void run(const cuda_policy& p, const float* z, std::size_t rows, std::size_t w, std::size_t nw, float* c) {
    namespace kn = ::nerpipe::detail::kernels;
    const std::size_t n = rows * w * (2 * nw + 1);
    if (n == 0) return;
    ::nerpipe::detail::device_guard guard(p.device());
    kn::seq2col_kernel<0><<<kn::grid_for(n, 256, p.sm_count()), 256, 0, p.stream()>>>(z, rows, w, nw, c);
    NERPIPE_CUDA_CHECK_LAUNCH();
  }
};

template <>
struct add_seq2col_impl<cuda_policy> {
  // Two passes (the add, then a full seq2col): a fused pass would read rows other threads are updating.
  static void run(const cuda_policy& p, float* z, const float* m, std::size_t rows, std::size_t w, std::size_t nw, float* c) {
    add_impl<cuda_policy>::run(p, z, m, rows * w);
    seq2col_impl<cuda_policy>::run(p, z, rows, w, nw, c);
  }
};

template <>
struct ner_decode_impl<cuda_policy> {
  static void run(const cuda_policy& p, const ner_decode_args& a) {
    namespace kn = ::nerpipe::detail::kernels;
    if (a.docs == 0) return;
    if (a.nF != 3)
      NERPIPE_THROW(config_error(errc::config_unsupported, "ner_decode: the decoder reads 3 state features (token, entity start, "
                                                           "previous token); got nF = " + std::to_string(a.nF)));
    ::nerpipe::detail::device_guard guard(p.device());
    const std::size_t smem = (a.nH * a.classes_pad + a.classes_pad + kn::ner_decode_warps * a.nH) * sizeof(float);
    if (smem > 48 * 1024) {
      int optin = 0;
      NERPIPE_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, p.device()));
      if (smem > static_cast<std::size_t>(optin))
        NERPIPE_THROW(config_error(errc::config_unsupported, "ner_decode: the upper layer (" + std::to_string(a.nH) + " x " +
                                                                 std::to_string(a.classes_pad) + ") needs " + std::to_string(smem) +
                                                                 " bytes of shared memory; the device allows " + std::to_string(optin)));
      NERPIPE_CUDA_CHECK(cudaFuncSetAttribute(kn::ner_decode_kernel<0>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    }
    const std::size_t blocks = (a.docs + kn::ner_decode_warps - 1) / kn::ner_decode_warps;
    const std::size_t cap = static_cast<std::size_t>(p.sm_count() > 0 ? p.sm_count() : 1) * 64;
    kn::ner_decode_kernel<0><<<static_cast<unsigned>(blocks < cap ? blocks : cap), kn::ner_decode_warps * 32, smem, p.stream()>>>(a);
    NERPIPE_CUDA_CHECK_LAUNCH();
  }
};

}  // namespace ops
NERPIPE_NAMESPACE_END
