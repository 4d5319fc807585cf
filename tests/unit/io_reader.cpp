// SPDX-License-Identifier: Apache-2.0
// jsonl_reader / line_reader: every record comes out once, in order, good or bad, with its line number.
#include <catch2/catch.hpp>

#include "support/data.hpp"

#include <nerpipe/io/jsonl_reader.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

using nerpipe::document;
using nerpipe::record_status;

/// A file in the temp directory, removed at the end of the test.
struct temp_file {
  std::filesystem::path path;
  explicit temp_file(const std::string& bytes, const char* ext = ".jsonl") {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("nerpipe-io-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ext);
    std::ofstream(path, std::ios::binary) << bytes;
  }
  ~temp_file() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
};

std::vector<document> read_all(const std::string& bytes, nerpipe::reader_options o = {}, const char* ext = ".jsonl") {
  temp_file f(bytes, ext);
  nerpipe::jsonl_reader r(f.path, std::move(o));
  std::vector<document> out;
  document d;
  while (r.next(d)) out.push_back(d);
  return out;
}

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

}  // namespace

TEST_CASE("reader: blank lines are skipped, line numbers kept, CRLF and a missing last newline handled", "[io]") {
  const auto docs = read_all("\n{\"id\": 1, \"text\": \"a\"}\r\n   \n\t\r\n{\"id\": 2, \"text\": \"b\\r\"}\r\n\n{\"id\": 3, \"text\": \"c\"}");
  REQUIRE(docs.size() == 3);
  CHECK(docs[0].index == 0);
  CHECK(docs[0].line == 2);
  CHECK(docs[0].text == "a");
  CHECK(docs[1].line == 5);
  CHECK(docs[1].text == "b\r");  // an escaped CR in the text is data, only the line's CR is dropped
  CHECK(docs[2].index == 2);
  CHECK(docs[2].line == 7);
  CHECK(docs[2].text == "c");
  CHECK(read_all("").empty());
  CHECK(read_all("\n\n \n").empty());
}

TEST_CASE("reader: a UTF-8 byte-order mark on the first line is ignored", "[io]") {
  const auto docs = read_all("\xEF\xBB\xBF{\"id\": 1, \"text\": \"x\"}\n");
  REQUIRE(docs.size() == 1);
  CHECK(docs[0].ok());
  CHECK(docs[0].text == "x");
}

TEST_CASE("reader: every kind of bad record gives an error in its place", "[io]") {
  const std::string input =
      "{\"id\": 1, \"text\": \"good\"}\n"
      "{\"id\": 2, \"text\": \"unterminated}\n"
      "{\"id\": 3, \"body\": \"no text field\"}\n"
      "{\"id\": 4, \"text\": 42}\n"
      "{\"id\": 5, \"text\": null}\n"
      "{\"id\": 6, \"text\": [\"a\"]}\n"
      "[1, 2, 3]\n"
      "\"just a string\"\n"
      "{\"id\": 7, \"text\": \"x\", \"other\": tru}\n"
      "{\"id\": 8, \"text\": \"x\"} {\"id\": 9}\n"
      "{\"id\": 10, \"text\": \"x\", \"n\": 012}\n"
      "{\"id\": 11, \"text\": \"bad \\q escape\"}\n"
      "{\"id\": 12, \"text\": \"good again\"}\n";
  const auto docs = read_all(input);
  REQUIRE(docs.size() == 13);
  for (std::size_t i = 0; i < docs.size(); ++i) {
    CHECK(docs[i].line == i + 1);
    CHECK(docs[i].index == i);
  }
  CHECK(docs[0].ok());
  CHECK(docs[12].ok());
  CHECK(docs[12].text == "good again");
  CHECK(docs[1].status == record_status::invalid_json);
  CHECK(docs[2].status == record_status::missing_text);
  CHECK(docs[2].id == "3");
  CHECK(docs[2].error == "missing_text: no field 'text'");
  CHECK(docs[3].status == record_status::missing_text);
  CHECK(docs[3].error == "missing_text: field 'text' is a number, expected a string");
  CHECK(docs[4].status == record_status::missing_text);
  CHECK(docs[5].status == record_status::missing_text);
  CHECK(docs[6].status == record_status::invalid_json);
  CHECK(docs[6].id == "null");
  CHECK(docs[7].status == record_status::invalid_json);
  for (std::size_t i : {8, 9, 10, 11}) {
    INFO("line " << i + 1);
    CHECK(docs[i].status == record_status::invalid_json);
    CHECK(starts_with(docs[i].error, "invalid_json: "));
  }
  for (const auto& d : docs)
    if (!d.ok()) CHECK(d.text.empty());
}

TEST_CASE("reader: invalid UTF-8 is rejected by default and replaced on request", "[io]") {
  const std::string input =
      "{\"id\": \"a\", \"text\": \"caf\xC3\xA9 ok\"}\n"
      "{\"id\": \"b\", \"text\": \"bad \xFF byte\"}\n"
      "{\"id\": \"c\", \"text\": \"truncated \xE2\x82\"}\n"
      "{\"id\": \"d\", \"text\": \"surrogate \xED\xA0\x80 bytes\"}\n"
      "{\"id\": \"e\", \"text\": \"overlong \xC0\xAF\"}\n"
      "{\"id\": \"f\", \"text\": \"escaped lone surrogate \\ud800 here\"}\n"
      "{\"id\": \"g\", \"text\": \"escaped pair \\ud83d\\ude00 here\"}\n";
  SECTION("reject") {
    const auto docs = read_all(input);
    REQUIRE(docs.size() == 7);
    CHECK(docs[0].ok());
    CHECK(docs[0].text == "caf\xC3\xA9 ok");
    for (std::size_t i = 1; i <= 5; ++i) {
      INFO("record " << i);
      CHECK(docs[i].status == record_status::invalid_utf8);
      CHECK(starts_with(docs[i].error, "invalid_utf8: "));
    }
    CHECK(docs[1].id == "\"b\"");  // the id is still found
    CHECK(docs[1].error.find("byte 0xFF at byte 25") != std::string::npos);
    CHECK(docs[6].ok());
    CHECK(docs[6].text == "escaped pair \xF0\x9F\x98\x80 here");
  }
  SECTION("replace: one U+FFFD per maximal ill-formed subpart, as Python's errors='replace'") {
    nerpipe::reader_options o;
    o.invalid_utf8 = nerpipe::invalid_utf8_policy::replace;
    const auto docs = read_all(input, o);
    REQUIRE(docs.size() == 7);
    for (const auto& d : docs) CHECK(d.ok());
    CHECK(docs[1].text == "bad \xEF\xBF\xBD byte");
    CHECK(docs[2].text == "truncated \xEF\xBF\xBD");
    CHECK(docs[3].text == "surrogate \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD bytes");
    CHECK(docs[4].text == "overlong \xEF\xBF\xBD\xEF\xBF\xBD");
    CHECK(docs[5].text == "escaped lone surrogate \xEF\xBF\xBD here");
  }
}

TEST_CASE("reader: a NUL inside a JSON string is data", "[io]") {
  const auto docs = read_all("{\"id\": 1, \"text\": \"a\\u0000b\"}\n");
  REQUIRE(docs.size() == 1);
  CHECK(docs[0].ok());
  CHECK(docs[0].text == std::string("a\0b", 3));
}

TEST_CASE("reader: ids of every JSON type are kept as written", "[io]") {
  const auto docs = read_all(
      "{\"id\": \"s\\\"q\", \"text\": \"x\"}\n"
      "{\"id\": 42, \"text\": \"x\"}\n"
      "{\"id\": -1.50e+3, \"text\": \"x\"}\n"
      "{\"id\": 123456789012345678901234567890, \"text\": \"x\"}\n"
      "{\"id\": true, \"text\": \"x\"}\n"
      "{\"id\": false, \"text\": \"x\"}\n"
      "{\"id\": null, \"text\": \"x\"}\n"
      "{\"id\": [1, \"two\", {\"3\": null}], \"text\": \"x\"}\n"
      "{\"id\": {\"doc\": 7, \"part\": [1]}, \"text\": \"x\"}\n"
      "{\"text\": \"x\"}\n"
      "{\"text\": \"x\", \"id\": \"after\"}\n");
  REQUIRE(docs.size() == 11);
  const char* expected[] = {"\"s\\\"q\"", "42", "-1.50e+3", "123456789012345678901234567890", "true", "false", "null",
                            "[1, \"two\", {\"3\": null}]", "{\"doc\": 7, \"part\": [1]}", "null", "\"after\""};
  for (std::size_t i = 0; i < docs.size(); ++i) {
    CHECK(docs[i].ok());
    CHECK(docs[i].id == expected[i]);
  }
}

TEST_CASE("reader: custom text and id fields", "[io]") {
  nerpipe::reader_options o;
  o.text_field = "body";
  o.id_field = "key";
  const auto docs = read_all("{\"key\": 9, \"text\": \"no\", \"body\": \"yes\"}\n{\"id\": 1, \"text\": \"t\"}\n", o);
  REQUIRE(docs.size() == 2);
  CHECK(docs[0].id == "9");
  CHECK(docs[0].text == "yes");
  CHECK(docs[1].status == record_status::missing_text);
  CHECK(docs[1].id == "null");
}

TEST_CASE("reader: lines far longer than the read block are read whole; over the limit they are reported", "[io]") {
  std::mt19937 rng(7);
  std::string huge;
  const char* words[] = {"Alpha", "beta", "Gamma", "delta", "\xC3\xA9t\xC3\xA9", "\"q\"", "x\\y"};
  while (huge.size() < 3'000'000) huge += words[rng() % 7], huge += ' ';
  std::string escaped;
  for (char c : huge) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += c;
  }
  const std::string input = "{\"id\": 1, \"text\": \"short\"}\n{\"id\": 2, \"text\": \"" + escaped +
                            "\"}\n{\"id\": 3, \"text\": \"after\"}\n";
  nerpipe::reader_options o;
  o.lines.block_bytes = 4096;
  SECTION("read whole") {
    temp_file f(input);
    nerpipe::jsonl_reader r(f.path, o);
    std::vector<document> docs;
    document d;
    while (r.next(d)) docs.push_back(d);
    REQUIRE(docs.size() == 3);
    CHECK(docs[1].ok());
    CHECK(docs[1].text == huge);  // never truncated
    CHECK(docs[2].text == "after");
    CHECK(docs[2].line == 3);
    CHECK(r.bytes_read() == input.size());
  }
  SECTION("over the limit") {
    o.lines.max_line_bytes = 100'000;
    const auto docs = read_all(input, o);
    REQUIRE(docs.size() == 3);
    CHECK(docs[0].ok());
    CHECK(docs[1].status == record_status::too_large);
    CHECK(starts_with(docs[1].error, "too_large: "));
    CHECK(docs[2].ok());
    CHECK(docs[2].text == "after");
    CHECK(docs[2].line == 3);
  }
}

TEST_CASE("line_reader: the window returns to one block after a long line", "[io]") {
  const std::string input = std::string(1'000'000, 'x') + "\nshort\nend";
  temp_file f(input, ".txt");
  nerpipe::line_reader_options o;
  o.block_bytes = 4096;
  nerpipe::line_reader r(f.path, o);
  nerpipe::input_line line;
  REQUIRE(r.next(line));
  CHECK(line.bytes.size() == 1'000'000);
  CHECK(r.window_bytes() >= 1'000'000);
  REQUIRE(r.next(line));
  CHECK(line.bytes == "short");
  REQUIRE(r.next(line));
  CHECK(line.bytes == "end");
  CHECK(line.number == 3);
  CHECK(r.window_bytes() <= 4 * (4096 + nerpipe::line_reader::line_padding));
  CHECK_FALSE(r.next(line));
}

TEST_CASE("line_reader: byte-range shards cover every line exactly once", "[io]") {
  std::string input;
  std::vector<std::string> lines;
  std::mt19937 rng(3);
  for (int i = 0; i < 500; ++i) {
    lines.push_back("line " + std::to_string(i) + std::string(rng() % 90, 'z'));
    input += lines.back() + "\n";
  }
  temp_file f(input, ".txt");
  for (const std::uint64_t shards : {1u, 2u, 3u, 7u, 64u}) {
    std::vector<std::string> got;
    std::vector<std::uint64_t> offsets;
    for (std::uint64_t s = 0; s < shards; ++s) {
      nerpipe::line_reader_options o;
      o.block_bytes = 4096;
      o.begin_offset = input.size() * s / shards;
      o.end_offset = input.size() * (s + 1) / shards;
      nerpipe::line_reader r(f.path, o);
      nerpipe::input_line line;
      while (r.next(line)) {
        got.emplace_back(line.bytes);
        offsets.push_back(line.offset);
      }
    }
    INFO(shards << " shards");
    CHECK(got == lines);
    for (std::size_t i = 1; i < offsets.size(); ++i) CHECK(input[offsets[i] - 1] == '\n');
  }
}

TEST_CASE("reader: plain-text input is one document per line, id = line number", "[io]") {
  nerpipe::reader_options o;
  o.format = nerpipe::input_format::text;
  const auto docs = read_all("First line.\n\nThird \"line\" {not json}\r\nbad \xFF\n", o, ".txt");
  REQUIRE(docs.size() == 3);
  CHECK(docs[0].id == "1");
  CHECK(docs[0].text == "First line.");
  CHECK(docs[1].id == "3");
  CHECK(docs[1].text == "Third \"line\" {not json}");
  CHECK(docs[2].status == record_status::invalid_utf8);
  CHECK(nerpipe::input_format_for("a/b.txt") == nerpipe::input_format::text);
  CHECK(nerpipe::input_format_for("a/b.jsonl") == nerpipe::input_format::jsonl);
}

TEST_CASE("reader: EWT dev reads as 318 good documents and is a range", "[io]") {
  nerpipe::jsonl_reader r(nerpipe::test::ewt_file("dev"));
  std::size_t n = 0, bytes = 0;
  for (const document& d : r) {
    CHECK(d.ok());
    CHECK(d.index == n);
    ++n;
    bytes += d.text.size();
  }
  CHECK(n == 318);
  CHECK(bytes > 100'000);
}

TEST_CASE("reader: a missing input file is an input_error naming it", "[io]") {
  try {
    nerpipe::jsonl_reader r("/nonexistent/dir/corpus.jsonl");
    FAIL("no exception");
  } catch (const nerpipe::input_error& e) {
    CHECK(e.code() == nerpipe::errc::input_not_readable);
    CHECK(std::string(e.what()).find("/nonexistent/dir/corpus.jsonl") != std::string::npos);
  }
}

#include <nerpipe/io/shard.hpp>

TEST_CASE("line_shard: shards read by jsonl_reader give every record once with global line numbers", "[io]") {
  std::string input;
  std::mt19937 rng(9);
  std::size_t records = 0;
  for (int i = 0; i < 300; ++i) {
    if (rng() % 5 == 0) input += "\n";  // blank lines count as lines
    input += "{\"id\": " + std::to_string(i) + ", \"text\": \"" + std::string(rng() % 200, 'w') + "\"}\n";
    ++records;
  }
  input += "{\"id\": 300, \"text\": \"no final newline\"}";
  ++records;
  temp_file f(input);
  const auto whole = read_all(input);
  REQUIRE(whole.size() == records);
  for (const std::uint64_t n : {1u, 2u, 3u, 5u, 16u, 1000u}) {
    std::vector<document> got;
    std::uint64_t newlines_before = 0;
    for (std::uint64_t k = 0; k < n; ++k) {
      const auto s = nerpipe::line_shard(f.path, k, n);
      nerpipe::reader_options o;
      o.lines.begin_offset = s.begin;
      o.lines.end_offset = s.end;
      o.lines.first_line_number = 1 + newlines_before;
      newlines_before += s.newlines;
      if (s.begin >= s.end) continue;
      nerpipe::jsonl_reader r(f.path, o);
      document d;
      while (r.next(d)) got.push_back(d);
    }
    INFO(n << " shards");
    REQUIRE(got.size() == whole.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      CHECK(got[i].id == whole[i].id);
      CHECK(got[i].line == whole[i].line);
      CHECK(got[i].text == whole[i].text);
    }
  }
}
