// SPDX-License-Identifier: Apache-2.0
//! @file How the Hugging Face pipeline groups sub-tokens into entities (transformers' aggregation_strategy): a
//! setting of the post-processing (head/hf_postprocess.hpp) and an option of every pipeline (annotate_options).
#pragma once

#include <nerpipe/config/macros.hpp>

NERPIPE_NAMESPACE_BEGIN

enum class aggregation : unsigned char { none, simple, first, average, max };

NERPIPE_NAMESPACE_END
