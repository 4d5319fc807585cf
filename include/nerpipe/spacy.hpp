// SPDX-License-Identifier: Apache-2.0
//! @file Umbrella for spaCy pipelines on the CPU: `nerpipe::load_spacy_model(dir)` and `nerpipe::spacy_ner<cpu_policy>`
//! (pipeline/spacy_ner.hpp). A .cu file includes <nerpipe/cuda.cuh> and uses the same names with cuda_policy.
#pragma once

#include <nerpipe/config/macros.hpp>
#include <nerpipe/cpu/spacy_ops.hpp>
#include <nerpipe/cpu/spacy_parser_ops.hpp>
#include <nerpipe/merge/merge_entities.hpp>
#include <nerpipe/model/spacy/loader.hpp>
#include <nerpipe/model/spacy/transformer.hpp>
#include <nerpipe/pipeline/spacy_ner.hpp>
#include <nerpipe/policy/cpu_policy.hpp>
