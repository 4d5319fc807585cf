// SPDX-License-Identifier: Apache-2.0
//! @file spaCy's transition-based NER head (TransitionBasedParser.v2, state_type "ner"), greedy BILUO decoding.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/embedding/multi_hash_embed.hpp>
#include <nerpipe/model/spacy/loader.hpp>
#include <nerpipe/ops/ops.hpp>

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
/// maxout, the upper layer and greedy decoding with spaCy's validity rules. The lower layer reads the nI-wide
/// projection and gives nH units: nI = nH = hidden_width, or (use_upper = false) nH = the classes.
template <class Policy>
class transition_ner {
 public:
  transition_ner(const Policy& p, const spacy_model& m)
      : width_(m.ner.width),
        nF_(m.ner.nF),
        nH_(m.ner.nH),
        nP_(m.ner.nP),
        nI_(m.ner.nI),
        proj_W_(p.upload(std::span<const float>(m.ner.proj_W.data))),
        proj_b_(p.upload(std::span<const float>(m.ner.proj_b.data))),
        lower_W_(p.upload(std::span<const float>(per_feature_piece_major(m.ner.lower_W.data, m.ner.nF, m.ner.nH, m.ner.nP, m.ner.nI)))),
        lower_b_(p.upload(std::span<const float>(detail::piece_major(m.ner.lower_b.data, m.ner.nH, m.ner.nP, 1)))),
        lower_pad_(p.upload(std::span<const float>(per_feature_piece_major(m.ner.lower_pad.data, m.ner.nF, m.ner.nH, m.ner.nP, 1)))) {
    // Classes padded to a multiple of 16 (zero weights and bias; never read back) so the upper layer's
    // loop across classes has no scalar tail.
    const std::size_t A = m.actions.size();
    A_ = A;
    A_pad_ = (A + 15) / 16 * 16;
    std::vector<float> upper_Wt(A_pad_ * nH_, 0.0f), upper_b(A_pad_, 0.0f);
    std::copy(m.ner.upper_b.data.begin(), m.ner.upper_b.data.end(), upper_b.begin());
    for (std::size_t c = 0; c < A; ++c)
      for (std::size_t o = 0; o < nH_; ++o) upper_Wt[o * A_pad_ + c] = m.ner.upper_W.data[c * nH_ + o];
    upper_Wt_ = p.upload(std::span<const float>(upper_Wt));
    upper_b_ = p.upload(std::span<const float>(upper_b));
    std::vector<ner_class> classes;
    for (const auto& a : m.actions) {
      ner_class x;
      x.mv = static_cast<ner_move>(static_cast<std::uint8_t>(a.mv));
      x.label = a.label.empty() ? 0 : static_cast<std::uint32_t>(std::find(m.labels.begin(), m.labels.end(), a.label) - m.labels.begin()) + 1;
      classes.push_back(x);
    }
    // The valid classes of every decoder state (open entity and its label, last token, space token), in
    // class order: the per-step argmax then only visits those.
    const std::size_t nl = m.labels.size();
    keys_ = ner_valid_key(true, static_cast<std::uint32_t>(nl), true, true) + 1;
    std::vector<std::vector<std::uint32_t>> valid(keys_);
    for (int open = 0; open < 2; ++open)
      for (std::uint32_t label = 0; label <= (open ? nl : 0); ++label)
        for (int last = 0; last < 2; ++last)
          for (int space = 0; space < 2; ++space) {
            auto& v = valid[ner_valid_key(open != 0, label, last != 0, space != 0)];
            for (std::size_t c = 0; c < A; ++c)
              if (is_valid(classes[c], open != 0, label, last != 0, space != 0)) v.push_back(static_cast<std::uint32_t>(c));
          }
    std::vector<std::uint32_t> offsets{0}, list;
    for (const auto& v : valid) {
      list.insert(list.end(), v.begin(), v.end());
      offsets.push_back(static_cast<std::uint32_t>(list.size()));
    }
    classes_ = p.upload(std::span<const ner_class>(classes));
    valid_offsets_ = p.upload(std::span<const std::uint32_t>(offsets));
    valid_list_ = p.upload(std::span<const std::uint32_t>(list));
    valid_count_ = list.size();
  }

  [[nodiscard]] std::size_t n_actions() const noexcept { return A_; }

  /// tokvecs: the encoder output of all docs back to back (policy memory); is_space: IS_SPACE per token
  /// (host); sent_starts: 1 per token that starts a sentence (host; the parser's, see transition_parser), or
  /// empty for none, as in spaCy's NER-only pipeline. Sets out to each doc's entities.
  void forward(const Policy& p, matrix_view<const float> tokvecs, std::span<const std::size_t> lengths,
               std::span<const char> is_space, std::vector<std::vector<token_span>>& out,
               std::span<const std::uint8_t> sent_starts = {}) const {
    const std::size_t N = tokvecs.rows;
    out.assign(lengths.size(), {});
    if (N == 0) return;
    const std::size_t FHP = nF_ * nH_ * nP_;
    typename Policy::template buffer<float> hid(p, N * nI_);
    ops::gemm(p, gemm_args<float, float, float>{tokvecs, matrix_view<const float>(proj_W_.data(), nI_, width_),
                                                matrix_view<float>(hid.data(), N, nI_), true, proj_b_.data(), epilogue::bias});
    // cached[t, f, o, p] = hid[t] . W[f, o, p, :]
    typename Policy::template buffer<float> cached(p, N * FHP);
    ops::gemm(p, gemm_args<float, float, float>{matrix_view<const float>(hid.data(), N, nI_),
                                                matrix_view<const float>(lower_W_.data(), FHP, nI_),
                                                matrix_view<float>(cached.data(), N, FHP), true});
    const std::size_t docs = lengths.size();
    std::vector<std::int32_t> offsets(docs + 1, 0);
    for (std::size_t d = 0; d < docs; ++d) offsets[d + 1] = offsets[d] + static_cast<std::int32_t>(lengths[d]);
    std::vector<std::uint8_t> space(N);
    for (std::size_t i = 0; i < N; ++i) space[i] = is_space[i] != 0;
    const auto offsets_dev = p.upload(std::span<const std::int32_t>(offsets));
    const auto space_dev = p.upload(std::span<const std::uint8_t>(space));
    // Sentence starts (optional): an entity does not continue into a token that starts a sentence.
    typename Policy::template buffer<std::uint8_t> sent_dev;
    if (!sent_starts.empty()) sent_dev = p.upload(sent_starts.first(N));
    typename Policy::template buffer<std::int32_t> ents(p, N * 3), counts(p, docs);
    ner_decode_args a;
    a.cached = cached.data();
    a.lower_b = lower_b_.data();
    a.lower_pad = lower_pad_.data();
    a.upper_wt = upper_Wt_.data();
    a.upper_b = upper_b_.data();
    a.classes = classes_.data();
    a.valid_offsets = valid_offsets_.data();
    a.valid_list = valid_list_.data();
    a.valid_keys = keys_;
    a.valid_count = valid_count_;
    a.doc_offsets = offsets_dev.data();
    a.doc_offsets_host = offsets.data();
    a.is_space = space_dev.data();
    a.sent_start = sent_starts.empty() ? nullptr : sent_dev.data();
    a.docs = docs;
    a.nF = nF_;
    a.nH = nH_;
    a.nP = nP_;
    a.classes_n = A_;
    a.classes_pad = A_pad_;
    a.ents = ents.data();
    a.counts = counts.data();
    ops::ner_decode(p, a);
    std::vector<std::int32_t> counts_host(docs), ents_host(N * 3);
    p.download(std::span<const std::int32_t>(counts.data(), docs), std::span<std::int32_t>(counts_host));
    p.download(std::span<const std::int32_t>(ents.data(), N * 3), std::span<std::int32_t>(ents_host));
    for (std::size_t d = 0; d < docs; ++d) {
      const std::int32_t* e = ents_host.data() + static_cast<std::size_t>(offsets[d]) * 3;
      out[d].reserve(static_cast<std::size_t>(counts_host[d]));
      for (std::int32_t k = 0; k < counts_host[d]; ++k)
        out[d].push_back({static_cast<std::size_t>(e[k * 3]), static_cast<std::size_t>(e[k * 3 + 1]), static_cast<std::uint32_t>(e[k * 3 + 2])});
    }
  }

 private:
  /// ner.pyx is_valid with no preset entities. A sentence start on the next token forbids B and I exactly as
  /// `last` does, so the decode passes last = (last token or next token starts a sentence).
  static bool is_valid(const ner_class& a, bool open, std::uint32_t open_label, bool last, bool space) noexcept {
    switch (a.mv) {
      case ner_move::begin: return !open && !last && a.label != 0 && !space;
      case ner_move::in: return open && !last && a.label != 0 && a.label == open_label;
      case ner_move::last: return open && a.label != 0 && a.label == open_label;
      case ner_move::unit: return !open && a.label != 0 && !space;
      case ner_move::out: return !open;
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

  std::size_t width_, nF_, nH_, nP_, nI_, A_ = 0, A_pad_ = 0, keys_ = 0, valid_count_ = 0;
  typename Policy::template buffer<float> proj_W_, proj_b_, lower_W_, lower_b_, lower_pad_;
  typename Policy::template buffer<float> upper_Wt_, upper_b_;  // upper W transposed: (nH, A_pad_)
  typename Policy::template buffer<ner_class> classes_;
  typename Policy::template buffer<std::uint32_t> valid_offsets_, valid_list_;
};

NERPIPE_NAMESPACE_END
