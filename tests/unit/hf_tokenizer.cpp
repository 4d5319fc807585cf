// SPDX-License-Identifier: Apache-2.0
// The Hugging Face WordPiece tokenizer against fixtures recorded from tokenizers 0.22.2 / transformers 4.57.6
// (tools/fixtures/hf_tokenizer_fixtures.py): every EWT dev document, the first 120 train documents and a
// Unicode edge-case list, for bert-base-uncased and a cased vocabulary; plus overflow windows, every code
// point's character classes, and the errors of bad tokenizer files.
#include <catch2/catch.hpp>

#include "support/data.hpp"

#include <nerpipe/core/utf8.hpp>
#include <nerpipe/model/hf/tokenizer_json.hpp>
#include <nerpipe/tokenizer/unicode.hpp>
#include <nerpipe/tokenizer/wordpiece_tokenizer.hpp>

#include <simdjson.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

const std::string fixture_dir = (nerpipe::test::fixtures_dir() / "hf" / "tokenizer").string();
const std::string ewt_dir = nerpipe::test::ewt_dir().string();

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

std::vector<std::int64_t> ints(simdjson::dom::element e) {
  std::vector<std::int64_t> v;
  simdjson::dom::array a = e.get_array().value();
  for (const simdjson::dom::element x : a) v.push_back(x.get_int64().value());
  return v;
}

const std::map<std::string, std::vector<std::string>>& ewt_texts() {
  static const std::map<std::string, std::vector<std::string>> texts = [] {
    std::map<std::string, std::vector<std::string>> m;
    simdjson::dom::parser p;
    for (const char* split : {"dev", "train"})
      for (const auto& line : read_lines(ewt_dir + "/" + split + ".jsonl")) {
        simdjson::dom::element rec = p.parse(line).value();
        m[split].emplace_back(std::string_view(rec["text"].get_string().value()));
      }
    return m;
  }();
  return texts;
}

std::string text_of(simdjson::dom::element rec) {
  const std::string src(std::string_view(rec["src"].get_string().value()));
  if (src == "edge") return std::string(std::string_view(rec["text"].get_string().value()));
  const auto i = static_cast<std::size_t>(rec["i"].get_int64().value());
  return ewt_texts().at(src).at(i);
}

std::string describe(const simdjson::dom::element rec) {
  std::ostringstream os;
  os << std::string_view(rec["src"].get_string().value()) << "#" << rec["i"].get_int64().value();
  return os.str();
}

// Byte offsets must be the code-point offsets' image in the UTF-8 text.
bool byte_offsets_agree(const nerpipe::encoding& e, std::string_view text) {
  const nerpipe::utf8::offset_map map(text);
  for (std::size_t k = 0; k < e.size(); ++k) {
    if (e.special_tokens_mask[k]) {
      if (e.byte_offsets[k] != nerpipe::token_offset{0, 0}) return false;
      continue;
    }
    if (map.byte_of(e.offsets[k].begin) != e.byte_offsets[k].begin) return false;
    if (map.byte_of(e.offsets[k].end) != e.byte_offsets[k].end) return false;
  }
  return true;
}

void check_vocab(const std::string& name) {
  const nerpipe::hf_tokenizer hf = nerpipe::load_hf_tokenizer(fixture_dir + "/" + name);
  const nerpipe::wordpiece_tokenizer& tok = hf.tokenizer;
  CHECK(hf.info.model_max_length == 512);
  CHECK(tok.num_special_tokens() == 2);
  simdjson::dom::parser p;
  const auto lines = read_lines(fixture_dir + "/" + name + "/docs.jsonl");
  REQUIRE(lines.size() > 400);
  simdjson::dom::element meta = p.parse(lines[0]).value();
  const auto cls = static_cast<std::int32_t>(meta["cls"].get_int64().value());
  const auto sep = static_cast<std::int32_t>(meta["sep"].get_int64().value());
  CHECK(tok.token_to_id("[CLS]") == cls);
  CHECK(tok.token_to_id("[SEP]") == sep);

  std::size_t docs = 0, tokens = 0, same = 0;
  std::string first_failure;
  nerpipe::encoding enc;
  for (std::size_t li = 1; li < lines.size(); ++li) {
    simdjson::dom::element rec = p.parse(lines[li]).value();
    const std::string text = text_of(rec);
    REQUIRE(nerpipe::utf8::length(text) == static_cast<std::size_t>(rec["n"].get_int64().value()));
    tok.encode(text, enc);
    const auto ids = ints(rec["ids"]), sw = ints(rec["sw"]), len = ints(rec["l"]);
    ++docs;
    tokens += ids.size() + 2;
    bool ok = enc.size() == ids.size() + 2 && enc.ids.front() == cls && enc.ids.back() == sep &&
              enc.special_tokens_mask.front() == 1 && enc.special_tokens_mask.back() == 1 &&
              enc.word_ids.front() == -1 && enc.word_ids.back() == -1 &&
              enc.offsets.front() == nerpipe::token_offset{0, 0} && enc.offsets.back() == nerpipe::token_offset{0, 0};
    std::string why;
    if (!ok) why = "size or specials: got " + std::to_string(enc.size()) + " tokens, expected " + std::to_string(ids.size() + 2);
    std::int64_t prev_end = 0, prev_word = -1;
    for (std::size_t k = 0; ok && k < ids.size(); ++k) {
      const std::int64_t s = (sw[k] - (sw[k] & 1)) / 2, dw = sw[k] & 1;
      const std::int64_t b = prev_end + s, e = b + len[k], w = prev_word + dw;
      const std::size_t t = k + 1;
      if (enc.ids[t] != ids[k] || enc.offsets[t].begin != b || enc.offsets[t].end != e || enc.word_ids[t] != w ||
          enc.special_tokens_mask[t] != 0) {
        ok = false;
        why = "token " + std::to_string(k) + ": got id " + std::to_string(enc.ids[t]) + " (" +
              std::to_string(enc.offsets[t].begin) + "," + std::to_string(enc.offsets[t].end) + ") word " +
              std::to_string(enc.word_ids[t]) + "; expected id " + std::to_string(ids[k]) + " (" + std::to_string(b) +
              "," + std::to_string(e) + ") word " + std::to_string(w);
      }
      prev_end = e;
      prev_word = w;
    }
    if (ok && !byte_offsets_agree(enc, text)) {
      ok = false;
      why = "byte offsets disagree with code-point offsets";
    }
    if (ok) ++same;
    else if (first_failure.empty()) first_failure = name + " " + describe(rec) + ": " + why;
  }
  INFO(first_failure);
  INFO(name << ": " << same << "/" << docs << " documents identical (" << tokens << " tokens)");
  CHECK(docs == lines.size() - 1);
  CHECK(same == docs);
}

// The digest tools/fixtures/hf_tokenizer_fixtures.py records over every EWT dev + train document.
std::uint64_t digest(const nerpipe::encoding& e, std::uint64_t h) {
  auto mix = [&h](std::int64_t v) {
    h ^= static_cast<std::uint64_t>(v);
    h *= 0x100000001B3ull;
  };
  for (std::size_t k = 0; k < e.size(); ++k) {
    mix(e.ids[k]);
    mix(e.offsets[k].begin);
    mix(e.offsets[k].end);
    mix(e.word_ids[k]);
  }
  return h;
}

void check_all_ewt(const std::string& name) {
  const nerpipe::hf_tokenizer hf = nerpipe::load_hf_tokenizer(fixture_dir + "/" + name);
  simdjson::dom::parser p;
  simdjson::dom::element meta = p.parse(read_lines(fixture_dir + "/" + name + "/docs.jsonl")[0]).value();
  const std::string expected(std::string_view(meta["all_ewt_digest"].get_string().value()));
  const auto expected_tokens = static_cast<std::size_t>(meta["all_ewt_tokens"].get_int64().value());
  std::uint64_t h = 0xCBF29CE484222325ull;
  std::size_t tokens = 0;
  nerpipe::encoding enc;
  for (const char* split : {"dev", "train"})
    for (const auto& text : ewt_texts().at(split)) {
      hf.tokenizer.encode(text, enc);
      h = digest(enc, h);
      tokens += enc.size();
    }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  CHECK(tokens == expected_tokens);
  CHECK(std::string(hex) == expected);
}

void check_windows(const std::string& name) {
  const nerpipe::hf_tokenizer hf = nerpipe::load_hf_tokenizer(fixture_dir + "/" + name);
  simdjson::dom::parser p;
  const auto lines = read_lines(fixture_dir + "/" + name + "/windows.jsonl");
  REQUIRE(lines.size() >= 30);
  std::vector<nerpipe::encoding> wins;
  std::size_t cases = 0, same = 0, multi = 0;
  std::string first_failure;
  for (const auto& line : lines) {
    simdjson::dom::element rec = p.parse(line).value();
    const std::string text = text_of(rec);
    const auto L = static_cast<std::size_t>(rec["L"].get_int64().value());
    const auto S = static_cast<std::size_t>(rec["S"].get_int64().value());
    hf.tokenizer.encode_windows(text, L, S, wins);
    simdjson::dom::array expected = rec["win"].get_array().value();
    bool ok = wins.size() == expected.size();
    std::string why = ok ? "" : "got " + std::to_string(wins.size()) + " windows, expected " + std::to_string(expected.size());
    std::size_t k = 0;
    for (const simdjson::dom::element w : expected) {
      if (!ok) break;
      const auto ids = ints(w["ids"]), off = ints(w["off"]), words = ints(w["w"]);
      const nerpipe::encoding& e = wins[k];
      ok = e.size() == ids.size() && e.size() <= L;
      for (std::size_t t = 0; ok && t < ids.size(); ++t)
        ok = e.ids[t] == ids[t] && e.offsets[t].begin == off[2 * t] && e.offsets[t].end == off[2 * t + 1] &&
             e.word_ids[t] == words[t];
      ok = ok && byte_offsets_agree(e, text);
      if (!ok) why = "window " + std::to_string(k);
      ++k;
    }
    ++cases;
    multi += expected.size() > 1;
    if (ok) ++same;
    else if (first_failure.empty()) first_failure = name + " " + describe(rec) + " L=" + std::to_string(L) + " S=" + std::to_string(S) + ": " + why;
  }
  INFO(first_failure);
  CHECK(multi > cases / 2);  // most cases do overflow
  CHECK(same == cases);
}

std::vector<char> sweep_flags(simdjson::dom::element root, const char* key) {
  std::vector<char> f(0x110000, 0);
  simdjson::dom::array ranges = root[key].get_array().value();
  for (const simdjson::dom::element r : ranges) {
    const auto v = ints(r);
    for (std::int64_t c = v[0]; c <= v[1]; ++c) f[static_cast<std::size_t>(c)] = 1;
  }
  return f;
}

std::map<char32_t, std::u32string> sweep_map(simdjson::dom::element root, const char* key) {
  std::map<char32_t, std::u32string> m;
  simdjson::dom::array rows = root[key].get_array().value();
  for (const simdjson::dom::element r : rows) {
    const auto v = ints(r);
    std::u32string s;
    for (std::size_t k = 1; k < v.size(); ++k) s.push_back(static_cast<char32_t>(v[k]));
    m[static_cast<char32_t>(v[0])] = s;
  }
  return m;
}

std::string write_temp(const std::string& dir_name, const std::string& tokenizer_json) {
  const auto dir = std::filesystem::temp_directory_path() / ("nerpipe_hf_tok_" + dir_name);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json", std::ios::binary) << tokenizer_json;
  return dir.string();
}

std::string uncased_json() {
  std::ifstream in(fixture_dir + "/uncased/tokenizer.json", std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

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

}  // namespace

TEST_CASE("hf wordpiece: every code point is classified as tokenizers does", "[fidelity][hf_tokenizer]") {
  namespace bu = nerpipe::detail::bert_unicode;
  simdjson::dom::parser p;
  simdjson::dom::element root = p.load(fixture_dir + "/unicode_sweep.json").value();
  const auto removed = sweep_flags(root, "removed"), space = sweep_flags(root, "space"), cjk = sweep_flags(root, "cjk"),
             punct = sweep_flags(root, "punct"), ws = sweep_flags(root, "ws");
  const auto strip = sweep_map(root, "strip"), lower = sweep_map(root, "lower");
  std::size_t bad = 0, checked = 0;
  std::string first;
  auto miss = [&](const char* what, char32_t c) {
    if (bad++ == 0) {
      std::ostringstream os;
      os << what << " U+" << std::hex << std::uppercase << static_cast<std::uint32_t>(c);
      first = os.str();
    }
  };
  for (char32_t c = 0; c < 0x110000; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    ++checked;
    const bool rm = c == 0 || c == 0xFFFD || bu::is_bert_control(c);
    if (rm != static_cast<bool>(removed[c])) miss("clean_text removal", c);
    if ((!rm && c != ' ' && bu::is_bert_whitespace(c)) != static_cast<bool>(space[c])) miss("clean_text whitespace", c);
    if (bu::is_cjk(c) != static_cast<bool>(cjk[c])) miss("chinese char", c);
    if (bu::is_bert_punctuation(c) != static_cast<bool>(punct[c])) miss("punctuation", c);
    if (bu::is_white_space(c) != static_cast<bool>(ws[c])) miss("pre-tokenizer whitespace", c);
    char32_t d[4];
    const int n = bu::nfd(c, d);
    std::u32string s;
    for (int k = 0; k < n; ++k)
      if (!bu::is_nonspacing_mark(d[k])) s.push_back(d[k]);
    const auto si = strip.find(c);
    if (s != (si == strip.end() ? std::u32string(1, c) : si->second)) miss("strip_accents", c);
    char32_t l[3];
    const int m = bu::to_lower(c, l);
    const auto lo = lower.find(c);
    if (std::u32string(l, l + m) != (lo == lower.end() ? std::u32string(1, c) : lo->second)) miss("lowercase", c);
  }
  INFO("first difference: " << first);
  CHECK(checked == 0x110000 - 0x800);
  CHECK(bad == 0);
}

TEST_CASE("hf wordpiece: bert-base-uncased matches tokenizers on EWT and edge cases", "[fidelity][hf_tokenizer]") {
  check_vocab("uncased");
}

TEST_CASE("hf wordpiece: a cased vocabulary matches tokenizers on EWT and edge cases", "[fidelity][hf_tokenizer]") {
  check_vocab("cased");
}

TEST_CASE("hf wordpiece: all 858 EWT documents give tokenizers' digest", "[fidelity][hf_tokenizer]") {
  check_all_ewt("uncased");
  check_all_ewt("cased");
}

TEST_CASE("hf wordpiece: overflow windows match truncation with stride", "[fidelity][hf_tokenizer]") {
  check_windows("uncased");
  check_windows("cased");
}

TEST_CASE("hf wordpiece: small known cases", "[hf_tokenizer]") {
  const nerpipe::hf_tokenizer hf = nerpipe::load_hf_tokenizer(fixture_dir + "/uncased");
  const auto& tok = hf.tokenizer;
  CHECK(hf.info.decoder_type == "WordPiece");
  CHECK(tok.config().normalizer->lowercase);
  const nerpipe::encoding e = tok.encode("Hello, [SEP] wörld!");
  // [CLS] hello , [SEP] world ! [SEP]; the in-text [SEP] is a token of the text (mask 0, a word of its own).
  REQUIRE(e.size() == 7);
  CHECK(e.ids[0] == 101);
  CHECK(tok.id_to_token(e.ids[1]) == "hello");
  CHECK(e.ids[3] == 102);
  CHECK(e.special_tokens_mask[3] == 0);
  CHECK(e.word_ids == std::vector<std::int32_t>{-1, 0, 1, 2, 3, 4, -1});
  CHECK(tok.id_to_token(e.ids[4]) == "world");
  CHECK(e.offsets[4] == nerpipe::token_offset{13, 18});
  CHECK(e.byte_offsets[4] == nerpipe::token_offset{13, 19});
  // Reusing an encoding and a copy of the tokenizer give the same result.
  nerpipe::wordpiece_tokenizer copy = tok;
  nerpipe::encoding again;
  copy.encode("Hello, [SEP] wörld!", again);
  CHECK(again.ids == e.ids);
  CHECK(tok.encode("").size() == 2);
  // A moved-to tokenizer keeps its tables (they point into a heap arena that moves with it).
  nerpipe::wordpiece_tokenizer moved = std::move(copy);
  CHECK(moved.encode("Hello, [SEP] wörld!").ids == e.ids);
}

TEST_CASE("hf wordpiece: concurrent encode calls give the single-thread result", "[hf_tokenizer]") {
  const nerpipe::hf_tokenizer hf = nerpipe::load_hf_tokenizer(fixture_dir + "/uncased");
  const auto& texts = ewt_texts().at("dev");
  std::vector<std::vector<std::int32_t>> expected;
  for (const auto& t : texts) expected.push_back(hf.tokenizer.encode(t).ids);
  std::vector<int> mismatches(2, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 2; ++k)
    threads.emplace_back([&, k] {
      nerpipe::encoding enc;
      for (std::size_t i = 0; i < texts.size(); ++i) {
        const std::size_t d = k == 0 ? i : texts.size() - 1 - i;  // opposite orders
        hf.tokenizer.encode(texts[d], enc);
        mismatches[static_cast<std::size_t>(k)] += enc.ids != expected[d];
      }
    });
  for (auto& t : threads) t.join();
  CHECK(mismatches == std::vector<int>{0, 0});
}

TEST_CASE("hf wordpiece: invalid UTF-8 is an input_error naming the byte", "[hf_tokenizer]") {
  const nerpipe::hf_tokenizer hf = nerpipe::load_hf_tokenizer(fixture_dir + "/cased");
  for (const std::string& bad : {std::string("abc\xff"), std::string("abc\xc3"), std::string("abc\xed\xa0\x80x"),
                                std::string("abc\xc0\x80")}) {
    try {
      (void)hf.tokenizer.encode(bad);
      FAIL("no input_error");
    } catch (const nerpipe::input_error& e) {
      CHECK(e.code() == nerpipe::errc::input_invalid_utf8);
      CHECK(std::string(e.what()).find("byte 3") != std::string::npos);
    }
  }
  CHECK(nerpipe::utf8::find_invalid("abc\xe2\x82") == 3);
  CHECK(nerpipe::utf8::find_invalid("h\xc3\xa9llo") == std::string_view::npos);
}

TEST_CASE("hf wordpiece: window arguments are checked", "[hf_tokenizer]") {
  const nerpipe::hf_tokenizer hf = nerpipe::load_hf_tokenizer(fixture_dir + "/uncased");
  CHECK_THROWS_AS(hf.tokenizer.encode_windows("a b c", 2, 0), nerpipe::config_error);
  CHECK_THROWS_AS(hf.tokenizer.encode_windows("a b c", 10, 8), nerpipe::config_error);
  const auto w = hf.tokenizer.encode_windows("a b c d e f g", 5, 1);  // 7 tokens, 3 per window, step 2
  REQUIRE(w.size() == 3);
  CHECK(w[0].word_ids == std::vector<std::int32_t>{-1, 0, 1, 2, -1});
  CHECK(w[1].word_ids == std::vector<std::int32_t>{-1, 2, 3, 4, -1});
  CHECK(w[2].word_ids == std::vector<std::int32_t>{-1, 4, 5, 6, -1});
}

TEST_CASE("hf wordpiece: tokenizer_config.json overrides the normalizer like BertTokenizerFast", "[hf_tokenizer]") {
  nerpipe::hf_tokenizer_info info;
  nerpipe::wordpiece_config cfg = nerpipe::parse_tokenizer_json(uncased_json(), "tokenizer.json", &info);
  nerpipe::apply_tokenizer_config(R"({"tokenizer_class": "BertTokenizer", "do_lower_case": false, "model_max_length": 1000000000000000019884624838656})",
                                  "tokenizer_config.json", cfg, info);
  CHECK(info.normalizer_overridden);
  CHECK_FALSE(cfg.normalizer->lowercase);
  CHECK(info.model_max_length == 0);
  const nerpipe::wordpiece_tokenizer tok(cfg);
  CHECK(tok.encode("Hello").ids[1] == tok.unk_id());  // "Hello" is not in the uncased vocabulary
  nerpipe::wordpiece_config cfg2 = nerpipe::parse_tokenizer_json(uncased_json(), "tokenizer.json");
  nerpipe::apply_tokenizer_config(R"({"tokenizer_class": "RobertaTokenizer", "do_lower_case": false})",
                                  "tokenizer_config.json", cfg2, info);
  CHECK(cfg2.normalizer->lowercase);  // not a BERT-family class: tokenizer.json wins
}

TEST_CASE("hf wordpiece: bad tokenizer files give errors naming the file and key", "[hf_tokenizer]") {
  using nerpipe::errc;
  std::string msg = error_text([] { (void)nerpipe::load_hf_tokenizer(fixture_dir + "/no_such_dir"); }, errc::model_file_missing);
  CHECK(msg.find("no_such_dir/tokenizer.json") != std::string::npos);

  const std::string dir = write_temp("malformed", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0,");
  msg = error_text([&] { (void)nerpipe::load_hf_tokenizer(dir); }, errc::model_file_malformed);
  CHECK(msg.find("tokenizer.json: invalid JSON") != std::string::npos);

  const std::string base = uncased_json();
  auto with = [&](const std::string& from, const std::string& to) {
    const auto at = base.find(from);
    REQUIRE(at != std::string::npos);
    return std::string(base).replace(at, from.size(), to);
  };
  msg = error_text([&] { (void)nerpipe::parse_tokenizer_json(with("\"model\":{\"type\":\"WordPiece\"", "\"model\":{\"type\":\"BPE\""), "x/tokenizer.json"); },
                   errc::model_unsupported);
  CHECK(msg.find("x/tokenizer.json: model.type 'BPE' is not supported yet") != std::string::npos);
  msg = error_text([&] { (void)nerpipe::parse_tokenizer_json(with("\"type\":\"BertNormalizer\"", "\"type\":\"NFKC\""), "tokenizer.json"); },
                   errc::model_unsupported);
  CHECK(msg.find("normalizer.type 'NFKC'") != std::string::npos);
  msg = error_text([&] { (void)nerpipe::parse_tokenizer_json(with("\"type\":\"BertPreTokenizer\"", "\"type\":\"Metaspace\""), "tokenizer.json"); },
                   errc::model_unsupported);
  CHECK(msg.find("pre_tokenizer.type 'Metaspace'") != std::string::npos);
  msg = error_text([&] { (void)nerpipe::parse_tokenizer_json(with("\"lstrip\":false", "\"lstrip\":true"), "tokenizer.json"); },
                   errc::model_unsupported);
  CHECK(msg.find("added_tokens[0].lstrip") != std::string::npos);
  msg = error_text([&] { (void)nerpipe::parse_tokenizer_json(with("\"vocab\":", "\"vocabulary\":"), "tokenizer.json"); },
                   errc::model_key_missing);
  CHECK(msg.find("'model.vocab' is missing") != std::string::npos);
  msg = error_text([&] { (void)nerpipe::parse_tokenizer_json(with("\"unk_token\":\"[UNK]\"", "\"unk_token\":7"), "tokenizer.json"); },
                   errc::model_file_malformed);
  CHECK(msg.find("'model.unk_token' is an integer (expected a string)") != std::string::npos);
  msg = error_text([&] { (void)nerpipe::parse_tokenizer_json(with("\"type\":\"TemplateProcessing\"", "\"type\":\"RobertaProcessing\""), "tokenizer.json"); },
                   errc::model_unsupported);
  CHECK(msg.find("post_processor.type 'RobertaProcessing'") != std::string::npos);
}
