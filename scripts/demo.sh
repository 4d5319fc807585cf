#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job, end to end on a fresh Debian 12 machine: install packages, build the `nerpipe`
# program, fetch the default model (spaCy en_core_web_sm 3.8.0, checksum-verified), and run NER over
# the sample corpus, printing one JSON record per document.
#
#   bash scripts/demo.sh [extra `nerpipe run` options, e.g. --format merged]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-debian.sh >&2
model="$(bash scripts/get-model.sh models)"
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake --preset cpu "${launcher[@]}" -DNERPIPE_BUILD_TESTS=OFF -DNERPIPE_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build/cpu --target nerpipe_cli -j "$(nproc)" >&2
build/cpu/examples/nerpipe run --model "$model" --input examples/data/sample.jsonl --output - "$@"
