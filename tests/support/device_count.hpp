// SPDX-License-Identifier: Apache-2.0
//! @file How many CUDA devices the test process can use, asked without linking the CUDA runtime:
//! host-only test binaries must run on machines with no CUDA installed at all.
#pragma once

#include <dlfcn.h>

namespace nerpipe::test {

/// Number of CUDA devices, or 0 when there is no driver, no runtime or no device.
inline int cuda_device_count() {
  void* lib = dlopen("libcudart.so", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) lib = dlopen("libcudart.so.13", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) lib = dlopen("libcudart.so.12", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return 0;
  using fn_t = int (*)(int*);
  auto fn = reinterpret_cast<fn_t>(dlsym(lib, "cudaGetDeviceCount"));
  int count = 0;
  if (fn == nullptr || fn(&count) != 0) count = 0;
  return count;
}

}  // namespace nerpipe::test
