# SPDX-License-Identifier: Apache-2.0
"""Conan 2 recipe for nerpipe, a header-only C++20/CUDA NER library.

Build it from a checkout:  conan create packaging/conan --build=missing
The version is read from include/nerpipe/version.hpp, the one place it is written.

The package ships nerpipe's own CMake config (share/cmake/nerpipe), the same files a
`cmake --install` or the vcpkg port gives, so `find_package(nerpipe CONFIG REQUIRED)` behaves the
same everywhere: nerpipe::nerpipe, COMPONENTS cuda -> nerpipe::cuda, and the dependencies found by
nerpipe-dependencies.cmake. CMakeDeps therefore generates nothing for nerpipe (cmake_find_mode
"none"); CMakeToolchain puts the config folder (builddirs) on CMAKE_PREFIX_PATH, and the
dependencies' include and library folders on CMAKE_INCLUDE_PATH / CMAKE_LIBRARY_PATH, where that
config's find_package/find_path/find_library calls look.
"""
import os
import re

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy

required_conan_version = ">=2.0.9"


def _repo_root(recipe_folder):
    # packaging/conan -> the repository root
    return os.path.normpath(os.path.join(recipe_folder, os.pardir, os.pardir))


def read_version(repo_root):
    """NERPIPE_VERSION_STRING from include/nerpipe/version.hpp."""
    text = open(os.path.join(repo_root, "include", "nerpipe", "version.hpp"), encoding="utf-8").read()
    match = re.search(r'#define\s+NERPIPE_VERSION_STRING\s+"([0-9]+\.[0-9]+\.[0-9]+)"', text)
    if not match:
        raise ValueError("include/nerpipe/version.hpp: no '#define NERPIPE_VERSION_STRING \"X.Y.Z\"' line")
    return match.group(1)


class NerpipeConan(ConanFile):
    name = "nerpipe"
    description = ("Header-only C++20/CUDA named-entity recognition over large corpora "
                   "(spaCy and Hugging Face token-classifier models) on CPU, GPUs and MPI clusters")
    license = "Apache-2.0"
    topics = ("nlp", "ner", "named-entity-recognition", "cuda", "header-only")
    package_type = "header-library"
    # Settings only drive the CMake configure that installs the package; package_id() drops them.
    settings = "os", "arch", "compiler", "build_type"
    options = {"with_cuda": [True, False], "with_mpi": [True, False]}
    default_options = {"with_cuda": False, "with_mpi": False}
    no_copy_source = True

    def set_version(self):
        self.version = self.version or read_version(_repo_root(self.recipe_folder))

    def export_sources(self):
        # The recipe lives in packaging/conan; the sources are two levels up. The configure needs
        # CMakeLists.txt, cmake/ and include/ (tests/, bench/, examples/ are off and not exported).
        root = _repo_root(self.recipe_folder)
        copy(self, "CMakeLists.txt", root, self.export_sources_folder)
        copy(self, "LICENSE", root, self.export_sources_folder)
        copy(self, "*", os.path.join(root, "cmake"), os.path.join(self.export_sources_folder, "cmake"))
        copy(self, "*", os.path.join(root, "include"), os.path.join(self.export_sources_folder, "include"))

    def layout(self):
        cmake_layout(self, src_folder=".")

    def requirements(self):
        # The headers include these, so consumers compile and link against them.
        self.requires("simdjson/[>=3.0 <5]", transitive_headers=True, transitive_libs=True)
        self.requires("openblas/[>=0.3.20 <1]", transitive_headers=True, transitive_libs=True)
        self.requires("utf8proc/[>=2.8 <3]", transitive_headers=True, transitive_libs=True)
        self.requires("pcre2/[>=10.40 <11]", transitive_headers=True, transitive_libs=True)
        self.requires("msgpack-cxx/[>=4.1 <9]", transitive_headers=True)
        if self.options.with_mpi:
            self.requires("openmpi/[>=4.1 <6]", transitive_headers=True, transitive_libs=True)

    def package_id(self):
        # One package for every compiler, build type and dependency version: it holds headers and
        # CMake files only. The options stay: with_cuda adds nerpipe-cuda-targets.cmake, with_mpi
        # the MPI parts, so packages built with and without them differ in content.
        self.info.settings.clear()
        self.info.requires.clear()

    def validate(self):
        # The headers are C++20; a profile that pins an older standard would fail in the consumer.
        if self.settings.get_safe("compiler.cppstd"):
            check_min_cppstd(self, 20)

    def generate(self):
        tc = CMakeToolchain(self)
        # Nothing is compiled here, so the package does not need the profile's C++ standard; and with
        # it (CMAKE_CXX_STANDARD 20 + _REQUIRED in the toolchain) CMake 3.25 cannot detect nvcc: its
        # CUDA ABI check inherits the standard as "CUDA20 with extensions" and fails.
        tc.blocks.remove("cppstd")
        tc.cache_variables["NERPIPE_BUILD_TESTS"] = False
        tc.cache_variables["NERPIPE_BUILD_BENCHMARKS"] = False
        tc.cache_variables["NERPIPE_BUILD_EXAMPLES"] = False
        tc.cache_variables["NERPIPE_INSTALL"] = True
        tc.cache_variables["NERPIPE_USE_SINGLE_INCLUDE"] = False
        # ON fails the configure when nvcc is missing; OFF keeps AUTO from picking up a stray nvcc.
        tc.cache_variables["NERPIPE_ENABLE_CUDA"] = "ON" if self.options.with_cuda else "OFF"
        tc.cache_variables["NERPIPE_ENABLE_MPI"] = bool(self.options.with_mpi)
        tc.generate()
        CMakeDeps(self).generate()

    def build(self):
        # Nothing is compiled: the configure finds the dependencies (failing early, as a consumer's
        # find_package would) and writes the package config files.
        cmake = CMake(self)
        cmake.configure()

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        CMake(self).install()

    def package_info(self):
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        self.cpp_info.includedirs = ["include"]
        # Use the package's own config (see the module docstring); the names are kept for tools
        # that read them.
        self.cpp_info.set_property("cmake_find_mode", "none")
        self.cpp_info.set_property("cmake_file_name", "nerpipe")
        self.cpp_info.set_property("cmake_target_name", "nerpipe::nerpipe")
        self.cpp_info.builddirs = [os.path.join("share", "cmake", "nerpipe")]
        # For non-CMake generators (PkgConfigDeps, MesonToolchain, ...): what nerpipe::nerpipe adds.
        self.cpp_info.defines = ["MSGPACK_NO_BOOST"]
        if self.settings.os in ("Linux", "FreeBSD"):
            self.cpp_info.system_libs = ["pthread", "dl"]
