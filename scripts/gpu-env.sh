# SPDX-License-Identifier: Apache-2.0
# Sourced (not run) by the GPU scripts: build directory, log directory, job count and the CMake arguments
# of the CUDA build (sm_90 by default), with dependencies from the system or from Debian packages
# unpacked with `dpkg -x` into $NERPIPE_DEPS_PREFIX (used by gpu-check.sh).
# Sets: build, logs, jobs, archs, cmake_args (array); exports PATH, CPATH, LIBRARY_PATH,
# LD_LIBRARY_PATH, NVIDIA_TF32_OVERRIDE=0. Knobs: NERPIPE_GPU_BUILD_DIR, NERPIPE_JOBS,
# CMAKE_CUDA_ARCHITECTURES, NERPIPE_GPU_LOGS.
export PATH="$PATH:/usr/local/cuda/bin"

build="${NERPIPE_GPU_BUILD_DIR:-build/gpu-check}"
# Logs stay outside $OUT (a lent machine returns at most 8 files from there): gpu-check.sh archives them.
logs="${NERPIPE_GPU_LOGS:-$build/logs}"
jobs="${NERPIPE_JOBS:-$(nproc)}"
archs="${CMAKE_CUDA_ARCHITECTURES:-90}"
mkdir -p "$build" "$logs"
logs="$(cd "$logs" && pwd)"

cmake_args=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$archs" -DNERPIPE_ENABLE_CUDA=ON
            -DNERPIPE_BUILD_TESTS=ON -DNERPIPE_BUILD_BENCHMARKS=ON -DNERPIPE_BUILD_EXAMPLES=OFF)
# CMake < 3.26 has no C++20 flag for nvcc, so `cuda_std_20` is an unknown feature there; naming the
# flag defines it (newer CMake sets these itself and ignores the cache values).
cmake_args+=(-DCMAKE_CUDA20_STANDARD_COMPILE_OPTION=-std=c++20 -DCMAKE_CUDA20_EXTENSION_COMPILE_OPTION=-std=c++20)
if command -v ninja >/dev/null; then cmake_args+=(-G Ninja); fi
if command -v nvcc >/dev/null; then cmake_args+=(-DCMAKE_CUDA_COMPILER="$(command -v nvcc)"); fi

# Debian packages unpacked with dpkg -x: no alternatives links are set up, so OpenBLAS is found
# under openblas-pthread/ directly; configs under lib/cmake are relocatable.
if [ -n "${NERPIPE_DEPS_PREFIX:-}" ]; then
  p="$(cd "$NERPIPE_DEPS_PREFIX" && pwd)"
  multiarch="$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
  inc="$p/usr/include;$p/usr/include/$multiarch;$p/usr/include/$multiarch/openblas-pthread"
  lib="$p/usr/lib/$multiarch;$p/usr/lib/$multiarch/openblas-pthread;$p/usr/lib"
  cmake_args+=(-DCMAKE_PREFIX_PATH="$p/usr;$p/usr/lib/$multiarch/cmake;$p/usr/lib/cmake"
               -DCMAKE_INCLUDE_PATH="$inc" -DCMAKE_LIBRARY_PATH="$lib")
  export CPATH="${inc//;/:}${CPATH:+:$CPATH}"
  export LIBRARY_PATH="${lib//;/:}${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export LD_LIBRARY_PATH="${lib//;/:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
export NVIDIA_TF32_OVERRIDE=0  # fp32 results must not silently use TF32 anywhere
