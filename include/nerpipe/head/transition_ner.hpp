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

namespace detail {

/// One transition step's hidden layer: h[o] = max_p (((0 + F0[p, o]) + F1[p, o]) + ... + b[p, o]) over the
/// nF precomputed feature rows (piece-major, nP x nH each), in thinc's order of additions.
NERPIPE_SPACY_INLINE void ner_hidden_body(const float* const* feats, std::size_t nF, const float* __restrict b, std::size_t nH,
                                          std::size_t nP, float* __restrict h) {
  std::size_t i = 0;
  for (; i + 16 <= nH; i += 16) {
    float m[16];
    for (std::size_t p = 0; p < nP; ++p) {
      float u[16] = {};
      for (std::size_t f = 0; f < nF; ++f) {
        const float* __restrict x = feats[f] + p * nH + i;
        for (std::size_t k = 0; k < 16; ++k) u[k] += x[k];
      }
      const float* __restrict bp = b + p * nH + i;
      for (std::size_t k = 0; k < 16; ++k) u[k] += bp[k];
      if (p == 0)
        for (std::size_t k = 0; k < 16; ++k) m[k] = u[k];
      else
        for (std::size_t k = 0; k < 16; ++k) m[k] = u[k] > m[k] ? u[k] : m[k];
    }
    for (std::size_t k = 0; k < 16; ++k) h[i + k] = m[k];
  }
  for (; i < nH; ++i) {
    float m = 0.0f;
    for (std::size_t p = 0; p < nP; ++p) {
      float u = 0.0f;
      for (std::size_t f = 0; f < nF; ++f) u += feats[f][p * nH + i];
      u += b[p * nH + i];
      m = p == 0 ? u : std::max(m, u);
    }
    h[i] = m;
  }
}
inline void ner_hidden_generic(const float* const* feats, std::size_t nF, const float* b, std::size_t nH, std::size_t nP, float* h) {
  ner_hidden_body(feats, nF, b, nH, nP, h);
}
#if NERPIPE_SPACY_DISPATCH
NERPIPE_SPACY_AVX512 inline void ner_hidden_avx512(const float* const* feats, std::size_t nF, const float* b, std::size_t nH,
                                                   std::size_t nP, float* h) {
  ner_hidden_body(feats, nF, b, nH, nP, h);
}
#endif

}  // namespace detail

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
        lower_W_(p.upload(std::span<const float>(per_feature_piece_major(m.ner.lower_W.data, m.ner.nF, m.ner.nH, m.ner.nP, m.ner.nH)))),
        lower_b_(detail::piece_major(m.ner.lower_b.data, m.ner.nH, m.ner.nP, 1)),
        lower_pad_(per_feature_piece_major(m.ner.lower_pad.data, m.ner.nF, m.ner.nH, m.ner.nP, 1)) {
    // Classes padded to a multiple of 16 (zero weights and bias; never read back) so the upper layer's
    // loop across classes has no scalar tail.
    const std::size_t A = m.actions.size();
    A_pad_ = (A + 15) / 16 * 16;
    upper_Wt_.assign(A_pad_ * nH_, 0.0f);
    upper_b_.assign(A_pad_, 0.0f);
    std::copy(m.ner.upper_b.data.begin(), m.ner.upper_b.data.end(), upper_b_.begin());
    for (std::size_t c = 0; c < A; ++c)
      for (std::size_t o = 0; o < nH_; ++o) upper_Wt_[o * A_pad_ + c] = m.ner.upper_W.data[c * nH_ + o];
    for (const auto& a : m.actions) {
      action x;
      x.mv = a.mv;
      x.label = a.label.empty() ? 0 : static_cast<std::uint32_t>(std::find(m.labels.begin(), m.labels.end(), a.label) - m.labels.begin()) + 1;
      actions_.push_back(x);
    }
    // The valid classes of every decoder state (open entity and its label, last token, space token), in
    // class order: the per-step argmax then only visits those.
    const std::size_t nl = m.labels.size();
    valid_.resize(valid_key(true, static_cast<std::uint32_t>(nl), true, true) + 1);
    for (int open = 0; open < 2; ++open)
      for (std::uint32_t label = 0; label <= (open ? nl : 0); ++label)
        for (int last = 0; last < 2; ++last)
          for (int space = 0; space < 2; ++space) {
            auto& v = valid_[valid_key(open != 0, label, last != 0, space != 0)];
            for (std::size_t c = 0; c < A; ++c)
              if (is_valid(actions_[c], open != 0, label, last != 0, space != 0)) v.push_back(static_cast<std::uint32_t>(c));
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
    const std::size_t Ap = A_pad_;
    std::vector<float> h(nH_), scores(Ap);
    std::vector<const float*> feats(nF_);
    const bool wide = detail::spacy_avx512();
    std::size_t offset = 0;
    for (std::size_t d = 0; d < lengths.size(); ++d) {
      const std::size_t n = lengths[d];
      bool open = false;
      std::size_t ent_start = 0;
      std::uint32_t ent_label = 0;
      for (std::size_t b0 = 0; b0 < n; ++b0) {
        const long ids[3] = {static_cast<long>(b0), open ? static_cast<long>(ent_start) : -1,
                             open ? static_cast<long>(b0) - 1 : -1};
        for (std::size_t f = 0; f < nF_; ++f)
          feats[f] = ids[f] < 0 ? lower_pad_.data() + f * HP : C + (offset + static_cast<std::size_t>(ids[f])) * FHP + f * HP;
#if NERPIPE_SPACY_DISPATCH
        if (wide) detail::ner_hidden_avx512(feats.data(), nF_, lower_b_.data(), nH_, nP_, h.data());
        else
#endif
          detail::ner_hidden_generic(feats.data(), nF_, lower_b_.data(), nH_, nP_, h.data());
        (void)wide;
        // scores[c] = sum_o h[o] W[c, o] in o order, then + b[c]: the same sums as one dot product per
        // class, but over the transposed weights so the loop runs across classes in SIMD lanes.
#if NERPIPE_SPACY_AXPY_WIDE
        if (wide) detail::linear_t_avx512(h.data(), nH_, upper_Wt_.data(), upper_b_.data(), Ap, scores.data());
        else
#endif
          detail::linear_t_generic(h.data(), nH_, upper_Wt_.data(), upper_b_.data(), Ap, scores.data());
        const bool last = b0 + 1 >= n;  // buffer_length < 2
        const bool space = is_space[offset + b0] != 0;
        std::size_t best = A;
        for (const std::uint32_t c : valid_[valid_key(open, ent_label, last, space)])
          if (best == A || scores[c] > scores[best]) best = c;  // ascending class order, so ties: lowest class index
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

  static std::size_t valid_key(bool open, std::uint32_t label, bool last, bool space) noexcept {
    return (open ? 1 + std::size_t{label} : 0) * 4 + (last ? 2 : 0) + (space ? 1 : 0);
  }

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

  /// (nF, nO, nP, rest) -> (nF, nP, nO, rest): piece-major per state feature.
  static std::vector<float> per_feature_piece_major(const std::vector<float>& w, std::size_t nF, std::size_t nO, std::size_t nP,
                                                    std::size_t rest) {
    std::vector<float> out;
    out.reserve(w.size());
    const std::size_t blk = nO * nP * rest;
    for (std::size_t f = 0; f < nF; ++f) {
      const std::vector<float> one(w.begin() + static_cast<std::ptrdiff_t>(f * blk), w.begin() + static_cast<std::ptrdiff_t>((f + 1) * blk));
      const auto pm = detail::piece_major(one, nO, nP, rest);
      out.insert(out.end(), pm.begin(), pm.end());
    }
    return out;
  }

  std::size_t width_, nF_, nH_, nP_, A_pad_ = 0;
  std::vector<action> actions_;
  std::vector<std::vector<std::uint32_t>> valid_;  // by valid_key(): valid classes, ascending
  typename Policy::template buffer<float> proj_W_, proj_b_, lower_W_;
  std::vector<float> lower_b_, lower_pad_, upper_Wt_, upper_b_;  // lower: piece-major; upper W transposed: (nH, A_pad_)
};

NERPIPE_NAMESPACE_END
