// SPDX-License-Identifier: Apache-2.0
//! @file The greedy arc-eager decode of spaCy's dependency parser as an operation: its arguments, the
//! validity rules of arc_eager.pyx (shared by host and device code), and the op a policy specialises.
//! cpu_policy: cpu/spacy_parser_ops.hpp. cuda_policy: not yet (a kernel would keep one state per document,
//! as ner_decode does, and call arc_eager_valid_moves below).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/ops/common.hpp>

#include <cstddef>
#include <cstdint>

NERPIPE_NAMESPACE_BEGIN

/// Moves of spaCy's arc-eager system, numbered as arc_eager.pyx numbers them.
enum class parser_move : std::uint8_t { shift = 0, reduce = 1, left = 2, right = 3, brk = 4 };
inline constexpr std::size_t parser_move_count = 5;

/// One output class of the parser as the decode op reads it: its move, its label's index (the component's
/// label table) and whether that label is "subtok" (arc_eager.pyx gives it an extra validity rule).
struct parser_class {
  parser_move mv = parser_move::shift;
  bool subtok = false;
  std::uint32_t label = 0;
};

/// What arc_eager.pyx's is_valid functions read from a state (StateC), for a doc without preset sentence
/// boundaries: the tokenizer marks only token 0 (sent_start = 1) and nothing is marked -1, so
/// `cannot_sent_start` is always false.
struct arc_eager_facts {
  int stack_depth = 0;
  int buffer_length = 0;
  bool b0_sent_start = false;   ///< is_sent_start(B0): token 0, or marked by BREAK
  bool b1_sent_start = false;   ///< is_sent_start(B1)
  bool b1_follows_b0 = false;   ///< B1 == B0 + 1
  bool b0_unshiftable = false;  ///< B0 went back to the buffer by REDUCE and no LEFT-ARC has freed it since
  bool s0_before_b0 = false;    ///< S0 == B0 - 1 (the "subtok" label's rule)
};

/// Bit m (a parser_move) set when that move is valid; arc_eager.pyx: Shift/Reduce/LeftArc/RightArc/Break.is_valid.
NERPIPE_HOST_DEVICE inline unsigned arc_eager_valid_moves(const arc_eager_facts& f) noexcept {
  unsigned m = 0;
  // SHIFT: always with an empty stack; else needs two buffer words, B0 not a sentence start and not unshiftable.
  if (f.stack_depth == 0 || (f.buffer_length >= 2 && !f.b0_sent_start && !f.b0_unshiftable)) m |= 1u << 0;
  // REDUCE: a non-empty stack (the depth-1 rule only fires for preset "cannot start" tokens).
  if (f.stack_depth > 0) m |= 1u << 1;
  // LEFT-ARC and RIGHT-ARC: a non-empty stack and buffer, B0 not a sentence start.
  if (f.stack_depth > 0 && f.buffer_length > 0 && !f.b0_sent_start) m |= (1u << 2) | (1u << 3);
  // BREAK: two buffer words in a row, B1 not a sentence start yet.
  if (f.buffer_length >= 2 && f.b1_follows_b0 && !f.b1_sent_start) m |= 1u << 4;
  return m;
}

/// Key of a state in the validity table: the valid-move bits, plus 32 when S0 == B0 - 1.
NERPIPE_HOST_DEVICE inline std::size_t parser_valid_key(unsigned moves, bool s0_before_b0) noexcept {
  return static_cast<std::size_t>(moves) | (s0_before_b0 ? 32u : 0u);
}
inline constexpr std::size_t parser_valid_keys = 64;

/// Whether class `c` is valid in a state with those keys (arc_eager.pyx ArcEager.set_valid: every label of a
/// move shares the move's validity, except "subtok" arcs, which must join adjacent words).
NERPIPE_HOST_DEVICE inline bool parser_class_valid(const parser_class& c, unsigned moves, bool s0_before_b0) noexcept {
  if ((moves & (1u << static_cast<unsigned>(c.mv))) == 0) return false;
  if (c.subtok && (c.mv == parser_move::left || c.mv == parser_move::right) && !s0_before_b0) return false;
  return true;
}

/// Arguments of the greedy arc-eager decode. Pointers are in the policy's memory unless noted.
struct parser_decode_args {
  const float* cached = nullptr;      ///< [N, nF * nP * nH]: each token's precomputed lower layer, per feature piece-major
  const float* lower_b = nullptr;     ///< [nP * nH], piece-major
  const float* lower_pad = nullptr;   ///< [nF * nP * nH]: the rows of absent features
  const float* upper_wt = nullptr;    ///< [nH, classes_pad]: the upper layer transposed (padding columns zero)
  const float* upper_b = nullptr;     ///< [classes_pad]
  const parser_class* classes = nullptr;         ///< [classes_n]
  const std::uint32_t* valid_offsets = nullptr;  ///< [parser_valid_keys + 1] into valid_list
  const std::uint32_t* valid_list = nullptr;     ///< the valid classes of each key, ascending
  const std::int32_t* doc_offsets = nullptr;     ///< [docs + 1] token offsets
  const std::int32_t* doc_offsets_host = nullptr;///< the same offsets on the host
  std::size_t docs = 0, nF = 8, nH = 0, nP = 0, classes_n = 0, classes_pad = 0;
  /// Out, per token of the batch: its head as a doc-relative token index (-1: none, a root) and the label
  /// index of that arc (-1 for a root). The label of an arc, not yet deprojectivised.
  std::int32_t* heads = nullptr;
  std::int32_t* labels = nullptr;
};

namespace ops {

template <class Policy>
struct parser_decode_impl {
  NERPIPE_MISSING_OP("parser_decode");
};

/// spaCy's greedy arc-eager decode (arc_eager.pyx, _state.pxd, parser_model.pyx): per doc, until its state is
/// final: the 8 context tokens B0 B1 S0 S1 S2 L(B0) L(S0) R(S0), hidden = maxout(sum of their precomputed rows
/// + b), scores = upper layer, best valid class (ties: lowest index), apply it. See parser_decode_args.
template <class Policy>
void parser_decode(const Policy& p, const parser_decode_args& a) {
  parser_decode_impl<Policy>::run(p, a);
}

}  // namespace ops
NERPIPE_NAMESPACE_END
