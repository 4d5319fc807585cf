// SPDX-License-Identifier: Apache-2.0
//! @file spaCy's transition-based NER head (TransitionBasedParser.v2, state_type "ner"), greedy BILUO decoding.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/embedding/multi_hash_embed.hpp>
#include <nerpipe/model/spacy/loader.hpp>
#include <nerpipe/ops/ops.hpp>
#include <nerpipe/policy/memory_space.hpp>

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// An entity in token indices: tokens [start, end) with label index `label` into spacy_model::labels.
struct token_span {
  std::size_t start = 0, end = 0;
  std::uint32_t label = 0;
};

/// Projection (tok2vec width -> hidden), the precomputed lower layer over 3 state features,
/// maxout, the upper layer and greedy decoding with spaCy's validity rules.
template <class Policy>
class transition_ner {
  static_assert(can_access<Policy, host_space>,
                "nerpipe: transition_ner decodes on host memory (spaCy also decodes on the CPU); this policy's memory is not host memory");

 public:
  transition_ner(const Policy& p, const spacy_model& m)
      : width_(m.ner.width),
        nF_(m.ner.nF),
        nH_(m.ner.nH),
        nP_(m.ner.nP),
        proj_W_(p.upload(std::span<const float>(m.ner.proj_W.data))),
        proj_b_(p.upload(std::span<const float>(m.ner.proj_b.data))),
        lower_W_(p.upload(std::span<const float>(m.ner.lower_W.data))),
        lower_b_(m.ner.lower_b.data),
        lower_pad_(m.ner.lower_pad.data),
        upper_b_(m.ner.upper_b.data) {
    const std::size_t A = m.actions.size();
    upper_Wt_.resize(A * nH_);
    for (std::size_t c = 0; c < A; ++c)
      for (std::size_t o = 0; o < nH_; ++o) upper_Wt_[o * A + c] = m.ner.upper_W.data[c * nH_ + o];
    for (const auto& a : m.actions) {
      action x;
      x.mv = a.mv;
      x.label = a.label.empty() ? 0 : static_cast<std::uint32_t>(std::find(m.labels.begin(), m.labels.end(), a.label) - m.labels.begin()) + 1;
      actions_.push_back(x);
    }
  }

  [[nodiscard]] std::size_t n_actions() const noexcept { return actions_.size(); }

  /// tokvecs: the encoder output of all docs back to back; is_space: IS_SPACE per token. Appends
  /// each doc's entities to out[d].
  void forward(const Policy& p, matrix_view<const float> tokvecs, std::span<const std::size_t> lengths,
               std::span<const char> is_space, std::vector<std::vector<token_span>>& out) const {
    const std::size_t N = tokvecs.rows;
    out.assign(lengths.size(), {});
    if (N == 0) return;
    const std::size_t FHP = nF_ * nH_ * nP_, HP = nH_ * nP_;
    typename Policy::template buffer<float> hid(p, N * nH_);
    ops::gemm(p, gemm_args<float, float, float>{tokvecs, matrix_view<const float>(proj_W_.data(), nH_, width_),
                                                matrix_view<float>(hid.data(), N, nH_), true, proj_b_.data(), epilogue::bias});
    // cached[t, f, o, p] = hid[t] . W[f, o, p, :]
    typename Policy::template buffer<float> cached(p, N * FHP);
    ops::gemm(p, gemm_args<float, float, float>{matrix_view<const float>(hid.data(), N, nH_),
                                                matrix_view<const float>(lower_W_.data(), FHP, nH_),
                                                matrix_view<float>(cached.data(), N, FHP), true});
    const float* C = cached.data();
    const std::size_t A = actions_.size();
    std::vector<float> u(HP), h(nH_), scores(A);
    std::vector<char> valid(A);
    std::size_t offset = 0;
    for (std::size_t d = 0; d < lengths.size(); ++d) {
      const std::size_t n = lengths[d];
      bool open = false;
      std::size_t ent_start = 0;
      std::uint32_t ent_label = 0;
      for (std::size_t b0 = 0; b0 < n; ++b0) {
        const long ids[3] = {static_cast<long>(b0), open ? static_cast<long>(ent_start) : -1,
                             open ? static_cast<long>(b0) - 1 : -1};
        std::fill(u.begin(), u.end(), 0.0f);
        for (std::size_t f = 0; f < nF_; ++f) {
          const float* feat = ids[f] < 0 ? lower_pad_.data() + f * HP : C + (offset + static_cast<std::size_t>(ids[f])) * FHP + f * HP;
          detail::add_into(u.data(), feat, HP);
        }
        detail::add_into(u.data(), lower_b_.data(), HP);
        for (std::size_t o = 0; o < nH_; ++o) {
          float m = u[o * nP_];
          for (std::size_t q = 1; q < nP_; ++q) m = std::max(m, u[o * nP_ + q]);
          h[o] = m;
        }
        // scores[c] = sum_o h[o] W[c, o] in o order, then + b[c]: the same sums as one dot product per
        // class, but over the transposed weights so the loop runs across classes in SIMD lanes.
        std::fill(scores.begin(), scores.end(), 0.0f);
        for (std::size_t o = 0; o < nH_; ++o) detail::axpy_into(scores.data(), h[o], upper_Wt_.data() + o * A, A);
        detail::add_into(scores.data(), upper_b_.data(), A);
        const bool last = b0 + 1 >= n;  // buffer_length < 2
        const bool space = is_space[offset + b0] != 0;
        std::size_t best = A;
        for (std::size_t c = 0; c < A; ++c) {
          if (!is_valid(actions_[c], open, ent_label, last, space)) continue;
          if (best == A || scores[c] > scores[best]) best = c;  // ties: lowest class index
        }
        if (best == A) break;  // cannot happen: O or L is always valid
        const action& a = actions_[best];
        switch (a.mv) {
          case spacy::move::begin:
            open = true;
            ent_start = b0;
            ent_label = a.label;
            break;
          case spacy::move::last:
            out[d].push_back({ent_start, b0 + 1, ent_label - 1});
            open = false;
            break;
          case spacy::move::unit:
            out[d].push_back({b0, b0 + 1, a.label - 1});
            break;
          default: break;
        }
      }
      offset += n;
    }
  }

 private:
  struct action {
    spacy::move mv;
    std::uint32_t label;  // 0: none, else 1 + index into the model's labels
  };

  /// ner.pyx is_valid with no preset entities and no sentence boundaries inside the doc.
  static bool is_valid(const action& a, bool open, std::uint32_t open_label, bool last, bool space) noexcept {
    switch (a.mv) {
      case spacy::move::begin: return !open && !last && a.label != 0 && !space;
      case spacy::move::in: return open && !last && a.label != 0 && a.label == open_label;
      case spacy::move::last: return open && a.label != 0 && a.label == open_label;
      case spacy::move::unit: return !open && a.label != 0 && !space;
      case spacy::move::out: return !open;
      default: return false;
    }
  }

  std::size_t width_, nF_, nH_, nP_;
  std::vector<action> actions_;
  typename Policy::template buffer<float> proj_W_, proj_b_, lower_W_;
  std::vector<float> lower_b_, lower_pad_, upper_Wt_, upper_b_;  // upper W transposed: (nH, n_actions)
};

NERPIPE_NAMESPACE_END
