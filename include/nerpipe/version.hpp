// SPDX-License-Identifier: Apache-2.0
//! @file The one place nerpipe's version number is written: CMake, the package config, the vcpkg port
//! and the Conan recipe all read it from here.
#pragma once

#define NERPIPE_VERSION_MAJOR 0
#define NERPIPE_VERSION_MINOR 1
#define NERPIPE_VERSION_PATCH 0
#define NERPIPE_VERSION_STRING "0.1.0"
