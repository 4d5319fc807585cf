// SPDX-License-Identifier: Apache-2.0
//! @file The shared Google Benchmark main: records what the numbers were measured on, then runs.
#include <nerpipe/version.hpp>

#include <benchmark/benchmark.h>

#include <fstream>
#include <string>

#ifndef NERPIPE_GIT_COMMIT
#define NERPIPE_GIT_COMMIT "unknown"
#endif

// Weak, so the host binary links without them: OpenBLAS says which kernels it picked (GEMM numbers
// mean little without it), and a CUDA bench TU may define the device hook to add GPU name, driver, etc.
extern "C" char* openblas_get_config(void) __attribute__((weak));
extern "C" char* openblas_get_corename(void) __attribute__((weak));
namespace nerpipe::bench {
void add_device_context() __attribute__((weak));
}

namespace {
std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  return "unknown";
}

std::string compiler() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("gcc ") + __VERSION__;
#else
  return "unknown";
#endif
}
}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("nerpipe_version", NERPIPE_VERSION_STRING);
  benchmark::AddCustomContext("git_commit", NERPIPE_GIT_COMMIT);
  benchmark::AddCustomContext("compiler", compiler());
  benchmark::AddCustomContext("cpu_model", cpu_model());
#ifdef NDEBUG
  benchmark::AddCustomContext("assertions", "off (NDEBUG)");
#else
  benchmark::AddCustomContext("assertions", "on");
#endif
  if (openblas_get_config != nullptr) benchmark::AddCustomContext("blas", openblas_get_config());
  if (openblas_get_corename != nullptr) benchmark::AddCustomContext("blas_core", openblas_get_corename());
  if (nerpipe::bench::add_device_context != nullptr) nerpipe::bench::add_device_context();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
