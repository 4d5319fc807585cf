// SPDX-License-Identifier: Apache-2.0
//! @file Checks a BPE / Unigram tokenizer against the recordings of tools/fixtures/hf_subword_fixtures.py
//! (tests/fixtures/hf/tokenizer/<name>/{digests.json,docs.jsonl,windows.jsonl}): a per-document digest of
//! every document of EWT dev + train and ud-multi dev, full records for a subset and the edge cases, and
//! overflow windows. Every mismatch names the corpus and document.
#pragma once

#include <catch2/catch.hpp>

#include "support/data.hpp"

#include <nerpipe/core/utf8.hpp>
#include <nerpipe/model/hf/subword_tokenizer_json.hpp>
#include <nerpipe/tokenizer/subword_tokenizer.hpp>

#include <simdjson.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace nerpipe::test::subword {

inline std::filesystem::path dir_of(const std::string& name) { return fixtures_dir() / "hf" / "tokenizer" / name; }

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

/// Variants recorded without a tokenizer.json of their own: the base file and the same text edits as
/// VARIANTS in tools/fixtures/hf_subword_fixtures.py.
/// An edit replaces every `from` by `to`; with `until`, the first `from` and everything after it through the
/// first `until` (as apply_edits in the tool).
struct edit {
  std::string from, to, until;
};

inline std::string tokenizer_json_of(const std::string& name) {
  static const std::map<std::string, std::pair<std::string, std::vector<edit>>> variants = {
      {"bpe-prefix", {"bpe-roberta", {{"\"add_prefix_space\":false", "\"add_prefix_space\":true", ""}}}},
      {"unigram-deberta-lower",
       {"unigram-deberta",
        {{"\"normalizers\":[", "\"normalizers\":[{\"type\":\"Lowercase\"},", ""},
         {"\"pretokenizers\":[", "\"pretokenizers\":[{\"type\":\"Punctuation\",\"behavior\":\"Isolated\"},", ""}}}},
      {"unigram-xlmr-nfkc", {"unigram-xlmr", {{"{\"type\":\"Precompiled\"", "{\"type\":\"NFKC\"}", "\"}"}}}},
      {"unigram-deberta-nfd", {"unigram-deberta", {{"{\"type\":\"Precompiled\"", "{\"type\":\"NFD\"}", "\"}"}}}},
      {"unigram-xlmr-wss",
       {"unigram-xlmr",
        {{"\"pre_tokenizer\":{\"type\":\"Metaspace\",",
          "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"WhitespaceSplit\"},{\"type\":\"Metaspace\",", ""},
         {"\"split\":true},\"post_processor\"", "\"split\":true}]},\"post_processor\"", ""},
         {"\"prepend_scheme\":\"always\"", "\"prepend_scheme\":\"first\"", ""}}}},
  };
  const auto it = variants.find(name);
  if (it == variants.end()) return read_file(dir_of(name) / "tokenizer.json");
  std::string text = read_file(dir_of(it->second.first) / "tokenizer.json");
  for (const auto& e : it->second.second) {
    std::size_t at = text.find(e.from);
    REQUIRE(at != std::string::npos);
    if (!e.until.empty()) {
      const std::size_t end = text.find(e.until, at + e.from.size());
      REQUIRE(end != std::string::npos);
      text.replace(at, end + e.until.size() - at, e.to);
      continue;
    }
    for (; at != std::string::npos; at = text.find(e.from, at + e.to.size())) text.replace(at, e.from.size(), e.to);
  }
  return text;
}

inline subword_tokenizer load(const std::string& name) {
  return subword_tokenizer(parse_subword_tokenizer_json(tokenizer_json_of(name), name + "/tokenizer.json"));
}

inline const std::map<std::string, std::vector<std::string>>& corpora() {
  static const std::map<std::string, std::vector<std::string>> m = [] {
    std::map<std::string, std::vector<std::string>> c;
    for (const auto& [name, file] : {std::pair<std::string, std::filesystem::path>{"ewt-dev", ewt_file("dev")},
                                     {"ewt-train", ewt_file("train")},
                                     {"ud-multi-dev", ud_multi_file()}})
      for (auto& d : load_docs(file)) c[name].push_back(std::move(d.text));
    return c;
  }();
  return m;
}

/// The digest tools/fixtures/hf_subword_fixtures.py records per document.
inline std::uint64_t digest(const encoding& e) {
  std::uint64_t h = 0xCBF29CE484222325ull;
  auto mix = [&h](std::int64_t v) {
    h ^= static_cast<std::uint64_t>(v);
    h *= 0x100000001B3ull;
  };
  for (std::size_t k = 0; k < e.size(); ++k) {
    mix(e.ids[k]);
    mix(e.offsets[k].begin);
    mix(e.offsets[k].end);
    mix(e.word_ids[k]);
    mix(e.special_tokens_mask[k]);
  }
  return h;
}

inline std::string hex(std::uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// Byte offsets must be the code-point offsets' image in the UTF-8 text.
inline bool byte_offsets_agree(const encoding& e, std::string_view text) {
  const utf8::offset_map map(text);
  for (std::size_t k = 0; k < e.size(); ++k) {
    if (e.special_tokens_mask[k]) {
      if (e.byte_offsets[k] != token_offset{0, 0}) return false;
      continue;
    }
    if (e.offsets[k].begin > map.size() || e.offsets[k].end > map.size()) return false;
    if (map.byte_of(e.offsets[k].begin) != e.byte_offsets[k].begin) return false;
    if (map.byte_of(e.offsets[k].end) != e.byte_offsets[k].end) return false;
  }
  return true;
}

/// Compares `e` with a compact record {"ids", "d", "m"}; returns "" or what differs.
inline std::string compare(const encoding& e, simdjson::dom::element rec) {
  std::vector<std::int64_t> ids, d;
  const simdjson::dom::array ia = rec["ids"].get_array().value(), da = rec["d"].get_array().value();
  for (const simdjson::dom::element x : ia) ids.push_back(x.get_int64().value());
  for (const simdjson::dom::element x : da) d.push_back(x.get_int64().value());
  const std::string_view m = rec["m"].get_string().value();
  if (e.size() != ids.size()) return "got " + std::to_string(e.size()) + " tokens, expected " + std::to_string(ids.size());
  std::int64_t pe = 0, pw = -1;
  for (std::size_t k = 0; k < ids.size(); ++k) {
    const std::int64_t b = pe + d[3 * k], en = b + d[3 * k + 1], w = pw + d[3 * k + 2];
    if (e.ids[k] != ids[k] || e.offsets[k].begin != b || e.offsets[k].end != en || e.word_ids[k] != w ||
        e.special_tokens_mask[k] != (m[k] == '1'))
      return "token " + std::to_string(k) + ": got id " + std::to_string(e.ids[k]) + " (" + std::to_string(e.offsets[k].begin) +
             "," + std::to_string(e.offsets[k].end) + ") word " + std::to_string(e.word_ids[k]) + " mask " +
             std::to_string(e.special_tokens_mask[k]) + "; expected id " + std::to_string(ids[k]) + " (" + std::to_string(b) +
             "," + std::to_string(en) + ") word " + std::to_string(w) + " mask " + m[k];
    pe = en;
    pw = w;
  }
  return {};
}

inline std::string text_of(simdjson::dom::element rec) {
  const std::string src(std::string_view(rec["src"].get_string().value()));
  if (src == "edge") return std::string(std::string_view(rec["text"].get_string().value()));
  return corpora().at(src).at(static_cast<std::size_t>(rec["i"].get_int64().value()));
}

inline std::string describe(simdjson::dom::element rec) {
  return std::string(std::string_view(rec["src"].get_string().value())) + "#" + std::to_string(rec["i"].get_int64().value());
}

inline std::vector<std::string> lines_of(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in.good());
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

/// Every document of every corpus against its recorded digest; prints the counts.
inline void check_digests(const std::string& name) {
  const subword_tokenizer tok = load(name);
  simdjson::dom::parser p;
  const std::string text = read_file(dir_of(name) / "digests.json");
  const simdjson::dom::element root = p.parse(text).value();
  encoding enc;
  std::size_t total = 0, same = 0, bytes_bad = 0;
  std::vector<std::string> failures;
  for (const auto& [corpus, docs] : corpora()) {
    const simdjson::dom::array expected = root["corpora"][corpus].get_array().value();
    REQUIRE(expected.size() == docs.size());
    std::size_t i = 0, ok = 0;
    for (const simdjson::dom::element h : expected) {
      tok.encode(docs[i], enc);
      const bool match = hex(digest(enc)) == std::string_view(h.get_string().value());
      if (match) ++ok;
      else if (failures.size() < 5) failures.push_back(corpus + "#" + std::to_string(i));
      if (!byte_offsets_agree(enc, docs[i])) ++bytes_bad;
      ++i;
    }
    total += docs.size();
    same += ok;
    std::printf("  %-22s %-13s %4zu/%4zu documents identical to tokenizers 0.22.2\n", name.c_str(), corpus.c_str(), ok, docs.size());
  }
  std::string names;
  for (const auto& f : failures) names += " " + f;
  INFO(name << ": " << same << "/" << total << " documents identical; first differing:" << names);
  CHECK(same == total);
  CHECK(bytes_bad == 0);
}

/// Random short mixes of hard characters (subword_fuzz.json) against their recorded digests.
inline void check_fuzz(const std::string& name) {
  const subword_tokenizer tok = load(name);
  simdjson::dom::parser p;
  const std::string text = read_file(dir_of("subword_fuzz.json"));
  const simdjson::dom::element root = p.parse(text).value();
  const simdjson::dom::array texts = root["texts"].get_array().value();
  const simdjson::dom::array digests = root[name].get_array().value();
  REQUIRE(texts.size() == digests.size());
  std::size_t i = 0, same = 0;
  std::string first;
  auto d = digests.begin();
  for (const simdjson::dom::element t : texts) {
    const std::string_view s = t.get_string().value();
    const encoding e = tok.encode(s);
    if (hex(digest(e)) == std::string_view((*d).get_string().value()) && byte_offsets_agree(e, s)) ++same;
    else if (first.empty()) first = "text #" + std::to_string(i);
    ++d;
    ++i;
  }
  INFO(name << ": " << same << "/" << i << " fuzz texts identical; first differing: " << first);
  CHECK(same == i);
}

/// The full records (subset and edge cases).
inline void check_records(const std::string& name) {
  const subword_tokenizer tok = load(name);
  simdjson::dom::parser p;
  const auto lines = lines_of(dir_of(name) / "docs.jsonl");
  REQUIRE(lines.size() > 50);
  std::size_t docs = 0, same = 0;
  std::string first;
  encoding enc;
  for (std::size_t li = 1; li < lines.size(); ++li) {
    const simdjson::dom::element rec = p.parse(lines[li]).value();
    const std::string text = text_of(rec);
    REQUIRE(utf8::length(text) == static_cast<std::size_t>(rec["n"].get_int64().value()));
    tok.encode(text, enc);
    std::string why = compare(enc, rec);
    if (why.empty() && !byte_offsets_agree(enc, text)) why = "byte offsets disagree with code-point offsets";
    ++docs;
    if (why.empty()) ++same;
    else if (first.empty()) first = name + " " + describe(rec) + ": " + why;
  }
  INFO(first);
  INFO(name << ": " << same << "/" << docs << " recorded documents identical");
  CHECK(same == docs);
}

inline void check_windows(const std::string& name) {
  const subword_tokenizer tok = load(name);
  simdjson::dom::parser p;
  const auto lines = lines_of(dir_of(name) / "windows.jsonl");
  REQUIRE(lines.size() >= 6);
  std::vector<encoding> wins;
  std::size_t cases = 0, same = 0, multi = 0;
  std::string first;
  for (const auto& line : lines) {
    const simdjson::dom::element rec = p.parse(line).value();
    const std::string text = text_of(rec);
    const auto L = static_cast<std::size_t>(rec["L"].get_int64().value());
    const auto S = static_cast<std::size_t>(rec["S"].get_int64().value());
    tok.encode_windows(text, L, S, wins);
    const simdjson::dom::array expected = rec["win"].get_array().value();
    std::string why = wins.size() == expected.size()
                          ? ""
                          : "got " + std::to_string(wins.size()) + " windows, expected " + std::to_string(expected.size());
    std::size_t k = 0;
    for (const simdjson::dom::element w : expected) {
      if (!why.empty()) break;
      why = compare(wins[k], w);
      if (why.empty() && wins[k].size() > L) why = "window longer than max_length";
      if (why.empty() && !byte_offsets_agree(wins[k], text)) why = "byte offsets disagree";
      if (!why.empty()) why = "window " + std::to_string(k) + ": " + why;
      ++k;
    }
    ++cases;
    multi += expected.size() > 1;
    if (why.empty()) ++same;
    else if (first.empty()) first = name + " " + describe(rec) + " L=" + std::to_string(L) + " S=" + std::to_string(S) + ": " + why;
  }
  INFO(first);
  CHECK(multi > cases / 2);
  CHECK(same == cases);
}

}  // namespace nerpipe::test::subword
