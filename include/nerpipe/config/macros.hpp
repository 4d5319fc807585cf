// SPDX-License-Identifier: Apache-2.0
//! @file Macros every nerpipe header uses: the versioned ABI namespace, host/device annotations, throwing.
#pragma once

#include <nerpipe/version.hpp>

// The ABI namespace carries the major and minor version, so two incompatible copies of the
// headers in one program give link errors instead of silent ODR violations.
#define NERPIPE_ABI_NAME v0_1
#define NERPIPE_NAMESPACE_BEGIN namespace nerpipe { inline namespace NERPIPE_ABI_NAME {
#define NERPIPE_NAMESPACE_END } }

#if defined(NERPIPE_INCLUDED_VERSION) && NERPIPE_INCLUDED_VERSION != (NERPIPE_VERSION_MAJOR * 10000 + NERPIPE_VERSION_MINOR * 100 + NERPIPE_VERSION_PATCH)
#  warning "nerpipe: two different versions of the nerpipe headers are included in one translation unit"
#endif
#define NERPIPE_INCLUDED_VERSION (NERPIPE_VERSION_MAJOR * 10000 + NERPIPE_VERSION_MINOR * 100 + NERPIPE_VERSION_PATCH)

// __CUDACC__ may only add annotations; it never changes a type's layout (see the layout rules).
#if defined(__CUDACC__)
#  define NERPIPE_HOST_DEVICE __host__ __device__
#else
#  define NERPIPE_HOST_DEVICE
#endif

// Every throw goes through one macro, so an exception-free build is one edit away.
#define NERPIPE_THROW(...) throw __VA_ARGS__
