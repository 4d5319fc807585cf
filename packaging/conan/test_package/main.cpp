// SPDX-License-Identifier: Apache-2.0
//! @file A package consumer's first lines: a cpu_policy, a softmax and a gemm, checked in double.
//! The gemm calls CBLAS, so this also proves the package config links the dependencies.
#include <nerpipe/nerpipe.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  nerpipe::cpu_policy cpu{1};

  // softmax over two rows of different scale (catches a missing max shift or rows mixed up).
  std::vector<float> x{0.5f, -1.25f, 2.0f, 3.5f, 10.0f, 11.0f, 12.5f, 9.0f};
  const std::vector<float> x_in = x;
  nerpipe::ops::softmax(cpu, nerpipe::matrix_view<float>(x.data(), 2, 4));
  double softmax_err = 0.0;
  for (int r = 0; r < 2; ++r) {
    double denom = 0.0;
    for (int c = 0; c < 4; ++c) denom += std::exp(static_cast<double>(x_in[r * 4 + c]));
    for (int c = 0; c < 4; ++c) {
      const double expected = std::exp(static_cast<double>(x_in[r * 4 + c])) / denom;
      softmax_err = std::fmax(softmax_err, std::fabs(expected - x[r * 4 + c]));
    }
  }

  // C[2x3] = A[2x4] * W^T + bias, W in nn.Linear layout [3x4].
  const std::vector<float> a{1.0f, -2.0f, 0.5f, 3.0f, 0.25f, 4.0f, -1.5f, 2.0f};
  const std::vector<float> w{0.5f, 1.0f, -1.0f, 2.0f, -0.75f, 0.5f, 1.5f, 1.0f, 2.0f, -1.0f, 0.25f, 0.5f};
  const std::vector<float> bias{0.1f, -0.2f, 0.3f};
  std::vector<float> c(6, -7.0f);  // overwritten (beta = 0)
  nerpipe::gemm_args<float, float, float> g;
  g.a = nerpipe::matrix_view<const float>(a.data(), 2, 4);
  g.b = nerpipe::matrix_view<const float>(w.data(), 3, 4);
  g.c = nerpipe::matrix_view<float>(c.data(), 2, 3);
  g.bias = bias.data();
  g.ep = nerpipe::epilogue::bias;
  nerpipe::ops::gemm(cpu, g);
  double gemm_err = 0.0;
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 3; ++j) {
      double expected = bias[j];
      for (int k = 0; k < 4; ++k) expected += static_cast<double>(a[i * 4 + k]) * w[j * 4 + k];
      gemm_err = std::fmax(gemm_err, std::fabs(expected - c[i * 3 + j]));
    }
  }

  const bool ok = softmax_err < 1e-6 && gemm_err < 1e-5;
  std::printf("nerpipe %s test_package: softmax max|err| = %.2e, gemm max|err| = %.2e -> %s\n",
              NERPIPE_VERSION_STRING, softmax_err, gemm_err, ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
