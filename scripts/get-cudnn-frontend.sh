#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fetches the header-only cuDNN frontend (MIT licence) that nerpipe's fused attention path uses, from the
# `nvidia-cudnn-frontend` wheel (pip download, pinned, sha256-checked), and unpacks its include/ into
#   .gpu-deps/cudnn-frontend/include     (git-ignored; CMake finds it there: NERPIPE_WITH_CUDNN_FRONTEND)
# Usage: bash scripts/get-cudnn-frontend.sh [DEST_DIR]   (DEST_DIR default .gpu-deps/cudnn-frontend)
# A build without these headers still compiles: attention then runs nerpipe's own kernels only.
# The cuDNN library itself is loaded at run time (dlopen libcudnn.so.9); its headers come from the CUDA
# toolkit's include directory (or NERPIPE_CUDNN_INCLUDE_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.23.0
# The headers are identical in every wheel of a release; this one is the CPython 3.11 x86-64 build.
wheel="nvidia_cudnn_frontend-${version}-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"
sha256=7bdae232a3071501012611fab14aae34dd16983205e56d3c1641317910fdd385
dest="${1:-.gpu-deps/cudnn-frontend}"

if [ -f "$dest/include/cudnn_frontend.h" ] && grep -q "$version" "$dest/VERSION" 2>/dev/null; then
  echo "get-cudnn-frontend: $dest has $version"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet "nvidia-cudnn-frontend==$version" --no-deps --only-binary=:all: \
  --python-version 3.11 --platform manylinux_2_28_x86_64 -d "$tmp"
echo "$sha256  $tmp/$wheel" | sha256sum -c --quiet -
python3 - "$tmp/$wheel" "$tmp/x" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith("include/") or "licenses/" in n])
PY
rm -rf "$dest"
mkdir -p "$dest"
mv "$tmp/x/include" "$dest/include"
find "$tmp/x" -path '*licenses*' -type f -exec cp {} "$dest/" \;
echo "nvidia-cudnn-frontend $version" > "$dest/VERSION"
echo "get-cudnn-frontend: $version headers in $dest/include ($(du -sh "$dest/include" | cut -f1))"
