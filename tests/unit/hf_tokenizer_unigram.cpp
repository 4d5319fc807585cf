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

#include <simdjson.h>

#include <cstdio>
#include <string>
#include <utility>
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

const char* const names[] = {"unigram-xlmr",      "unigram-camembert",   "unigram-deberta", "unigram-deberta-lower",
                             "unigram-xlmr-nfkc", "unigram-deberta-nfd", "unigram-xlmr-wss"};

}  // namespace

TEST_CASE("hf unigram: XLM-R, CamemBERT and DeBERTa-v3 match tokenizers on every EWT and ud-multi document",
          "[tokenizer][fidelity][unigram]") {
  for (const char* name : names) sw::check_digests(name);
}

TEST_CASE("hf unigram: recorded documents and Unicode edge cases", "[tokenizer][fidelity][unigram]") {
  for (const char* name : names) sw::check_records(name);
}

TEST_CASE("hf unigram: random mixes of hard characters", "[tokenizer][fidelity][unigram]") {
  for (const char* name : names) sw::check_fuzz(name);
}

TEST_CASE("hf unigram: overflow windows match truncation with stride", "[tokenizer][fidelity][unigram]") {
  for (const char* name : names) sw::check_windows(name);
}

TEST_CASE("hf unigram: NFKC and NFD of every code point are tokenizers'", "[tokenizer][fidelity][unigram]") {
  simdjson::dom::parser p;
  const std::string text = sw::read_file(sw::dir_of("unicode_norm_sweep.json"));
  const simdjson::dom::element root = p.parse(text).value();
  using F = nerpipe::subword_normalizer::form;
  for (const auto& [key, form] : {std::pair<const char*, F>{"NFKC", F::nfkc}, {"NFD", F::nfd}}) {
    std::vector<std::u32string> expected(0x110000);
    const simdjson::dom::array rows = root[key].get_array().value();
    for (const simdjson::dom::element r : rows) {
      const simdjson::dom::array row = r.get_array().value();
      std::u32string out;
      std::size_t k = 0;
      char32_t cp = 0;
      for (const simdjson::dom::element v : row) {
        if (k++ == 0) cp = static_cast<char32_t>(v.get_int64().value());
        else out.push_back(static_cast<char32_t>(v.get_int64().value()));
      }
      expected[cp] = out.empty() ? std::u32string(1, U'\0') : out;  // U+0000 marks "maps to nothing"
    }
    std::size_t bad = 0, checked = 0;
    std::string first;
    nerpipe::detail::sw::segment x, tmp;
    std::vector<nerpipe::detail::sw::change> ch;
    for (char32_t c = 0x80; c < 0x110000; ++c) {
      if ((c >= 0xD800 && c <= 0xDFFF) || (c >= 0xAC00 && c <= 0xD7A3)) continue;
      ++checked;
      x.s.clear();
      nerpipe::utf8::append(x.s, c);
      x.al.assign(x.s.size(), {0, static_cast<std::uint32_t>(x.s.size())});
      nerpipe::detail::sw::unicode_normalize(form, x, tmp, ch);
      std::u32string got;
      for (std::size_t i = 0; i < x.s.size();) {
        char32_t u = 0;
        i += static_cast<std::size_t>(nerpipe::utf8::decode(x.s.data() + i, x.s.data() + x.s.size(), u));
        got.push_back(u);
      }
      std::u32string want = expected[c].empty() ? std::u32string(1, c) : expected[c];
      if (want == std::u32string(1, U'\0')) want.clear();
      if (got != want && bad++ < 6) {
        char buf[32];
        std::snprintf(buf, sizeof buf, " U+%04X", static_cast<unsigned>(c));
        first += buf;
      }
    }
    INFO(key << ": " << bad << " of " << checked << " code points differ:" << first);
    CHECK(bad == 0);
  }
  // Hangul syllables decompose and recompose algorithmically.
  nerpipe::detail::sw::segment x, tmp;
  std::vector<nerpipe::detail::sw::change> ch;
  x.s = "\xEA\xB0\x81";  // U+AC01 GAG
  x.al.assign(3, {0, 3});
  nerpipe::detail::sw::unicode_normalize(F::nfd, x, tmp, ch);
  CHECK(x.s == "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8");
  nerpipe::detail::sw::unicode_normalize(F::nfc, x, tmp, ch);
  CHECK(x.s == "\xEA\xB0\x81");
}

TEST_CASE("hf unigram: Replace (regex via PCRE2, string), Prepend and NFKC normalizers", "[tokenizer][unigram]") {
  // unigram-xlmr with its Precompiled normalizer replaced by Replace(Regex "[0-9]+" -> "#"), Replace("ab" -> "xyz"),
  // Prepend("~"), NFKC; expected values printed by tokenizers 0.22.2 (Tokenizer.from_str(...).encode).
  std::string json = sw::tokenizer_json_of("unigram-xlmr");
  const auto a = json.find("{\"type\":\"Precompiled\"");
  const auto b = json.find("\"}", a) + 2;
  json.replace(a, b - a,
               "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"[0-9]+\"},\"content\":\"#\"},"
               "{\"type\":\"Replace\",\"pattern\":{\"String\":\"ab\"},\"content\":\"xyz\"},"
               "{\"type\":\"Prepend\",\"prepend\":\"~\"},{\"type\":\"NFKC\"}");
  const nerpipe::subword_tokenizer tok(nerpipe::parse_subword_tokenizer_json(json, "misc"));
  struct expected {
    const char* text;
    std::vector<std::int32_t> ids;
    std::vector<std::uint32_t> off;
    std::vector<std::int32_t> words;
  };
  const std::vector<expected> cases = {
      {"Call 555 1234 now", {0, 6, 2920, 202, 980, 2276, 2276, 280, 2}, {0, 0, 0, 1, 0, 1, 0, 1, 1, 4, 4, 8, 8, 13, 13, 17, 0, 0}, {-1, 0, 0, 0, 0, 1, 2, 3, -1}},
      {"abcab 7", {0, 6, 2920, 223, 34, 172, 48, 223, 34, 172, 2276, 2},
       {0, 0, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 2, 3, 4, 5, 4, 5, 4, 5, 5, 7, 0, 0}, {-1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, -1}},
      {"\xEF\xAC\x81le 12ab", {0, 6, 2920, 1185, 108, 2276, 223, 34, 172, 2}, {0, 0, 0, 1, 0, 1, 0, 1, 1, 3, 3, 6, 7, 8, 7, 8, 7, 8, 0, 0}, {-1, 0, 0, 0, 0, 1, 1, 1, 1, -1}},
      {"", {0, 2}, {0, 0, 0, 0}, {-1, -1}},
      {"  9", {0, 6, 2920, 2276, 2}, {0, 0, 0, 1, 0, 1, 1, 3, 0, 0}, {-1, 0, 0, 1, -1}},
  };
  for (const auto& c : cases) {
    const nerpipe::encoding e = tok.encode(c.text);
    std::vector<std::uint32_t> off;
    for (const auto& o : e.offsets) {
      off.push_back(o.begin);
      off.push_back(o.end);
    }
    INFO(c.text);
    CHECK(e.ids == c.ids);
    CHECK(off == c.off);
    CHECK(e.word_ids == c.words);
  }
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
  msg = error_text([&] { (void)parse(with(base, "\"type\":\"Strip\"", "\"type\":\"StripAccents\"")); }, errc::model_unsupported);
  CHECK(msg.find("normalizer.normalizers[1].type 'StripAccents' is not supported yet") != std::string::npos);
  msg = error_text([&] { (void)parse(with(base, "\"prepend_scheme\":\"always\"", "\"prepend_scheme\":\"sometimes\"")); },
                   errc::model_file_malformed);
  CHECK(msg.find("pre_tokenizer.prepend_scheme") != std::string::npos);
  msg = error_text([&] { (void)parse(with(base, "\"type\":\"Unigram\"", "\"type\":\"WordLevel\"")); }, errc::model_unsupported);
  CHECK(msg.find("model.type 'WordLevel'") != std::string::npos);
  msg = error_text([&] { (void)parse(with(base, "\"id\":\"<s>\",\"ids\":[0]", "\"id\":\"<s>\",\"ids\":[-1]")); }, errc::model_file_malformed);
  CHECK(msg.find("post_processor.special_tokens.<s>.ids[0]") != std::string::npos);
}
