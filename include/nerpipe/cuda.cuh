// SPDX-License-Identifier: Apache-2.0
//! @file The CUDA umbrella: everything host-side plus cuda_policy and its operations. Include from .cu files.
#pragma once
#if !defined(__CUDACC__)
#error "nerpipe: this header needs nvcc; include <nerpipe/cuda.cuh> from a .cu file"
#endif

#include <nerpipe/config/macros.hpp>
#include <nerpipe/nerpipe.hpp>

#include <nerpipe/cuda/cuda_policy.cuh>
#include <nerpipe/cuda/error.cuh>
#include <nerpipe/cuda/gemm.cuh>
#include <nerpipe/cuda/ops.cuh>
