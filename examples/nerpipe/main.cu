// SPDX-License-Identifier: Apache-2.0
//! @file The `nerpipe` program built by nvcc (`nerpipe_cuda`): the same source, with --device cuda[:ids]
//! running Hugging Face models on GPUs through round_robin<cuda_policy>.
//!
//! nvcc's host pass cannot compile simdjson's SSE/AVX kernels (vector-type conversions), so this TU
//! keeps only simdjson's portable implementation (On-Demand uses it anyway without -march flags).
#ifndef SIMDJSON_IMPLEMENTATION_HASWELL
#  define SIMDJSON_IMPLEMENTATION_HASWELL 0
#endif
#ifndef SIMDJSON_IMPLEMENTATION_ICELAKE
#  define SIMDJSON_IMPLEMENTATION_ICELAKE 0
#endif
#ifndef SIMDJSON_IMPLEMENTATION_WESTMERE
#  define SIMDJSON_IMPLEMENTATION_WESTMERE 0
#endif
#include "main.cpp"
