// SPDX-License-Identifier: Apache-2.0
//! @file The cuda_policy specialisations of every operation: cuBLASLt gemms and nerpipe's own kernels.
//! Element types: float, nerpipe::bfloat16 and nerpipe::float16 (fp32 math inside every kernel).
#pragma once
#if !defined(__CUDACC__)
#error "nerpipe: this header needs nvcc; include <nerpipe/cuda.cuh> from a .cu file"
#endif

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/cuda/cuda_policy.cuh>
#include <nerpipe/cuda/cudnn_attention.cuh>
#include <nerpipe/cuda/error.cuh>
#include <nerpipe/cuda/gemm.cuh>
#include <nerpipe/cuda/kernels/attention.cuh>
#include <nerpipe/cuda/kernels/common.cuh>
#include <nerpipe/cuda/kernels/elementwise.cuh>
#include <nerpipe/cuda/kernels/fp8.cuh>
#include <nerpipe/cuda/kernels/gemm_fallback.cuh>
#include <nerpipe/cuda/kernels/normalization.cuh>
#include <nerpipe/ops/ops.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

NERPIPE_NAMESPACE_BEGIN
namespace detail {

inline std::string shape_string(std::size_t r, std::size_t c) {
  return "[" + std::to_string(r) + "," + std::to_string(c) + "]";
}

/// Launch shape of the row-looping element-wise kernels: threads over columns, blocks over rows.
[[nodiscard]] inline unsigned row_threads(std::size_t cols) { return cols <= 64 ? 64u : cols <= 128 ? 128u : 256u; }
[[nodiscard]] inline unsigned row_grid(const cuda_policy& p, std::size_t rows) {
  const std::size_t cap = static_cast<std::size_t>(p.sm_count() > 0 ? p.sm_count() : 1) * 16;
  return static_cast<unsigned>(std::max<std::size_t>(1, std::min(rows, cap)));
}

template <class T>
void launch_bias_act(const cuda_policy& p, matrix_view<T> c, const float* bias, kernels::act_kind act) {
  if (c.empty() || (bias == nullptr && act == kernels::act_kind::none)) return;
  constexpr std::size_t width = 16 / sizeof(T);
  if (reinterpret_cast<std::uintptr_t>(c.data) % 16 == 0 && c.cols % width == 0 && c.ld % width == 0) {
    const std::size_t vectors = c.cols / width;
    const unsigned threads = vectors <= 64 ? 64u : vectors <= 128 ? 128u : 256u;
    kernels::bias_act_vec_kernel<<<row_grid(p, c.rows), threads, 0, p.stream()>>>(kernels::as_device(c.data), c.rows,
                                                                                  c.cols, c.ld, bias, act);
    NERPIPE_CUDA_CHECK_LAUNCH();
    return;
  }
  kernels::bias_act_kernel<<<row_grid(p, c.rows), row_threads(c.cols), 0, p.stream()>>>(
      kernels::as_device(c.data), c.rows, c.cols, c.ld, bias, act);
  NERPIPE_CUDA_CHECK_LAUNCH();
}

/// Which attention kernel runs. `automatic` takes cuDNN's fused SDPA where it is compiled in, loadable and
/// supports the call (cuda/cudnn_attention.cuh), else the tensor-core kernel where it applies, else the
/// generic one. `cudnn` insists on cuDNN (config_error when it cannot run the call).
enum class attention_path : unsigned char { automatic, generic, tensor_core, cudnn };

/// Whether the tensor-core attention kernel accepts these arguments (16-bit type, head dim 64/128,
/// 16-byte aligned rows, sm_80+).
template <class T>
[[nodiscard]] bool attention_tensor_core_ok(const cuda_policy& p, const attention_args<T>& a) {
  if constexpr (std::is_same_v<std::remove_const_t<T>, float>) {
    return false;
  } else {
    auto aligned = [](const void* ptr, std::size_t ld) {
      return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0 && ld % 8 == 0;
    };
    return p.compute_capability() >= 80 && (a.head_dim == 64 || a.head_dim == 128) && aligned(a.q.data, a.q.ld) &&
           aligned(a.k.data, a.k.ld) && aligned(a.v.data, a.v.ld) && aligned(a.out.data, a.out.ld);
  }
}

template <class T>
void run_attention(const cuda_policy& p, const attention_args<T>& a, attention_path path) {
  static_assert(kernels::is_kernel_type_v<T>, "nerpipe: cuda attention takes float, bfloat16 or float16");
  // The arguments were checked by ops::attention (check_attention_args), as on every policy.
  if (a.num_seqs == 0 || a.heads == 0) return;
  std::size_t max_len = a.max_seq_len;
  if (max_len == 0 && a.seq_offsets_host != nullptr)
    for (std::size_t s = 0; s < a.num_seqs; ++s)
      max_len = std::max(max_len, static_cast<std::size_t>(a.seq_offsets_host[s + 1] - a.seq_offsets_host[s]));
  if (max_len == 0) return;  // every sequence is empty
  const float scale = a.scale != 0.0f ? a.scale : 1.0f / std::sqrt(static_cast<float>(a.head_dim));
  device_guard guard(p.device());
  using D = kernels::device_t<T>;
  const auto* q = kernels::as_device(a.q.data);
  const auto* k = kernels::as_device(a.k.data);
  const auto* v = kernels::as_device(a.v.data);
  auto* out = kernels::as_device(a.out.data);

  if (path == attention_path::automatic || path == attention_path::cudnn) {
    if (cudnn_sdpa_run(p, a, max_len, scale)) return;
    if (path == attention_path::cudnn)
      NERPIPE_THROW(config_error(errc::config_unsupported,
                                 "attention: cuDNN's fused SDPA cannot run this call (bf16/fp16, head_dim 64 or 128, one "
                                 "q/k/v row stride, 16-byte aligned rows, sm_80+): " +
                                     cudnn_attention_status(p)));
  }
  bool tensor_core = false;
  if (path != attention_path::generic) {
    tensor_core = attention_tensor_core_ok(p, a);
    if (path == attention_path::tensor_core && !tensor_core)
      NERPIPE_THROW(config_error(errc::config_unsupported,
                                 "attention: the tensor-core kernel needs bf16/fp16, head_dim 64 or 128, 16-byte "
                                 "aligned rows and sm_80+; got head_dim " +
                                     std::to_string(a.head_dim)));
  }
  if (tensor_core) {
    if constexpr (!std::is_same_v<D, float>) {
      const dim3 grid(static_cast<unsigned>(a.num_seqs),
                      static_cast<unsigned>((max_len + kernels::attention_mma_rows - 1) / kernels::attention_mma_rows),
                      static_cast<unsigned>(a.heads));
      const float scale_log2 = scale * 1.4426950408889634f;
      if (a.head_dim == 64)
        kernels::attention_mma_kernel<D, 64><<<grid, 128, 0, p.stream()>>>(
            q, a.q.ld, k, a.k.ld, v, a.v.ld, out, a.out.ld, a.seq_offsets, scale_log2);
      else
        kernels::attention_mma_kernel<D, 128><<<grid, 128, 0, p.stream()>>>(
            q, a.q.ld, k, a.k.ld, v, a.v.ld, out, a.out.ld, a.seq_offsets, scale_log2);
      NERPIPE_CUDA_CHECK_LAUNCH();
      return;
    }
  }
  if (a.head_dim > 128)
    NERPIPE_THROW(config_error(errc::config_unsupported,
                               "attention: head_dim " + std::to_string(a.head_dim) + " is not supported; expected <= 128"));
  const dim3 grid(static_cast<unsigned>(a.num_seqs),
                  static_cast<unsigned>((max_len + kernels::attention_generic_rows - 1) / kernels::attention_generic_rows),
                  static_cast<unsigned>(a.heads));
  const int hd = static_cast<int>(a.head_dim);
  if (hd <= 32)
    kernels::attention_generic_kernel<D, 1><<<grid, 128, 0, p.stream()>>>(q, a.q.ld, k, a.k.ld, v, a.v.ld, out,
                                                                           a.out.ld, a.seq_offsets, hd, scale);
  else if (hd <= 64)
    kernels::attention_generic_kernel<D, 2><<<grid, 128, 0, p.stream()>>>(q, a.q.ld, k, a.k.ld, v, a.v.ld, out,
                                                                           a.out.ld, a.seq_offsets, hd, scale);
  else
    kernels::attention_generic_kernel<D, 4><<<grid, 128, 0, p.stream()>>>(q, a.q.ld, k, a.k.ld, v, a.v.ld, out,
                                                                           a.out.ld, a.seq_offsets, hd, scale);
  NERPIPE_CUDA_CHECK_LAUNCH();
}

/// Block size for a row kernel: enough threads for the row, at most 256.
template <class Launch>
void with_row_block(std::size_t cols, Launch&& launch) {
  if (cols <= 64)
    launch(std::integral_constant<int, 32>{});
  else if (cols <= 1024)
    launch(std::integral_constant<int, 128>{});
  else
    launch(std::integral_constant<int, 256>{});
}

}  // namespace detail

namespace ops {

template <>
struct gemm_impl<cuda_policy> {
  template <class TA, class TB, class TC>
  static void run(const cuda_policy& p, const gemm_args<TA, TB, TC>& g) {
    using A = std::remove_const_t<TA>;
    using B = std::remove_const_t<TB>;
    using C = std::remove_const_t<TC>;
    static_assert(std::is_same_v<A, B>, "nerpipe: cuda gemm needs A and B of the same element type");
    static_assert(::nerpipe::detail::kernels::is_kernel_type_v<A>,
                  "nerpipe: cuda gemm inputs are float, bfloat16 or float16");
    static_assert(std::is_same_v<C, float> || std::is_same_v<C, A>,
                  "nerpipe: cuda gemm output is float or the input type");
    namespace d = ::nerpipe::detail;
    namespace kn = ::nerpipe::detail::kernels;
    // Shapes, pointers and strides were checked by ops::gemm (check_gemm_args), as on every policy.
    const std::size_t m = g.c.rows, n = g.c.cols, k = g.a.cols;
    if (m == 0 || n == 0) return;
    d::device_guard guard(p.device());

    const kn::act_kind act = g.ep == epilogue::bias_gelu        ? kn::act_kind::gelu_erf
                             : g.ep == epilogue::bias_gelu_tanh ? kn::act_kind::gelu_tanh
                                                                : kn::act_kind::none;
    const float* bias = g.ep == epilogue::none ? nullptr : g.bias;
    if (k == 0) {  // no product: C = beta C, then the epilogue (as the CPU path does)
      kn::scale_kernel<<<d::row_grid(p, m), d::row_threads(n), 0, p.stream()>>>(kn::as_device(g.c.data), m, n,
                                                                                 g.c.ld, g.beta);
      NERPIPE_CUDA_CHECK_LAUNCH();
      d::launch_bias_act(p, g.c, bias, act);
      return;
    }

    d::lt_gemm_call call;
    call.a = g.a.data;
    call.b = g.b.data;
    call.c = g.c.data;
    call.m = m;
    call.n = n;
    call.k = k;
    call.lda = g.a.ld;
    call.ldb = g.b.ld;
    call.ldc = g.c.ld;
    call.b_transposed = g.b_transposed;
    call.type_ab = d::cuda_data_type<A>();
    call.type_c = d::cuda_data_type<C>();
    call.elem_ab = sizeof(A);
    call.elem_c = sizeof(C);
    call.alpha = g.alpha;
    call.beta = g.beta;

    // cuBLASLt's GELU epilogue is the tanh form (facts-cuda §1.4), so it serves bias_gelu_tanh only;
    // erf GELU is cuBLASLt's bias epilogue plus our kernel. Every Lt epilogue has a plain fallback.
    const bool bias_aligned = bias != nullptr && reinterpret_cast<std::uintptr_t>(bias) % 16 == 0;
    if (bias_aligned) {
      call.epilogue = g.ep == epilogue::bias_gelu_tanh ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
      call.bias = bias;
      if (d::lt_gemm(p, call)) {
        if (act == kn::act_kind::gelu_erf) d::launch_bias_act(p, g.c, nullptr, act);
        return;
      }
    }
    call.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    call.bias = nullptr;
    if (d::lt_gemm(p, call)) {
      d::launch_bias_act(p, g.c, bias, act);
      return;
    }
    // cuBLASLt has no algorithm for this shape/alignment (rare: odd strides of 16-bit types): plain kernel.
    run_fallback(p, g, bias, act);
  }

  /// The tiled CUDA-core gemm with the whole epilogue fused (correct for every shape, not fast).
  template <class TA, class TB, class TC>
  static void run_fallback(const cuda_policy& p, const gemm_args<TA, TB, TC>& g, const float* bias,
                           ::nerpipe::detail::kernels::act_kind act) {
    namespace kn = ::nerpipe::detail::kernels;
    ::nerpipe::detail::device_guard guard(p.device());
    constexpr int t = kn::gemm_fallback_tile;
    const std::size_t m = g.c.rows, n = g.c.cols, k = g.a.cols;
    const dim3 grid(static_cast<unsigned>((n + t - 1) / t),
                    static_cast<unsigned>(std::min<std::size_t>((m + t - 1) / t, 65535)));
    kn::gemm_fallback_kernel<<<grid, dim3(t, t), 0, p.stream()>>>(
        kn::as_device(g.a.data), g.a.ld, kn::as_device(g.b.data), g.b.ld, g.b_transposed, kn::as_device(g.c.data),
        g.c.ld, m, n, k, g.alpha, g.beta, bias, act);
    NERPIPE_CUDA_CHECK_LAUNCH();
  }
};

/// FP8 gemm through cuBLASLt (sm_89+): the activations' amax and their e4m3 copy are computed on the device
/// (kernels/fp8.cuh) into the policy's scratch, then one scaled matmul with fp32 accumulation; bias (and the
/// tanh GELU) in cuBLASLt's epilogue, erf GELU in nerpipe's pass, as for the 16-bit gemm.
template <>
struct fp8_gemm_impl<cuda_policy> {
  template <class TA, class TC>
  static void run(const cuda_policy& p, const fp8_gemm_args<TA, TC>& g) {
    using A = std::remove_const_t<TA>;
    using C = std::remove_const_t<TC>;
    static_assert(std::is_same_v<A, bfloat16> || std::is_same_v<A, float16>, "nerpipe: fp8_gemm takes bf16 or fp16 activations");
    static_assert(std::is_same_v<C, float> || std::is_same_v<C, bfloat16> || std::is_same_v<C, float16>,
                  "nerpipe: fp8_gemm writes float, bf16 or fp16");
    namespace d = ::nerpipe::detail;
    namespace kn = ::nerpipe::detail::kernels;
    const std::size_t m = g.c.rows, n = g.c.cols, k = g.a.cols;
    if (m == 0 || n == 0) return;  // shapes checked by ops::fp8_gemm
    if (p.compute_capability() < 89)
      NERPIPE_THROW(config_error(errc::config_unsupported, "fp8_gemm: FP8 matrix units need sm_89 or newer; device " +
                                                               std::to_string(p.device()) + " is sm_" +
                                                               std::to_string(p.compute_capability())));
    d::cuda_resources& res = p.resources();
    d::device_guard guard(res.device);
    void* qa = nullptr;
    float* scalars = nullptr;
    {
      std::lock_guard<std::mutex> lock(res.gemm_mutex);
      d::gemm_cache& cache = d::gemm_cache_of(res);
      cache.ensure_fp8(res.stream, m * k);
      qa = cache.fp8_act;
      scalars = cache.fp8_scalars;
    }
    auto* amax_bits = reinterpret_cast<unsigned*>(scalars);
    NERPIPE_CUDA_CHECK(cudaMemsetAsync(amax_bits, 0, sizeof(unsigned), res.stream));
    const auto* x = kn::as_device(g.a.data);
    constexpr unsigned threads = 256;
    if (k % 8 == 0 && g.a.ld % 8 == 0 && reinterpret_cast<std::uintptr_t>(g.a.data) % 16 == 0)
      kn::amax_vec_kernel<<<kn::grid_for(m * k / 8, threads, p.sm_count()), threads, 0, res.stream>>>(x, m, k, g.a.ld,
                                                                                                      amax_bits);
    else
      kn::amax_kernel<<<kn::grid_for(m * k, threads, p.sm_count()), threads, 0, res.stream>>>(x, m, k, g.a.ld, amax_bits);
    NERPIPE_CUDA_CHECK_LAUNCH();
    kn::quantize_fp8_kernel<<<kn::grid_for(m * k / 8 + 1, threads, p.sm_count()), threads, 0, res.stream>>>(
        x, m, k, g.a.ld, amax_bits, static_cast<__nv_fp8_storage_t*>(qa), scalars + 1);
    NERPIPE_CUDA_CHECK_LAUNCH();

    const kn::act_kind act = g.ep == epilogue::bias_gelu        ? kn::act_kind::gelu_erf
                             : g.ep == epilogue::bias_gelu_tanh ? kn::act_kind::gelu_tanh
                                                                : kn::act_kind::none;
    const float* bias = g.ep == epilogue::none ? nullptr : g.bias;
    d::lt_gemm_call call;
    call.a = qa;
    call.b = g.b.data;
    call.c = g.c.data;
    call.m = m;
    call.n = n;
    call.k = k;
    call.lda = k;
    call.ldb = g.b.ld;
    call.ldc = g.c.ld;
    call.b_transposed = true;  // FP8 matmuls are "TN" only: the nn.Linear layout is exactly that
    call.type_ab = CUDA_R_8F_E4M3;
    call.type_c = d::cuda_data_type<C>();
    call.elem_ab = 1;
    call.elem_c = sizeof(C);
    call.a_scale = scalars + 1;
    call.b_scale = g.b_scale;
    if (bias != nullptr && reinterpret_cast<std::uintptr_t>(bias) % 16 == 0) {
      call.epilogue = g.ep == epilogue::bias_gelu_tanh ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
      call.bias = bias;
      if (d::lt_gemm(p, call)) {
        if (act == kn::act_kind::gelu_erf) d::launch_bias_act(p, g.c, nullptr, act);
        return;
      }
    }
    call.epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    call.bias = nullptr;
    if (!d::lt_gemm(p, call))
      NERPIPE_THROW(config_error(errc::config_unsupported,
                                 "fp8_gemm: cuBLASLt has no FP8 algorithm for m " + std::to_string(m) + ", n " +
                                     std::to_string(n) + ", k " + std::to_string(k) + " (ldb " + std::to_string(g.b.ld) +
                                     ", ldc " + std::to_string(g.c.ld) + ")"));
    d::launch_bias_act(p, g.c, bias, act);
  }
};

template <>
struct layer_norm_impl<cuda_policy> {
  template <class T>
  static void run(const cuda_policy& p, matrix_view<T> x, matrix_view<const T> residual, const float* gamma,
                  const float* beta, float eps) {
    namespace kn = ::nerpipe::detail::kernels;
    static_assert(kn::is_kernel_type_v<T>, "nerpipe: cuda layer_norm takes float, bfloat16 or float16");
    if (x.empty()) return;  // shapes checked by ops::layer_norm
    ::nerpipe::detail::device_guard guard(p.device());
    const auto* res = residual.empty() ? nullptr : kn::as_device(residual.data);
    // Short rows (up to 8 16-byte vectors per lane): the warp-per-row kernel.
    constexpr std::size_t width = 16 / sizeof(T);
    const std::size_t vectors = x.cols / width;
    auto aligned = [](const void* ptr, std::size_t ld) {
      return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0 && ld % width == 0;
    };
    if (x.cols % width == 0 && vectors <= 32 * 8 && aligned(x.data, x.ld) &&
        (residual.empty() || aligned(residual.data, residual.ld))) {
      constexpr unsigned threads = 256;  // 8 rows per block
      const std::size_t blocks = std::min<std::size_t>((x.rows + 7) / 8, static_cast<std::size_t>(p.sm_count()) * 32);
      auto launch = [&](auto max_vec) {
        kn::layer_norm_warp_kernel<kn::device_t<T>, decltype(max_vec)::value>
            <<<static_cast<unsigned>(std::max<std::size_t>(blocks, 1)), threads, 0, p.stream()>>>(
                kn::as_device(x.data), x.ld, res, residual.ld, x.rows, x.cols, gamma, beta, eps);
      };
      if (vectors <= 32 * 2) launch(std::integral_constant<int, 2>{});
      else if (vectors <= 32 * 4) launch(std::integral_constant<int, 4>{});
      else launch(std::integral_constant<int, 8>{});
      NERPIPE_CUDA_CHECK_LAUNCH();
      return;
    }
    const bool cache = x.cols <= kn::row_cache_max_cols;
    const std::size_t smem = cache ? x.cols * sizeof(float) : 0;
    const unsigned grid = static_cast<unsigned>(std::min<std::size_t>(x.rows, std::size_t{65535} * 16));
    ::nerpipe::detail::with_row_block(x.cols, [&](auto block) {
      kn::layer_norm_kernel<kn::device_t<T>, decltype(block)::value><<<grid, decltype(block)::value, smem, p.stream()>>>(
          kn::as_device(x.data), x.ld, res, residual.ld, x.rows, x.cols, gamma, beta, eps, cache);
    });
    NERPIPE_CUDA_CHECK_LAUNCH();
  }
};

template <>
struct softmax_impl<cuda_policy> {
  template <class T>
  static void run(const cuda_policy& p, matrix_view<T> x) {
    namespace kn = ::nerpipe::detail::kernels;
    static_assert(kn::is_kernel_type_v<T>, "nerpipe: cuda softmax takes float, bfloat16 or float16");
    if (x.empty()) return;
    ::nerpipe::detail::device_guard guard(p.device());
    const bool cache = x.cols <= kn::row_cache_max_cols;
    const std::size_t smem = cache ? x.cols * sizeof(float) : 0;
    const unsigned grid = static_cast<unsigned>(std::min<std::size_t>(x.rows, std::size_t{65535} * 16));
    ::nerpipe::detail::with_row_block(x.cols, [&](auto block) {
      kn::softmax_kernel<kn::device_t<T>, decltype(block)::value><<<grid, decltype(block)::value, smem, p.stream()>>>(
          kn::as_device(x.data), x.ld, x.rows, x.cols, cache);
    });
    NERPIPE_CUDA_CHECK_LAUNCH();
  }
};

template <>
struct gelu_impl<cuda_policy> {
  template <class T>
  static void run(const cuda_policy& p, T* x, std::size_t n, gelu_form form) {
    namespace kn = ::nerpipe::detail::kernels;
    static_assert(kn::is_kernel_type_v<T>, "nerpipe: cuda gelu takes float, bfloat16 or float16");
    if (n == 0) return;
    ::nerpipe::detail::device_guard guard(p.device());
    constexpr unsigned threads = 256;
    kn::gelu_kernel<<<kn::grid_for(n, threads, p.sm_count()), threads, 0, p.stream()>>>(kn::as_device(x), n, form);
    NERPIPE_CUDA_CHECK_LAUNCH();
  }
};

template <>
struct gather_impl<cuda_policy> {
  template <class TT, class TO>
  static void run(const cuda_policy& p, matrix_view<const TT> table, const std::int32_t* ids, matrix_view<TO> out,
                  bool accumulate) {
    namespace kn = ::nerpipe::detail::kernels;
    static_assert(kn::is_kernel_type_v<TT> && kn::is_kernel_type_v<TO>,
                  "nerpipe: cuda gather takes float, bfloat16 or float16");
    if (out.empty()) return;  // shapes checked by ops::gather
    ::nerpipe::detail::device_guard guard(p.device());
    const unsigned threads = out.cols <= 64 ? 64u : out.cols <= 128 ? 128u : 256u;
    const unsigned grid = static_cast<unsigned>(std::min<std::size_t>(out.rows, std::size_t{1} << 20));
    kn::gather_kernel<<<grid, threads, 0, p.stream()>>>(kn::as_device(table.data), table.ld, ids,
                                                        kn::as_device(out.data), out.rows, out.cols, out.ld,
                                                        accumulate);
    NERPIPE_CUDA_CHECK_LAUNCH();
  }
};

template <>
struct argmax_impl<cuda_policy> {
  template <class T>
  static void run(const cuda_policy& p, matrix_view<const T> x, std::int32_t* out) {
    namespace kn = ::nerpipe::detail::kernels;
    static_assert(kn::is_kernel_type_v<T>, "nerpipe: cuda argmax takes float, bfloat16 or float16");
    if (x.rows == 0) return;  // shapes checked by ops::argmax
    ::nerpipe::detail::device_guard guard(p.device());
    constexpr unsigned threads = 256;  // 8 rows per block
    const unsigned grid = static_cast<unsigned>(std::min<std::size_t>((x.rows + 7) / 8, std::size_t{1} << 20));
    kn::argmax_kernel<<<grid, threads, 0, p.stream()>>>(kn::as_device(x.data), x.rows, x.cols, x.ld, out);
    NERPIPE_CUDA_CHECK_LAUNCH();
  }
};

template <>
struct attention_impl<cuda_policy> {
  template <class T>
  static void run(const cuda_policy& p, const attention_args<T>& a) {
    ::nerpipe::detail::run_attention(p, a, ::nerpipe::detail::attention_path::automatic);
  }
};

}  // namespace ops
NERPIPE_NAMESPACE_END

// DeBERTa's disentangled attention (its own file).
#include <nerpipe/cuda/disentangled_attention.cuh>
