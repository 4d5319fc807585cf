# SPDX-License-Identifier: Apache-2.0
"""Builds and runs a consumer of the nerpipe package (run by `conan create`)."""
import os

from conan import ConanFile
from conan.tools.build import can_run
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout


class NerpipeTestPackageConan(ConanFile):
    settings = "os", "arch", "compiler", "build_type"

    def requirements(self):
        self.requires(self.tested_reference_str)

    def layout(self):
        cmake_layout(self)

    def generate(self):
        tc = CMakeToolchain(self)
        # A package built with_cuda must provide find_package(nerpipe COMPONENTS cuda).
        tc.cache_variables["NERPIPE_TEST_PACKAGE_CUDA"] = bool(self.dependencies["nerpipe"].options.with_cuda)
        tc.generate()
        CMakeDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def test(self):
        if can_run(self):
            self.run(os.path.join(self.cpp.build.bindir, "nerpipe_test_package"), env="conanrun")
