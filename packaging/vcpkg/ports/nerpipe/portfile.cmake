# SPDX-License-Identifier: Apache-2.0
# nerpipe as a vcpkg overlay port: builds from the checkout this file sits in
# (packaging/vcpkg/ports/nerpipe -> repository root), so `vcpkg install nerpipe
# --overlay-ports=<repo>/packaging/vcpkg/ports` installs the headers of that checkout.
#
# For a registry (the curated vcpkg tree), replace the SOURCE_PATH line with
#   vcpkg_from_github(OUT_SOURCE_PATH SOURCE_PATH REPO <owner>/nerpipe REF "v${VERSION}" SHA512 <sha512 of the archive>)
# and keep the rest. vcpkg hashes the port files, not the checkout: while testing an overlay, set
# VCPKG_BINARY_SOURCES=clear so edited headers are not restored from a binary cache.
get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../../../.." ABSOLUTE)
if(NOT EXISTS "${SOURCE_PATH}/include/nerpipe/version.hpp")
  message(FATAL_ERROR "nerpipe: no checkout at ${SOURCE_PATH} (this overlay port must stay in packaging/vcpkg/ports/nerpipe)")
endif()

# Header-only: the headers and the CMake package are the same for every configuration.
set(VCPKG_BUILD_TYPE release)

vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
  FEATURES
    cuda NERPIPE_ENABLE_CUDA
    mpi NERPIPE_ENABLE_MPI
)

set(CUDA_OPTIONS "")
if("cuda" IN_LIST FEATURES)
  # The cuda port installs nothing; it checks for a toolkit and provides vcpkg_find_cuda.
  vcpkg_find_cuda(OUT_CUDA_TOOLKIT_ROOT CUDA_TOOLKIT_ROOT)
  list(APPEND CUDA_OPTIONS "-DCMAKE_CUDA_COMPILER=${NVCC}" "-DCUDAToolkit_ROOT=${CUDA_TOOLKIT_ROOT}")
endif()

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    ${FEATURE_OPTIONS}
    ${CUDA_OPTIONS}
    -DNERPIPE_BUILD_TESTS=OFF
    -DNERPIPE_BUILD_BENCHMARKS=OFF
    -DNERPIPE_BUILD_EXAMPLES=OFF
    -DNERPIPE_INSTALL=ON
    -DNERPIPE_USE_SINGLE_INCLUDE=OFF
  MAYBE_UNUSED_VARIABLES
    NERPIPE_ENABLE_MPI
)
vcpkg_cmake_install()
# Must match NERPIPE_CMAKE_DIR in the top-level CMakeLists.txt (share/cmake/nerpipe); moves the
# package config to share/nerpipe, where vcpkg's find_package looks.
vcpkg_cmake_config_fixup(CONFIG_PATH share/cmake/nerpipe)

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug" "${CURRENT_PACKAGES_DIR}/lib")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
