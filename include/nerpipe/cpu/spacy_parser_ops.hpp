// SPDX-License-Identifier: Apache-2.0
//! @file The cpu_policy specialisation of parser_decode (ops/spacy_parser.hpp): spaCy's arc-eager state
//! (_state.pxd StateC) and transitions (arc_eager.pyx), scored with the NER decode's host kernels.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/cpu/spacy_ops.hpp>
#include <nerpipe/ops/spacy_parser.hpp>
#include <nerpipe/policy/cpu_policy.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

NERPIPE_NAMESPACE_BEGIN
namespace detail {

/// One document's arc-eager parse state, as spaCy's StateC keeps it: a stack, the buffer (tokens b_i.. plus
/// the "rebuffer" of tokens REDUCE put back), heads, the unshiftable marks, BREAK's sentence starts, and each
/// head's left and right arcs in the order they were added (the L/R context features read the latest).
class arc_eager_state {
 public:
  void reset(int n) {
    n_ = n;
    b_i_ = 0;
    stack_.clear();
    rebuffer_.clear();
    heads_.assign(static_cast<std::size_t>(n), -1);
    labels_.assign(static_cast<std::size_t>(n), -1);
    unshiftable_.assign(static_cast<std::size_t>(n), 0);
    broken_.assign(static_cast<std::size_t>(n), 0);
    last_left_.assign(static_cast<std::size_t>(n), -1);
    last_right_.assign(static_cast<std::size_t>(n), -1);
    arc_child_.clear();
    arc_prev_.clear();
  }

  [[nodiscard]] int S(int i) const noexcept {
    const int d = static_cast<int>(stack_.size());
    return i < 0 || i >= d ? -1 : stack_[static_cast<std::size_t>(d - 1 - i)];
  }
  [[nodiscard]] int B(int i) const noexcept {
    if (i < 0) return -1;
    const int r = static_cast<int>(rebuffer_.size());
    if (i < r) return rebuffer_[static_cast<std::size_t>(r - 1 - i)];
    const int b = b_i_ + (i - r);
    return b >= n_ ? -1 : b;
  }
  [[nodiscard]] int stack_depth() const noexcept { return static_cast<int>(stack_.size()); }
  [[nodiscard]] int buffer_length() const noexcept { return (n_ - b_i_) + static_cast<int>(rebuffer_.size()); }
  [[nodiscard]] bool is_final() const noexcept { return stack_.empty() && buffer_length() == 0; }
  /// Token 0 starts a sentence (the tokenizer sets its sent_start to 1); BREAK marks the others.
  [[nodiscard]] bool is_sent_start(int w) const noexcept {
    if (w < 0 || w >= n_) return false;
    return w == 0 || broken_[static_cast<std::size_t>(w)] != 0;
  }
  [[nodiscard]] bool is_unshiftable(int w) const noexcept { return w >= 0 && w < n_ && unshiftable_[static_cast<std::size_t>(w)] != 0; }
  [[nodiscard]] bool has_head(int w) const noexcept { return heads_[static_cast<std::size_t>(w)] >= 0; }
  /// The latest left (L) or right (R) dependent of `head` still on record, or -1.
  [[nodiscard]] int L(int head) const noexcept { return head < 0 ? -1 : child_at(last_left_[static_cast<std::size_t>(head)]); }
  [[nodiscard]] int R(int head) const noexcept { return head < 0 ? -1 : child_at(last_right_[static_cast<std::size_t>(head)]); }

  [[nodiscard]] arc_eager_facts facts() const noexcept {
    arc_eager_facts f;
    f.stack_depth = stack_depth();
    f.buffer_length = buffer_length();
    const int b0 = B(0), b1 = B(1), s0 = S(0);
    f.b0_sent_start = is_sent_start(b0);
    f.b1_sent_start = is_sent_start(b1);
    f.b1_follows_b0 = b1 == b0 + 1;
    f.b0_unshiftable = is_unshiftable(b0);
    f.s0_before_b0 = s0 == b0 - 1;
    return f;
  }

  void apply(parser_move mv, std::int32_t label) {
    switch (mv) {
      case parser_move::shift: push(); break;
      case parser_move::reduce:
        if (has_head(S(0)) || stack_depth() == 1) stack_.pop_back();
        else unshift();
        break;
      case parser_move::left:
        add_arc(B(0), S(0), label);
        if (const int b0 = B(0); b0 >= 0) unshiftable_[static_cast<std::size_t>(b0)] = 0;  // set_reshiftable
        stack_.pop_back();
        break;
      case parser_move::right:
        add_arc(S(0), B(0), label);
        push();
        break;
      case parser_move::brk: broken_[static_cast<std::size_t>(B(1))] = 1; break;
    }
  }
  /// StateC::force_final: empties the stack and the unread buffer (not the rebuffer).
  void force_final() noexcept {
    stack_.clear();
    b_i_ = n_;
  }

  [[nodiscard]] std::int32_t head(int w) const noexcept { return heads_[static_cast<std::size_t>(w)]; }
  [[nodiscard]] std::int32_t label(int w) const noexcept { return labels_[static_cast<std::size_t>(w)]; }

 private:
  [[nodiscard]] int child_at(int node) const noexcept { return node < 0 ? -1 : arc_child_[static_cast<std::size_t>(node)]; }
  void push() {
    int b0;
    if (!rebuffer_.empty()) {
      b0 = rebuffer_.back();
      rebuffer_.pop_back();
    } else {
      b0 = b_i_++;
    }
    stack_.push_back(b0);
  }
  void unshift() {
    const int s0 = stack_.back();
    unshiftable_[static_cast<std::size_t>(s0)] = 1;
    rebuffer_.push_back(s0);
    stack_.pop_back();
  }
  void add_arc(int head, int child, std::int32_t label) {
    if (has_head(child)) del_arc(heads_[static_cast<std::size_t>(child)], child);
    auto& last = head > child ? last_left_ : last_right_;
    arc_child_.push_back(child);
    arc_prev_.push_back(last[static_cast<std::size_t>(head)]);
    last[static_cast<std::size_t>(head)] = static_cast<int>(arc_child_.size()) - 1;
    heads_[static_cast<std::size_t>(child)] = head;
    labels_[static_cast<std::size_t>(child)] = label;
  }
  // _state.pxd map_del_arc removes the arc only when it is the head's latest one; its loop over earlier arcs
  // changes a copy, so an earlier arc stays on record. (Arc-eager only ever re-heads the stack top, whose arc
  // is its head's latest, so that path does not occur.)
  void del_arc(int head, int child) {
    auto& last = head > child ? last_left_ : last_right_;
    const int node = last[static_cast<std::size_t>(head)];
    if (node >= 0 && arc_child_[static_cast<std::size_t>(node)] == child) last[static_cast<std::size_t>(head)] = arc_prev_[static_cast<std::size_t>(node)];
  }

  int n_ = 0, b_i_ = 0;
  std::vector<int> stack_, rebuffer_;
  std::vector<std::int32_t> heads_, labels_;
  std::vector<std::uint8_t> unshiftable_, broken_;
  std::vector<int> last_left_, last_right_;  // per head: its latest arc node, -1 none
  std::vector<int> arc_child_, arc_prev_;    // arc nodes: the dependent and the head's previous arc node
};

/// The greedy arc-eager decode over host memory (every pointer of `a` on the host). cpu_policy's parser_decode;
/// cuda_policy's runs it too, on a host copy (cuda/spacy_ops.cuh).
inline void parser_decode_host(const parser_decode_args& a) {
  {
    namespace d = ::nerpipe::detail;
    const std::size_t nF = a.nF, nH = a.nH, nP = a.nP, HP = nH * nP, FHP = nF * HP;
    const std::size_t A = a.classes_n, Ap = a.classes_pad;
    std::vector<float> h(nH), scores(Ap);
    std::vector<const float*> feats(nF);
    std::vector<long> ids(nF);
    d::arc_eager_state st;
    const bool wide = d::spacy_avx512();
    (void)wide;
    for (std::size_t doc = 0; doc < a.docs; ++doc) {
      const auto offset = static_cast<std::size_t>(a.doc_offsets_host[doc]);
      const int n = static_cast<int>(static_cast<std::size_t>(a.doc_offsets_host[doc + 1]) - offset);
      st.reset(n);
      // Each transition moves a token between stack and buffer, attaches or marks one; a valid model finishes
      // in well under 8n steps. The cap only stops a damaged model from looping (spaCy has none).
      const std::size_t max_steps = 8 * static_cast<std::size_t>(n) + 16;
      for (std::size_t step = 0; !st.is_final(); ++step) {
        if (step == max_steps) {
          st.force_final();
          if (!st.is_final()) break;
          continue;
        }
        const int b0 = st.B(0), s0 = st.S(0);
        // _state.pxd set_context_tokens, n == 8
        ids[0] = b0;
        ids[1] = st.B(1);
        ids[2] = s0;
        ids[3] = st.S(1);
        ids[4] = st.S(2);
        ids[5] = st.L(b0);
        ids[6] = st.L(s0);
        ids[7] = st.R(s0);
        for (std::size_t f = 0; f < nF; ++f)
          feats[f] = ids[f] < 0 ? a.lower_pad + f * HP : a.cached + (offset + static_cast<std::size_t>(ids[f])) * FHP + f * HP;
#if NERPIPE_SPACY_DISPATCH
        if (wide) d::ner_hidden_avx512(feats.data(), nF, a.lower_b, nH, nP, h.data());
        else
#endif
          d::ner_hidden_generic(feats.data(), nF, a.lower_b, nH, nP, h.data());
#if NERPIPE_SPACY_AXPY_WIDE
        if (wide) d::linear_t_avx512(h.data(), nH, a.upper_wt, a.upper_b, Ap, scores.data());
        else
#endif
          d::linear_t_generic(h.data(), nH, a.upper_wt, a.upper_b, Ap, scores.data());
        const arc_eager_facts fx = st.facts();
        const std::size_t key = parser_valid_key(arc_eager_valid_moves(fx), fx.s0_before_b0);
        std::size_t best = A;
        for (std::uint32_t v = a.valid_offsets[key]; v < a.valid_offsets[key + 1]; ++v) {
          const std::uint32_t c = a.valid_list[v];
          if (best == A || scores[c] > scores[best]) best = c;  // ascending class order, so ties: lowest index
        }
        if (best == A) {  // no valid class: spaCy forces the state final
          st.force_final();
          continue;
        }
        st.apply(a.classes[best].mv, static_cast<std::int32_t>(a.classes[best].label));
      }
      for (int i = 0; i < n; ++i) {
        a.heads[offset + static_cast<std::size_t>(i)] = st.head(i);
        a.labels[offset + static_cast<std::size_t>(i)] = st.head(i) < 0 ? -1 : st.label(i);
      }
    }
  }
}

}  // namespace detail

namespace ops {

template <>
struct parser_decode_impl<cpu_policy> {
  static void run(const cpu_policy&, const parser_decode_args& a) { ::nerpipe::detail::parser_decode_host(a); }
};

}  // namespace ops
NERPIPE_NAMESPACE_END
