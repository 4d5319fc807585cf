// SPDX-License-Identifier: Apache-2.0
//! @file Reading a whole (model) file and saying precisely why it could not be read: the system's reason
//! (errno: "No such file or directory", "Permission denied", ...) or "is a directory", for messages.
#pragma once

#include <nerpipe/config/macros.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

NERPIPE_NAMESPACE_BEGIN

/// Why `path` cannot be read, in words: "is a directory", "does not exist", or the errno text of opening it.
/// "readable" when it can be opened after all.
[[nodiscard]] inline std::string file_problem(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno == ENOENT ? "does not exist" : std::strerror(errno);
  if (S_ISDIR(st.st_mode)) return "is a directory";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::strerror(errno);
  ::close(fd);
  return "readable";
}

/// The bytes of `path` in `out`; false (errno set) when it cannot be opened or read, or is a directory.
[[nodiscard]] inline bool read_whole_file(const std::filesystem::path& path, std::string& out) {
  out.clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  if (::fstat(fd, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      ::close(fd);
      errno = EISDIR;
      return false;
    }
    if (S_ISREG(st.st_mode) && st.st_size > 0) out.reserve(static_cast<std::size_t>(st.st_size));
  }
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      errno = e;
      return false;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return true;
}

NERPIPE_NAMESPACE_END
