// SPDX-License-Identifier: Apache-2.0
//! @file Compile-fail check: cpu_policy without <nerpipe/cpu/ops.hpp> must stop at our static_assert.
//!
//! The mistake a user actually makes: the policy is real, its specialisations are not included.
//! With NERPIPE_COMPILE_FAIL_GOOD the include is there and the file builds and runs; without it the
//! build must fail with "nerpipe: no gemm for this policy" (whose text names the header to include).
#if defined(NERPIPE_COMPILE_FAIL_GOOD)
#include <nerpipe/cpu/ops.hpp>
#endif
#include <nerpipe/ops/ops.hpp>
#include <nerpipe/policy/cpu_policy.hpp>

#include <cstdio>

int main() {
  const nerpipe::cpu_policy p(1);
  const float a[6] = {1, 2, 3, 4, 5, 6};  // [2, 3]
  const float b[6] = {1, 0, 2, 1, 0, 1};  // [2, 3] (nn.Linear layout: b_transposed)
  float c[4] = {-1, -1, -1, -1};
  const nerpipe::gemm_args<float, float, float> g{{a, 2, 3}, {b, 2, 3}, {c, 2, 2}};
  nerpipe::ops::gemm(p, g);
  const bool ok = c[0] == 7 && c[1] == 4 && c[2] == 16 && c[3] == 10;
  std::printf("%s: c = [%g %g; %g %g]\n", ok ? "ok" : "WRONG", c[0], c[1], c[2], c[3]);
  return ok ? 0 : 1;
}
