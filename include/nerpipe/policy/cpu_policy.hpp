// SPDX-License-Identifier: Apache-2.0
//! @file The host policy: memory is ordinary host memory, GEMMs go to CBLAS, loops to a thread pool.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/core/thread_pool.hpp>
#include <nerpipe/policy/device_policy.hpp>
#include <nerpipe/policy/memory_space.hpp>

#include <algorithm>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <thread>

NERPIPE_NAMESPACE_BEGIN

/// Runs operations on the host with `threads` threads (0: all hardware threads). Copies share the
/// same pool, so a policy is cheap to pass by value; use one policy object per executor thread.
class cpu_policy {
 public:
  using memory_space = host_space;
  template <class T>
  using buffer = host_buffer<T>;

  cpu_policy() : cpu_policy(0) {}
  explicit cpu_policy(unsigned threads)
      : pool_(std::make_shared<thread_pool>(threads != 0 ? threads : std::max(1u, std::thread::hardware_concurrency()))) {}

  static constexpr std::string_view name() noexcept { return "cpu"; }
  /// Element type of activations and weights: always fp32 on the host (the numerical oracle).
  static constexpr dtype compute_dtype() noexcept { return dtype::f32; }
  [[nodiscard]] unsigned threads() const noexcept { return pool_->size(); }
  [[nodiscard]] thread_pool& pool() const noexcept { return *pool_; }

  /// Host work is synchronous: nothing to wait for.
  void synchronize() const noexcept {}

  /// Copies host data into a new buffer of this policy.
  template <class T>
  [[nodiscard]] buffer<T> upload(std::span<const T> host) const {
    buffer<T> b(host.size());
    if (!host.empty()) std::memcpy(b.data(), host.data(), host.size_bytes());
    return b;
  }
  template <class T>
  [[nodiscard]] buffer<T> upload(std::span<T> host) const { return upload(std::span<const T>(host)); }

  /// Copies policy memory back to the host (here: a plain copy).
  template <class T>
  void download(std::span<const T> src, std::span<T> host) const {
    if (!src.empty()) std::memcpy(host.data(), src.data(), std::min(src.size(), host.size()) * sizeof(T));
  }

 private:
  std::shared_ptr<thread_pool> pool_;
};

static_assert(device_policy<cpu_policy>);

NERPIPE_NAMESPACE_END
