// SPDX-License-Identifier: Apache-2.0
//! @file Compile-fail check: ops::gemm with a policy nobody specialised must stop at our static_assert.
//!
//! Built twice. With NERPIPE_COMPILE_FAIL_GOOD the policy is cpu_policy and the file builds and runs;
//! without it the policy is `fake_policy` and the build must fail with "nerpipe: no gemm for this policy".
#include <nerpipe/cpu/ops.hpp>
#include <nerpipe/ops/ops.hpp>
#include <nerpipe/policy/cpu_policy.hpp>
#include <nerpipe/policy/memory_space.hpp>

#include <cstdio>
#include <span>
#include <string_view>

namespace {
/// A policy-shaped type that satisfies device_policy but has no operations.
struct fake_policy {
  using memory_space = nerpipe::host_space;
  template <class T>
  using buffer = nerpipe::host_buffer<T>;
  static constexpr std::string_view name() noexcept { return "fake"; }
  void synchronize() const noexcept {}
  template <class T>
  buffer<T> upload(std::span<const T> host) const {
    buffer<T> b(host.size());
    for (std::size_t i = 0; i < host.size(); ++i) b[i] = host[i];
    return b;
  }
  template <class T>
  buffer<T> upload(std::span<T> host) const {
    return upload(std::span<const T>(host));
  }
  template <class T>
  void download(std::span<const T> src, std::span<T> host) const {
    for (std::size_t i = 0; i < src.size() && i < host.size(); ++i) host[i] = src[i];
  }
};
static_assert(nerpipe::device_policy<fake_policy>, "the bad variant must fail for the op, not for the concept");

#if defined(NERPIPE_COMPILE_FAIL_GOOD)
using policy = nerpipe::cpu_policy;
#else
using policy = fake_policy;
#endif
}  // namespace

int main() {
  const policy p{};
  const float a[6] = {1, 2, 3, 4, 5, 6};  // [2, 3]
  const float b[6] = {1, 0, 2, 1, 0, 1};  // [2, 3] (nn.Linear layout: b_transposed)
  float c[4] = {-1, -1, -1, -1};
  const nerpipe::gemm_args<float, float, float> g{{a, 2, 3}, {b, 2, 3}, {c, 2, 2}};
  nerpipe::ops::gemm(p, g);
  const bool ok = c[0] == 7 && c[1] == 4 && c[2] == 16 && c[3] == 10;
  std::printf("%s: c = [%g %g; %g %g]\n", ok ? "ok" : "WRONG", c[0], c[1], c[2], c[3]);
  return ok ? 0 : 1;
}
