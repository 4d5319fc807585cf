// SPDX-License-Identifier: Apache-2.0
//! @file The cpu_policy disentangled attention (DeBERTa): per (sequence, head, query rows) task, the content
//! scores, the c2p scores against the position rows the task's distances reach and the p2c scores of its keys are
//! three sgemms; the relative terms are then gathered into the score rows, softmax, and one sgemm with v.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/cpu/ops.hpp>
#include <nerpipe/cpu/vector_math.hpp>
#include <nerpipe/ops/disentangled_attention.hpp>
#include <nerpipe/policy/cpu_policy.hpp>

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

NERPIPE_NAMESPACE_BEGIN
namespace ops {

template <>
struct disentangled_attention_impl<cpu_policy> {
  struct task {
    std::uint32_t seq, head, r0, r1;
    std::uint64_t cost;
  };
  struct scratch {
    std::vector<float> scores, c2p, p2c;
  };

  static void run(const cpu_policy& p, const disentangled_attention_args<float>& a) {
    ::nerpipe::detail::single_threaded_blas();
    const std::int32_t* offs = a.seq_offsets_host != nullptr ? a.seq_offsets_host : a.seq_offsets;
    const float scale = a.scale != 0.0f ? a.scale : 1.0f / std::sqrt(static_cast<float>(a.head_dim));
    const std::size_t threads = p.threads();
    std::size_t longest = 0;
    for (std::size_t s = 0; s < a.num_seqs; ++s)
      longest = std::max(longest, static_cast<std::size_t>(offs[s + 1] - offs[s]));
    if (longest == 0 || a.heads == 0) return;
    // Row blocks as attention_impl<cpu_policy> cuts them: whole sequences unless there are too few per thread.
    const std::size_t pairs = a.num_seqs * a.heads, want = 4 * threads;
    std::size_t rows_per_task = longest;
    if (threads > 1 && pairs < want) {
      const std::size_t splits = (want + pairs - 1) / pairs;
      rows_per_task = std::max<std::size_t>(64, (longest + splits - 1) / splits);
    }
    static thread_local std::vector<task> task_list;
    std::vector<task>& tasks = task_list;
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
      std::stable_sort(tasks.begin(), tasks.end(), [](const task& x, const task& y) { return x.cost > y.cost; });

    const bool c2p = a.pos_key.rows != 0, p2c = a.pos_query.rows != 0;
    const auto run_task = [&](const task& t, scratch& w) {
      const auto begin = static_cast<std::size_t>(offs[t.seq]);
      const auto len = static_cast<std::size_t>(offs[t.seq + 1] - offs[t.seq]);
      const std::size_t rows = t.r1 - t.r0, col = t.head * a.head_dim;
      const int d = static_cast<int>(a.head_dim), l = static_cast<int>(len), m = static_cast<int>(rows);
      if (w.scores.size() < rows * len) w.scores.resize(rows * len);
      float* sc = w.scores.data();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, l, d, scale, a.q.row(begin + t.r0) + col,
                  static_cast<int>(a.q.ld), a.k.row(begin) + col, static_cast<int>(a.k.ld), 0.0f, sc, l);
      if (c2p || p2c) {
        // Query i, key j: table row rel_index[i - j + max_distance - 1]; the rows this task reaches are [lo, hi].
        const std::int32_t* idx = a.rel_index + (a.max_distance - 1);
        std::int32_t lo = idx[static_cast<std::ptrdiff_t>(t.r0) - (l - 1)], hi = lo;
        for (std::ptrdiff_t dist = static_cast<std::ptrdiff_t>(t.r0) - (l - 1); dist < static_cast<std::ptrdiff_t>(t.r1); ++dist) {
          lo = std::min(lo, idx[dist]);
          hi = std::max(hi, idx[dist]);
        }
        const int span = hi - lo + 1;
        if (c2p) {
          if (w.c2p.size() < rows * static_cast<std::size_t>(span)) w.c2p.resize(rows * static_cast<std::size_t>(span));
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, span, d, scale, a.q.row(begin + t.r0) + col,
                      static_cast<int>(a.q.ld), a.pos_key.row(static_cast<std::size_t>(lo)) + col,
                      static_cast<int>(a.pos_key.ld), 0.0f, w.c2p.data(), span);
        }
        if (p2c) {
          if (w.p2c.size() < len * static_cast<std::size_t>(span)) w.p2c.resize(len * static_cast<std::size_t>(span));
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, l, span, d, scale, a.k.row(begin) + col,
                      static_cast<int>(a.k.ld), a.pos_query.row(static_cast<std::size_t>(lo)) + col,
                      static_cast<int>(a.pos_query.ld), 0.0f, w.p2c.data(), span);
        }
        for (std::size_t r = 0; r < rows; ++r) {
          float* row = sc + r * len;
          const std::int32_t* ri = idx + static_cast<std::ptrdiff_t>(t.r0 + r);  // ri[-j]: key j
          if (c2p) {
            const float* cr = w.c2p.data() + r * static_cast<std::size_t>(span);
            for (std::size_t j = 0; j < len; ++j) row[j] += cr[ri[-static_cast<std::ptrdiff_t>(j)] - lo];
          }
          if (p2c) {
            const float* pr = w.p2c.data();
            for (std::size_t j = 0; j < len; ++j)
              row[j] += pr[j * static_cast<std::size_t>(span) + static_cast<std::size_t>(ri[-static_cast<std::ptrdiff_t>(j)] - lo)];
          }
        }
      }
      for (std::size_t r = 0; r < rows; ++r) ::nerpipe::detail::vmath::softmax_row(sc + r * len, len);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, d, l, 1.0f, sc, l, a.v.row(begin) + col,
                  static_cast<int>(a.v.ld), 0.0f, a.out.row(begin + t.r0) + col, static_cast<int>(a.out.ld));
    };
    std::atomic<std::size_t> next{0};
    const std::size_t workers = std::min(threads, tasks.size());
    p.pool().parallel_for(workers, [&](std::size_t, std::size_t) {
      static thread_local scratch w;
      for (std::size_t i = next.fetch_add(1, std::memory_order_relaxed); i < tasks.size();
           i = next.fetch_add(1, std::memory_order_relaxed))
        run_task(tasks[i], w);
    });
  }
};

}  // namespace ops
NERPIPE_NAMESPACE_END
