// SPDX-License-Identifier: Apache-2.0
//! @file The CUDA umbrella: everything host-side plus cuda_policy and its operations. Include from .cu files.
#pragma once
#if !defined(__CUDACC__)
#error "nerpipe: this header needs nvcc; include <nerpipe/cuda.cuh> from a .cu file"
#endif

#include <nerpipe/config/macros.hpp>
// nvcc's front end cannot parse simdjson's x86 SIMD kernels (pulled in by the model loaders); .cu
// files use its portable implementation. Host .cpp files of the same program keep the fast ones.
#if !defined(SIMDJSON_IMPLEMENTATION_HASWELL)
#  define SIMDJSON_IMPLEMENTATION_HASWELL 0
#endif
#if !defined(SIMDJSON_IMPLEMENTATION_ICELAKE)
#  define SIMDJSON_IMPLEMENTATION_ICELAKE 0
#endif
#if !defined(SIMDJSON_IMPLEMENTATION_WESTMERE)
#  define SIMDJSON_IMPLEMENTATION_WESTMERE 0
#endif
#include <nerpipe/nerpipe.hpp>

#include <nerpipe/cuda/cuda_policy.cuh>
#include <nerpipe/cuda/error.cuh>
#include <nerpipe/cuda/gemm.cuh>
#include <nerpipe/cuda/ops.cuh>
#include <nerpipe/cuda/spacy_ops.cuh>
#include <nerpipe/cuda/spacy_parser_ops.cuh>
