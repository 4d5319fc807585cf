#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The test command (README, CI): installs Debian packages, fetches the spaCy models the tests need, builds
# host and CUDA code (CUDA is compiled and linked when nvcc is found; GPU tests are reported skipped without
# a device), runs every host test, the single-header check and the package tests, then the host tests
# again under AddressSanitizer + UndefinedBehaviorSanitizer, and every fuzz target for 30 s (scripts/fuzz.sh).
#
# Every step runs even when an earlier one failed (a step that needs the build is reported as not run when
# the build failed); the last lines name the failed steps and count test cases ran / passed / skipped.
# The exit status is 0 only when every step passed. Under CI=true a missing model or data file fails the
# tests that need it (this script fetches them); only GPU tests may be skipped in CI.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/cuda/bin"
t_start=$(date +%s)

jobs="${NERPIPE_JOBS:-$(nproc)}"
logs=build/test-logs
mkdir -p "$logs"
summary="$PWD/$logs/test-cases.txt"  # one line per test binary run (tests/main.cpp appends it)
: >"$summary"
export NERPIPE_TEST_SUMMARY="$summary"

declare -a failed=() rows=()
step() {  # step NAME COMMAND...: runs, times and records it; never stops the script
  local name="$1"; shift
  local t0 rc
  t0=$(date +%s)
  echo "== $name"
  "$@"
  rc=$?
  local dt=$(($(date +%s) - t0))
  if [ "$rc" -eq 0 ]; then
    rows+=("$(printf '  %-24s ok      %5ss' "$name" "$dt")")
  else
    rows+=("$(printf '  %-24s FAILED  %5ss  (exit %s)' "$name" "$dt" "$rc")")
    failed+=("$name")
  fi
  return "$rc"
}
not_run() { rows+=("$(printf '  %-24s NOT RUN         (%s)' "$1" "$2")"); failed+=("$1"); }

fetch_models() {
  bash scripts/get-model.sh models sm >/dev/null && bash scripts/get-model.sh models md >/dev/null
}

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache); fi
build_release() { cmake --preset ci "${launcher[@]}" >/dev/null && cmake --build build/ci -j "$jobs"; }
build_sanitize() { cmake --preset sanitize "${launcher[@]}" >/dev/null && cmake --build build/sanitize -j "$jobs" --target nerpipe_tests; }
ctest_logged() {  # ctest_logged LOG ARGS...: runs ctest, keeps its output for the summary
  local log="$1"; shift
  ctest "$@" 2>&1 | tee "$log"
  return "${PIPESTATUS[0]}"
}

step "debian packages" bash scripts/setup-debian.sh
step "models (sm, md)" fetch_models
# cuDNN's fused attention path compiles in when its header-only frontend is there (pip download, pinned).
if command -v nvcc >/dev/null; then step "cuDNN frontend headers" bash scripts/get-cudnn-frontend.sh; fi
# The three builds run at once: the release build (host + CUDA), the sanitizer build of the host tests and the
# fuzz binary. Each one's single-threaded stretches (configuring, its last big file, linking) leave a core the
# others use. Their output goes to build/test-logs/build-*.log; a failed build's last lines are printed.
bg_step() {  # bg_step LOG COMMAND...: runs in the background; "exit-status seconds" goes to LOG.status
  local log="$1"; shift
  (
    t0=$(date +%s)
    "$@" >"$log" 2>&1
    rc=$?
    echo "$rc $(($(date +%s) - t0))" >"$log.status"
  ) &
}
collect() {  # collect NAME LOG: records the row of a finished bg_step; prints the log's end when it failed
  local name="$1" log="$2" rc=1 dt=0
  [ -f "$log.status" ] && read -r rc dt <"$log.status"
  if [ "$rc" -eq 0 ]; then
    rows+=("$(printf '  %-24s ok      %5ss' "$name" "$dt")")
  else
    rows+=("$(printf '  %-24s FAILED  %5ss  (exit %s)' "$name" "$dt" "$rc")")
    failed+=("$name")
    echo "== $name FAILED; the end of $log:"
    tail -n 60 "$log"
  fi
  return "$rc"
}
echo "== builds: release, sanitizers, fuzz binary (at once; logs in $logs/build-*.log)"
rm -f "$logs"/build-*.status
bg_step "$logs/build-release.log" build_release
bg_step "$logs/build-sanitize.log" build_sanitize
bg_step "$logs/build-fuzz.log" bash scripts/fuzz.sh build
t_builds=$(date +%s)
while [ -n "$(jobs -rp)" ]; do  # a line every two minutes, so that a long build is not mistaken for a hang
  sleep 5
  if (( ($(date +%s) - t_builds) % 120 < 5 )); then
    echo "   $(($(date +%s) - t_builds)) s: release $(tail -n 1 "$logs/build-release.log" 2>/dev/null | cut -c1-60) | sanitizers $(tail -n 1 "$logs/build-sanitize.log" 2>/dev/null | cut -c1-40)"
  fi
done
wait
collect "build (release)" "$logs/build-release.log"; release_rc=$?
collect "build (sanitizers)" "$logs/build-sanitize.log"; sanitize_rc=$?
collect "build (fuzz)" "$logs/build-fuzz.log"; fuzz_rc=$?

if [ "$release_rc" -eq 0 ]; then
  step "single header" python3 tools/amalgamate.py --check
  step "tests (release)" ctest_logged "$logs/ctest-release.log" --preset ci -j "$jobs"
else
  not_run "single header" "the release build failed"
  not_run "tests (release)" "the release build failed"
fi
step "packaging" bash packaging/test-packaging.sh
if [ "$sanitize_rc" -eq 0 ]; then
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    step "tests (ASan + UBSan)" ctest_logged "$logs/ctest-sanitize.log" --preset sanitize -j "$jobs"
else
  not_run "tests (ASan + UBSan)" "the sanitizer build failed"
fi
# libFuzzer under ASan + UBSan (jsonl tokenizer_json tokenizers safetensors spacy_model spacy_files): the seeds and
# NERPIPE_FUZZ_SECONDS (default 30) of new inputs per target, the targets side by side on the cores.
fuzz_seconds="${NERPIPE_FUZZ_SECONDS:-30}"
if [ "$fuzz_rc" -eq 0 ]; then
  step "fuzz (${fuzz_seconds} s per target)" bash scripts/fuzz.sh all "$fuzz_seconds"
else
  not_run "fuzz" "the fuzz binary did not build"
fi

# ---- summary -------------------------------------------------------------------------------------------
echo
echo "== summary ($(($(date +%s) - t_start)) s)"
printf '%s\n' "${rows[@]}"
for log in "$logs"/ctest-*.log; do
  [ -f "$log" ] || continue
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of' "$log" | tail -n 1)
  skipped=$(grep -cE '\(Skipped\)' "$log")
  echo "  $(basename "$log" .log): ${line:-no result}; CTest entries skipped: $skipped$(grep -E '\(Skipped\)' "$log" | sed -E 's/^ *[0-9]+ - ([^ ]+).*/ \1/' | tr -d '\n')"
done
if [ -s "$summary" ]; then
  awk '{ for (i = 1; i <= NF; ++i) {
           if ($(i + 1) == "test" && $(i + 2) == "cases") ran += $i
           if ($(i + 1) ~ /^passed,?$/) passed += $i
           if ($(i + 1) ~ /^failed,?$/) bad += $i
           if ($(i + 1) ~ /^skipped/) skipped += $i } }
       END { printf "  test cases: %d ran, %d passed, %d failed, %d skipped (Catch2 runs of every CTest entry, both builds)\n", ran, passed, bad, skipped }' "$summary"
  grep -E 'skipped \(|whole binary skipped' "$summary" | sed 's/^/    /'
fi
if ((${#failed[@]} > 0)); then
  echo "FAILED steps: ${failed[*]}"
  exit 1
fi
echo "all steps passed"
