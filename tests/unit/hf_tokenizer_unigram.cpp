// SPDX-License-Identifier: Apache-2.0
// Unigram tokenizers (XLM-R, CamemBERT, DeBERTa-v3 conversions of a sentencepiece nmt_nfkc model) against
// tokenizers 0.22.2 / transformers 4.57.6 recordings (tools/fixtures/hf_subword_fixtures.py): every document
// of EWT dev + train and ud-multi dev by digest, full records for a subset and Unicode edge cases, overflow
// windows with stride; plus the errors of bad tokenizer files and charsmaps.
#include <catch2/catch.hpp>

#include "support/hf_subword_fixtures.hpp"

#include <nerpipe/model/hf/subword_tokenizer_json.hpp>
#include <nerpipe/tokenizer/any_tokenizer.hpp>
#include <nerpipe/tokenizer/subword_tokenizer.hpp>

#include <string>
#include <vector>

namespace sw = nerpipe::test::subword;

namespace {

template <class F>
std::string error_text(F&& f, nerpipe::errc expected) {
  try {
    f();
  } catch (const nerpipe::model_error& e) {
    CHECK(e.code() == expected);
    return e.what();
  }
  FAIL("no model_error thrown");
  return {};
}

std::string with(const std::string& base, const std::string& from, const std::string& to) {
  const auto at = base.find(from);
  REQUIRE(at != std::string::npos);
  return std::string(base).replace(at, from.size(), to);
}

const char* const names[] = {"unigram-xlmr", "unigram-camembert", "unigram-deberta", "unigram-deberta-lower"};

}  // namespace

TEST_CASE("hf unigram: XLM-R, CamemBERT and DeBERTa-v3 match tokenizers on every EWT and ud-multi document",
          "[tokenizer][fidelity][unigram]") {
  for (const char* name : names) sw::check_digests(name);
}

TEST_CASE("hf unigram: recorded documents and Unicode edge cases", "[tokenizer][fidelity][unigram]") {
  for (const char* name : names) sw::check_records(name);
}

TEST_CASE("hf unigram: overflow windows match truncation with stride", "[tokenizer][fidelity][unigram]") {
  for (const char* name : names) sw::check_windows(name);
}

TEST_CASE("hf unigram: small known cases and the loader", "[tokenizer][unigram]") {
  const nerpipe::loaded_tokenizer loaded = nerpipe::load_any_tokenizer(sw::dir_of("unigram-xlmr"));
  const nerpipe::any_tokenizer& tok = loaded.tokenizer;
  REQUIRE(tok.subword() != nullptr);
  CHECK(loaded.info.decoder_type == "Metaspace");
  CHECK(loaded.info.model_max_length == 512);
  CHECK(tok.num_special_tokens() == 2);
  CHECK(tok.unk_id() == 3);
  CHECK(tok.token_to_id("<mask>") == static_cast<std::int32_t>(tok.vocab_size()) - 1);
  const nerpipe::encoding e = tok.encode("Hello  world");
  REQUIRE(e.size() >= 4);
  CHECK(e.ids.front() == 0);
  CHECK(e.ids.back() == 2);
  CHECK(e.word_ids.front() == -1);
  CHECK(tok.encode("").size() == 2);
  CHECK(tok.encode("   ").size() == 2);  // stripped to nothing: no split, no token
}

TEST_CASE("hf unigram: bad tokenizer files give errors naming the key", "[tokenizer][unigram]") {
  using nerpipe::errc;
  const std::string base = sw::tokenizer_json_of("unigram-xlmr");
  auto parse = [](const std::string& json) {
    return nerpipe::subword_tokenizer(nerpipe::parse_subword_tokenizer_json(json, "x/tokenizer.json"));
  };
  std::string msg = error_text([&] { (void)parse(with(base, "\"unk_id\":3", "\"unk_id\":999999")); }, errc::model_file_malformed);
  CHECK(msg.find("model.unk_id") != std::string::npos);
  msg = error_text([&] { (void)parse(with(base, "\"vocab\":[[\"<s>\",0.0]", "\"vocab\":[[\"<s>\"]")); }, errc::model_file_malformed);
  CHECK(msg.find("model.vocab[0]") != std::string::npos);
  msg = error_text([&] { (void)parse(with(base, "\"vocab\":[[\"<s>\",0.0]", "\"vocab\":[[\"<s>\",\"high\"]")); }, errc::model_file_malformed);
  CHECK(msg.find("model.vocab[0][1]") != std::string::npos);
  msg = error_text([&] { (void)parse(with(base, "\"precompiled_charsmap\":\"", "\"precompiled_charsmap\":\"!!")); }, errc::model_file_malformed);
  CHECK(msg.find("normalizer.normalizers[0]: precompiled_charsmap is not valid base64") != std::string::npos);
  // A charsmap whose trie size header exceeds the blob ("/////w==" is 0xFFFFFFFF).
  {
    const auto at = base.find("\"precompiled_charsmap\":\"") + 24;
    const auto end = base.find('"', at);
    std::string bad = base;
    bad.replace(at, end - at, "/////w==");
    msg = error_text([&] { (void)parse(bad); }, errc::model_file_malformed);
    CHECK(msg.find("declares a trie of 4294967295 bytes") != std::string::npos);
  }
  msg = error_text([&] { (void)parse(with(base, "\"type\":\"Strip\"", "\"type\":\"NFKC\"")); }, errc::model_unsupported);
  CHECK(msg.find("normalizer.normalizers[1].type 'NFKC' is not supported yet") != std::string::npos);
  msg = error_text([&] { (void)parse(with(base, "\"prepend_scheme\":\"always\"", "\"prepend_scheme\":\"sometimes\"")); },
                   errc::model_file_malformed);
  CHECK(msg.find("pre_tokenizer.prepend_scheme") != std::string::npos);
  msg = error_text([&] { (void)parse(with(base, "\"type\":\"Unigram\"", "\"type\":\"WordLevel\"")); }, errc::model_unsupported);
  CHECK(msg.find("model.type 'WordLevel'") != std::string::npos);
  msg = error_text([&] { (void)parse(with(base, "\"id\":\"<s>\",\"ids\":[0]", "\"id\":\"<s>\",\"ids\":[-1]")); }, errc::model_file_malformed);
  CHECK(msg.find("post_processor.special_tokens.<s>.ids[0]") != std::string::npos);
}
