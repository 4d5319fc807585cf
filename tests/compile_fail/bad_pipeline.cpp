// SPDX-License-Identifier: Apache-2.0
//! @file Compile-fail check: a pipeline whose stage reads a batch field no earlier stage writes must stop at the
//! composition's static_assert, which names the field (and the compiler names the two stages below it).
//!
//! Built twice. With NERPIPE_COMPILE_FAIL_GOOD the stages are in spaCy's order and the file builds and runs;
//! without it the embedding comes before the tokenizer and the build must fail with
//! "nerpipe::pipeline: a stage reads `words`".
#include <nerpipe/nerpipe.hpp>

#include <cstdio>

#if defined(NERPIPE_COMPILE_FAIL_GOOD)
template <class P>
using composed = nerpipe::pipeline<P, nerpipe::stages::spacy_tokenizer, nerpipe::stages::multi_hash_embed,
                                   nerpipe::stages::maxout_window_encoder, nerpipe::stages::transition_ner,
                                   nerpipe::stages::merge_entities>;
#else
template <class P>
using composed = nerpipe::pipeline<P, nerpipe::stages::multi_hash_embed, nerpipe::stages::spacy_tokenizer,
                                   nerpipe::stages::maxout_window_encoder, nerpipe::stages::transition_ner,
                                   nerpipe::stages::merge_entities>;
#endif

int main() {
  // Forming the type is enough for the checks; the stages' names and kinds come from it.
  constexpr auto kinds = composed<nerpipe::cpu_policy>::kinds;
  std::printf("%zu stages, the first a %s\n", kinds.size(), std::string(nerpipe::to_string(kinds[0])).c_str());
  return kinds[0] == nerpipe::stage_kind::tokenizer ? 0 : 1;
}
