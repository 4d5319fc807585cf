// SPDX-License-Identifier: Apache-2.0
//! @file spaCy's `senter` (SentenceRecognizer: spacy.Tagger.v2 over its own Tok2Vec.v2): per token, class
//! "S" (1) starts a sentence. Disabled by default in en_core_web_sm/md; the alternative to the parser.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/encoder/spacy_tok2vec.hpp>
#include <nerpipe/model/spacy/parser_loader.hpp>
#include <nerpipe/ops/ops.hpp>

#include <cstdint>
#include <span>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// tok2vec -> linear (the softmax layer without normalisation: normalize = false returns logits at inference)
/// -> argmax per token (ties: "I", as numpy's argmax picks the first).
template <class Policy>
class spacy_senter {
 public:
  spacy_senter(const Policy& p, const spacy::senter_weights& w)
      : tok2vec_(p, w.tok2vec), W_(p.upload(std::span<const float>(w.W.data))), b_(p.upload(std::span<const float>(w.b.data))) {}

  [[nodiscard]] const spacy_tok2vec<Policy>& tok2vec() const noexcept { return tok2vec_; }

  /// feats / vec_rows: the senter tok2vec's features (spacy::token_features with its attrs); lengths: tokens per
  /// doc. sent_starts (host, one per token): 1 where a sentence starts. Token 0 of a doc always starts one (the
  /// tokenizer set it; the senter only fills unset tokens).
  void forward(const Policy& p, std::span<const std::uint64_t> feats, std::span<const std::int64_t> vec_rows,
               std::span<const std::size_t> lengths, std::vector<std::uint8_t>& sent_starts) const {
    std::size_t N = 0;
    for (auto l : lengths) N += l;
    sent_starts.assign(N, 0);
    if (N == 0) return;
    const std::size_t W = tok2vec_.width();
    typename Policy::template buffer<float> X(p, N * W), Z(p, N * 2);
    tok2vec_.forward(p, feats, vec_rows, lengths, matrix_view<float>(X.data(), N, W));
    ops::gemm(p, gemm_args<float, float, float>{matrix_view<const float>(X.data(), N, W), matrix_view<const float>(W_.data(), 2, W),
                                                matrix_view<float>(Z.data(), N, 2), true, b_.data(), epilogue::bias});
    std::vector<float> z(N * 2);
    p.download(std::span<const float>(Z.data(), N * 2), std::span<float>(z));
    std::size_t t = 0;
    for (auto l : lengths)
      for (std::size_t i = 0; i < l; ++i, ++t) sent_starts[t] = i == 0 || z[t * 2 + 1] > z[t * 2] ? 1 : 0;
  }

 private:
  spacy_tok2vec<Policy> tok2vec_;
  typename Policy::template buffer<float> W_, b_;
};

NERPIPE_NAMESPACE_END
