// SPDX-License-Identifier: Apache-2.0
//! @file The shared Catch2 2.13 runner. `--require-devices N` makes the binary exit with 77 (CTest's
//! SKIP_RETURN_CODE) when fewer than N CUDA devices exist, so GPU tests are reported skipped, not passed.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "support/device_count.hpp"

#include <cstdio>

int main(int argc, char** argv) {
  Catch::Session session;
  int required = 0;
  session.cli(session.cli() |
              Catch::clara::Opt(required, "n")["--require-devices"]("skip (exit 77) unless n CUDA devices exist"));
  if (const int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
  if (required > 0) {
    const int have = nerpipe::test::cuda_device_count();
    if (have < required) {
      std::printf("SKIPPED: %d CUDA device(s) required, %d found\n", required, have);
      return 77;
    }
  }
  return session.run();
}
