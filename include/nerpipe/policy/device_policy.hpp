// SPDX-License-Identifier: Apache-2.0
//! @file The concept every device policy satisfies.
//!
//! A policy names where memory lives and owns one device's resources (threads, stream, library
//! handles). Components are written once against it; the numeric operations a policy offers are
//! specialisations of the primary templates in <nerpipe/ops/>.
#pragma once

#include <nerpipe/config/macros.hpp>

#include <concepts>
#include <cstddef>
#include <span>
#include <string_view>

NERPIPE_NAMESPACE_BEGIN

template <class P>
concept device_policy = std::copy_constructible<P> && requires(const P& p, std::size_t n, std::span<const float> host,
                                                               std::span<float> host_out) {
  typename P::memory_space;                    // where buffers of this policy live
  typename P::template buffer<float>;          // owning storage in that space
  { P::name() } -> std::convertible_to<std::string_view>;
  { p.synchronize() };                         // wait for all work issued through p
  { typename P::template buffer<float>(p, n) };
  { p.upload(host) } -> std::same_as<typename P::template buffer<float>>;  // host -> policy memory
  { p.download(std::span<const float>{}, host_out) };                        // policy memory -> host
};

NERPIPE_NAMESPACE_END
