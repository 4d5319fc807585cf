// SPDX-License-Identifier: Apache-2.0
//! @file Where a run's output goes, written safely: never onto the input (same device and inode, whatever
//! the path says: a symlink, a hard link, `./in/../`), results first in `<output>.partial`, renamed to
//! `<output>` only when the run is complete, so an existing output is not touched until then.
//!
//! An output that exists and is not a regular file (a device such as /dev/null, a FIFO) is written in
//! place: renaming onto it would replace the device node.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

NERPIPE_NAMESPACE_BEGIN

/// A file's identity: device and inode (what a path resolves to, following symlinks).
struct file_identity {
  dev_t device = 0;
  ino_t inode = 0;
  bool operator==(const file_identity&) const = default;
};

/// The identity of what `path` names, or nothing when it does not exist.
[[nodiscard]] inline std::optional<file_identity> identify_file(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return file_identity{st.st_dev, st.st_ino};
}

/// The identity of an open descriptor (standard input or output), or nothing.
[[nodiscard]] inline std::optional<file_identity> identify_descriptor(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return std::nullopt;
  return file_identity{st.st_dev, st.st_ino};
}

/// True when both paths exist and name the same file.
[[nodiscard]] inline bool same_file(const std::filesystem::path& a, const std::filesystem::path& b) {
  const auto x = identify_file(a), y = identify_file(b);
  return x && y && *x == *y;
}

/// How one output path is written.
struct output_target {
  std::filesystem::path final_path;    ///< where the complete result ends up (a symlink's target when it is one)
  std::filesystem::path partial_path;  ///< `<final>.partial`, written first; empty when written in place
  [[nodiscard]] bool in_place() const noexcept { return partial_path.empty(); }
  /// The file records are written to while the run goes on.
  [[nodiscard]] const std::filesystem::path& write_path() const noexcept { return in_place() ? final_path : partial_path; }
};

/// The suffix of a partial output.
inline constexpr const char* partial_suffix = ".partial";

/// Plans the output `path` (not "-"): io_error when it is a directory. Nothing is created or opened.
[[nodiscard]] inline output_target plan_output(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  output_target t;
  t.final_path = path;
  const auto st = fs::status(path, ec);
  if (fs::is_directory(st))
    NERPIPE_THROW(io_error(errc::output_not_writable, path.string() + ": is a directory, expected a file name"));
  if (fs::exists(st) && !fs::is_regular_file(st)) return t;  // a device or a FIFO: in place
  // Through a symlink the result replaces its target, not the link.
  if (fs::is_symlink(fs::symlink_status(path, ec))) {
    const auto target = fs::weakly_canonical(path, ec);
    if (!ec) t.final_path = target;
  }
  t.partial_path = t.final_path.string() + partial_suffix;
  return t;
}

/// config_error when writing `target` would overwrite the input `input_name`, whose identity is `input`.
inline void check_output_is_not_input(const std::optional<file_identity>& input, const std::string& input_name,
                                      const std::filesystem::path& output_as_given, const output_target& target) {
  if (!input) return;
  for (const auto* p : {&output_as_given, &target.final_path, &target.partial_path}) {
    if (p->empty() || identify_file(*p) != input) continue;
    NERPIPE_THROW(config_error(errc::config_invalid,
                               "--output " + output_as_given.string() + " is the input " + input_name +
                                   (*p == output_as_given ? std::string() : " (through " + p->string() + ")") +
                                   " (same device and inode): writing it would destroy the input; choose another output"));
  }
}

/// Opens `path` for writing: truncated, or kept up to `keep_bytes` (what a resumed run continues after)
/// and positioned at its end. Returns the descriptor; io_error naming the file and errno otherwise.
[[nodiscard]] inline int open_output_file(const std::filesystem::path& path, bool truncate, std::uint64_t keep_bytes = 0) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0644);
  if (fd < 0)
    NERPIPE_THROW(io_error(errc::output_not_writable, path.string() + ": cannot open for writing (" + std::strerror(errno) + ")"));
  if (!truncate) {
    struct stat st {};
    const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (regular && (::ftruncate(fd, static_cast<off_t>(keep_bytes)) != 0 ||
                    ::lseek(fd, static_cast<off_t>(keep_bytes), SEEK_SET) != static_cast<off_t>(keep_bytes))) {
      const int e = errno;
      ::close(fd);
      NERPIPE_THROW(io_error(errc::output_not_writable, path.string() + ": cannot cut the file to " + std::to_string(keep_bytes) +
                                                            " bytes (" + std::strerror(e) + ")"));
    }
  }
  return fd;
}

/// fsync of the directory holding `path`, so that a rename or a new file in it survives a crash.
inline void sync_parent_directory(const std::filesystem::path& path) noexcept {
  auto dir = path.parent_path();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

/// Moves the complete partial output onto the final path (one rename: the old output, if any, is
/// replaced at once). Nothing to do when the output was written in place.
inline void commit_output(const output_target& t) {
  if (t.in_place()) return;
  if (::rename(t.partial_path.c_str(), t.final_path.c_str()) != 0)
    NERPIPE_THROW(io_error(errc::output_not_writable, "cannot rename " + t.partial_path.string() + " to " + t.final_path.string() +
                                                          " (" + std::strerror(errno) + "); the complete output is in " +
                                                          t.partial_path.string()));
  sync_parent_directory(t.final_path);
}

NERPIPE_NAMESPACE_END
