#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what nerpipe needs to build, test and run on Debian 12 (bookworm). Safe to run again.
# The CUDA toolkit is optional and not installed here: with nvcc on PATH the CUDA parts are built too.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache git python3 python3-pip python3-venv unzip
  libsimdjson-dev libopenblas-dev libutf8proc-dev libpcre2-dev libmsgpack-cxx-dev libcli11-dev
  catch2 libbenchmark-dev libopenmpi-dev openmpi-bin
  clang libclang-rt-dev  # scripts/fuzz.sh: libFuzzer with AddressSanitizer + UndefinedBehaviorSanitizer
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup-debian: all ${#packages[@]} packages present"
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
echo "setup-debian: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
