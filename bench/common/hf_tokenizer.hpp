// SPDX-License-Identifier: Apache-2.0
//! @file The committed bert-base-uncased WordPiece tokenizer and its decoder facts, for the HF benchmarks.
#pragma once

#include <nerpipe/hf.hpp>

#include <filesystem>
#include <memory>
#include <utility>

namespace nerpipe::bench {

struct hf_tokenizer_pair {
  std::shared_ptr<const wordpiece_tokenizer> tokenizer;
  std::shared_ptr<const hf_vocab_info> vocab;
};

/// tests/fixtures/hf/tokenizer/uncased, loaded once per process.
inline const hf_tokenizer_pair& uncased_wordpiece() {
  static const hf_tokenizer_pair pair = [] {
    hf_tokenizer loaded =
        load_hf_tokenizer(std::filesystem::path(NERPIPE_SOURCE_DIR) / "tests/fixtures/hf/tokenizer/uncased");
    auto tok = std::make_shared<const wordpiece_tokenizer>(std::move(loaded.tokenizer));
    auto vocab = std::make_shared<hf_vocab_info>();
    for (std::size_t i = 0; i < tok->vocab_size(); ++i)
      vocab->id_to_token.emplace_back(tok->id_to_token(static_cast<std::int32_t>(i)));
    vocab->unk_id = tok->unk_id();
    vocab->continuing_subword_prefix = tok->config().continuing_subword_prefix;
    vocab->decoder_prefix = loaded.info.decoder_prefix;
    vocab->decoder_cleanup = loaded.info.decoder_cleanup;
    return hf_tokenizer_pair{std::move(tok), std::move(vocab)};
  }();
  return pair;
}

}  // namespace nerpipe::bench
