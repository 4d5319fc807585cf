// SPDX-License-Identifier: Apache-2.0
//! @file Host memory: how much is available to this process (the kernel's MemAvailable, or less under a
//! cgroup limit), and how many bytes the heap holds (to measure what building one replica costs), so a
//! run can size its replica count to the machine instead of growing until the OOM killer ends it.
#pragma once

#include <nerpipe/config/macros.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>

#if defined(__GLIBC__)
#  include <malloc.h>
#endif

NERPIPE_NAMESPACE_BEGIN

namespace detail {
inline std::optional<std::uint64_t> read_number_file(const char* path) {
  std::ifstream in(path);
  std::string s;
  if (!(in >> s) || s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 19) return std::nullopt;
  return static_cast<std::uint64_t>(std::stoull(s));
}
}  // namespace detail

/// Bytes of memory this process may still use: /proc/meminfo's MemAvailable, lowered to the room left
/// under a cgroup (v2 memory.max - memory.current, v1 limit - usage) when there is one. Nothing when
/// neither can be read (not Linux).
[[nodiscard]] inline std::optional<std::uint64_t> available_host_memory() {
  std::optional<std::uint64_t> avail;
  {
    std::ifstream in("/proc/meminfo");
    std::string key, unit;
    std::uint64_t kib = 0;
    while (in >> key >> kib) {
      std::getline(in, unit);
      if (key == "MemAvailable:") {
        avail = kib * 1024;
        break;
      }
    }
  }
  auto lower = [&](std::optional<std::uint64_t> limit, std::optional<std::uint64_t> used) {
    if (!limit || !used || *limit > (std::uint64_t{1} << 60)) return;
    const std::uint64_t room = *limit > *used ? *limit - *used : 0;
    avail = avail ? std::min(*avail, room) : room;
  };
  lower(detail::read_number_file("/sys/fs/cgroup/memory.max"), detail::read_number_file("/sys/fs/cgroup/memory.current"));
  lower(detail::read_number_file("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
        detail::read_number_file("/sys/fs/cgroup/memory/memory.usage_in_bytes"));
  return avail;
}

/// Bytes the heap holds in allocated blocks (glibc's mallinfo2: small blocks plus mmap'ed ones); 0 where
/// unknown. The difference around a piece of work is what it kept allocated.
[[nodiscard]] inline std::uint64_t heap_bytes_in_use() noexcept {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const struct mallinfo2 mi = ::mallinfo2();
  return static_cast<std::uint64_t>(mi.uordblks) + static_cast<std::uint64_t>(mi.hblkhd);
#else
  return 0;
#endif
}

/// How many replicas of `per_replica` bytes fit in `available` bytes, keeping a quarter (at least 256 MiB)
/// for everything else (documents in flight, the reader, the system); at least 1.
[[nodiscard]] inline std::size_t replicas_that_fit(std::uint64_t per_replica, std::uint64_t available) noexcept {
  const std::uint64_t reserve = std::max<std::uint64_t>(available / 4, std::uint64_t{256} << 20);
  const std::uint64_t usable = available > reserve ? available - reserve : 0;
  if (per_replica == 0) return static_cast<std::size_t>(-1);
  return static_cast<std::size_t>(std::max<std::uint64_t>(1, usable / per_replica));
}

NERPIPE_NAMESPACE_END
