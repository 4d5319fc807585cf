// SPDX-License-Identifier: Apache-2.0
//! @file spaCy's Tok2Vec.v2 as one component: multi_hash_embed then maxout_window_encoder. It serves the
//! shared `tok2vec` component the parser listens to and the senter's own tok2vec.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/embedding/multi_hash_embed.hpp>
#include <nerpipe/encoder/maxout_window_encoder.hpp>
#include <nerpipe/model/spacy/loader.hpp>
#include <nerpipe/ops/ops.hpp>

#include <cstdint>
#include <span>

NERPIPE_NAMESPACE_BEGIN

/// Tok2Vec.v2 = MultiHashEmbed.v2 >> MaxoutWindowEncoder.v2 on `Policy`.
template <class Policy>
class spacy_tok2vec {
 public:
  spacy_tok2vec(const Policy& p, const spacy::ner_weights& w) : embed_(p, w), encoder_(p, w) {}

  [[nodiscard]] std::size_t width() const noexcept { return embed_.width(); }
  [[nodiscard]] std::size_t attrs() const noexcept { return embed_.attrs(); }
  [[nodiscard]] bool has_static_vectors() const noexcept { return embed_.has_static_vectors(); }

  /// feats: n x attrs() ids (host, spacy::token_features); vec_rows: n static-vector rows (read only with
  /// static vectors); lengths: tokens per doc (n in all). out: n x width() in the policy's memory.
  void forward(const Policy& p, std::span<const std::uint64_t> feats, std::span<const std::int64_t> vec_rows,
               std::span<const std::size_t> lengths, matrix_view<float> out) const {
    const std::size_t n = out.rows, W = width();
    if (n == 0) return;
    typename Policy::template buffer<float> X(p, n * W);
    embed_.forward(p, feats, vec_rows, matrix_view<float>(X.data(), n, W));
    encoder_.forward(p, matrix_view<const float>(X.data(), n, W), lengths, out);
  }

 private:
  multi_hash_embed<Policy> embed_;
  maxout_window_encoder<Policy> encoder_;
};

NERPIPE_NAMESPACE_END
