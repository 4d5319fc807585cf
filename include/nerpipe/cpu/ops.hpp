// SPDX-License-Identifier: Apache-2.0
//! @file The cpu_policy specialisations of every operation: CBLAS for GEMMs, threaded loops for the rest
//! (element-wise work through the vectorised kernels of cpu/vector_math.hpp).
//! fp32 only: the CPU path is the numerical oracle for the GPU, and fp32 is what the references run.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/cpu/vector_math.hpp>
#include <nerpipe/ops/ops.hpp>
#include <nerpipe/policy/cpu_policy.hpp>

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <type_traits>
#include <vector>

// OpenBLAS threads itself by default; we split work over the policy's own pool instead so that
// several CPU replicas do not oversubscribe the cores. Weak, so any other CBLAS links too.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

NERPIPE_NAMESPACE_BEGIN
namespace detail {
inline void single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (openblas_set_num_threads != nullptr) openblas_set_num_threads(1);
  });
}

template <class T>
inline constexpr bool is_f32 = std::is_same_v<std::remove_const_t<T>, float>;
}  // namespace detail

namespace ops {

template <>
struct gemm_impl<cpu_policy> {
  template <class TA, class TB, class TC>
  static void run(const cpu_policy& p, const gemm_args<TA, TB, TC>& g) {
    static_assert(detail::is_f32<TA> && detail::is_f32<TB> && detail::is_f32<TC>,
                  "nerpipe: cpu_policy gemm is fp32 only (convert half-precision weights to float when loading)");
    ::nerpipe::detail::single_threaded_blas();
    const std::size_t m = g.c.rows, n = g.c.cols, k = g.a.cols;
    // floor: parallel_for makes n / grain chunks, so ceil left threads idle (128 rows, 3 threads: 2 chunks)
    const auto rows_per_task = std::max<std::size_t>(16, m / p.threads());
    p.pool().parallel_for(
        m,
        [&](std::size_t r0, std::size_t r1) {
          const std::size_t rows = r1 - r0;
          if (k == 0) {
            for (std::size_t r = r0; r < r1; ++r)
              for (std::size_t c = 0; c < n; ++c) g.c(r, c) = g.beta == 0.0f ? 0.0f : g.beta * g.c(r, c);
          } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, g.b_transposed ? CblasTrans : CblasNoTrans, static_cast<int>(rows),
                        static_cast<int>(n), static_cast<int>(k), g.alpha, g.a.row(r0), static_cast<int>(g.a.ld),
                        g.b.data, static_cast<int>(g.b.ld), g.beta, g.c.row(r0), static_cast<int>(g.c.ld));
          }
          if (g.ep == epilogue::none) return;
          // The epilogue runs on the rows this thread just wrote, while they are still in cache.
          const auto act = g.ep == epilogue::bias_gelu        ? ::nerpipe::detail::vmath::act::gelu_erf
                           : g.ep == epilogue::bias_gelu_tanh ? ::nerpipe::detail::vmath::act::gelu_tanh
                                                              : ::nerpipe::detail::vmath::act::none;
          for (std::size_t r = r0; r < r1; ++r) ::nerpipe::detail::vmath::bias_act(g.c.row(r), g.bias, n, act);
        },
        rows_per_task);
  }
};

template <>
struct layer_norm_impl<cpu_policy> {
  static void run(const cpu_policy& p, matrix_view<float> x, matrix_view<const float> residual, const float* gamma,
                  const float* beta, float eps) {
    const std::size_t n = x.cols;
    p.pool().parallel_for(
        x.rows,
        [&](std::size_t r0, std::size_t r1) {
          for (std::size_t r = r0; r < r1; ++r)
            ::nerpipe::detail::vmath::layer_norm_row(x.row(r), residual.empty() ? nullptr : residual.row(r), gamma,
                                                     beta, n, eps);
        },
        64);
  }
};

template <>
struct softmax_impl<cpu_policy> {
  static void run(const cpu_policy& p, matrix_view<float> x) {
    p.pool().parallel_for(
        x.rows,
        [&](std::size_t r0, std::size_t r1) {
          for (std::size_t r = r0; r < r1; ++r) ::nerpipe::detail::vmath::softmax_row(x.row(r), x.cols);
        },
        64);
  }
};

template <>
struct gelu_impl<cpu_policy> {
  static void run(const cpu_policy& p, float* x, std::size_t n, gelu_form form) {
    p.pool().parallel_for(
        n,
        [&](std::size_t i0, std::size_t i1) {
          // Vectorised; agrees with gelu_scalar except where erff's cancellation makes that one worse.
          ::nerpipe::detail::vmath::bias_act(x + i0, nullptr, i1 - i0,
                                             form == gelu_form::tanh ? ::nerpipe::detail::vmath::act::gelu_tanh
                                                                     : ::nerpipe::detail::vmath::act::gelu_erf);
        },
        4096);
  }
};

template <>
struct gather_impl<cpu_policy> {
  static void run(const cpu_policy& p, matrix_view<const float> table, const std::int32_t* ids,
                  matrix_view<float> out, bool accumulate) {
    p.pool().parallel_for(
        out.rows,
        [&](std::size_t r0, std::size_t r1) {
          for (std::size_t r = r0; r < r1; ++r) {
            const float* src = table.row(static_cast<std::size_t>(ids[r]));
            float* dst = out.row(r);
            if (accumulate)
              for (std::size_t c = 0; c < out.cols; ++c) dst[c] += src[c];
            else
              std::copy(src, src + out.cols, dst);
          }
        },
        64);
  }
};

template <>
struct argmax_impl<cpu_policy> {
  static void run(const cpu_policy&, matrix_view<const float> x, std::int32_t* out) {
    for (std::size_t r = 0; r < x.rows; ++r) {
      const float* row = x.row(r);
      std::size_t best = 0;
      for (std::size_t c = 1; c < x.cols; ++c)
        if (row[c] > row[best]) best = c;
      out[r] = static_cast<std::int32_t>(best);
    }
  }
};

namespace detail {
/// One unit of CPU attention work: query rows [r0, r1) of sequence `seq`, head `head`.
struct attention_task {
  std::uint32_t seq, head, r0, r1;
  std::uint64_t cost;  // rows * sequence length: what the two sgemms and the softmax scale with
};
}  // namespace detail

template <>
struct attention_impl<cpu_policy> {
  // Per task: scores = scale q k^T (sgemm), the rows' softmax (vectorised), out = P v (sgemm). Few
  // long sequences are split by query rows so every thread has work; tasks are taken longest first
  // from a shared counter, so ragged lengths balance. Scores live in a per-thread buffer that only
  // grows (at most 512 x 512 floats for BERT) and the task list is reused: steady-state calls allocate nothing.
  static void run(const cpu_policy& p, const attention_args<float>& a) {
    ::nerpipe::detail::single_threaded_blas();
    const std::int32_t* offs = a.seq_offsets_host != nullptr ? a.seq_offsets_host : a.seq_offsets;
    const float scale = a.scale != 0.0f ? a.scale : 1.0f / std::sqrt(static_cast<float>(a.head_dim));
    const std::size_t threads = p.threads();
    std::size_t longest = 0;
    for (std::size_t s = 0; s < a.num_seqs; ++s)
      longest = std::max(longest, static_cast<std::size_t>(offs[s + 1] - offs[s]));
    if (longest == 0 || a.heads == 0) return;
    // Row blocks: whole sequences when there are plenty of (sequence, head) pairs per thread (measured
    // fastest on one thread: 64-row blocks cost 10-25% at lengths 128-512), otherwise blocks of at
    // least 64 rows (32-row ones ran the sgemms at 60-80% of whole-sequence speed).
    const std::size_t pairs = a.num_seqs * a.heads, want = 4 * threads;
    std::size_t rows_per_task = longest;
    if (threads > 1 && pairs < want) {
      const std::size_t splits = (want + pairs - 1) / pairs;
      rows_per_task = std::max<std::size_t>(64, (longest + splits - 1) / splits);
    }
    // The calling thread's list, reused; the workers reach it through this reference (naming the
    // thread_local inside the lambda would give each worker its own, empty, list).
    static thread_local std::vector<detail::attention_task> task_list;
    std::vector<detail::attention_task>& tasks = task_list;
    tasks.clear();
    for (std::size_t s = 0; s < a.num_seqs; ++s) {
      const auto len = static_cast<std::size_t>(offs[s + 1] - offs[s]);
      for (std::size_t r0 = 0; r0 < len; r0 += rows_per_task) {
        const std::size_t r1 = std::min(len, r0 + rows_per_task);
        for (std::size_t h = 0; h < a.heads; ++h)
          tasks.push_back({static_cast<std::uint32_t>(s), static_cast<std::uint32_t>(h), static_cast<std::uint32_t>(r0),
                           static_cast<std::uint32_t>(r1), static_cast<std::uint64_t>(r1 - r0) * len});
      }
    }
    if (threads > 1)
      std::stable_sort(tasks.begin(), tasks.end(), [](const auto& x, const auto& y) { return x.cost > y.cost; });

    const auto run_task = [&](const detail::attention_task& t, std::vector<float>& scores) {
      const auto begin = static_cast<std::size_t>(offs[t.seq]);
      const auto len = static_cast<std::size_t>(offs[t.seq + 1] - offs[t.seq]);
      const std::size_t rows = t.r1 - t.r0, col = t.head * a.head_dim;
      if (scores.size() < rows * len) scores.resize(rows * len);
      const int d = static_cast<int>(a.head_dim), l = static_cast<int>(len), m = static_cast<int>(rows);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, l, d, scale, a.q.row(begin + t.r0) + col,
                  static_cast<int>(a.q.ld), a.k.row(begin) + col, static_cast<int>(a.k.ld), 0.0f, scores.data(), l);
      for (std::size_t r = 0; r < rows; ++r) ::nerpipe::detail::vmath::softmax_row(scores.data() + r * len, len);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, d, l, 1.0f, scores.data(), l, a.v.row(begin) + col,
                  static_cast<int>(a.v.ld), 0.0f, a.out.row(begin + t.r0) + col, static_cast<int>(a.out.ld));
    };
    std::atomic<std::size_t> next{0};
    const std::size_t workers = std::min(threads, tasks.size());
    p.pool().parallel_for(workers, [&](std::size_t, std::size_t) {
      static thread_local std::vector<float> scores;
      for (std::size_t i = next.fetch_add(1, std::memory_order_relaxed); i < tasks.size();
           i = next.fetch_add(1, std::memory_order_relaxed))
        run_task(tasks[i], scores);
    });
  }
};

}  // namespace ops
NERPIPE_NAMESPACE_END

// DeBERTa's disentangled attention (its own file; it needs the helpers above).
#include <nerpipe/cpu/disentangled_attention.hpp>
