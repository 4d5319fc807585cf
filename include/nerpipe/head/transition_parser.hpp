// SPDX-License-Identifier: Apache-2.0
//! @file spaCy's dependency parser head (TransitionBasedParser.v2, state_type "parser"): greedy arc-eager
//! decoding over a listened-to tok2vec, then the parser's set_annotations and deprojectivize, which give the
//! heads, labels and sentence starts `spacy.load(dir)` leaves on a Doc.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/embedding/multi_hash_embed.hpp>
#include <nerpipe/head/parse_tree.hpp>
#include <nerpipe/model/spacy/parser_loader.hpp>
#include <nerpipe/ops/ops.hpp>
#include <nerpipe/ops/spacy_parser.hpp>
#include <nerpipe/policy/memory_space.hpp>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// A batch's dependency parse, per token with the documents back to back.
struct dependency_parse {
  std::vector<std::int32_t> heads;        ///< head of each token as a doc-relative index; a root is its own head
  std::vector<std::int32_t> labels;       ///< index into transition_parser::labels()
  std::vector<std::uint8_t> sent_starts;  ///< 1 where Token.is_sent_start is true (token 0 of a doc included)
};

/// Projection (tok2vec width -> hidden), the precomputed lower layer over 8 state features, maxout, the upper
/// layer, greedy arc-eager decoding with spaCy's validity rules (ops::parser_decode), then on the host: roots
/// labelled ROOT, deprojectivize, and the sentence starts set_children_from_heads derives.
template <class Policy>
class transition_parser {
 public:
  transition_parser(const Policy& p, const spacy_parser_model& m)
      : width_(m.parser.width), nF_(m.parser.nF), nH_(m.parser.nH), nP_(m.parser.nP) {
    const auto& w = m.parser;
    proj_W_ = p.upload(std::span<const float>(w.proj_W.data));
    proj_b_ = p.upload(std::span<const float>(w.proj_b.data));
    // (nF, nH, nP, rest) -> per feature piece-major (nF, nP, nH, rest), as transition_ner lays it out.
    auto per_feature_piece_major = [&](const std::vector<float>& src, std::size_t rest) {
      std::vector<float> out(src.size());
      for (std::size_t f = 0; f < nF_; ++f)
        for (std::size_t o = 0; o < nH_; ++o)
          for (std::size_t q = 0; q < nP_; ++q)
            std::copy_n(src.data() + ((f * nH_ + o) * nP_ + q) * rest, rest, out.data() + ((f * nP_ + q) * nH_ + o) * rest);
      return out;
    };
    lower_W_ = p.upload(std::span<const float>(per_feature_piece_major(w.lower_W.data, nH_)));
    lower_pad_ = p.upload(std::span<const float>(per_feature_piece_major(w.lower_pad.data, 1)));
    lower_b_ = p.upload(std::span<const float>(detail::piece_major(w.lower_b.data, nH_, nP_, 1)));
    // Classes padded to a multiple of 16 (zero weights; never read back), as transition_ner does.
    A_ = m.actions.size();
    A_pad_ = (A_ + 15) / 16 * 16;
    std::vector<float> upper_Wt(A_pad_ * nH_, 0.0f), upper_b(A_pad_, 0.0f);
    std::copy(w.upper_b.data.begin(), w.upper_b.data.end(), upper_b.begin());
    for (std::size_t c = 0; c < A_; ++c)
      for (std::size_t o = 0; o < nH_; ++o) upper_Wt[o * A_pad_ + c] = w.upper_W.data[c * nH_ + o];
    upper_Wt_ = p.upload(std::span<const float>(upper_Wt));
    upper_b_ = p.upload(std::span<const float>(upper_b));
    // The label table: every class label, "ROOT" (set_annotations labels roots with it) and both halves of
    // each projectivised "x||y", each string once, so labels compare by index.
    root_ = intern("ROOT");
    std::vector<parser_class> classes;
    for (const auto& a : m.actions) {
      parser_class c;
      c.mv = static_cast<parser_move>(static_cast<std::uint8_t>(a.mv));
      c.label = static_cast<std::uint32_t>(intern(a.label));
      c.subtok = a.label == "subtok";
      classes.push_back(c);
    }
    deco_.decorated_new.assign(labels_.size(), -1);
    deco_.decorated_head.assign(labels_.size(), -1);
    for (std::size_t k = 0, n = labels_.size(); k < n; ++k) {
      const std::string l = labels_[k];  // a copy: intern() may grow labels_
      if (const auto at = l.find("||"); at != std::string::npos) {
        // nonproj.pyx: label.split("||") into exactly two parts.
        const std::string x = l.substr(0, at), y = l.substr(at + 2);
        if (y.find("||") != std::string::npos)
          NERPIPE_THROW(model_error(errc::model_unsupported, (m.dir / "parser" / "moves").string() + ": label \"" + l +
                                                                 "\" has more than one \"||\", expected \"dep||headdep\""));
        const std::int32_t nx = intern(x), ny = intern(y);
        deco_.decorated_new[k] = nx;
        deco_.decorated_head[k] = ny;
      }
    }
    deco_.decorated_new.resize(labels_.size(), -1);
    deco_.decorated_head.resize(labels_.size(), -1);
    std::vector<std::uint32_t> offsets{0}, list;
    for (std::size_t key = 0; key < parser_valid_keys; ++key) {
      const auto moves = static_cast<unsigned>(key & 31u);
      const bool adjacent = (key & 32u) != 0;
      for (std::size_t c = 0; c < A_; ++c)
        if (parser_class_valid(classes[c], moves, adjacent)) list.push_back(static_cast<std::uint32_t>(c));
      offsets.push_back(static_cast<std::uint32_t>(list.size()));
    }
    classes_ = p.upload(std::span<const parser_class>(classes));
    valid_offsets_ = p.upload(std::span<const std::uint32_t>(offsets));
    valid_list_ = p.upload(std::span<const std::uint32_t>(list));
  }

  [[nodiscard]] std::size_t n_actions() const noexcept { return A_; }
  [[nodiscard]] std::size_t width() const noexcept { return width_; }
  /// Dependency labels; dependency_parse::labels index it. "x||y" labels never come out of forward.
  [[nodiscard]] const std::vector<std::string>& labels() const noexcept { return labels_; }

  /// tokvecs: the listened-to tok2vec's output for all docs back to back (policy memory); lengths: tokens per
  /// doc; is_space: IS_SPACE per token (host; deprojectivize skips whitespace tokens). Fills `out` (host).
  void forward(const Policy& p, matrix_view<const float> tokvecs, std::span<const std::size_t> lengths, std::span<const char> is_space,
               dependency_parse& out) const {
    const std::size_t N = tokvecs.rows;
    out.heads.assign(N, 0);
    out.labels.assign(N, 0);
    out.sent_starts.assign(N, 0);
    if (N == 0) return;
    const std::size_t FHP = nF_ * nH_ * nP_;
    typename Policy::template buffer<float> hid(p, N * nH_);
    ops::gemm(p, gemm_args<float, float, float>{tokvecs, matrix_view<const float>(proj_W_.data(), nH_, width_),
                                                matrix_view<float>(hid.data(), N, nH_), true, proj_b_.data(), epilogue::bias});
    const std::size_t docs = lengths.size();
    std::vector<std::int32_t> offsets(docs + 1, 0);
    for (std::size_t d = 0; d < docs; ++d) offsets[d + 1] = offsets[d] + static_cast<std::int32_t>(lengths[d]);
    typename Policy::template buffer<std::int32_t> heads(p, N), labels(p, N);
    // The precomputed table takes nF * nP * nH floats per token (4 KB for en_core_web_*), and the decode reads
    // 8 rows of it per step at scattered tokens. On the host, groups of whole docs of about 256 tokens keep
    // their table in L2 while the GEMM stays large enough; a device takes the batch at once.
    const std::size_t group = can_access<Policy, host_space> ? 256 : N;
    typename Policy::template buffer<float> cached(p, std::min(N, std::max(group, max_length(lengths))) * FHP);
    for (std::size_t d0 = 0; d0 < docs;) {
      std::size_t d1 = d0 + 1;
      while (d1 < docs && static_cast<std::size_t>(offsets[d1 + 1] - offsets[d0]) <= group) ++d1;
      decode_group(p, hid.data(), cached.data(), offsets, d0, d1, heads.data(), labels.data());
      d0 = d1;
    }
    p.download(std::span<const std::int32_t>(heads.data(), N), std::span<std::int32_t>(out.heads));
    p.download(std::span<const std::int32_t>(labels.data(), N), std::span<std::int32_t>(out.labels));
    annotate(lengths, offsets, is_space, out);
  }

 private:
  static std::size_t max_length(std::span<const std::size_t> lengths) {
    std::size_t m = 0;
    for (auto l : lengths) m = std::max(m, l);
    return m;
  }

  /// Precompute and decode docs [d0, d1) (tokens offsets[d0] .. offsets[d1]) with `cached` as the table.
  void decode_group(const Policy& p, const float* hid, float* cached, const std::vector<std::int32_t>& offsets, std::size_t d0,
                    std::size_t d1, std::int32_t* heads, std::int32_t* labels) const {
    const std::size_t FHP = nF_ * nH_ * nP_;
    const auto first = static_cast<std::size_t>(offsets[d0]);
    const auto n = static_cast<std::size_t>(offsets[d1]) - first;
    if (n == 0) return;
    // cached[t, f, p, o] = hid[t] . W[f, o, p, :]
    ops::gemm(p, gemm_args<float, float, float>{matrix_view<const float>(hid + first * nH_, n, nH_),
                                                matrix_view<const float>(lower_W_.data(), FHP, nH_),
                                                matrix_view<float>(cached, n, FHP), true});
    std::vector<std::int32_t> group_offsets(d1 - d0 + 1);
    for (std::size_t d = d0; d <= d1; ++d) group_offsets[d - d0] = offsets[d] - offsets[d0];
    const auto offsets_dev = p.upload(std::span<const std::int32_t>(group_offsets));
    parser_decode_args a;
    a.cached = cached;
    a.lower_b = lower_b_.data();
    a.lower_pad = lower_pad_.data();
    a.upper_wt = upper_Wt_.data();
    a.upper_b = upper_b_.data();
    a.classes = classes_.data();
    a.valid_offsets = valid_offsets_.data();
    a.valid_list = valid_list_.data();
    a.doc_offsets = offsets_dev.data();
    a.doc_offsets_host = group_offsets.data();
    a.docs = d1 - d0;
    a.nF = nF_;
    a.nH = nH_;
    a.nP = nP_;
    a.classes_n = A_;
    a.classes_pad = A_pad_;
    a.heads = heads + first;
    a.labels = labels + first;
    ops::parser_decode(p, a);
  }

  /// The parser's set_annotations and postprocess on the host, per doc.
  void annotate(std::span<const std::size_t> lengths, const std::vector<std::int32_t>& offsets, std::span<const char> is_space,
                dependency_parse& out) const {
    std::vector<std::int32_t> l_edge, r_edge;
    for (std::size_t d = 0; d < lengths.size(); ++d) {
      const auto o = static_cast<std::size_t>(offsets[d]);
      const std::size_t n = lengths[d];
      const std::span<std::int32_t> h(out.heads.data() + o, n), lab(out.labels.data() + o, n);
      // ArcEager.set_annotations: the arcs' heads and labels; a token without a head is a root labelled ROOT.
      for (std::size_t i = 0; i < n; ++i)
        if (h[i] < 0) {
          h[i] = static_cast<std::int32_t>(i);
          lab[i] = root_;
        }
      l_edge.resize(n);
      r_edge.resize(n);
      spacy::set_edges(h, l_edge, r_edge);
      // DependencyParser.postprocesses: deprojectivize, which ends with set_children_from_heads again.
      spacy::deprojectivize(h, lab, l_edge, r_edge, is_space.subspan(o, n), deco_);
      spacy::set_edges(h, l_edge, r_edge);
      spacy::sentence_starts(h, l_edge, std::span<std::uint8_t>(out.sent_starts.data() + o, n));
    }
  }

  std::int32_t intern(const std::string& s) {
    for (std::size_t i = 0; i < labels_.size(); ++i)
      if (labels_[i] == s) return static_cast<std::int32_t>(i);
    labels_.push_back(s);
    return static_cast<std::int32_t>(labels_.size() - 1);
  }

  std::size_t width_, nF_, nH_, nP_, A_ = 0, A_pad_ = 0;
  std::int32_t root_ = 0;
  std::vector<std::string> labels_;
  spacy::label_decorations deco_;
  typename Policy::template buffer<float> proj_W_, proj_b_, lower_W_, lower_b_, lower_pad_;
  typename Policy::template buffer<float> upper_Wt_, upper_b_;  // upper W transposed: (nH, A_pad_)
  typename Policy::template buffer<parser_class> classes_;
  typename Policy::template buffer<std::uint32_t> valid_offsets_, valid_list_;
};

NERPIPE_NAMESPACE_END
