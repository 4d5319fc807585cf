// SPDX-License-Identifier: Apache-2.0
//! @file Byte-range shards of a line-oriented file, snapped to line starts, for N independent readers.
//!
//! Shard k of n covers the lines that start in [k*S/n, (k+1)*S/n) of a file of S bytes, so the shards
//! are disjoint, cover every line, and need no coordinator. Line numbers stay global: a shard's first
//! line number is one more than the newlines before it (an exclusive prefix sum of `newlines`).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

NERPIPE_NAMESPACE_BEGIN

struct byte_shard {
  std::uint64_t begin = 0, end = 0;  ///< snapped to line starts: [begin, end) holds whole lines
  std::uint64_t newlines = 0;        ///< '\n' bytes in [begin, end)
  std::uint64_t first_line = 1;      ///< global number of the shard's first line (set by the caller's prefix sum)
};

namespace detail {

class shard_file {
 public:
  explicit shard_file(const std::filesystem::path& p) : name_(p.string()) {
    fd_ = ::open(name_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0)
      NERPIPE_THROW(input_error(errc::input_not_readable, name_ + ": cannot open for reading (" + std::strerror(errno) + ")"));
  }
  shard_file(const shard_file&) = delete;
  shard_file& operator=(const shard_file&) = delete;
  ~shard_file() { ::close(fd_); }

  /// Calls fn(data, size, offset) for consecutive blocks of [begin, end) until fn returns false.
  template <class Fn>
  void scan(std::uint64_t begin, std::uint64_t end, Fn&& fn) {
    std::vector<char> buf(std::size_t{1} << 20);
    while (begin < end) {
      const ssize_t n = ::pread(fd_, buf.data(), static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), end - begin)),
                                static_cast<off_t>(begin));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0)
        NERPIPE_THROW(input_error(errc::input_not_readable, name_ + ": read failed at byte " + std::to_string(begin) + " (" +
                                                                std::strerror(errno) + ")"));
      if (n == 0) return;
      if (!fn(buf.data(), static_cast<std::size_t>(n), begin)) return;
      begin += static_cast<std::uint64_t>(n);
    }
  }

 private:
  std::string name_;
  int fd_ = -1;
};

/// The first line start at or after `x` (a line starts at 0 and after every '\n'); `size` if none.
inline std::uint64_t snap_to_line_start(shard_file& f, std::uint64_t x, std::uint64_t size) {
  if (x == 0 || x >= size) return std::min(x, size);
  std::uint64_t result = size;
  f.scan(x - 1, size, [&](const char* p, std::size_t n, std::uint64_t off) {
    if (const void* nl = std::memchr(p, '\n', n)) {
      result = off + static_cast<std::uint64_t>(static_cast<const char*>(nl) - p) + 1;
      return false;
    }
    return true;
  });
  return result;
}

}  // namespace detail

/// Shard `k` of `n` of `path` (begin, end, newlines; first_line still 1: add the newlines of the shards
/// before it). Reads at most the shard plus one line.
inline byte_shard line_shard(const std::filesystem::path& path, std::uint64_t k, std::uint64_t n) {
  if (n == 0 || k >= n) NERPIPE_THROW(config_error(errc::config_invalid, "line_shard: shard index out of range"));
  std::error_code ec;
  const std::uint64_t size = std::filesystem::file_size(path, ec);
  if (ec)
    NERPIPE_THROW(input_error(errc::input_not_readable,
                              path.string() + ": cannot shard (not a regular file: " + ec.message() + ")"));
  detail::shard_file f(path);
  byte_shard s;
  // (size * k) / n without overflow for any realistic size: sizes are far below 2^64 / 2^16 ranks.
  s.begin = detail::snap_to_line_start(f, size / n * k + size % n * k / n, size);
  s.end = detail::snap_to_line_start(f, size / n * (k + 1) + size % n * (k + 1) / n, size);
  f.scan(s.begin, s.end, [&](const char* p, std::size_t len, std::uint64_t) {
    s.newlines += static_cast<std::uint64_t>(std::count(p, p + len, '\n'));
    return true;
  });
  return s;
}

NERPIPE_NAMESPACE_END
