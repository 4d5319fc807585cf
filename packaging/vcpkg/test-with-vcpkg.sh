#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the overlay port with a real vcpkg, then builds and runs packaging/conan/test_package against
# it through vcpkg's toolchain file. Not part of CI (CI has no vcpkg tool: packaging/test-packaging.sh
# checks the port's files and runs its configure/install path with plain CMake instead).
#
#   VCPKG_ROOT=/path/to/vcpkg bash packaging/vcpkg/test-with-vcpkg.sh [FEATURE ...]     e.g. cuda
#
# VCPKG_ROOT holds the vcpkg executable and a vcpkg tree (scripts/, triplets/, ports/ with at least
# vcpkg-cmake, vcpkg-cmake-config and, for the cuda feature, cuda). By default nerpipe's dependencies
# come from the system (the Debian packages scripts/setup-debian.sh installs) through empty stub ports,
# so nothing is downloaded or built; NERPIPE_VCPKG_SYSTEM_DEPS=0 lets vcpkg build them from its ports.
# Everything vcpkg writes goes to build/packaging-vcpkg/, not into VCPKG_ROOT.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
: "${VCPKG_ROOT:?set VCPKG_ROOT to a vcpkg tree with the vcpkg executable}"
vcpkg="$VCPKG_ROOT/vcpkg"
work="$root/build/packaging-vcpkg"
features=("$@")
case "$(uname -m)" in
  x86_64) triplet=x64-linux ;;
  aarch64) triplet=arm64-linux ;;
  *) echo "test-with-vcpkg: no triplet for $(uname -m)"; exit 2 ;;
esac
rm -rf "$work"
mkdir -p "$work"

overlays=(--overlay-ports="$root/packaging/vcpkg/ports")
if [ "${NERPIPE_VCPKG_SYSTEM_DEPS:-1}" = 1 ]; then
  # name:version pairs of the Debian 12 packages; an empty port makes vcpkg "install" nothing, and
  # find_package/find_library then find the system's copy.
  for dep in simdjson:3.0.1 openblas:0.3.21 utf8proc:2.8.0 pcre2:10.42 msgpack:4.1.3 mpi:4.1.4; do
    name="${dep%%:*}"
    mkdir -p "$work/ports-system/$name"
    printf '{"name": "%s", "version": "%s", "description": "the system'"'"'s %s (stub)"}\n' "$name" "${dep#*:}" "$name" \
      >"$work/ports-system/$name/vcpkg.json"
    echo 'set(VCPKG_POLICY_EMPTY_PACKAGE enabled)' >"$work/ports-system/$name/portfile.cmake"
  done
  overlays+=(--overlay-ports="$work/ports-system")
fi

# The standard triplet, minus the RPATH fix-up: nerpipe installs no ELF files, and the fix-up would
# download patchelf.
mkdir -p "$work/triplets"
printf 'include("%s")\nset(VCPKG_FIXUP_ELF_RPATH OFF)\n' "$VCPKG_ROOT/triplets/$triplet.cmake" >"$work/triplets/$triplet.cmake"

spec="nerpipe"
cuda_opt=()
if [ ${#features[@]} -gt 0 ]; then
  spec="nerpipe[$(IFS=,; echo "${features[*]}")]"
fi
if [[ " ${features[*]:-} " == *" cuda "* ]]; then
  cuda_opt=(-DNERPIPE_TEST_PACKAGE_CUDA=ON)
  export PATH="$PATH:/usr/local/cuda/bin"
fi

export VCPKG_BINARY_SOURCES=clear VCPKG_FORCE_SYSTEM_BINARIES=1 VCPKG_DISABLE_METRICS=1
t0=$SECONDS
"$vcpkg" install "$spec" --triplet="$triplet" "${overlays[@]}" --overlay-triplets="$work/triplets" --recurse \
  --x-install-root="$work/installed" --x-buildtrees-root="$work/buildtrees" \
  --x-packages-root="$work/packages" --downloads-root="$work/downloads"
echo "vcpkg install $spec: $((SECONDS - t0)) s"

share="$work/installed/$triplet/share/nerpipe"
for f in nerpipe-config.cmake nerpipe-config-version.cmake nerpipe-targets.cmake nerpipe-dependencies.cmake usage copyright; do
  [ -f "$share/$f" ] || { echo "test-with-vcpkg: FAIL: $share/$f missing"; exit 1; }
done
[ -f "$work/installed/$triplet/include/nerpipe/nerpipe.hpp" ] || { echo "test-with-vcpkg: FAIL: headers missing"; exit 1; }

cmake -S packaging/conan/test_package -B "$work/consumer" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$VCPKG_ROOT/scripts/buildsystems/vcpkg.cmake" -DVCPKG_MANIFEST_MODE=OFF \
  -DVCPKG_TARGET_TRIPLET="$triplet" -DVCPKG_INSTALLED_DIR="$work/installed" "${cuda_opt[@]}" | tee "$work/consumer.log"
grep -q "from $share" "$work/consumer.log" || { echo "test-with-vcpkg: FAIL: nerpipe not taken from $share"; exit 1; }
cmake --build "$work/consumer"
out="$("$work/consumer/nerpipe_test_package")"
echo "$out"
[[ "$out" == *"-> PASS" ]] || { echo "test-with-vcpkg: FAIL"; exit 1; }
echo "test-with-vcpkg: PASS ($spec, $triplet)"
