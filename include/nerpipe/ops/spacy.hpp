// SPDX-License-Identifier: Apache-2.0
//! @file Operations of the spaCy family: hashed embeddings, maxout, window (seq2col) layout, row moves, greedy NER decoding.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/ops/checks.hpp>
#include <nerpipe/ops/common.hpp>

#include <array>
#include <cstddef>
#include <cstdint>

NERPIPE_NAMESPACE_BEGIN
namespace detail {

/// MurmurHash3_x64_128 of the 8 little-endian bytes of `key` (thinc's `hash` op for uint64 ids), as
/// four 32-bit words [h1 lo, h1 hi, h2 lo, h2 hi]. Host and device share this definition.
NERPIPE_HOST_DEVICE inline void murmurhash3_x64_128_u64_words(std::uint64_t key, std::uint32_t seed, std::uint32_t* out) noexcept {
  constexpr std::uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;
  std::uint64_t h1 = seed, h2 = seed;
  std::uint64_t k1 = key;  // the 8-byte tail
  k1 *= c1;
  k1 = (k1 << 31) | (k1 >> 33);
  k1 *= c2;
  h1 ^= k1;
  h1 ^= 8;
  h2 ^= 8;
  h1 += h2;
  h2 += h1;
  std::uint64_t k[2] = {h1, h2};
  for (auto& x : k) {  // fmix64
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
  }
  h1 = k[0] + k[1];
  h2 = k[1] + h1;
  out[0] = static_cast<std::uint32_t>(h1);
  out[1] = static_cast<std::uint32_t>(h1 >> 32);
  out[2] = static_cast<std::uint32_t>(h2);
  out[3] = static_cast<std::uint32_t>(h2 >> 32);
}

/// The same hash as an array (host).
[[nodiscard]] inline std::array<std::uint32_t, 4> murmurhash3_x64_128_u64(std::uint64_t key, std::uint32_t seed) noexcept {
  std::array<std::uint32_t, 4> h{};
  murmurhash3_x64_128_u64_words(key, seed, h.data());
  return h;
}

}  // namespace detail

/// The moves of spaCy's BILUO NER transition system, as the decode op reads them.
enum class ner_move : std::uint8_t { missing = 0, begin = 1, in = 2, last = 3, unit = 4, out = 5 };

/// One output class of the NER decoder: its move and label (0: none, else 1 + label index).
struct ner_class {
  ner_move mv = ner_move::missing;
  std::uint32_t label = 0;
};

/// Key of a decoder state in the validity table: (open ? 1 + open label : 0) * 4 + last * 2 + space.
NERPIPE_HOST_DEVICE inline std::size_t ner_valid_key(bool open, std::uint32_t label, bool last, bool space) noexcept {
  return (open ? 1 + std::size_t{label} : 0) * 4 + (last ? 2 : 0) + (space ? 1 : 0);
}

/// Arguments of the greedy transition decode. Pointers are in the policy's memory unless noted.
struct ner_decode_args {
  const float* cached = nullptr;      ///< [N, nF * nP * nH]: each token's precomputed lower layer, per feature piece-major
  const float* lower_b = nullptr;     ///< [nP * nH], piece-major
  const float* lower_pad = nullptr;   ///< [nF * nP * nH]: the rows of absent features
  const float* upper_wt = nullptr;    ///< [nH, classes_pad]: the upper layer transposed (padding columns zero)
  const float* upper_b = nullptr;     ///< [classes_pad]
  const ner_class* classes = nullptr; ///< [classes]
  const std::uint32_t* valid_offsets = nullptr;  ///< [keys + 1] into valid_list
  const std::uint32_t* valid_list = nullptr;     ///< the valid classes of each state key, ascending
  std::size_t valid_keys = 0;
  std::size_t valid_count = 0;                   ///< entries of valid_list (0: unknown; cuda_policy then reads it from global memory)
  const std::int32_t* doc_offsets = nullptr;     ///< [docs + 1] token offsets
  const std::int32_t* doc_offsets_host = nullptr;///< the same offsets on the host
  const std::uint8_t* is_space = nullptr;        ///< [N]
  /// [N] 1 where a token starts a sentence (the parser's or senter's), or nullptr: none inside a doc. An entity
  /// never continues into such a token (ner.pyx Begin/In.is_valid: B and I need the next token's sent_start != 1).
  const std::uint8_t* sent_start = nullptr;
  std::size_t docs = 0, nF = 3, nH = 0, nP = 0, classes_n = 0, classes_pad = 0;
  /// Out: entity k of doc d is ents[(doc_offsets[d] + k) * 3 + {0,1,2}] = {start token, end token, label index};
  /// counts[d] entities (a doc of n tokens has at most n).
  std::int32_t* ents = nullptr;
  std::int32_t* counts = nullptr;
};

namespace ops {

template <class Policy>
struct hash_embed_impl {
  NERPIPE_MISSING_OP("hash_embed");
};
template <class Policy>
struct bias_maxout_impl {
  NERPIPE_MISSING_OP("bias_maxout");
};
template <class Policy>
struct fill_impl {
  NERPIPE_MISSING_OP("fill");
};
template <class Policy>
struct add_impl {
  NERPIPE_MISSING_OP("add");
};
template <class Policy>
struct zero_rows_impl {
  NERPIPE_MISSING_OP("zero_rows");
};
template <class Policy>
struct scatter_rows_impl {
  NERPIPE_MISSING_OP("scatter_rows");
};
template <class Policy>
struct seq2col_impl {
  NERPIPE_MISSING_OP("seq2col");
};
template <class Policy>
struct add_seq2col_impl {
  NERPIPE_MISSING_OP("add_seq2col");
};
template <class Policy>
struct ner_decode_impl {
  NERPIPE_MISSING_OP("ner_decode");
};
template <class Policy>
struct reduce_mean_impl {
  NERPIPE_MISSING_OP("reduce_mean");
};

/// thinc's HashEmbed: out.row(i) = ((E[h0] + E[h1]) + E[h2]) + E[h3], h_k = word k of
/// murmurhash3_x64_128(feats[i * stride + col], seed) mod table.rows. out.cols == table.cols.
template <class Policy>
void hash_embed(const Policy& p, const std::uint64_t* feats, std::size_t stride, std::size_t col, std::uint32_t seed,
                matrix_view<const float> table, matrix_view<float> out) {
  namespace chk = detail::op_checks;
  chk::view("hash_embed", "out", out);
  if (!out.empty()) {
    chk::view("hash_embed", "table", table);
    if (table.rows == 0 || table.cols < out.cols)
      chk::fail("hash_embed", "table " + chk::describe(table) + " is empty or narrower than out " + chk::describe(out));
    if (col >= stride)
      chk::fail("hash_embed", "feature column " + std::to_string(col) + " is outside the stride " + std::to_string(stride));
    chk::pointer("hash_embed", "feats", feats, out.rows * stride);
  }
  hash_embed_impl<Policy>::run(p, feats, stride, col, seed, table, out);
}

/// Bias and maxout over piece-major rows: out(r, o) = max_p (y[r, p * nO + o] + b[p * nO + o]), pieces in order.
/// y is [rows, nP * nO] contiguous.
template <class Policy>
void bias_maxout(const Policy& p, const float* y, const float* b, std::size_t nO, std::size_t nP, matrix_view<float> out) {
  namespace chk = detail::op_checks;
  if (out.rows != 0 && nO != 0) {
    if (nP == 0) chk::fail("bias_maxout", "nP is 0; expected at least one piece");
    if (out.cols < nO) chk::fail("bias_maxout", "out " + chk::describe(out) + " is narrower than nO " + std::to_string(nO));
    chk::view("bias_maxout", "out", out);
    chk::pointer("bias_maxout", "y", y, out.rows * nP * nO);
    chk::pointer("bias_maxout", "b", b, nP * nO);
  }
  bias_maxout_impl<Policy>::run(p, y, b, nO, nP, out);
}

/// x[i] = value for i < n.
template <class Policy>
void fill(const Policy& p, float* x, std::size_t n, float value) {
  detail::op_checks::pointer("fill", "x", x, n);
  fill_impl<Policy>::run(p, x, n, value);
}

/// dst[i] += src[i] for i < n.
template <class Policy>
void add(const Policy& p, float* dst, const float* src, std::size_t n) {
  detail::op_checks::pointer("add", "dst", dst, n);
  detail::op_checks::pointer("add", "src", src, n);
  add_impl<Policy>::run(p, dst, src, n);
}

/// x.row(rows[i]) = 0 for i < count.
template <class Policy>
void zero_rows(const Policy& p, matrix_view<float> x, const std::int32_t* rows, std::size_t count) {
  if (count != 0 && x.cols != 0) {
    detail::op_checks::view("zero_rows", "x", x);
    detail::op_checks::pointer("zero_rows", "rows", rows, count);
  }
  zero_rows_impl<Policy>::run(p, x, rows, count);
}

/// dst.row(ids[i]) = src.row(i) for i < src.rows (ids distinct).
template <class Policy>
void scatter_rows(const Policy& p, matrix_view<const float> src, const std::int32_t* ids, matrix_view<float> dst) {
  namespace chk = detail::op_checks;
  chk::view("scatter_rows", "src", src);
  if (!src.empty()) {
    if (dst.cols < src.cols)
      chk::fail("scatter_rows", "dst " + chk::describe(dst) + " has fewer columns than src " + chk::describe(src));
    chk::view("scatter_rows", "dst", dst);
    chk::pointer("scatter_rows", "ids", ids, src.rows);
  }
  scatter_rows_impl<Policy>::run(p, src, ids, dst);
}

/// spacy-transformers' reduce_mean pooling of the transformer's rows onto spaCy tokens (thinc's reduce_mean over
/// the alignment): out.row(s) = sum of x.row(rows[k]) * (float)(1.0 / n) for k in [offsets[s], offsets[s + 1]),
/// n of them, added in k order as thinc's cpu_reduce_mean adds; a segment without rows is zero. offsets has
/// out.rows + 1 entries; every rows[k] < x.rows (the caller checks them on the host).
template <class Policy>
void reduce_mean(const Policy& p, matrix_view<const float> x, const std::int32_t* rows, const std::int32_t* offsets,
                 matrix_view<float> out) {
  namespace chk = detail::op_checks;
  chk::view("reduce_mean", "out", out);
  if (!out.empty()) {
    if (x.cols != out.cols) chk::fail("reduce_mean", "x " + chk::describe(x) + " and out " + chk::describe(out) + " differ in columns");
    chk::pointer("reduce_mean", "offsets", offsets, out.rows + 1);
    if (!x.empty()) chk::view("reduce_mean", "x", x);
  }
  reduce_mean_impl<Policy>::run(p, x, rows, offsets, out);
}

/// thinc seq2col over contiguous z [rows, w]: c [rows, (2 nw + 1) w], row i = [z[i-nw] .. z[i+nw]], zeros outside.
template <class Policy>
void seq2col(const Policy& p, const float* z, std::size_t rows, std::size_t w, std::size_t nw, float* c) {
  detail::op_checks::pointer("seq2col", "z", z, rows * w);
  detail::op_checks::pointer("seq2col", "c", c, rows * w * (2 * nw + 1));
  seq2col_impl<Policy>::run(p, z, rows, w, nw, c);
}

/// z += m, then c = seq2col(z). c must hold seq2col's zeros in its out-of-range blocks already
/// (an earlier seq2col over the same shape wrote them).
template <class Policy>
void add_seq2col(const Policy& p, float* z, const float* m, std::size_t rows, std::size_t w, std::size_t nw, float* c) {
  detail::op_checks::pointer("add_seq2col", "z", z, rows * w);
  detail::op_checks::pointer("add_seq2col", "m", m, rows * w);
  detail::op_checks::pointer("add_seq2col", "c", c, rows * w * (2 * nw + 1));
  add_seq2col_impl<Policy>::run(p, z, m, rows, w, nw, c);
}

/// spaCy's greedy BILUO decode (no preset entities; sentence starts from a.sent_start, if any): per doc, per token,
/// hidden = maxout(sum of the state's precomputed feature rows + b), scores = upper layer, best valid class
/// (ties: lowest index). See ner_decode_args.
template <class Policy>
void ner_decode(const Policy& p, const ner_decode_args& a) {
  namespace chk = detail::op_checks;
  if (a.docs != 0) {
    if (a.nF == 0 || a.nH == 0 || a.nP == 0 || a.classes_n == 0 || a.classes_pad < a.classes_n)
      chk::fail("ner_decode", "empty layer or padding: nF " + std::to_string(a.nF) + ", nH " + std::to_string(a.nH) + ", nP " +
                                  std::to_string(a.nP) + ", classes " + std::to_string(a.classes_n) + ", classes_pad " +
                                  std::to_string(a.classes_pad));
    chk::pointer("ner_decode", "doc_offsets_host", a.doc_offsets_host, a.docs + 1);
    const std::size_t tokens = static_cast<std::size_t>(a.doc_offsets_host[a.docs]);
    chk::pointer("ner_decode", "doc_offsets", a.doc_offsets, a.docs + 1);
    chk::pointer("ner_decode", "cached", a.cached, tokens * a.nF * a.nP * a.nH);
    chk::pointer("ner_decode", "lower_b", a.lower_b, a.nP * a.nH);
    chk::pointer("ner_decode", "lower_pad", a.lower_pad, a.nF * a.nP * a.nH);
    chk::pointer("ner_decode", "upper_wt", a.upper_wt, a.nH * a.classes_pad);
    chk::pointer("ner_decode", "upper_b", a.upper_b, a.classes_pad);
    chk::pointer("ner_decode", "classes", a.classes, a.classes_n);
    chk::pointer("ner_decode", "valid_offsets", a.valid_offsets, a.valid_keys + 1);
    chk::pointer("ner_decode", "is_space", a.is_space, tokens);
    chk::pointer("ner_decode", "ents", a.ents, tokens * 3);
    chk::pointer("ner_decode", "counts", a.counts, a.docs);
  }
  ner_decode_impl<Policy>::run(p, a);
}

}  // namespace ops
NERPIPE_NAMESPACE_END
