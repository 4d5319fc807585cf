#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The test command (README, CI): installs Debian packages, fetches the default spaCy model, builds host
# and CUDA code (CUDA is compiled and linked when nvcc is found; GPU tests are reported skipped without
# a device), runs every host test, the single-header check and the package tests, then the host tests
# again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/cuda/bin"

bash scripts/setup-debian.sh
if [ -f scripts/get-model.sh ]; then
  bash scripts/get-model.sh models sm >/dev/null
  bash scripts/get-model.sh models md >/dev/null
fi

jobs="${NERPIPE_JOBS:-$(nproc)}"
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache); fi

echo "== configure + build (release)"
cmake --preset ci "${launcher[@]}" >/dev/null
cmake --build build/ci -j "$jobs"

echo "== single header"
python3 tools/amalgamate.py --check

echo "== tests (release)"
ctest --preset ci -j "$jobs"

echo "== packaging (Conan 2 recipe, vcpkg port path)"
bash packaging/test-packaging.sh

echo "== tests (ASan + UBSan)"
cmake --preset sanitize "${launcher[@]}" >/dev/null
cmake --build build/sanitize -j "$jobs" --target nerpipe_tests
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --preset sanitize -j "$jobs"
