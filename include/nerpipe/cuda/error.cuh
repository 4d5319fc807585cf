// SPDX-License-Identifier: Apache-2.0
//! @file NERPIPE_CUDA_CHECK / NERPIPE_CUBLAS_CHECK: turn CUDA runtime and cuBLAS(Lt) failures into nerpipe::cuda_error.
#pragma once
#if !defined(__CUDACC__)
#error "nerpipe: this header needs nvcc; include <nerpipe/cuda.cuh> from a .cu file"
#endif

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <string>

NERPIPE_NAMESPACE_BEGIN
namespace detail {

/// Which stable id a runtime status maps to: allocation failures and missing devices get their own.
[[nodiscard]] inline errc cuda_errc(cudaError_t e) noexcept {
  switch (e) {
    case cudaErrorMemoryAllocation: return errc::cuda_out_of_memory;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInvalidDevice:
    case cudaErrorDevicesUnavailable: return errc::cuda_no_device;
    default: return errc::cuda_runtime;
  }
}

[[noreturn]] inline void throw_cuda_error(cudaError_t e, const char* expr, const char* file, int line) {
  // Clear the (non-sticky) error so it does not resurface in an unrelated later check.
  (void)cudaGetLastError();
  NERPIPE_THROW(cuda_error(cuda_errc(e), std::string(expr) + " failed at " + file + ":" + std::to_string(line) +
                                             ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")"));
}

/// cublasGetStatusName lives in libcublas; we only link cuBLASLt, so name the statuses ourselves.
[[nodiscard]] inline const char* cublas_status_name(cublasStatus_t s) noexcept {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS_<unknown>";
  }
}

[[noreturn]] inline void throw_cublas_error(cublasStatus_t s, const char* expr, const char* file, int line) {
  const errc code = s == CUBLAS_STATUS_ALLOC_FAILED ? errc::cuda_out_of_memory : errc::cuda_library;
  NERPIPE_THROW(cuda_error(code, std::string(expr) + " failed at " + file + ":" + std::to_string(line) + ": " +
                                     cublas_status_name(s) + " (" + std::to_string(static_cast<int>(s)) + ")"));
}

}  // namespace detail
NERPIPE_NAMESPACE_END

/// Evaluates a cudaError_t expression once; throws nerpipe::cuda_error (expression, file:line, error name) on failure.
#define NERPIPE_CUDA_CHECK(expr)                                                           \
  do {                                                                                     \
    const cudaError_t nerpipe_cuda_status_ = (expr);                                       \
    if (nerpipe_cuda_status_ != cudaSuccess)                                               \
      ::nerpipe::detail::throw_cuda_error(nerpipe_cuda_status_, #expr, __FILE__, __LINE__); \
  } while (0)

/// Evaluates a cublasStatus_t expression once; throws nerpipe::cuda_error on failure.
#define NERPIPE_CUBLAS_CHECK(expr)                                                              \
  do {                                                                                          \
    const cublasStatus_t nerpipe_cublas_status_ = (expr);                                       \
    if (nerpipe_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                        \
      ::nerpipe::detail::throw_cublas_error(nerpipe_cublas_status_, #expr, __FILE__, __LINE__); \
  } while (0)

/// After a kernel launch: kernels never throw, so a bad configuration shows up here.
#define NERPIPE_CUDA_CHECK_LAUNCH() NERPIPE_CUDA_CHECK(cudaPeekAtLastError())
