// SPDX-License-Identifier: Apache-2.0
// Issue #15, input and output side: clear record errors (trailing content with its id, a BOM on a later line,
// a category on every error record), a directory as input, an output that is the input under another name,
// and resuming: the stream hash, the manifest, the prefix check with its window replay, the stoppable source.
#include <catch2/catch.hpp>

#include "support/data.hpp"

#include <nerpipe/core/host_memory.hpp>
#include <nerpipe/io/jsonl_reader.hpp>
#include <nerpipe/io/jsonl_writer.hpp>
#include <nerpipe/io/output_file.hpp>
#include <nerpipe/io/resume.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;
using nerpipe::document;
using nerpipe::record_status;

namespace {

/// A fresh directory under the temp directory, removed at the end of the test.
struct temp_dir {
  fs::path path;
  temp_dir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() / ("nerpipe-robust-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path / name, std::ios::binary) << bytes;
    return path / name;
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<document> read_all(const fs::path& p, nerpipe::reader_options o = {}) {
  nerpipe::jsonl_reader r(p, std::move(o));
  std::vector<document> out;
  for (document d; r.next(d);) out.push_back(d);
  return out;
}

/// What the program writes for `input` (no model: every good record has no entities).
std::string records_of(const fs::path& input) {
  std::string out;
  for (const auto& d : read_all(input)) nerpipe::format_record(d, {}, out);
  return out;
}

}  // namespace

TEST_CASE("reader: content after a complete object is reported with the record's id", "[io][robust]") {
  temp_dir t;
  const auto f = t.write("in.jsonl",
                         "{\"id\":\"a\",\"text\":\"x\"} xyz\n"
                         "{\"id\": \"b\", \"text\": \"y\"}   \n"
                         "{\"id\": \"c\", \"text\": \"z\"}}\n"
                         "{\"id\": \"d\", \"text\": \"w\"} {\"id\": \"e\"}\n"
                         "{\"id\": \"f\", \"text\": \"unterminated} xyz\n");
  const auto docs = read_all(f);
  REQUIRE(docs.size() == 5);
  CHECK(docs[0].status == record_status::invalid_json);
  CHECK(docs[0].id == "\"a\"");
  CHECK(docs[0].error == "invalid_json: trailing characters after the object at byte 22 ('xyz')");
  CHECK(docs[1].ok());  // trailing blanks are fine
  CHECK(docs[2].id == "\"c\"");
  CHECK(docs[2].error.find("trailing characters after the object") != std::string::npos);
  CHECK(docs[3].id == "\"d\"");
  CHECK(docs[3].error.find("('{\"id\": \"e\"}')") != std::string::npos);
  CHECK(docs[4].status == record_status::invalid_json);  // not a complete object: an ordinary parse error
  CHECK(docs[4].error.find("trailing characters") == std::string::npos);
}

TEST_CASE("reader: a byte-order mark is allowed on the first line only, and named elsewhere", "[io][robust]") {
  temp_dir t;
  const auto f = t.write("in.jsonl",
                         "\xEF\xBB\xBF{\"id\": 1, \"text\": \"first\"}\n"
                         "\xEF\xBB\xBF{\"id\": 2, \"text\": \"second\"}\n"
                         "{\"id\": 3, \"text\": \"third\"}\n");
  const auto docs = read_all(f);
  REQUIRE(docs.size() == 3);
  CHECK(docs[0].ok());
  CHECK(docs[1].status == record_status::invalid_json);
  CHECK(docs[1].id == "2");
  CHECK(docs[1].error.find("byte-order mark") != std::string::npos);
  CHECK(docs[1].error.find("only the first line") != std::string::npos);
  CHECK(docs[2].ok());
}

TEST_CASE("reader: a directory as input is an input_error when opened, not at the first read", "[io][robust]") {
  temp_dir t;
  try {
    nerpipe::jsonl_reader r(t.path);
    FAIL("no error");
  } catch (const nerpipe::input_error& e) {
    CHECK(std::string(e.what()).find("is a directory") != std::string::npos);
  }
}

TEST_CASE("writer: every error record's message starts with its category", "[io][robust]") {
  document d;
  d.id = "\"x\"";
  d.line = 7;
  std::string out;
  d.status = record_status::failed;
  d.error = "[nerpipe.model_error.3] token id 40000 is outside the model's vocabulary of 30522";
  nerpipe::format_record(d, {}, out);
  CHECK(out == "{\"id\": \"x\", \"line\": 7, \"error\": \"failed: [nerpipe.model_error.3] token id 40000 is outside the model's "
               "vocabulary of 30522\"}\n");
  out.clear();
  d.status = record_status::too_large;
  d.error = "text has 1000001 characters, more than max_length 1000000 (spaCy's nlp.max_length)";
  nerpipe::format_record(d, {}, out);
  CHECK(out.find("\"error\": \"too_large: text has 1000001") != std::string::npos);
  out.clear();
  d.status = record_status::invalid_json;
  d.error = "invalid_json: cannot parse the line";  // already has one: unchanged
  nerpipe::format_record(d, {}, out);
  CHECK(out.find("\"error\": \"invalid_json: cannot parse the line\"") != std::string::npos);
}

TEST_CASE("output: the input under another name (symlink, hard link, dot-dot) is refused before anything is opened",
          "[io][robust]") {
  temp_dir t;
  const auto in = t.write("in.jsonl", "{\"id\": 1, \"text\": \"x\"}\n");
  fs::create_symlink(in, t.path / "link.jsonl");
  fs::create_hard_link(in, t.path / "hard.jsonl");
  fs::create_directories(t.path / "sub");
  const auto id = nerpipe::identify_file(in);
  REQUIRE(id);
  for (const fs::path& out : {in, t.path / "link.jsonl", t.path / "hard.jsonl", t.path / "sub" / ".." / "in.jsonl"}) {
    INFO(out);
    const auto target = nerpipe::plan_output(out);
    CHECK_THROWS_AS(nerpipe::check_output_is_not_input(id, in.string(), out, target), nerpipe::config_error);
  }
  // <output>.partial being the input is refused too.
  CHECK_NOTHROW(nerpipe::check_output_is_not_input(id, in.string(), t.path / "other.jsonl", nerpipe::plan_output(t.path / "other.jsonl")));
  fs::rename(in, t.path / "out.jsonl.partial");
  const auto moved = nerpipe::identify_file(t.path / "out.jsonl.partial");
  CHECK_THROWS_AS(nerpipe::check_output_is_not_input(moved, "input", t.path / "out.jsonl", nerpipe::plan_output(t.path / "out.jsonl")),
                  nerpipe::config_error);
}

TEST_CASE("output: results go to <output>.partial and replace the old output only when committed", "[io][robust]") {
  temp_dir t;
  const auto out = t.write("out.jsonl", "yesterday\n");
  const auto target = nerpipe::plan_output(out);
  CHECK_FALSE(target.in_place());
  CHECK(target.partial_path == fs::path(out.string() + ".partial"));
  {
    nerpipe::jsonl_writer w(nerpipe::open_output_file(target.write_path(), true), target.write_path().string());
    document d;
    d.id = "1";
    w.write(d);
    w.sync();
    CHECK(slurp(out) == "yesterday\n");  // untouched until the commit
  }
  nerpipe::commit_output(target);
  CHECK(slurp(out) == "{\"id\": 1, \"entities\": []}\n");
  CHECK_FALSE(fs::exists(target.partial_path));
  // Through a symlink the target is written, the link stays.
  fs::create_symlink(out, t.path / "link.jsonl");
  CHECK(nerpipe::plan_output(t.path / "link.jsonl").final_path == fs::canonical(out));
  // A directory is refused; a device is written in place.
  CHECK_THROWS_AS(nerpipe::plan_output(t.path), nerpipe::io_error);
  if (fs::exists("/dev/null")) CHECK(nerpipe::plan_output("/dev/null").in_place());
  // Opening for a resume keeps the first bytes and appends after them.
  t.write("part.jsonl", "line one\nline tw");
  {
    const int fd = nerpipe::open_output_file(t.path / "part.jsonl", false, 9);
    REQUIRE(::write(fd, "two\n", 4) == 4);
    ::close(fd);
  }
  CHECK(slurp(t.path / "part.jsonl") == "line one\ntwo\n");
}

TEST_CASE("stream_hash: the digest does not depend on how the bytes are split", "[io][robust]") {
  std::string bytes;
  for (int i = 0; i < 1000; ++i) bytes += static_cast<char>(i * 7 + 3);
  nerpipe::stream_hash whole;
  whole.update(bytes);
  for (std::size_t step : {1, 3, 7, 8, 9, 64, 999}) {
    nerpipe::stream_hash parts;
    for (std::size_t i = 0; i < bytes.size(); i += step) parts.update(std::string_view(bytes).substr(i, step));
    CHECK(parts.digest() == whole.digest());
  }
  nerpipe::stream_hash other;
  other.update(bytes.substr(0, 999));
  CHECK(other.digest() != whole.digest());
  nerpipe::stream_hash a, b;
  a.update(std::string_view("ab\0", 3));
  b.update(std::string_view("ab", 2));
  CHECK(a.digest() != b.digest());  // the length counts
  CHECK(whole.hex().size() == 16);
}

TEST_CASE("manifest: written and read back; what differs is named", "[io][robust]") {
  temp_dir t;
  nerpipe::resume_manifest m;
  m.input_path = "in.jsonl";
  m.input_bytes = 1234;
  m.model_path = "models/x";
  m.model_fingerprint = "00112233aabbccdd";
  m.options = "--format=entities\x1f--stride=0";
  m.records = 10;
  m.output_bytes = 500;
  m.input_offset = 700;
  m.input_hash = "ffffffffffffffff";
  const auto p = t.path / "out.jsonl.partial.manifest";
  nerpipe::write_manifest(p, m);
  const auto back = nerpipe::read_manifest(p);
  REQUIRE(back);
  CHECK(nerpipe::to_text(*back) == nerpipe::to_text(m));
  CHECK(nerpipe::manifest_mismatch(*back, m).empty());
  CHECK_FALSE(nerpipe::read_manifest(t.path / "none"));

  auto other = m;
  other.model_fingerprint = "1111111111111111";
  CHECK(nerpipe::manifest_mismatch(m, other).find("another model") != std::string::npos);
  other = m;
  other.input_bytes = 99;
  CHECK(nerpipe::manifest_mismatch(m, other).find("1234 bytes") != std::string::npos);
  other = m;
  other.options = "--format=iob\x1f--stride=0";
  CHECK(nerpipe::manifest_mismatch(m, other) == "the partial output was made with other options: --format was 'entities', now 'iob'");
  other = m;
  other.ranks = 4;
  CHECK(nerpipe::manifest_mismatch(m, other).find("same number of ranks") != std::string::npos);

  CHECK_THROWS_AS(nerpipe::parse_manifest("not a manifest\n", "x"), nerpipe::config_error);
  CHECK_THROWS_AS(nerpipe::parse_manifest(std::string(nerpipe::resume_manifest::magic) + "\ninput_path a\n", "x"), nerpipe::config_error);
}

namespace {

/// A corpus with blank lines and bad records, the records a run writes for it, and the manifest of a
/// checkpoint after `records` of them.
struct resume_case {
  temp_dir t;
  fs::path input, partial;
  std::string full;              // the complete output
  std::vector<std::size_t> ends;  // where each output line ends
  std::vector<std::uint64_t> input_ends;
  resume_case() {
    std::string in;
    for (int i = 0; i < 40; ++i) {
      if (i % 7 == 3) in += "\n";
      if (i % 11 == 5) in += "{\"id\": " + std::to_string(i) + ", \"text\": broken}\n";
      else in += "{\"id\": " + std::to_string(i) + ", \"text\": \"document number " + std::to_string(i) + "\"}\n";
    }
    input = t.write("in.jsonl", in);
    partial = t.path / "out.jsonl.partial";
    full = records_of(input);
    for (std::size_t i = 0; i < full.size(); ++i)
      if (full[i] == '\n') ends.push_back(i + 1);
    nerpipe::jsonl_reader r(input);
    for (document d; r.next(d);) input_ends.push_back(r.bytes_read());
  }
  nerpipe::resume_manifest manifest(std::size_t records) const {
    nerpipe::resume_manifest m;
    m.input_path = input.string();
    m.input_bytes = fs::file_size(input);
    m.records = records;
    m.output_bytes = records ? ends[records - 1] : 0;
    m.input_offset = records ? input_ends[records - 1] : 0;
    nerpipe::file_prefix_hash h(input, 0);
    h.advance_to(m.input_offset);
    m.input_hash = h.hex();
    return m;
  }
};

nerpipe::resume_point verify(const resume_case& c, const nerpipe::resume_manifest& m, nerpipe::resume_window w, nerpipe::jsonl_reader& r) {
  nerpipe::file_prefix_hash h(c.input, 0);
  auto rp = nerpipe::verify_resume_prefix(c.partial, r, m, h, w, [] { return false; });
  // The hash stands at the end of the kept records (the next checkpoint continues from there).
  nerpipe::file_prefix_hash fresh(c.input, 0);
  fresh.advance_to(rp.input_offset);
  CHECK(h.position() == rp.input_offset);
  CHECK(h.hex() == fresh.hex());
  return rp;
}

}  // namespace

TEST_CASE("resume: a partial output is checked record by record and continued at a window boundary", "[io][robust]") {
  resume_case c;
  REQUIRE(c.ends.size() == 40);
  nerpipe::resume_window w;
  w.docs = 4;  // small windows, so the replay is visible
  // 25 complete lines and a torn one; the checkpoint at 20.
  std::ofstream(c.partial, std::ios::binary) << c.full.substr(0, c.ends[24]) << c.full.substr(c.ends[24], 10);
  nerpipe::jsonl_reader r(c.input);
  const auto rp = verify(c, c.manifest(20), w, r);
  CHECK_FALSE(rp.stopped);
  // Records 0..24 were checked; the kept ones end at a window boundary (error records join no window).
  CHECK(rp.records <= 25);
  CHECK(rp.records + rp.replay.size() == 25);
  CHECK(rp.output_bytes == c.ends[rp.records - 1]);
  CHECK(rp.input_offset == c.input_ends[rp.records - 1]);
  std::size_t ok_in_replay = 0;
  for (const auto& [d, end] : rp.replay) {
    CHECK(end == c.input_ends[d.index]);
    ok_in_replay += d.ok();
  }
  CHECK(ok_in_replay < w.docs);
  std::uint64_t errors = 0;
  for (std::size_t i = 0; i < rp.records; ++i) {
    const std::size_t b = i ? c.ends[i - 1] : 0;
    errors += c.full.substr(b, c.ends[i] - b).find("\"error\"") != std::string::npos;
  }
  CHECK(rp.errors == errors);
  CHECK(errors > 0);

  // Continuing: the replayed records, then the reader's, give exactly the rest of the output.
  std::string rest;
  nerpipe::tracked_source<nerpipe::jsonl_reader> source(r, nullptr, true);
  auto replay = rp.replay;
  source.replay_first(std::move(replay));
  for (document d; source.next(d);) {
    nerpipe::format_record(d, {}, rest);
    CHECK(source.offset_after(d.index) == c.input_ends[d.index]);
  }
  CHECK(c.full.substr(0, rp.output_bytes) + rest == c.full);
}

TEST_CASE("resume: another input, a changed prefix or a foreign output is refused", "[io][robust]") {
  resume_case c;
  nerpipe::resume_window w;
  std::ofstream(c.partial, std::ios::binary) << c.full.substr(0, c.ends[9]);
  {  // the ids differ: an output of another input
    std::string other = c.full.substr(0, c.ends[9]);
    other.replace(other.find("{\"id\": 4,"), 9, "{\"id\": 9,");
    std::ofstream(c.partial, std::ios::binary) << other;
    nerpipe::jsonl_reader r(c.input);
    CHECK_THROWS_WITH(verify(c, c.manifest(0), w, r), Catch::Contains("does not belong to input line"));
  }
  std::ofstream(c.partial, std::ios::binary) << c.full.substr(0, c.ends[9]);
  {  // the hash of the input prefix differs from the manifest's
    auto m = c.manifest(8);
    m.input_hash = "0123456789abcdef";
    nerpipe::jsonl_reader r(c.input);
    CHECK_THROWS_WITH(verify(c, m, w, r), Catch::Contains("differ from those the output was made from"));
  }
  {  // fewer complete records than the manifest counts
    nerpipe::jsonl_reader r(c.input);
    CHECK_THROWS_WITH(verify(c, c.manifest(12), w, r), Catch::Contains("its manifest counts 12"));
  }
  {  // more records than the input has
    std::ofstream(c.partial, std::ios::binary) << c.full << c.full.substr(0, c.ends[0]);
    nerpipe::jsonl_reader r(c.input);
    CHECK_THROWS_WITH(verify(c, c.manifest(0), w, r), Catch::Contains("more records than the input"));
  }
  {  // the complete output: everything checked, the last (unfinished) window read again
    std::ofstream(c.partial, std::ios::binary) << c.full;
    nerpipe::jsonl_reader r(c.input);
    const auto rp = verify(c, c.manifest(40), w, r);
    CHECK(rp.records + rp.replay.size() == 40);
  }
}

TEST_CASE("tracked_source: a stop flag ends the input; offsets are handed out in record order", "[io][robust]") {
  temp_dir t;
  std::string in;
  for (int i = 0; i < 10; ++i) in += "{\"id\": " + std::to_string(i) + ", \"text\": \"t\"}\n";
  const auto f = t.write("in.jsonl", in);
  nerpipe::jsonl_reader r(f);
  std::atomic<int> stop{0};
  nerpipe::tracked_source<nerpipe::jsonl_reader> s(r, &stop, true);
  document d;
  const std::uint64_t line = in.find('\n') + 1;
  REQUIRE(s.next(d));
  REQUIRE(s.next(d));
  CHECK(s.offset_after(0) == line);
  stop = 15;
  CHECK_FALSE(s.next(d));
  CHECK(s.stopped());
  CHECK(s.offset_after(1) == 2 * line);
  CHECK_THROWS_AS(s.offset_after(5), nerpipe::config_error);
}

TEST_CASE("host memory: replicas are sized to what is available", "[io][robust]") {
  CHECK(nerpipe::replicas_that_fit(100 << 20, std::uint64_t{2} << 30) == 15);  // 2 GiB less a quarter, 100 MiB each
  CHECK(nerpipe::replicas_that_fit(std::uint64_t{4} << 30, std::uint64_t{1} << 30) == 1);  // at least one
  const auto avail = nerpipe::available_host_memory();
  if (avail) CHECK(*avail > 0);
#if !defined(__SANITIZE_ADDRESS__)  // ASan's allocator is not glibc's: mallinfo2 does not see its blocks
  const auto before = nerpipe::heap_bytes_in_use();
  std::vector<char> block(std::size_t{8} << 20, 'x');
  const auto after = nerpipe::heap_bytes_in_use();
  if (before != 0) CHECK(after >= before + (std::uint64_t{8} << 20));
  CHECK(block.back() == 'x');
#endif
}
