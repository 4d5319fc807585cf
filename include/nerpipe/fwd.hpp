// SPDX-License-Identifier: Apache-2.0
//! @file Names only, for headers that mention nerpipe types without needing their definitions.
#pragma once

#include <nerpipe/config/macros.hpp>

NERPIPE_NAMESPACE_BEGIN
struct entity;
struct token;
struct document;
struct host_space;
struct cuda_space;
class cpu_policy;
class annotator;
struct annotate_options;
class error;
class model_error;
class input_error;
class config_error;
class cuda_error;
NERPIPE_NAMESPACE_END
