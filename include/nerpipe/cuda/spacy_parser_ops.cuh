// SPDX-License-Identifier: Apache-2.0
//! @file The spaCy parser's greedy decode on cuda_policy. The device computes what is wide (the projection and the
//! precomputed lower layer, GEMMs); the decode itself is a chain of small, sequential, data-dependent steps per
//! document, which spaCy also runs on the host in its GPU mode (its parser copies the precomputed layer back).
//! So here: the precomputed rows and the small tables are copied to the host once per call, decoded there by the
//! same code as cpu_policy's (detail::parser_decode_host), and the heads and labels copied back. A device decode
//! in lockstep like ner_decode's (a warp per document) is the follow-up where this shows in a profile.
#pragma once

#if !defined(__CUDACC__)
#error "nerpipe: this header needs nvcc; include <nerpipe/cuda.cuh> from a .cu file"
#endif

#include <nerpipe/config/macros.hpp>
#include <nerpipe/cpu/spacy_parser_ops.hpp>
#include <nerpipe/cuda/cuda_policy.cuh>
#include <nerpipe/cuda/error.cuh>
#include <nerpipe/ops/spacy_parser.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

NERPIPE_NAMESPACE_BEGIN
namespace ops {

template <>
struct parser_decode_impl<cuda_policy> {
  static void run(const cuda_policy& p, const parser_decode_args& a) {
    if (a.docs == 0) return;
    const std::size_t N = static_cast<std::size_t>(a.doc_offsets_host[a.docs]);
    const std::size_t FHP = a.nF * a.nP * a.nH;
    auto copy = [&](const auto* src, std::size_t n) {
      using T = std::remove_const_t<std::remove_pointer_t<decltype(src)>>;
      std::vector<T> host(n);
      p.download(std::span<const T>(src, n), std::span<T>(host));
      return host;
    };
    const auto cached = copy(a.cached, N * FHP);
    const auto lower_b = copy(a.lower_b, a.nP * a.nH);
    const auto lower_pad = copy(a.lower_pad, FHP);
    const auto upper_wt = copy(a.upper_wt, a.nH * a.classes_pad);
    const auto upper_b = copy(a.upper_b, a.classes_pad);
    const auto classes = copy(a.classes, a.classes_n);
    const auto valid_offsets = copy(a.valid_offsets, parser_valid_keys + 1);
    const auto valid_list = copy(a.valid_list, valid_offsets.back());
    std::vector<std::int32_t> heads(N), labels(N);
    parser_decode_args h = a;
    h.cached = cached.data();
    h.lower_b = lower_b.data();
    h.lower_pad = lower_pad.data();
    h.upper_wt = upper_wt.data();
    h.upper_b = upper_b.data();
    h.classes = classes.data();
    h.valid_offsets = valid_offsets.data();
    h.valid_list = valid_list.data();
    h.doc_offsets = a.doc_offsets_host;
    h.heads = heads.data();
    h.labels = labels.data();
    ::nerpipe::detail::parser_decode_host(h);
    ::nerpipe::detail::device_guard guard(p.device());
    NERPIPE_CUDA_CHECK(cudaMemcpyAsync(a.heads, heads.data(), N * sizeof(std::int32_t), cudaMemcpyHostToDevice, p.stream()));
    NERPIPE_CUDA_CHECK(cudaMemcpyAsync(a.labels, labels.data(), N * sizeof(std::int32_t), cudaMemcpyHostToDevice, p.stream()));
    p.synchronize();  // the host vectors go out of scope
  }
};

}  // namespace ops
NERPIPE_NAMESPACE_END
