// SPDX-License-Identifier: Apache-2.0
//! @file A consumer's first lines: build a cpu_policy, run one op, check the answer.
#include <nerpipe/nerpipe.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  nerpipe::cpu_policy cpu{1};
  std::vector<float> x{1.0f, 2.0f, 3.0f, 4.0f};
  nerpipe::ops::softmax(cpu, nerpipe::matrix_view<float>(x.data(), 1, 4));
  const float expected = std::exp(4.0f) / (std::exp(1.0f) + std::exp(2.0f) + std::exp(3.0f) + std::exp(4.0f));
  std::printf("nerpipe %s: softmax[3] = %.6f (expected %.6f)\n", NERPIPE_VERSION_STRING, x[3], expected);
  return std::fabs(x[3] - expected) < 1e-6f ? 0 : 1;
}
