// SPDX-License-Identifier: Apache-2.0
//! @file Host staging of a stage's per-pass inputs and outputs (token ids, positions, logits), written once
//! for every policy.
//!
//! A policy that offers pinned host memory (a nested `pinned_staging<T>`, as cuda_policy) stages through it:
//! the upload is an asynchronous copy from pinned memory (no driver bounce buffer, no wait for the device),
//! the download a copy into pinned memory at full bus speed. The staging waits for its own previous copy
//! before its host side is written again, so one object can be refilled pass after pass. Every other policy
//! (cpu_policy) fills a vector and calls upload()/download() as before.
//!
//! CUDA graphs per length bucket are not used: a BERT-base pass of the GPU default (32,768 tokens) is ~175
//! MFLOP/token x 32k = 5.7 TFLOP, ~10 ms of GEMMs, against ~100 asynchronous launches of a few microseconds
//! each, which the host issues ahead of the device; only passes of a few hundred tokens (a batch's tail) would
//! gain, at the price of static buffers per (tokens, sequences) bucket. The executor's overlap (two or more
//! batches in flight per replica) already hides the host's work.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/policy/device_policy.hpp>

#include <cstddef>
#include <span>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// Whether Policy stages through pinned host memory.
template <class Policy, class T>
inline constexpr bool has_pinned_staging = requires { typename Policy::template pinned_staging<T>; };

namespace detail {
/// Policy::pinned_staging<T>, or an empty type where there is none (named only when it exists).
template <class Policy, class T, bool = has_pinned_staging<Policy, T>>
struct pinned_staging_of {
  struct type {};
};
template <class Policy, class T>
struct pinned_staging_of<Policy, T, true> {
  using type = typename Policy::template pinned_staging<T>;
};
}  // namespace detail

/// host(p, n) -> fill -> upload(p, n) -> a policy pointer valid until the next upload (or this object dies).
template <class Policy, class T>
class upload_staging {
 public:
  /// n elements to fill; valid until the next call of host() or upload().
  std::span<T> host(const Policy& p, std::size_t n) {
    if constexpr (has_pinned_staging<Policy, T>) {
      return pinned_.host(p, n);
    } else {
      (void)p;
      host_.resize(n);
      return host_;
    }
  }
  /// Copies the first n staged elements to the policy (enqueued in order with the policy's work).
  const T* upload(const Policy& p, std::size_t n) {
    if constexpr (has_pinned_staging<Policy, T>) {
      return pinned_.upload(p, n);
    } else {
      device_ = p.upload(std::span<const T>(host_.data(), n));
      return device_.data();
    }
  }

 private:
  typename detail::pinned_staging_of<Policy, T>::type pinned_;
  std::vector<T> host_;
  typename Policy::template buffer<T> device_;
};

/// download(p, src, n): n elements of policy memory on the host, valid until the next download; returns when
/// they are there.
template <class Policy, class T>
class download_staging {
 public:
  std::span<const T> download(const Policy& p, const T* src, std::size_t n) {
    if constexpr (has_pinned_staging<Policy, T>) {
      return pinned_.download(p, src, n);
    } else {
      host_.resize(n);
      p.download(std::span<const T>(src, n), std::span<T>(host_));
      return host_;
    }
  }

 private:
  typename detail::pinned_staging_of<Policy, T>::type pinned_;
  std::vector<T> host_;
};

NERPIPE_NAMESPACE_END
