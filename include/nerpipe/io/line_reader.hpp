// SPDX-License-Identifier: Apache-2.0
//! @file Reads an input stream a block at a time and hands out whole lines, with bounded memory.
//!
//! The window holds one block (1 MiB by default) plus the line in progress; a line longer than a
//! block grows the window only while that line is read, and a line over `max_line_bytes` is skipped
//! (reported as too large) without being held. Every handed-out line is followed by at least
//! `line_padding` readable bytes, which simdjson needs to parse in place.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

struct line_reader_options {
  std::size_t block_bytes = std::size_t{1} << 20;      ///< bytes read per read(2) call
  std::size_t max_line_bytes = std::size_t{1} << 30;   ///< longer lines are skipped and reported
  std::uint64_t begin_offset = 0;                      ///< shard start (snapped forward to a line start)
  std::uint64_t end_offset = UINT64_MAX;               ///< shard end: lines starting at or after it are not read
  std::uint64_t first_line_number = 1;                 ///< number given to the first line read (shards)
};

/// One line without its terminator ("\n" or "\r\n").
struct input_line {
  std::string_view bytes;    ///< valid until the next call to next()
  std::uint64_t number = 0;  ///< 1-based line number, counted from the start of the read range
  std::uint64_t offset = 0;  ///< byte offset of the line's first byte in the stream
  std::uint64_t length = 0;  ///< the line's length in bytes (also when too_large)
  bool too_large = false;    ///< longer than max_line_bytes: `bytes` is empty
};

class line_reader {
 public:
  static constexpr std::size_t line_padding = 64;  // >= SIMDJSON_PADDING

  /// `path` "-" reads standard input.
  explicit line_reader(const std::filesystem::path& path, line_reader_options options = {}) : options_(options) {
    options_.block_bytes = std::max<std::size_t>(options_.block_bytes, 4096);
    if (path == "-") {
      fd_ = 0;
      name_ = "<stdin>";
    } else {
      name_ = path.string();
      fd_ = ::open(name_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd_ < 0)
        NERPIPE_THROW(input_error(errc::input_not_readable,
                                  name_ + ": cannot open for reading (" + std::strerror(errno) + ")"));
      owned_ = true;
      struct stat st {};
      if (::fstat(fd_, &st) == 0 && S_ISDIR(st.st_mode)) {  // open(2) accepts a directory; read(2) would fail later
        close();
        NERPIPE_THROW(input_error(errc::input_not_readable, name_ + ": is a directory, expected a file"));
      }
      if (S_ISREG(st.st_mode)) total_bytes_ = static_cast<std::uint64_t>(st.st_size);
    }
    line_number_ = options_.first_line_number - 1;
    buffer_.resize(options_.block_bytes + line_padding);
    if (options_.begin_offset > 0) seek_to_line_start(options_.begin_offset);
  }
  line_reader(const line_reader&) = delete;
  line_reader& operator=(const line_reader&) = delete;
  line_reader(line_reader&& o) noexcept { *this = std::move(o); }
  line_reader& operator=(line_reader&& o) noexcept {
    if (this != &o) {
      close();
      options_ = o.options_;
      fd_ = std::exchange(o.fd_, -1);
      owned_ = std::exchange(o.owned_, false);
      name_ = std::move(o.name_);
      buffer_ = std::move(o.buffer_);
      begin_ = o.begin_, end_ = o.end_, stream_offset_ = o.stream_offset_, line_number_ = o.line_number_;
      total_bytes_ = o.total_bytes_, eof_ = o.eof_;
    }
    return *this;
  }
  ~line_reader() { close(); }

  /// The next line, or false at the end of the stream (or of the shard).
  bool next(input_line& line) {
    for (;;) {
      const std::uint64_t line_offset = stream_offset_;
      if (line_offset >= options_.end_offset) return false;
      const char* nl = static_cast<const char*>(std::memchr(buffer_.data() + begin_, '\n', end_ - begin_));
      if (nl || (eof_ && end_ > begin_)) {
        const std::size_t len = nl ? static_cast<std::size_t>(nl - (buffer_.data() + begin_)) : end_ - begin_;
        const std::size_t consumed = nl ? len + 1 : len;
        std::size_t text_len = len;
        if (text_len > 0 && buffer_[begin_ + text_len - 1] == '\r') --text_len;
        line.too_large = text_len > options_.max_line_bytes;
        line.bytes = line.too_large ? std::string_view() : std::string_view(buffer_.data() + begin_, text_len);
        line.number = ++line_number_;
        line.offset = line_offset;
        line.length = text_len;
        begin_ += consumed;
        stream_offset_ += consumed;
        return true;
      }
      if (eof_) return false;
      // No complete line in the window: compact, grow while one line outgrows the block, read more.
      const std::size_t pending = end_ - begin_;
      if (pending > options_.max_line_bytes) {
        skip_long_line(line);
        return true;
      }
      if (begin_ > 0) {
        std::memmove(buffer_.data(), buffer_.data() + begin_, pending);
        begin_ = 0;
        end_ = pending;
      }
      const std::size_t normal = options_.block_bytes + line_padding;
      if (buffer_.size() > 4 * normal && pending + line_padding < normal) {
        // After a very long line, give the memory back.
        std::vector<char>(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(normal)).swap(buffer_);
      } else if (end_ + line_padding >= buffer_.size()) {
        buffer_.resize(std::min(buffer_.size() * 2, options_.max_line_bytes + options_.block_bytes + line_padding));
      }
      fill();
    }
  }

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  /// Bytes consumed so far (a position in the stream).
  [[nodiscard]] std::uint64_t position() const noexcept { return stream_offset_; }
  /// Size of the input when it is a regular file, else 0.
  [[nodiscard]] std::uint64_t total_bytes() const noexcept { return total_bytes_; }
  /// Current window size (for memory checks in tests).
  [[nodiscard]] std::size_t window_bytes() const noexcept { return buffer_.size(); }

 private:
  void close() noexcept {
    if (owned_ && fd_ >= 0) ::close(fd_);
    fd_ = -1;
    owned_ = false;
  }

  void fill() {
    const std::size_t room = buffer_.size() - line_padding - end_;
    const std::size_t want = std::min(room, options_.block_bytes);
    // read(2) returns what is there, so a pipe is processed as it arrives (fread would wait for a block).
    ssize_t got = 0;
    while (want > 0) {
      got = ::read(fd_, buffer_.data() + end_, want);
      if (got >= 0 || errno != EINTR) break;
    }
    if (got <= 0 && want > 0) {
      if (got < 0)
        NERPIPE_THROW(input_error(errc::input_not_readable,
                                  name_ + ": read failed at byte " + std::to_string(stream_offset_ + (end_ - begin_)) +
                                      " (" + std::strerror(errno) + ")"));
      eof_ = true;
    }
    end_ += static_cast<std::size_t>(std::max<ssize_t>(got, 0));
    std::memset(buffer_.data() + end_, 0, line_padding);
  }

  // Reads and drops the rest of a line that is longer than max_line_bytes.
  void skip_long_line(input_line& line) {
    std::uint64_t length = end_ - begin_;
    const std::uint64_t offset = stream_offset_;
    begin_ = end_ = 0;
    bool found = false;
    while (!found) {
      fill();
      const char* nl = static_cast<const char*>(std::memchr(buffer_.data(), '\n', end_));
      if (nl) {
        const std::size_t part = static_cast<std::size_t>(nl - buffer_.data());
        length += part;
        begin_ = part + 1;
        found = true;
      } else {
        length += end_;
        end_ = 0;
        if (eof_) break;
      }
    }
    line.bytes = {};
    line.number = ++line_number_;
    line.offset = offset;
    line.length = length;
    line.too_large = true;
    stream_offset_ = offset + length + (found ? 1 : 0);
    if (buffer_.size() > options_.block_bytes + line_padding) {
      std::vector<char> fresh(options_.block_bytes + line_padding);
      std::memcpy(fresh.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
      buffer_.swap(fresh);
    }
  }

  // Positions the stream at the first line that starts at or after `offset` (a shard's start).
  void seek_to_line_start(std::uint64_t offset) {
    std::uint64_t skip = offset - 1;  // a line starts at `offset` iff the byte before it is '\n'
    if (::lseek(fd_, static_cast<off_t>(skip), SEEK_SET) == static_cast<off_t>(skip)) {
      stream_offset_ = skip;
    } else {
      while (skip > 0) {  // not seekable: read and drop
        const ssize_t n = ::read(fd_, buffer_.data(), std::min<std::uint64_t>(skip, options_.block_bytes));
        if (n <= 0) break;
        skip -= n;
        stream_offset_ += n;
      }
    }
    begin_ = end_ = 0;
    for (;;) {
      fill();
      const char* nl = static_cast<const char*>(std::memchr(buffer_.data(), '\n', end_));
      if (nl) {
        const std::size_t drop = static_cast<std::size_t>(nl - buffer_.data()) + 1;
        begin_ = drop;
        stream_offset_ += drop;
        return;
      }
      stream_offset_ += end_;
      end_ = 0;
      if (eof_) return;
    }
  }

  line_reader_options options_;
  int fd_ = -1;
  bool owned_ = false;
  std::string name_;
  std::vector<char> buffer_;
  std::size_t begin_ = 0, end_ = 0;  // unread bytes in buffer_
  std::uint64_t stream_offset_ = 0, line_number_ = 0, total_bytes_ = 0;
  bool eof_ = false;
};

NERPIPE_NAMESPACE_END
