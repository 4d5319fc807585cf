// SPDX-License-Identifier: Apache-2.0
//! @file Built against single_include/ only: the generated header must be complete on its own.
#include <nerpipe/nerpipe.hpp>

#include <cstdio>
#include <vector>

int main() {
  nerpipe::cpu_policy cpu{1};
  std::vector<float> a{1, 2, 3, 4, 5, 6};  // [2, 3]
  std::vector<float> c(4, -1.0f);
  nerpipe::gemm_args<float, float, float> g{{a.data(), 2, 3}, {a.data(), 2, 3}, {c.data(), 2, 2}};
  nerpipe::ops::gemm(cpu, g);  // A * A^T = [[14, 32], [32, 77]]
  const bool ok = c[0] == 14 && c[1] == 32 && c[2] == 32 && c[3] == 77;
  std::printf("single header: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
