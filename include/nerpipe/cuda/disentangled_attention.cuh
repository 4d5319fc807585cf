// SPDX-License-Identifier: Apache-2.0
//! @file The cuda_policy disentangled attention (DeBERTa): kernels/disentangled_attention.cuh, for float,
//! bfloat16 and float16 at head dims up to 128.
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
#include <nerpipe/cuda/kernels/disentangled_attention.cuh>
#include <nerpipe/ops/disentangled_attention.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

NERPIPE_NAMESPACE_BEGIN
namespace ops {

template <>
struct disentangled_attention_impl<cuda_policy> {
  template <class T>
  static void run(const cuda_policy& p, const disentangled_attention_args<T>& a) {
    namespace kn = ::nerpipe::detail::kernels;
    static_assert(kn::is_kernel_type_v<T>, "nerpipe: cuda disentangled_attention takes float, bfloat16 or float16");
    // The arguments were checked by ops::disentangled_attention, as on every policy.
    if (a.num_seqs == 0 || a.heads == 0) return;
    std::size_t max_len = a.max_seq_len;
    if (max_len == 0 && a.seq_offsets_host != nullptr)
      for (std::size_t s = 0; s < a.num_seqs; ++s)
        max_len = std::max(max_len, static_cast<std::size_t>(a.seq_offsets_host[s + 1] - a.seq_offsets_host[s]));
    if (max_len == 0) return;
    if (a.head_dim > 128)
      NERPIPE_THROW(config_error(errc::config_unsupported, "disentangled_attention: head_dim " +
                                                               std::to_string(a.head_dim) + " is not supported; expected <= 128"));
    const float scale = a.scale != 0.0f ? a.scale : 1.0f / std::sqrt(static_cast<float>(a.head_dim));
    ::nerpipe::detail::device_guard guard(p.device());
    const dim3 grid(static_cast<unsigned>(a.num_seqs),
                    static_cast<unsigned>((max_len + kn::disentangled_rows - 1) / kn::disentangled_rows),
                    static_cast<unsigned>(a.heads));
    const auto* pk = a.pos_key.rows != 0 ? kn::as_device(a.pos_key.data) : nullptr;
    const auto* pq = a.pos_query.rows != 0 ? kn::as_device(a.pos_query.data) : nullptr;
    const int hd = static_cast<int>(a.head_dim), md = static_cast<int>(a.max_distance);
    auto launch = [&](auto dims) {
      kn::disentangled_attention_kernel<kn::device_t<T>, decltype(dims)::value><<<grid, 128, 0, p.stream()>>>(
          kn::as_device(a.q.data), a.q.ld, kn::as_device(a.k.data), a.k.ld, kn::as_device(a.v.data), a.v.ld,
          kn::as_device(a.out.data), a.out.ld, a.seq_offsets, pk, a.pos_key.ld, pq, a.pos_query.ld, a.rel_index, md, hd,
          scale);
    };
    if (hd <= 32) launch(std::integral_constant<int, 1>{});
    else if (hd <= 64) launch(std::integral_constant<int, 2>{});
    else launch(std::integral_constant<int, 4>{});
    NERPIPE_CUDA_CHECK_LAUNCH();
  }
};

}  // namespace ops
NERPIPE_NAMESPACE_END
