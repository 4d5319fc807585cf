// SPDX-License-Identifier: Apache-2.0
// jsonl_writer: every line is valid JSON that simdjson reads back to the same strings and numbers.
#include <catch2/catch.hpp>

#include "support/data.hpp"

#include <nerpipe/io/jsonl_reader.hpp>
#include <nerpipe/io/jsonl_writer.hpp>

#include <simdjson.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

using nerpipe::document;

/// Random valid UTF-8 with every character class a writer can get wrong.
std::string random_text(std::mt19937& rng, std::size_t n) {
  static const char* pieces[] = {"a", "Z", " ", "\"", "\\", "/", "\n", "\r", "\t", "\b", "\f", "<NUL>",
                                 "\x01", "\x1f", "\x7f", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xE2\x80\xA8",
                                 "\xEF\xBF\xBD", "u", "\\u0041", "}", "{", "[", ",", ":"};
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t k = rng() % (sizeof pieces / sizeof *pieces);
    if (k == 11) s.push_back('\0');
    else s += pieces[k];
  }
  return s;
}

std::string get_string(simdjson::ondemand::value v) {
  std::string_view sv;
  REQUIRE(v.get_string().get(sv) == simdjson::SUCCESS);
  return std::string(sv);
}

}  // namespace

TEST_CASE("writer: JSON strings round-trip through simdjson", "[io]") {
  std::mt19937 rng(11);
  simdjson::ondemand::parser parser;
  for (int iter = 0; iter < 500; ++iter) {
    const std::string s = random_text(rng, rng() % 40);
    std::string out;
    nerpipe::append_json_string(out, s);
    REQUIRE(nerpipe::utf8::is_valid(out));
    for (const char c : out) REQUIRE(static_cast<unsigned char>(c) >= 0x20);  // no raw control characters
    simdjson::padded_string padded(out);
    simdjson::ondemand::document doc;
    REQUIRE(parser.iterate(padded).get(doc) == simdjson::SUCCESS);
    std::string_view back;
    REQUIRE(doc.get_string().get(back) == simdjson::SUCCESS);
    REQUIRE(std::string(back) == s);
  }
}

TEST_CASE("writer: entity records carry id, offsets, label, text and score", "[io]") {
  std::mt19937 rng(5);
  simdjson::ondemand::parser parser;
  for (int iter = 0; iter < 200; ++iter) {
    document d;
    d.id = iter % 3 == 0 ? "null" : (iter % 3 == 1 ? std::to_string(iter) : "{\"k\": [1, \"x\"]}");
    d.text = random_text(rng, 30);
    const std::size_t n = rng() % 4;
    std::vector<nerpipe::entity> ents(n);
    for (std::size_t i = 0; i < n; ++i) {
      ents[i].start = rng() % 1000;
      ents[i].end = ents[i].start + rng() % 10;
      ents[i].start_byte = d.text.size() + rng() % 5000;  // outside the text: the entity's own text is written
      ents[i].end_byte = ents[i].start_byte + 3;
      ents[i].label = random_text(rng, 3);
      ents[i].text = random_text(rng, 6);
      ents[i].score = std::uniform_real_distribution<float>(0, 1)(rng);
    }
    d.entities = ents;
    nerpipe::writer_options o;
    o.byte_offsets = iter % 2 == 0;
    std::string line;
    nerpipe::format_record(d, o, line);
    REQUIRE(line.back() == '\n');
    REQUIRE(std::count(line.begin(), line.end(), '\n') == 1);
    simdjson::padded_string padded(line);
    simdjson::ondemand::document doc;
    REQUIRE(parser.iterate(padded).get(doc) == simdjson::SUCCESS);
    simdjson::ondemand::object obj;
    REQUIRE(doc.get_object().get(obj) == simdjson::SUCCESS);
    std::size_t fields = 0;
    for (auto field : obj) {
      std::string_view key;
      REQUIRE(field.unescaped_key().get(key) == simdjson::SUCCESS);
      ++fields;
      if (key == "id") {
        std::string_view raw;
        raw = field.value().raw_json_token();
        while (!raw.empty() && raw.back() == ' ') raw.remove_suffix(1);
        if (d.id[0] == '{') {
          simdjson::ondemand::object idobj;
          REQUIRE(field.value().get_object().get(idobj) == simdjson::SUCCESS);
          std::string_view r;
          REQUIRE(idobj.raw_json().get(r) == simdjson::SUCCESS);
          CHECK(std::string(r) == d.id);
        } else {
          CHECK(std::string(raw) == d.id);
        }
        continue;
      }
      REQUIRE(key == "entities");
      simdjson::ondemand::array arr;
      REQUIRE(field.value().get_array().get(arr) == simdjson::SUCCESS);
      std::size_t i = 0;
      for (auto element : arr) {
        simdjson::ondemand::object e;
        REQUIRE(element.get_object().get(e) == simdjson::SUCCESS);
        REQUIRE(i < n);
        std::uint64_t u = 0;
        REQUIRE(e["start"].get_uint64().get(u) == simdjson::SUCCESS);
        CHECK(u == ents[i].start);
        REQUIRE(e["end"].get_uint64().get(u) == simdjson::SUCCESS);
        CHECK(u == ents[i].end);
        if (o.byte_offsets) {
          REQUIRE(e["start_byte"].get_uint64().get(u) == simdjson::SUCCESS);
          CHECK(u == ents[i].start_byte);
          REQUIRE(e["end_byte"].get_uint64().get(u) == simdjson::SUCCESS);
          CHECK(u == ents[i].end_byte);
        }
        CHECK(get_string(e["label"]) == ents[i].label);
        CHECK(get_string(e["text"]) == ents[i].text);
        double score = 0;
        REQUIRE(e["score"].get_double().get(score) == simdjson::SUCCESS);
        CHECK(static_cast<float>(score) == ents[i].score);  // shortest round-trip form
        ++i;
      }
      CHECK(i == n);
    }
    CHECK(fields == 2);
  }
}

TEST_CASE("writer: error records, NaN scores, merged text and IOB tags", "[io]") {
  document bad;
  bad.id = "\"x\"";
  bad.line = 17;
  bad.status = nerpipe::record_status::invalid_json;
  bad.error = "invalid_json: \"quoted\"\nnewline";
  std::string out;
  nerpipe::format_record(bad, {}, out);
  CHECK(out == "{\"id\": \"x\", \"line\": 17, \"error\": \"invalid_json: \\\"quoted\\\"\\nnewline\"}\n");

  document d;
  d.id = "1";
  d.text = "Jane  Doe went to New York.";
  auto ent = [&](std::size_t b, std::size_t e, const char* label) {
    nerpipe::entity x;
    x.start = x.start_byte = b;
    x.end = x.end_byte = e;
    x.label = label;
    return x;
  };
  d.entities = {ent(0, 9, "PERSON"), ent(18, 26, "GPE")};
  d.entities[0].score = std::numeric_limits<float>::quiet_NaN();
  out.clear();
  nerpipe::format_record(d, {}, out);
  CHECK(out ==
        "{\"id\": 1, \"entities\": [{\"start\": 0, \"end\": 9, \"label\": \"PERSON\", \"text\": \"Jane  Doe\", \"score\": null}, "
        "{\"start\": 18, \"end\": 26, \"label\": \"GPE\", \"text\": \"New York\", \"score\": 1}]}\n");

  // No tokens from the annotator: whitespace words.
  out.clear();
  nerpipe::format_record(d, {nerpipe::output_format::merged, false}, out);
  CHECK(out == "{\"id\": 1, \"text\": \"PERSON went to GPE\"}\n");
  out.clear();
  nerpipe::format_record(d, {nerpipe::output_format::iob, false}, out);
  CHECK(out ==
        "{\"id\": 1, \"tokens\": [\"Jane\", \"Doe\", \"went\", \"to\", \"New\", \"York.\"], "
        "\"tags\": [\"B-PERSON\", \"I-PERSON\", \"O\", \"O\", \"B-GPE\", \"I-GPE\"]}\n");

  // With the annotator's tokens (spaCy splits the final period).
  auto tok = [](std::size_t b, std::size_t e) {
    nerpipe::token t;
    t.start = t.start_byte = b;
    t.end = t.end_byte = e;
    return t;
  };
  d.tokens = {tok(0, 4), tok(6, 9), tok(10, 14), tok(15, 17), tok(18, 21), tok(22, 26), tok(26, 27)};
  out.clear();
  nerpipe::format_record(d, {nerpipe::output_format::merged, false}, out);
  CHECK(out == "{\"id\": 1, \"text\": \"PERSON went to GPE .\"}\n");
  out.clear();
  nerpipe::format_record(d, {nerpipe::output_format::iob, false}, out);
  CHECK(out ==
        "{\"id\": 1, \"tokens\": [\"Jane\", \"Doe\", \"went\", \"to\", \"New\", \"York\", \".\"], "
        "\"tags\": [\"B-PERSON\", \"I-PERSON\", \"O\", \"O\", \"B-GPE\", \"I-GPE\", \"O\"]}\n");
}

TEST_CASE("writer: reader -> writer keeps every record, and failures to write are io_errors", "[io]") {
  const auto dir = std::filesystem::temp_directory_path() / ("nerpipe-writer-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    nerpipe::jsonl_reader r(nerpipe::test::ewt_file("dev"));
    nerpipe::jsonl_writer w(dir / "out.jsonl", {}, 4096);
    document d;
    while (r.next(d)) w.write(d);
    w.flush();
    CHECK(w.records() == 318);
  }
  std::ifstream in(dir / "out.jsonl");
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    CHECK(line.find("\"entities\": []") != std::string::npos);
    ++n;
  }
  CHECK(n == 318);
  std::filesystem::remove_all(dir);

  CHECK_THROWS_AS(nerpipe::jsonl_writer("/nonexistent/dir/out.jsonl"), nerpipe::io_error);
  if (std::filesystem::exists("/dev/full")) {
    nerpipe::jsonl_writer w("/dev/full");
    document d;
    d.text = "x";
    w.write(d);
    CHECK_THROWS_AS(w.flush(), nerpipe::io_error);
  }
}
