// SPDX-License-Identifier: Apache-2.0
//! @file The host umbrella: everything nerpipe offers without CUDA. Compiles with g++ alone.
//! For GPUs, include <nerpipe/cuda.cuh> from a .cu file instead (it includes this header).
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/version.hpp>

#include <nerpipe/core/document.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/core/thread_pool.hpp>

#include <nerpipe/policy/cpu_policy.hpp>
#include <nerpipe/policy/device_policy.hpp>
#include <nerpipe/policy/memory_space.hpp>

#include <nerpipe/ops/ops.hpp>
#include <nerpipe/cpu/ops.hpp>

#include <nerpipe/pipeline/annotator.hpp>

// Model families (host loaders, tokenizers, components) and the main job's pieces.
#include <nerpipe/hf.hpp>
#include <nerpipe/spacy.hpp>
#include <nerpipe/io/jsonl_reader.hpp>
#include <nerpipe/io/jsonl_writer.hpp>
#include <nerpipe/io/output_file.hpp>
#include <nerpipe/io/resume.hpp>
#include <nerpipe/core/host_memory.hpp>
#include <nerpipe/pipeline/executor.hpp>
#include <nerpipe/pipeline/model.hpp>
