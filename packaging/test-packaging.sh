#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Tests nerpipe's packages the way users consume them, offline apart from one pip install of Conan:
#   version      version.hpp == vcpkg.json == the Conan recipe's version == CHANGELOG.md has a section
#   vcpkg-port   packaging/vcpkg/check_port.py: vcpkg.json, portfile.cmake and usage agree with the repo
#   vcpkg-path   the configure the portfile runs (its own -D options, read from it), cmake --install to a
#                prefix, the prefix moved (packages are relocated), then the test_package project built
#                and run against it with plain CMake; with nvcc, again with the cuda feature
#   conan-create conan create packaging/conan (Debian's libraries as [platform_requires]), which builds and
#                runs packaging/conan/test_package; with nvcc, also with_cuda=True; and with_mpi=True
#   vcpkg-real   only with VCPKG_ROOT set: packaging/vcpkg/test-with-vcpkg.sh (vcpkg itself installs the port)
# Prints a PASS/FAIL/SKIP line per check and exits non-zero when one fails. Logs: build/packaging/logs/.
# Environment: NERPIPE_PACKAGING_WORK (work folder, default build/packaging), NERPIPE_JOBS (default 2),
# NERPIPE_CONAN_VENV (where Conan is installed, default ~/.cache/nerpipe/conan-<version>).
set -uo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

conan_version=2.34.0
work="${NERPIPE_PACKAGING_WORK:-$root/build/packaging}"
jobs="${NERPIPE_JOBS:-2}"
venv="${NERPIPE_CONAN_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/nerpipe/conan-$conan_version}"
logs="$work/logs"
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
nvcc="$(command -v nvcc || true)"
if [ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ]; then nvcc=/usr/local/cuda/bin/nvcc; fi

rm -rf "$work"
mkdir -p "$logs"
start_all=$SECONDS
summary=()
failed=0

# run_check NAME FUNCTION: runs FUNCTION with its output in logs/NAME.log; prints the tail on failure.
run_check() {
  local name=$1 fn=$2 t0=$SECONDS rc
  echo "== packaging: $name"
  ( set -e; "$fn" ) >"$logs/$name.log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then
    summary+=("PASS  $name ($((SECONDS - t0)) s)")
  elif [ $rc -eq 77 ]; then
    summary+=("SKIP  $name: $(tail -n 1 "$logs/$name.log")")
  else
    failed=1
    summary+=("FAIL  $name ($((SECONDS - t0)) s, log: $logs/$name.log)")
    echo "---- last lines of $logs/$name.log"
    tail -n 40 "$logs/$name.log"
    echo "----"
  fi
}

header_version() {
  sed -n 's/^#define NERPIPE_VERSION_STRING "\(.*\)"$/\1/p' include/nerpipe/version.hpp
}

conan() { CONAN_HOME="$work/conan-home" "$venv/bin/conan" "$@"; }

# ---- Conan, pinned, in its own venv (not /work/venv, not the system Python) ---------------------------
setup_conan() {
  if [ ! -x "$venv/bin/conan" ] || ! "$venv/bin/conan" --version | grep -qx "Conan version $conan_version"; then
    rm -rf "$venv"
    python3 -m venv "$venv" || { echo "python3 -m venv failed (on Debian: apt-get install python3-venv)"; return 1; }
    "$venv/bin/pip" install --quiet "conan==$conan_version"
  fi
  "$venv/bin/conan" --version
  # A Conan home of our own: the user's ~/.conan2 is neither read nor changed.
  conan profile detect --force
  conan remote disable conancenter   # nothing but PyPI is reached: every dependency is the system's
  cat >"$work/conan-home/profiles/nerpipe-debian" <<EOF
include(default)
[settings]
compiler.cppstd=gnu20
[platform_requires]
simdjson/3.0.1
openblas/0.3.21
utf8proc/2.8.0
pcre2/10.42
msgpack-cxx/4.1.3
openmpi/4.1.4
[conf]
tools.build:jobs=$jobs
tools.cmake.cmake_layout:test_folder=$work/conan-test
tools.cmake.cmaketoolchain:user_presets=
EOF
  if [ ${#generator[@]} -gt 0 ]; then
    echo "tools.cmake.cmaketoolchain:generator=Ninja" >>"$work/conan-home/profiles/nerpipe-debian"
  fi
  cat "$work/conan-home/profiles/nerpipe-debian"
}

# ---- the version, written once --------------------------------------------------------------------------
check_version() {
  local hpp vcpkg conanv
  hpp="$(header_version)"
  vcpkg="$(python3 packaging/vcpkg/check_port.py version)"
  conanv="$(conan inspect packaging/conan --format=json | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')"
  echo "version.hpp=$hpp vcpkg.json=$vcpkg conanfile.py=$conanv"
  [ -n "$hpp" ] || { echo "include/nerpipe/version.hpp: no NERPIPE_VERSION_STRING"; return 1; }
  [ "$vcpkg" = "$hpp" ] || { echo "vcpkg.json version $vcpkg != version.hpp $hpp"; return 1; }
  [ "$conanv" = "$hpp" ] || { echo "conanfile.py version $conanv != version.hpp $hpp"; return 1; }
  grep -q "^## \[$hpp\]" CHANGELOG.md || { echo "CHANGELOG.md: no '## [$hpp]' section"; return 1; }
}

check_vcpkg_port() {
  python3 packaging/vcpkg/check_port.py check
}

# install_like_port NAME FEATURE...: configure with the portfile's options, install, move the prefix.
install_like_port() {
  local name=$1 config_path
  shift
  local -a opts extra=()
  mapfile -t opts < <(python3 packaging/vcpkg/check_port.py options "$@")
  [ ${#opts[@]} -gt 0 ] || { echo "could not read the options from portfile.cmake"; return 1; }
  config_path="$(python3 packaging/vcpkg/check_port.py config-path)"
  if [[ " $* " == *" cuda "* ]]; then
    # What the portfile passes after vcpkg_find_cuda.
    extra=(-DCMAKE_CUDA_COMPILER="$nvcc" -DCUDAToolkit_ROOT="$(dirname "$(dirname "$nvcc")")")
  fi
  echo "configure options (from portfile.cmake): ${opts[*]} ${extra[*]}"
  cmake -S "$root" -B "$work/$name/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "${opts[@]}" "${extra[@]}"
  cmake --build "$work/$name/build"
  cmake --install "$work/$name/build" --prefix "$work/$name/staged"
  # vcpkg and Conan both copy the installed tree elsewhere: it must not refer to where it was made.
  mv "$work/$name/staged" "$work/$name/prefix"
  [ -f "$work/$name/prefix/$config_path/nerpipe-config.cmake" ] ||
    { echo "no nerpipe-config.cmake under CONFIG_PATH $config_path"; return 1; }
  [ -f "$work/$name/prefix/include/nerpipe/version.hpp" ] || { echo "headers not installed"; return 1; }
  if grep -rl -e "$work/$name/staged" -e "$root/include" "$work/$name/prefix/$config_path"; then
    echo "the installed config refers to the build or source tree (above)"
    return 1
  fi
  grep -q "PACKAGE_VERSION \"$(header_version)\"" "$work/$name/prefix/$config_path/nerpipe-config-version.cmake" ||
    { echo "nerpipe-config-version.cmake does not carry version $(header_version)"; return 1; }
}

# consume NAME [CMAKE OPTION...]: the test_package project against the moved prefix, plain CMake.
consume() {
  local name=$1 out
  shift
  cmake -S packaging/conan/test_package -B "$work/$name/consumer" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$work/$name/prefix" -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON "$@" | tee "$work/$name/consumer.log"
  grep -q "nerpipe $(header_version) from $work/$name/prefix/" "$work/$name/consumer.log" ||
    { echo "find_package(nerpipe) did not take the package from $work/$name/prefix"; return 1; }
  cmake --build "$work/$name/consumer"
  out="$("$work/$name/consumer/nerpipe_test_package")"
  echo "$out"
  [[ "$out" == *"-> PASS" ]]
}

check_vcpkg_path() {
  install_like_port vcpkg-path
  consume vcpkg-path
}

check_vcpkg_path_cuda() {
  if [ -z "$nvcc" ]; then echo "no nvcc (PATH, /usr/local/cuda/bin)"; return 77; fi
  install_like_port vcpkg-path-cuda cuda
  [ -f "$work/vcpkg-path-cuda/prefix/$(python3 packaging/vcpkg/check_port.py config-path)/nerpipe-cuda-targets.cmake" ] ||
    { echo "the cuda feature installed no nerpipe-cuda-targets.cmake"; return 1; }
  consume vcpkg-path-cuda -DNERPIPE_TEST_PACKAGE_CUDA=ON
}

# conan_create NAME [conan option...]: conan create + the test_package it runs; checks the package.
conan_create() {
  local name=$1 version pkg
  shift
  version="$(header_version)"
  conan create packaging/conan --build=missing -pr:h nerpipe-debian -pr:b nerpipe-debian "$@" \
    --format=json >"$work/$name.json"
  grep -q "nerpipe $version test_package: .* -> PASS" "$logs/$name.log" ||
    { echo "the test_package did not report PASS"; return 1; }
  pkg="$(python3 - "$work/$name.json" <<'EOF'
import json, sys
graph = json.load(open(sys.argv[1]))["graph"]["nodes"]
print(next(n["package_folder"] for n in graph.values() if (n.get("ref") or "").startswith("nerpipe/")))
EOF
)"
  echo "package folder: $pkg"
  for f in include/nerpipe/nerpipe.hpp include/nerpipe/version.hpp share/cmake/nerpipe/nerpipe-config.cmake \
           share/cmake/nerpipe/nerpipe-dependencies.cmake licenses/LICENSE; do
    [ -f "$pkg/$f" ] || { echo "package lacks $f"; return 1; }
  done
  if [ -e "$pkg/lib" ] || [ -e "$pkg/bin" ]; then echo "a header-only package with lib/ or bin/"; return 1; fi
}

# The package id of nerpipe for a profile plus extra arguments.
conan_package_id() {
  conan graph info --requires "nerpipe/$(header_version)" -pr:h nerpipe-debian -pr:b nerpipe-debian "$@" --format=json |
    python3 -c 'import json,sys; n=json.load(sys.stdin)["graph"]["nodes"]; print(*[v["package_id"] for v in n.values() if (v.get("ref") or "").startswith("nerpipe/")])'
}

check_conan_create() {
  local release debug cuda
  setup_conan
  conan_create conan-create
  # Header-only: one package whatever the compiler and build type; the options change its content.
  release="$(conan_package_id -s build_type=Release)"
  debug="$(conan_package_id -s build_type=Debug -s compiler.version=11)"
  cuda="$(conan_package_id -o "nerpipe/*:with_cuda=True")"
  echo "package ids: Release $release, Debug/gcc 11 $debug, with_cuda $cuda"
  if [ -z "$release" ] || [ "$release" != "$debug" ]; then echo "the package id depends on settings"; return 1; fi
  [ "$release" != "$cuda" ] || { echo "with_cuda=True and False share a package id"; return 1; }
}

check_conan_create_cuda() {
  if [ -z "$nvcc" ]; then echo "no nvcc (PATH, /usr/local/cuda/bin)"; return 77; fi
  # CMakeToolchain turns tools.build:compiler_executables into CMAKE_CUDA_COMPILER.
  conan_create conan-create-cuda -o "nerpipe/*:with_cuda=True" -c "tools.build:compiler_executables={'cuda': '$nvcc'}"
}

check_conan_create_mpi() {
  conan_create conan-create-mpi -o "nerpipe/*:with_mpi=True"
}

# Only where a vcpkg is at hand (VCPKG_ROOT): the port installed by vcpkg itself.
check_vcpkg_real() {
  if [ -z "${VCPKG_ROOT:-}" ] || [ ! -x "${VCPKG_ROOT}/vcpkg" ]; then echo "no vcpkg (set VCPKG_ROOT)"; return 77; fi
  bash packaging/vcpkg/test-with-vcpkg.sh
  if [ -n "$nvcc" ]; then bash packaging/vcpkg/test-with-vcpkg.sh cuda mpi; fi
}

run_check conan-create check_conan_create    # first: it installs Conan, which the version check uses
run_check version check_version
run_check vcpkg-port check_vcpkg_port
run_check vcpkg-path check_vcpkg_path
run_check vcpkg-path-cuda check_vcpkg_path_cuda
run_check conan-create-cuda check_conan_create_cuda
run_check conan-create-mpi check_conan_create_mpi
run_check vcpkg-real check_vcpkg_real

echo "== packaging summary ($((SECONDS - start_all)) s)"
printf '%s\n' "${summary[@]}"
if [ $failed -ne 0 ]; then
  echo "packaging: FAIL"
  exit 1
fi
echo "packaging: PASS"
