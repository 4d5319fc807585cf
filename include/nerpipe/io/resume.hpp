// SPDX-License-Identifier: Apache-2.0
//! @file Resuming an interrupted run: the partial output is checked against the input record by record and
//! continued after its last complete line, so the final file is byte-identical to an uninterrupted run.
//!
//! Beside the partial output lies a small manifest (`<partial>.manifest`, text): the input's size, a hash of
//! the input bytes the output's records came from (up to the last checkpoint), a fingerprint of the model
//! directory and the options that change the output. A run writes it at checkpoints (after the output is
//! flushed and synced), so the output always holds at least the records the manifest counts; records after
//! the last checkpoint are kept when their ids match, except those of the executor window the output stopped
//! in (computed again in the same batches; a torn last line is cut). Resuming with another input, model or
//! option that changes the output is refused with a message naming what differs.
//!
//! `tracked_source` wraps a reader for the executors: it stops handing out records once a stop flag is set
//! (a signal), so every executor drains what it has in flight, and it remembers where each record ends in
//! the input so checkpoints can say how much of the input the output covers.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/io/jsonl_reader.hpp>
#include <nerpipe/io/line_reader.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

NERPIPE_NAMESPACE_BEGIN

/// A 64-bit hash fed in pieces (the digest does not depend on how the bytes were split): MurmurHash64A's
/// mixing of 8-byte words, the length folded in at the end. For telling files apart, not for security.
class stream_hash {
 public:
  void update(const void* data, std::size_t n) noexcept {
    const auto* p = static_cast<const unsigned char*>(data);
    length_ += n;
    while (n > 0 && tail_size_ > 0) {  // complete a pending word first
      tail_[tail_size_++] = *p++;
      --n;
      if (tail_size_ == 8) {
        mix(load(tail_));
        tail_size_ = 0;
      }
    }
    for (; n >= 8; n -= 8, p += 8) mix(load(p));
    for (; n > 0; --n) tail_[tail_size_++] = *p++;
  }
  void update(std::string_view s) noexcept { update(s.data(), s.size()); }

  [[nodiscard]] std::uint64_t digest() const noexcept {
    std::uint64_t h = h_;
    if (tail_size_ > 0) {
      unsigned char last[8] = {};
      std::memcpy(last, tail_, tail_size_);
      h = step(h, load(last) ^ (std::uint64_t{tail_size_} << 56));
    }
    h ^= length_ * m;
    h ^= h >> r;
    h *= m;
    h ^= h >> r;
    return h;
  }
  /// The digest as 16 lower-case hex digits.
  [[nodiscard]] std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(digest()));
    return buf;
  }

 private:
  static constexpr std::uint64_t m = 0xc6a4a7935bd1e995ULL;
  static constexpr int r = 47;
  static std::uint64_t load(const unsigned char* p) noexcept {
    std::uint64_t k = 0;
    for (int i = 7; i >= 0; --i) k = (k << 8) | p[i];  // little-endian on every host
    return k;
  }
  static std::uint64_t step(std::uint64_t h, std::uint64_t k) noexcept {
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    return h * m;
  }
  void mix(std::uint64_t k) noexcept { h_ = step(h_, k); }

  std::uint64_t h_ = 0x6e65727069706531ULL, length_ = 0;
  unsigned char tail_[8] = {};
  std::size_t tail_size_ = 0;
};

/// Hashes the bytes [begin, end) of a file as `end` moves forward, through a descriptor of its own
/// (the reader's stream is not disturbed; the bytes were just read, so they come from the page cache).
class file_prefix_hash {
 public:
  file_prefix_hash() = default;
  file_prefix_hash(const std::filesystem::path& path, std::uint64_t begin) : name_(path.string()), position_(begin) {
    fd_ = ::open(name_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0)
      NERPIPE_THROW(input_error(errc::input_not_readable, name_ + ": cannot open for reading (" + std::strerror(errno) + ")"));
  }
  file_prefix_hash(const file_prefix_hash&) = delete;
  file_prefix_hash& operator=(const file_prefix_hash&) = delete;
  file_prefix_hash(file_prefix_hash&& o) noexcept { *this = std::move(o); }
  file_prefix_hash& operator=(file_prefix_hash&& o) noexcept {
    if (this != &o) {
      close();
      name_ = std::move(o.name_);
      fd_ = std::exchange(o.fd_, -1);
      position_ = o.position_;
      hash_ = o.hash_;
    }
    return *this;
  }
  ~file_prefix_hash() { close(); }

  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
  /// Hashes up to `end` (no-op when already there).
  void advance_to(std::uint64_t end) {
    if (end <= position_) return;
    std::vector<char> buf(static_cast<std::size_t>(std::min<std::uint64_t>(end - position_, std::uint64_t{1} << 20)));
    while (position_ < end) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), end - position_));
      const ssize_t n = ::pread(fd_, buf.data(), want, static_cast<off_t>(position_));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0)
        NERPIPE_THROW(input_error(errc::input_not_readable,
                                  name_ + ": cannot read byte " + std::to_string(position_) +
                                      (n < 0 ? " (" + std::string(std::strerror(errno)) + ")" : std::string(" (the file got shorter)"))));
      hash_.update(buf.data(), static_cast<std::size_t>(n));
      position_ += static_cast<std::uint64_t>(n);
    }
  }
  [[nodiscard]] std::uint64_t position() const noexcept { return position_; }
  [[nodiscard]] std::string hex() const { return hash_.hex(); }

  /// Where the hash stands, to come back to it (a resumed run keeps fewer records than it checked).
  struct mark {
    std::uint64_t position = 0;
    stream_hash hash;
  };
  [[nodiscard]] mark save() const { return {position_, hash_}; }
  void restore(const mark& m) {
    position_ = m.position;
    hash_ = m.hash;
  }

 private:
  void close() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  std::string name_;
  int fd_ = -1;
  std::uint64_t position_ = 0;
  stream_hash hash_;
};

/// A fingerprint of every regular file under `dir` (relative names, sizes, contents), for telling whether
/// a partial output came from the same model. model_error when a file cannot be read.
[[nodiscard]] inline std::string directory_fingerprint(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::vector<std::pair<std::string, fs::path>> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec)) files.emplace_back(fs::relative(it->path(), dir, ec).generic_string(), it->path());
  if (ec) NERPIPE_THROW(model_error(errc::model_file_missing, dir.string() + ": cannot list the directory (" + ec.message() + ")"));
  std::sort(files.begin(), files.end());
  stream_hash h;
  std::vector<char> buf(std::size_t{1} << 20);
  for (const auto& [name, path] : files) {
    h.update(name.data(), name.size() + 1);  // with its terminating NUL
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      NERPIPE_THROW(model_error(errc::model_file_missing, path.string() + ": cannot open (" + std::strerror(errno) + ")"));
    std::uint64_t size = 0;
    for (;;) {
      const ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int e = errno;
        ::close(fd);
        NERPIPE_THROW(model_error(errc::model_file_missing, path.string() + ": cannot read (" + std::strerror(e) + ")"));
      }
      if (n == 0) break;
      h.update(buf.data(), static_cast<std::size_t>(n));
      size += static_cast<std::uint64_t>(n);
    }
    ::close(fd);
    h.update(&size, sizeof size);
  }
  return h.hex();
}

/// What `<partial>.manifest` records: where the partial output came from, and its last checkpoint.
struct resume_manifest {
  static constexpr std::string_view magic = "nerpipe-resume 1";

  std::string input_path;         ///< as given (shown in messages)
  std::uint64_t input_bytes = 0;  ///< size of the input file
  std::string model_path;         ///< as given (shown in messages)
  std::string model_fingerprint;  ///< directory_fingerprint of the model
  std::string options;            ///< "name=value" pairs, one per option that changes the output, joined by '\x1f'
  std::uint64_t ranks = 1, rank = 0;                           ///< MPI: the number of ranks and this rank
  std::uint64_t shard_begin = 0, shard_end = UINT64_MAX;       ///< the bytes of the input this output covers
  // The last checkpoint: the first `records` records are in the output's first `output_bytes` bytes, and
  // came from the input bytes [shard_begin, input_offset), whose hash is input_hash.
  std::uint64_t records = 0, output_bytes = 0, input_offset = 0;
  std::string input_hash;

  /// The manifest beside a partial output file.
  static std::filesystem::path path_for(const std::filesystem::path& partial) { return partial.string() + ".manifest"; }
};

namespace detail {
inline std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = '?';
  return s;
}
inline std::map<std::string, std::string> split_options(const std::string& s) {
  std::map<std::string, std::string> out;
  std::size_t i = 0;
  while (i <= s.size() && !s.empty()) {
    const std::size_t j = std::min(s.find('\x1f', i), s.size());
    const std::string item = s.substr(i, j - i);
    const std::size_t eq = item.find('=');
    out[item.substr(0, eq)] = eq == std::string::npos ? "" : item.substr(eq + 1);
    i = j + 1;
  }
  return out;
}
}  // namespace detail

/// The manifest as text (one "key value" per line).
[[nodiscard]] inline std::string to_text(const resume_manifest& m) {
  std::string t(resume_manifest::magic);
  t += '\n';
  auto add = [&](const char* k, const std::string& v) { t += std::string(k) + ' ' + detail::one_line(v) + '\n'; };
  add("input_path", m.input_path);
  add("input_bytes", std::to_string(m.input_bytes));
  add("model_path", m.model_path);
  add("model_fingerprint", m.model_fingerprint);
  add("options", m.options);
  add("ranks", std::to_string(m.ranks));
  add("rank", std::to_string(m.rank));
  add("shard_begin", std::to_string(m.shard_begin));
  add("shard_end", std::to_string(m.shard_end));
  add("records", std::to_string(m.records));
  add("output_bytes", std::to_string(m.output_bytes));
  add("input_offset", std::to_string(m.input_offset));
  add("input_hash", m.input_hash);
  return t;
}

/// Parses a manifest; config_error naming `name` when it is not one.
[[nodiscard]] inline resume_manifest parse_manifest(std::string_view text, const std::string& name) {
  auto bad = [&](const std::string& why) {
    NERPIPE_THROW(config_error(errc::config_invalid, name + ": not a nerpipe resume manifest (" + why +
                                                         "); remove the partial output and its manifest to start over"));
  };
  if (text.substr(0, resume_manifest::magic.size() + 1) != std::string(resume_manifest::magic) + "\n")
    bad("expected the first line '" + std::string(resume_manifest::magic) + "'");
  std::map<std::string, std::string> kv;
  std::size_t i = resume_manifest::magic.size() + 1;
  while (i < text.size()) {
    const std::size_t nl = text.find('\n', i);
    if (nl == std::string_view::npos) bad("the last line is incomplete");
    const std::string_view line = text.substr(i, nl - i);
    const std::size_t sp = line.find(' ');
    if (sp == std::string_view::npos) bad("a line without a value");
    kv[std::string(line.substr(0, sp))] = std::string(line.substr(sp + 1));
    i = nl + 1;
  }
  auto str = [&](const char* k) -> std::string {
    const auto it = kv.find(k);
    if (it == kv.end()) bad(std::string("no '") + k + "'");
    return it->second;
  };
  auto num = [&](const char* k) -> std::uint64_t {
    const std::string v = str(k);
    std::uint64_t x = 0;
    if (v.empty() || v.size() > 20) bad(std::string("'") + k + "' is not a number");
    for (const char c : v) {
      if (c < '0' || c > '9') bad(std::string("'") + k + "' is not a number");
      x = x * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return x;
  };
  resume_manifest m;
  m.input_path = str("input_path");
  m.input_bytes = num("input_bytes");
  m.model_path = str("model_path");
  m.model_fingerprint = str("model_fingerprint");
  m.options = str("options");
  m.ranks = num("ranks");
  m.rank = num("rank");
  m.shard_begin = num("shard_begin");
  m.shard_end = num("shard_end");
  m.records = num("records");
  m.output_bytes = num("output_bytes");
  m.input_offset = num("input_offset");
  m.input_hash = str("input_hash");
  if (m.input_offset < m.shard_begin || m.input_offset > m.input_bytes) bad("'input_offset' is outside the input");
  return m;
}

/// Writes `m` to `path` atomically (a temporary file, synced, renamed over the old manifest).
inline void write_manifest(const std::filesystem::path& path, const resume_manifest& m) {
  const std::string text = to_text(m);
  const std::string tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    NERPIPE_THROW(io_error(errc::output_not_writable, tmp + ": cannot open for writing (" + std::strerror(errno) + ")"));
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      NERPIPE_THROW(io_error(errc::output_not_writable, tmp + ": write failed (" + std::strerror(e) + ")"));
    }
    done += static_cast<std::size_t>(n);
  }
  (void)::fdatasync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    NERPIPE_THROW(io_error(errc::output_not_writable, "cannot rename " + tmp + " to " + path.string() + " (" + std::strerror(errno) + ")"));
}

/// Reads the manifest at `path`; nothing when there is none.
[[nodiscard]] inline std::optional<resume_manifest> read_manifest(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    NERPIPE_THROW(io_error(errc::output_not_writable, path.string() + ": cannot open (" + std::strerror(errno) + ")"));
  }
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > (std::size_t{1} << 20)) break;  // a manifest is a few hundred bytes
  }
  ::close(fd);
  return parse_manifest(text, path.string());
}

/// Why a partial output made as `was` cannot be continued by a run described by `now` (empty: it can).
/// Checkpoint fields are not compared.
[[nodiscard]] inline std::string manifest_mismatch(const resume_manifest& was, const resume_manifest& now) {
  if (was.model_fingerprint != now.model_fingerprint)
    return "the partial output was made with another model (" + was.model_path + ", fingerprint " + was.model_fingerprint +
           "); this run uses " + now.model_path + " (fingerprint " + now.model_fingerprint + ")";
  if (was.input_bytes != now.input_bytes)
    return "the input is not the one the partial output was made from: " + was.input_path + " was " +
           std::to_string(was.input_bytes) + " bytes, " + now.input_path + " is " + std::to_string(now.input_bytes) + " bytes";
  if (was.ranks != now.ranks)
    return "the partial output was made by " + std::to_string(was.ranks) + " MPI rank(s); this run has " +
           std::to_string(now.ranks) + " (resume with the same number of ranks)";
  if (was.rank != now.rank || was.shard_begin != now.shard_begin || was.shard_end != now.shard_end)
    return "this rank's shard of the input differs from the one its partial output was made from (the input changed)";
  const auto a = detail::split_options(was.options), b = detail::split_options(now.options);
  std::string diff;
  for (const auto& [k, v] : b) {
    const auto it = a.find(k);
    const std::string old = it == a.end() ? "(not recorded)" : it->second;
    if (old != v) diff += (diff.empty() ? "" : ", ") + k + " was '" + old + "', now '" + v + "'";
  }
  for (const auto& [k, v] : a)
    if (!b.count(k)) diff += (diff.empty() ? "" : ", ") + k + " was '" + v + "', now not set";
  if (!diff.empty()) return "the partial output was made with other options: " + diff;
  return {};
}

/// How the executor groups documents into windows (sorted and cut into batches together): a window closes
/// after the document that brings it to `docs` documents or `bytes` bytes of text; records that could not be
/// read join no window. This mirrors round_robin's reader (executor/round_robin.hpp, read_loop): a resumed
/// run restarts at a window boundary, so its batches, and with them every float, are those of an
/// uninterrupted run (a batch's GEMM shapes change the last bits of the scores).
struct resume_window {
  std::size_t docs = 256;
  std::size_t bytes = std::size_t{8} << 20;
};

/// Where a resumed run continues.
struct resume_point {
  std::uint64_t records = 0;       ///< complete output records kept (not computed again)
  std::uint64_t errors = 0;        ///< of them, error records
  std::uint64_t output_bytes = 0;  ///< where the kept records end in the partial output
  std::uint64_t input_offset = 0;  ///< input offset just after the last kept record
  /// Records read after the last kept one (the start of the window the output stopped in, computed again;
  /// an interrupted run cut that window short), with the input offset after each: what the run reads first.
  std::vector<std::pair<document, std::uint64_t>> replay;
  bool stopped = false;            ///< should_stop() said so before the check was complete
};

/// Reads the partial output `partial` and the records of `input` side by side: every complete output line
/// must be the record of the input record at its position (same id; an input record that cannot be read
/// gives an error record with its line number). At the manifest's checkpoint the input offset and the hash
/// of the input bytes read so far (`hasher`, started at the shard's first byte) must match. A torn last
/// line is not kept, nor the lines of the window they stopped in (`window`): those records are returned
/// for the run to read again. `input` is left after the last complete line's record; `hasher` at the
/// checkpoint. config_error with what differs when the output is not this input's; input_error when
/// reading fails.
template <class ShouldStop>
[[nodiscard]] resume_point verify_resume_prefix(const std::filesystem::path& partial, jsonl_reader& input, const resume_manifest& m,
                                                file_prefix_hash& hasher, const resume_window& window, ShouldStop&& should_stop) {
  const std::string where = partial.string();
  auto refuse = [&](const std::string& why) {
    NERPIPE_THROW(config_error(errc::config_invalid, where + ": cannot resume: " + why));
  };
  resume_point rp;
  rp.input_offset = m.shard_begin;
  line_reader_options lo;
  lo.block_bytes = std::size_t{1} << 16;
  line_reader out(partial, lo);
  input_line line;
  document doc;
  std::string prefix;
  std::uint64_t records = 0, errors = 0;
  std::size_t window_docs = 0, window_bytes = 0;  // the window being filled
  auto kept_hash = hasher.save();                 // the hash of the kept records' input
  while (out.next(line)) {
    if (out.position() == line.offset + line.length) break;  // no '\n': a torn last line
    if ((records & 1023) == 0 && should_stop()) {
      rp.stopped = true;
      return rp;
    }
    const std::uint64_t k = records + 1;
    if (line.too_large) refuse("output line " + std::to_string(k) + " is too long to check");
    if (!input.next(doc))
      refuse("it has more records than the input " + input.name() + " (" + std::to_string(records) +
             "); the partial output was not made from this input");
    prefix = "{\"id\": ";
    prefix += doc.id.empty() ? std::string_view("null") : std::string_view(doc.id);
    prefix += ", \"";
    const std::string_view text = line.bytes;
    if (text.substr(0, prefix.size()) != prefix) {
      const std::string shown(text.substr(0, std::min<std::size_t>(text.size(), prefix.size() + 20)));
      refuse("output record " + std::to_string(k) + " does not belong to input line " + std::to_string(doc.line) +
             " (id " + (doc.id.empty() ? "null" : doc.id) + "): it starts '" + shown + "'; the partial output was not made from this input");
    }
    const std::string_view rest = text.substr(prefix.size());
    constexpr std::string_view error_key = "line\": ";  // only error records have "line" after the id
    const bool is_error = rest.substr(0, error_key.size()) == error_key;
    if (!doc.ok()) {
      const std::string want = "line\": " + std::to_string(doc.line) + ", \"error\": ";
      if (rest.substr(0, want.size()) != want)
        refuse("output record " + std::to_string(k) + " should be the error record of input line " + std::to_string(doc.line));
    }
    errors += is_error ? 1 : 0;
    records = k;
    // Window bookkeeping: a record that could not be read joins no window; after the record that closes a
    // window (or any record while none is open), everything so far is kept.
    if (doc.ok()) {
      ++window_docs;
      window_bytes += doc.text.size();
    }
    const bool closes = doc.ok() ? (window_docs >= window.docs || window_bytes >= window.bytes) : window_docs == 0;
    if (closes) {
      window_docs = window_bytes = 0;
      rp.replay.clear();
      rp.records = k;
      rp.errors = errors;
      rp.output_bytes = out.position();
      rp.input_offset = input.bytes_read();
      if (hasher.position() <= rp.input_offset) {  // else the checkpoint's check went past it: hashed below
        hasher.advance_to(rp.input_offset);
        kept_hash = hasher.save();
      }
    } else {
      rp.replay.emplace_back(doc, input.bytes_read());
    }
    if (k == m.records) {
      if (out.position() != m.output_bytes || input.bytes_read() != m.input_offset)
        refuse("at its checkpoint (" + std::to_string(m.records) + " records) the output and input offsets are " +
               std::to_string(out.position()) + " and " + std::to_string(input.bytes_read()) + ", the manifest says " +
               std::to_string(m.output_bytes) + " and " + std::to_string(m.input_offset) +
               "; the input or the output was changed");
      hasher.advance_to(m.input_offset);
      if (hasher.hex() != m.input_hash)
        refuse("the first " + std::to_string(m.input_offset - m.shard_begin) + " bytes of the input" +
               (m.shard_begin ? " shard" : "") + " differ from those the output was made from (hash " + hasher.hex() +
               ", recorded " + m.input_hash + ")");
    }
  }
  if (records < m.records)
    refuse("it has " + std::to_string(records) + " complete records, but its manifest counts " + std::to_string(m.records) +
           " (was it changed outside nerpipe?)");
  // The run goes on from the kept records: the hash must stand at their end, not at the checkpoint's.
  hasher.restore(kept_hash);
  hasher.advance_to(rp.input_offset);
  return rp;
}

/// A document source over a reader (jsonl_reader or alike: next(document&), bytes_read()) that stops at the
/// end of the input or as soon as `*stop` is non-zero, and remembers where each record ends in the input.
/// next() runs on the executor's reader thread, offset_after() on the writing thread.
template <class Reader>
class tracked_source {
 public:
  tracked_source(Reader& reader, const std::atomic<int>* stop, bool track_offsets)
      : reader_(reader), stop_(stop), track_(track_offsets) {}

  /// Records to hand out before the reader's (a resumed run's last window, with their end offsets).
  void replay_first(std::vector<std::pair<document, std::uint64_t>> docs) {
    replay_ = std::move(docs);
    replayed_ = 0;
  }

  bool next(document& d) {
    if (stop_ != nullptr && stop_->load(std::memory_order_relaxed) != 0) {
      stopped_.store(true, std::memory_order_relaxed);
      return false;
    }
    std::uint64_t end = 0;
    if (replayed_ < replay_.size()) {
      d = std::move(replay_[replayed_].first);
      end = replay_[replayed_++].second;
      if (replayed_ == replay_.size()) replay_.clear();
    } else {
      if (!reader_.next(d)) return false;
      end = reader_.bytes_read();
    }
    if (track_) {
      std::lock_guard lock(mutex_);
      ends_.emplace_back(d.index, end);
    }
    return true;
  }

  /// The input offset just after record `index` (ask in input order; earlier records are forgotten).
  [[nodiscard]] std::uint64_t offset_after(std::uint64_t index) {
    std::lock_guard lock(mutex_);
    while (!ends_.empty() && ends_.front().first < index) ends_.pop_front();
    if (ends_.empty() || ends_.front().first != index)
      NERPIPE_THROW(config_error(errc::config_invalid, "tracked_source: record " + std::to_string(index) + " was not read"));
    const std::uint64_t end = ends_.front().second;
    ends_.pop_front();
    return end;
  }
  /// Whether the stop flag ended the input (rather than its end).
  [[nodiscard]] bool stopped() const noexcept { return stopped_.load(std::memory_order_relaxed); }

 private:
  Reader& reader_;
  const std::atomic<int>* stop_;
  bool track_;
  std::mutex mutex_;
  std::deque<std::pair<std::uint64_t, std::uint64_t>> ends_;
  std::vector<std::pair<document, std::uint64_t>> replay_;
  std::size_t replayed_ = 0;
  std::atomic<bool> stopped_{false};
};

NERPIPE_NAMESPACE_END
