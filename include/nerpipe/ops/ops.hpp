// SPDX-License-Identifier: Apache-2.0
//! @file Every operation a device policy provides. Components include this and nothing below it.
#pragma once

#include <nerpipe/ops/attention.hpp>
#include <nerpipe/ops/disentangled_attention.hpp>
#include <nerpipe/ops/elementwise.hpp>
#include <nerpipe/ops/fp8_gemm.hpp>
#include <nerpipe/ops/gemm.hpp>
#include <nerpipe/ops/normalization.hpp>
#include <nerpipe/ops/spacy.hpp>
#include <nerpipe/ops/spacy_parser.hpp>
