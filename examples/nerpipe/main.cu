// SPDX-License-Identifier: Apache-2.0
//! @file The `nerpipe` program built by nvcc (`nerpipe_cuda`): the same source, with --device cuda[:ids]
//! running Hugging Face models on GPUs through round_robin<cuda_policy>.
#include "main.cpp"
