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
struct reduce_mean_impl<cuda_policy> {
  static void run(const cuda_policy& p, matrix_view<const float> x, const std::int32_t* rows, const std::int32_t* offsets,
                  matrix_view<float> out) {
    namespace kn = ::nerpipe::detail::kernels;
    if (out.rows == 0 || out.cols == 0) return;  // shapes checked by ops::reduce_mean
    ::nerpipe::detail::device_guard guard(p.device());
    const auto grid = static_cast<unsigned>(out.rows < (std::size_t{1} << 20) ? out.rows : (std::size_t{1} << 20));
    kn::reduce_mean_kernel<0><<<grid, 128, 0, p.stream()>>>(x.data, x.ld, rows, offsets, out.rows, out.cols, out.data, out.ld);
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
    // nF and the per-lane unit and piece counts are compile-time: spaCy's NER (64 hidden units, 2 pieces) takes the first.
    if (a.nH <= 64 && a.nP <= 2)
      launch(p, a, kn::ner_decode_kernel<3, 2, 2>);
    else if (a.nH <= 128 && a.nP <= 4)
      launch(p, a, kn::ner_decode_kernel<3, 4, 4>);
    else
      NERPIPE_THROW(config_error(errc::config_unsupported, "ner_decode: at most 128 hidden units and 4 maxout pieces on "
                                                           "cuda_policy; got nH = " + std::to_string(a.nH) + ", nP = " +
                                                           std::to_string(a.nP)));
  }

 private:
  template <class Kernel>
  static void launch(const cuda_policy& p, const ner_decode_args& a, Kernel kernel) {
    namespace kn = ::nerpipe::detail::kernels;
    ::nerpipe::detail::device_guard guard(p.device());
    int optin = 48 * 1024;
    NERPIPE_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, p.device()));
    const std::size_t layer = (a.nH * a.classes_pad + a.classes_pad + kn::ner_decode_warps * a.nH) * sizeof(float);
    const std::size_t tables = (a.valid_keys + 1 + a.valid_count) * sizeof(std::uint32_t) + a.classes_n * sizeof(ner_class);
    // The validity table and the classes join the upper layer in shared memory when their size is known and fits.
    const bool tables_in_smem = a.valid_count != 0 && layer + tables <= static_cast<std::size_t>(optin);
    const std::size_t smem = layer + (tables_in_smem ? tables : 0);
    if (smem > static_cast<std::size_t>(optin))
      NERPIPE_THROW(config_error(errc::config_unsupported, "ner_decode: the upper layer (" + std::to_string(a.nH) + " x " +
                                                               std::to_string(a.classes_pad) + ") needs " + std::to_string(smem) +
                                                               " bytes of shared memory; the device allows " + std::to_string(optin)));
    if (smem > 48 * 1024)
      NERPIPE_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    const std::size_t blocks = (a.docs + kn::ner_decode_warps - 1) / kn::ner_decode_warps;
    const std::size_t cap = static_cast<std::size_t>(p.sm_count() > 0 ? p.sm_count() : 1) * 64;
    kernel<<<static_cast<unsigned>(blocks < cap ? blocks : cap), kn::ner_decode_warps * 32, smem, p.stream()>>>(a, tables_in_smem);
    NERPIPE_CUDA_CHECK_LAUNCH();
  }
};

}  // namespace ops
NERPIPE_NAMESPACE_END
