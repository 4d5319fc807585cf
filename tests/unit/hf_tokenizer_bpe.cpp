// SPDX-License-Identifier: Apache-2.0
// Byte-level BPE (RoBERTa style) against tokenizers 0.22.2 / transformers 4.57.6 recordings
// (tools/fixtures/hf_subword_fixtures.py): every document of EWT dev + train and ud-multi dev by digest,
// full records for a subset and Unicode edge cases, overflow windows with stride; the GPT-2 regex classes of
// every code point; the legacy merges format; and the errors of bad tokenizer files.
#include <catch2/catch.hpp>

#include "support/hf_subword_fixtures.hpp"

#include <nerpipe/model/hf/subword_tokenizer_json.hpp>
#include <nerpipe/tokenizer/any_tokenizer.hpp>
#include <nerpipe/tokenizer/subword_tokenizer.hpp>
#include <nerpipe/tokenizer/subword_unicode.hpp>

#include <simdjson.h>

#include <string>
#include <thread>
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

}  // namespace

TEST_CASE("hf bpe: every code point gets the GPT-2 regex class tokenizers gives it", "[tokenizer][fidelity][bpe]") {
  simdjson::dom::parser p;
  const std::string text = sw::read_file(sw::dir_of("gpt2_regex_sweep.json"));
  const simdjson::dom::element root = p.parse(text).value();
  std::vector<std::uint8_t> expected(0x110000, nerpipe::detail::gpt2::cls_other);
  for (const auto& [key, cls] : {std::pair<const char*, std::uint8_t>{"L", nerpipe::detail::gpt2::cls_letter},
                                 {"N", nerpipe::detail::gpt2::cls_number},
                                 {"S", nerpipe::detail::gpt2::cls_space}}) {
    const simdjson::dom::array ranges = root[key].get_array().value();
    for (const simdjson::dom::element r : ranges) {
      const simdjson::dom::array pair = r.get_array().value();
      const auto lo = pair.at(0).get_int64().value(), hi = pair.at(1).get_int64().value();
      for (auto c = lo; c <= hi; ++c) expected[static_cast<std::size_t>(c)] = cls;
    }
  }
  std::size_t bad = 0;
  std::string first;
  for (char32_t c = 0; c < 0x110000; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    if (nerpipe::detail::gpt2::classify(c) != expected[c] && bad++ < 8) {
      char buf[48];
      std::snprintf(buf, sizeof buf, " U+%04X(ours %d, theirs %d)", static_cast<unsigned>(c),
                    nerpipe::detail::gpt2::classify(c), expected[c]);
      first += buf;
    }
  }
  INFO("differences:" << first);
  CHECK(bad == 0);
}

TEST_CASE("hf bpe: RoBERTa-style tokenizer matches tokenizers on every EWT and ud-multi document", "[tokenizer][fidelity][bpe]") {
  sw::check_digests("bpe-roberta");
  sw::check_digests("bpe-prefix");
}

TEST_CASE("hf bpe: recorded documents and Unicode edge cases", "[tokenizer][fidelity][bpe]") {
  sw::check_records("bpe-roberta");
  sw::check_records("bpe-prefix");
}

TEST_CASE("hf bpe: random mixes of hard characters", "[tokenizer][fidelity][bpe]") {
  sw::check_fuzz("bpe-roberta");
  sw::check_fuzz("bpe-prefix");
}

TEST_CASE("hf bpe: overflow windows match truncation with stride", "[tokenizer][fidelity][bpe]") {
  sw::check_windows("bpe-roberta");
  sw::check_windows("bpe-prefix");
}

TEST_CASE("hf bpe: the legacy \"a b\" merges format gives the same tokens", "[tokenizer][bpe]") {
  const std::string json = sw::tokenizer_json_of("bpe-roberta");
  // Rewrite model.merges as "a b" strings (the pairs parsed, then written back JSON-escaped).
  simdjson::dom::parser p;
  const simdjson::dom::element root = p.parse(json).value();
  auto quote = [](std::string_view v) {
    std::string q = "\"";
    for (const char c : v) {
      if (c == '"' || c == '\\') q += '\\';
      q += c;
    }
    return q + "\"";
  };
  std::string merges = "\"merges\":[";
  std::size_t pairs = 0;
  const simdjson::dom::array all = root["model"]["merges"].get_array().value();
  for (const simdjson::dom::element m : all) {
    const simdjson::dom::array pair = m.get_array().value();
    if (pairs++ > 0) merges += ",";
    merges += quote(std::string(std::string_view(pair.at(0).get_string().value())) + " " +
                    std::string(std::string_view(pair.at(1).get_string().value())));
  }
  merges += "]";
  const std::size_t at = json.find("\"merges\":[");
  REQUIRE(at != std::string::npos);
  const std::size_t end = json.find("]]", at);
  REQUIRE(end != std::string::npos);
  const std::string legacy = json.substr(0, at) + merges + json.substr(end + 2);
  CHECK(pairs > 5000);
  const nerpipe::subword_tokenizer a(nerpipe::parse_subword_tokenizer_json(json, "pairs"));
  const nerpipe::subword_tokenizer b(nerpipe::parse_subword_tokenizer_json(legacy, "legacy"));
  std::size_t same = 0, n = 0;
  for (const auto& t : sw::corpora().at("ewt-dev")) {
    ++n;
    same += a.encode(t).ids == b.encode(t).ids && a.encode(t).offsets == b.encode(t).offsets;
  }
  CHECK(same == n);
}

TEST_CASE("hf bpe: continuing_subword_prefix, end_of_word_suffix, unk, fuse_unk, byte_fallback, ignore_merges", "[tokenizer][bpe]") {
  // A hand-made vocabulary (printed by tokenizers 0.22.2's Tokenizer.to_str()) and, per option set, what
  // tokenizers 0.22.2 gives (Tokenizer.encode ids and offsets).
  const std::string base = R"json({"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,"pre_tokenizer":{"type":"WhitespaceSplit"},"post_processor":null,"decoder":null,"model":{"type":"BPE","dropout":null,"unk_token":"[UNK]","continuing_subword_prefix":"##","end_of_word_suffix":"</w>","fuse_unk":true,"byte_fallback":false,"ignore_merges":false,"vocab":{"[UNK]":0,"a":1,"b":2,"c":3,"##a":4,"##b":5,"##c":6,"a</w>":7,"##b</w>":8,"##c</w>":9,"ab":10,"##ab":11,"abc</w>":12,"##bc</w>":13,"<0x64>":14,"##a</w>":15},"merges":[["a","##b"],["##b","##c</w>"],["ab","##c</w>"],["##a","##b"]]}})json";
  struct expected {
    const char* text;
    std::vector<std::int32_t> ids;
    std::vector<std::uint32_t> off;
  };
  const std::vector<std::pair<std::string, std::vector<expected>>> configs = {
      {"\"fuse_unk\":true",
       {{"abc", {12}, {0, 3}},
        {"ab xyzd abc", {1, 8, 0, 12}, {0, 1, 1, 2, 3, 7, 8, 11}},
        {"cab dd a", {3, 4, 8, 0, 7}, {0, 1, 1, 2, 2, 3, 4, 6, 7, 8}},
        {"ddd abab", {0, 10, 4, 8}, {0, 3, 4, 6, 6, 7, 7, 8}}}},
      {"\"fuse_unk\":false",
       {{"ab xyzd abc", {1, 8, 0, 0, 0, 0, 12}, {0, 1, 1, 2, 3, 4, 4, 5, 5, 6, 6, 7, 8, 11}},
        {"cab dd a", {3, 4, 8, 0, 0, 7}, {0, 1, 1, 2, 2, 3, 4, 5, 5, 6, 7, 8}}}},
      {"\"fuse_unk\":false,\"byte_fallback\":true",
       {{"cab dd a", {3, 4, 8, 14, 0, 7}, {0, 1, 1, 2, 2, 3, 4, 5, 5, 6, 7, 8}},
        {"ddd abab", {14, 0, 0, 10, 4, 8}, {0, 1, 1, 2, 2, 3, 4, 6, 6, 7, 7, 8}}}},
      {"\"fuse_unk\":false,\"byte_fallback\":false,\"ignore_merges\":true",
       {{"ab xyzd abc", {10, 0, 0, 0, 0, 12}, {0, 2, 3, 4, 4, 5, 5, 6, 6, 7, 8, 11}},
        {"cab dd a", {3, 4, 8, 0, 0, 1}, {0, 1, 1, 2, 2, 3, 4, 5, 5, 6, 7, 8}}}},
  };
  for (const auto& [flags, cases] : configs) {
    std::string json = base;
    const std::string from = "\"fuse_unk\":true,\"byte_fallback\":false,\"ignore_merges\":false";
    const auto at = json.find(from);
    REQUIRE(at != std::string::npos);
    std::string to = flags;
    if (to.find("byte_fallback") == std::string::npos) to += ",\"byte_fallback\":false";
    if (to.find("ignore_merges") == std::string::npos) to += ",\"ignore_merges\":false";
    json.replace(at, from.size(), to);
    const nerpipe::subword_tokenizer tok(nerpipe::parse_subword_tokenizer_json(json, "tiny"));
    for (const auto& c : cases) {
      const nerpipe::encoding e = tok.encode(c.text);
      std::vector<std::uint32_t> off;
      for (const auto& o : e.offsets) {
        off.push_back(o.begin);
        off.push_back(o.end);
      }
      INFO(flags << " '" << c.text << "'");
      CHECK(e.ids == c.ids);
      CHECK(off == c.off);
    }
  }
}

TEST_CASE("hf bpe: small known cases, the common interface and the loader", "[tokenizer][bpe]") {
  const nerpipe::loaded_tokenizer loaded = nerpipe::load_any_tokenizer(sw::dir_of("bpe-roberta"));
  const nerpipe::any_tokenizer& tok = loaded.tokenizer;
  REQUIRE(tok.subword() != nullptr);
  CHECK(tok.wordpiece() == nullptr);
  CHECK(loaded.info.model_max_length == 512);
  CHECK(loaded.info.decoder_type == "ByteLevel");
  CHECK(tok.num_special_tokens() == 2);
  CHECK(tok.token_to_id("<s>") == 0);
  CHECK(tok.token_to_id("</s>") == 2);
  CHECK(tok.token_to_id("<mask>") == 4);
  const nerpipe::encoding e = tok.encode("Hello world <mask>!");
  REQUIRE(e.size() >= 5);
  CHECK(e.ids.front() == 0);
  CHECK(e.ids.back() == 2);
  CHECK(e.special_tokens_mask.front() == 1);
  // "<mask>" has lstrip: it absorbs the space before it, and trim_offsets then trims that space away.
  const auto mask = static_cast<std::size_t>(std::find(e.ids.begin(), e.ids.end(), 4) - e.ids.begin());
  REQUIRE(mask < e.size());
  CHECK(e.offsets[mask] == nerpipe::token_offset{12, 18});
  CHECK(e.special_tokens_mask[mask] == 0);
  CHECK(tok.id_to_token(e.ids[e.size() - 2]) == "!");
  // Copies and moves keep working tables; the wordpiece alternative loads through the same function.
  nerpipe::subword_tokenizer copy = *tok.subword();
  CHECK(copy.encode("Hello world <mask>!").ids == e.ids);
  nerpipe::subword_tokenizer moved = std::move(copy);
  CHECK(moved.encode("Hello world <mask>!").ids == e.ids);
  const nerpipe::loaded_tokenizer wp = nerpipe::load_any_tokenizer(sw::dir_of("uncased"));
  REQUIRE(wp.tokenizer.wordpiece() != nullptr);
  CHECK(wp.tokenizer.encode("hello").size() == 3);
  CHECK(tok.encode("").size() == 2);
}

TEST_CASE("hf bpe: tokenizer_config.json resets add_prefix_space / trim_offsets as transformers does", "[tokenizer][bpe]") {
  // A ByteLevel pre-tokenizer takes the config's add_prefix_space (default false) in every fast tokenizer; the
  // RoBERTa-like classes also reset the post-processor's add_prefix_space and trim_offsets.
  nerpipe::hf_tokenizer_info info;
  nerpipe::subword_config cfg = nerpipe::parse_subword_tokenizer_json(sw::tokenizer_json_of("bpe-prefix"), "t", &info);
  REQUIRE(cfg.pre_tokenizers.size() == 1);
  CHECK(cfg.pre_tokenizers[0].add_prefix_space);
  CHECK(cfg.trim_add_prefix_space);
  nerpipe::apply_subword_tokenizer_config(R"({"tokenizer_class": "PreTrainedTokenizerFast"})", "c", cfg, info);
  CHECK_FALSE(cfg.pre_tokenizers[0].add_prefix_space);  // reset to the default
  CHECK(cfg.trim_add_prefix_space);                     // not a RoBERTa-like class: post-processor as written
  nerpipe::apply_subword_tokenizer_config(
      R"({"tokenizer_class": "RobertaTokenizerFast", "add_prefix_space": true, "trim_offsets": false, "model_max_length": 128})",
      "c", cfg, info);
  CHECK(cfg.pre_tokenizers[0].add_prefix_space);
  CHECK(cfg.trim_add_prefix_space);
  CHECK_FALSE(cfg.trim_offsets);
  CHECK(info.model_max_length == 128);
  // Through the loader: bpe-roberta's config says add_prefix_space false, as its tokenizer.json does.
  const auto loaded = nerpipe::load_any_tokenizer(sw::dir_of("bpe-roberta"));
  CHECK_FALSE(loaded.tokenizer.subword()->config().pre_tokenizers[0].add_prefix_space);
  CHECK(loaded.tokenizer.subword()->config().trim_offsets);
}

TEST_CASE("hf bpe: concurrent encode calls give the single-thread result", "[tokenizer][bpe]") {
  const nerpipe::subword_tokenizer tok = sw::load("bpe-roberta");
  const auto& texts = sw::corpora().at("ewt-dev");
  std::vector<std::vector<std::int32_t>> expected;
  for (const auto& t : texts) expected.push_back(tok.encode(t).ids);
  std::vector<int> mismatches(2, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 2; ++k)
    threads.emplace_back([&, k] {
      nerpipe::encoding enc;
      for (std::size_t i = 0; i < texts.size(); ++i) {
        const std::size_t d = k == 0 ? i : texts.size() - 1 - i;
        tok.encode(texts[d], enc);
        mismatches[static_cast<std::size_t>(k)] += enc.ids != expected[d];
      }
    });
  for (auto& t : threads) t.join();
  CHECK(mismatches == std::vector<int>{0, 0});
}

TEST_CASE("hf bpe: invalid UTF-8 and window arguments", "[tokenizer][bpe]") {
  const nerpipe::subword_tokenizer tok = sw::load("bpe-roberta");
  try {
    (void)tok.encode("abc\xff");
    FAIL("no input_error");
  } catch (const nerpipe::input_error& e) {
    CHECK(e.code() == nerpipe::errc::input_invalid_utf8);
    CHECK(std::string(e.what()).find("byte 3") != std::string::npos);
  }
  CHECK_THROWS_AS(tok.encode_windows("a b c", 2, 0), nerpipe::config_error);
  CHECK_THROWS_AS(tok.encode_windows("a b c", 10, 8), nerpipe::config_error);
}

TEST_CASE("hf bpe: bad tokenizer files give errors naming the key", "[tokenizer][bpe]") {
  using nerpipe::errc;
  const std::string base = sw::tokenizer_json_of("bpe-roberta");
  auto parse = [](const std::string& json) {
    return nerpipe::subword_tokenizer(nerpipe::parse_subword_tokenizer_json(json, "x/tokenizer.json"));
  };
  std::string msg = error_text([&] { (void)parse(with(base, "\"type\":\"BPE\"", "\"type\":\"WordLevel\"")); },
                               errc::model_unsupported);
  CHECK(msg.find("x/tokenizer.json: model.type 'WordLevel' is not supported yet") != std::string::npos);
  // A merge naming a token that is not in the vocabulary.
  msg = error_text([&] { (void)parse(with(base, "\"merges\":[[\"", "\"merges\":[[\"NOT-A-TOKEN\",\"x\"],[\"")); },
                   errc::model_file_malformed);
  CHECK(msg.find("model.merges[0]") != std::string::npos);
  CHECK(msg.find("NOT-A-TOKEN") != std::string::npos);
  msg = error_text([&] { (void)parse(with(base, "\"merges\":[", "\"merges\":[\"a b c\",")); }, errc::model_file_malformed);
  CHECK(msg.find("model.merges[0]") != std::string::npos);
  msg = error_text([&] { (void)parse(with(base, "\"merges\":[", "\"merges\":[[\"a\"],")); }, errc::model_file_malformed);
  CHECK(msg.find("expected [a, b]") != std::string::npos);
  msg = error_text([&] { (void)parse(with(base, "\"<s>\":0", "\"<s>\":-5")); }, errc::model_file_malformed);
  CHECK(msg.find("model.vocab.<s>") != std::string::npos);
  msg = error_text([&] { (void)parse(with(base, "\"dropout\":null", "\"dropout\":0.1")); }, errc::model_unsupported);
  CHECK(msg.find("model.dropout") != std::string::npos);
  msg = error_text([&] { (void)parse(with(base, "\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":true},\"post",
                                          "\"type\":\"Digits\"},\"post")); },
                   errc::model_unsupported);
  CHECK(msg.find("pre_tokenizer.type 'Digits'") != std::string::npos);
  msg = error_text([&] { (void)parse(with(base, "\"type\":\"RobertaProcessing\"", "\"type\":\"Sequence\"")); }, errc::model_unsupported);
  CHECK(msg.find("post_processor.type 'Sequence'") != std::string::npos);
  msg = error_text([&] { (void)parse(with(base, "\"vocab\":{", "\"vocab\":{\"huge\":4000000000,")); }, errc::model_file_malformed);
  CHECK(msg.find("model.vocab.huge") != std::string::npos);
}
