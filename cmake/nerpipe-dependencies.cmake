# SPDX-License-Identifier: Apache-2.0
# What the nerpipe headers need, found the same way by our own build and by the installed package
# config (which includes this file). Each library becomes an imported target under nerpipe_deps::.
include_guard(GLOBAL)
include(CMakeFindDependencyMacro)

find_package(Threads REQUIRED)
find_package(simdjson CONFIG REQUIRED)

# CBLAS for CPU GEMMs (OpenBLAS on Debian). FindBLAS gives the library; cblas.h sits on the default
# multiarch include path on Debian, elsewhere next to it.
if(NOT TARGET nerpipe_deps::cblas)
  # OpenBLAS first (Debian keeps it under openblas-pthread/ behind an alternatives link, which a
  # package unpacked with `dpkg -x` lacks); any other CBLAS through FindBLAS.
  find_library(NERPIPE_CBLAS_LIBRARY NAMES openblas
               PATH_SUFFIXES openblas-pthread x86_64-linux-gnu/openblas-pthread aarch64-linux-gnu/openblas-pthread)
  set(_nerpipe_blas_libraries ${NERPIPE_CBLAS_LIBRARY})
  if(NOT NERPIPE_CBLAS_LIBRARY)
    find_package(BLAS REQUIRED)
    set(_nerpipe_blas_libraries ${BLAS_LIBRARIES})
  endif()
  find_path(NERPIPE_CBLAS_INCLUDE_DIR cblas.h
            PATH_SUFFIXES openblas x86_64-linux-gnu x86_64-linux-gnu/openblas-pthread aarch64-linux-gnu
                          aarch64-linux-gnu/openblas-pthread)
  if(NOT NERPIPE_CBLAS_INCLUDE_DIR)
    message(FATAL_ERROR "nerpipe: cblas.h not found. On Debian/Ubuntu: apt-get install libopenblas-dev")
  endif()
  add_library(nerpipe_deps::cblas INTERFACE IMPORTED)
  set_target_properties(nerpipe_deps::cblas PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${NERPIPE_CBLAS_INCLUDE_DIR}"
                                                       INTERFACE_LINK_LIBRARIES "${_nerpipe_blas_libraries}")
endif()

# A header and a library, without a CMake config on Debian: utf8proc (Unicode data), PCRE2 (spaCy's
# tokenizer rules), msgpack-cxx (spaCy model files; used header-only without Boost).
function(nerpipe_find_header_library target header library hint)
  if(TARGET ${target})
    return()
  endif()
  string(MAKE_C_IDENTIFIER "${target}" var)
  find_path(${var}_INCLUDE_DIR ${header})
  if(library)
    find_library(${var}_LIBRARY ${library})
  endif()
  if(NOT ${var}_INCLUDE_DIR OR (library AND NOT ${var}_LIBRARY))
    message(FATAL_ERROR "nerpipe: ${header} (${library}) not found. On Debian/Ubuntu: apt-get install ${hint}")
  endif()
  add_library(${target} INTERFACE IMPORTED)
  set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${${var}_INCLUDE_DIR}")
  if(library)
    set_target_properties(${target} PROPERTIES INTERFACE_LINK_LIBRARIES "${${var}_LIBRARY}")
  endif()
endfunction()

nerpipe_find_header_library(nerpipe_deps::utf8proc utf8proc.h utf8proc libutf8proc-dev)
nerpipe_find_header_library(nerpipe_deps::pcre2 pcre2.h pcre2-8 libpcre2-dev)
nerpipe_find_header_library(nerpipe_deps::msgpack msgpack.hpp "" libmsgpack-cxx-dev)
if(TARGET nerpipe_deps::msgpack)
  set_property(TARGET nerpipe_deps::msgpack APPEND PROPERTY INTERFACE_COMPILE_DEFINITIONS MSGPACK_NO_BOOST)
endif()
