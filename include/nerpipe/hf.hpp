// SPDX-License-Identifier: Apache-2.0
//! @file Umbrella for Hugging Face BERT / DistilBERT token classifiers on the CPU:
//! `nerpipe::load_hf_model(dir)` and `nerpipe::make_hf_annotator(cpu_policy, model, options)`.
//! (A .cu file includes <nerpipe/cuda.cuh> and uses the same names with cuda_policy.)
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/cpu/ops.hpp>
#include <nerpipe/model/hf/model.hpp>
#include <nerpipe/pipeline/bert_ner.hpp>
#include <nerpipe/policy/cpu_policy.hpp>
