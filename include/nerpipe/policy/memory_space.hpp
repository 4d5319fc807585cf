// SPDX-License-Identifier: Apache-2.0
//! @file Memory spaces, owning host buffers, and the trait that says which policy may touch which space.
#pragma once

#include <nerpipe/config/macros.hpp>

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <span>
#include <type_traits>
#include <utility>

NERPIPE_NAMESPACE_BEGIN

/// Ordinary host memory.
struct host_space {};
/// Memory of one CUDA device (declared here so host code can name it; only <nerpipe/cuda.cuh> allocates it).
struct cuda_space {};

/// Whether code running under policy P may dereference memory in Space. Specialized per policy, so a
/// host buffer handed to a device op is a compile error instead of a crash.
template <class Policy, class Space>
inline constexpr bool can_access = std::is_same_v<typename Policy::memory_space, Space>;

/// Owning, move-only, 64-byte aligned host array; elements are left uninitialized (like cudaMalloc).
template <class T>
class host_buffer {
  static_assert(std::is_trivially_copyable_v<T>, "host_buffer holds trivially copyable elements");

 public:
  using value_type = T;
  using memory_space = host_space;

  host_buffer() = default;
  explicit host_buffer(std::size_t n) : size_(n) {
    if (n != 0) {
      const std::size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
      data_.reset(static_cast<T*>(::operator new(bytes, std::align_val_t{64})));
    }
  }
  /// The policy argument keeps the constructor shape the same for every policy's buffer.
  template <class Policy>
  host_buffer(const Policy&, std::size_t n) : host_buffer(n) {}

  [[nodiscard]] T* data() noexcept { return data_.get(); }
  [[nodiscard]] const T* data() const noexcept { return data_.get(); }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  T& operator[](std::size_t i) noexcept { return data_.get()[i]; }
  const T& operator[](std::size_t i) const noexcept { return data_.get()[i]; }
  [[nodiscard]] std::span<T> span() noexcept { return {data(), size_}; }
  [[nodiscard]] std::span<const T> span() const noexcept { return {data(), size_}; }

 private:
  struct aligned_delete {
    void operator()(T* p) const noexcept { ::operator delete(p, std::align_val_t{64}); }
  };
  std::unique_ptr<T, aligned_delete> data_;
  std::size_t size_ = 0;
};

NERPIPE_NAMESPACE_END
