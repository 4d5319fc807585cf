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

step "debian packages" bash scripts/setup-debian.sh
step "models (sm, md)" fetch_models
# cuDNN's fused attention path compiles in when its header-only frontend is there (pip download, pinned).
if command -v nvcc >/dev/null; then step "cuDNN frontend headers" bash scripts/get-cudnn-frontend.sh; fi
# Three chains run at once, each a build and then what it built: the release build (host + CUDA), its tests, the
# single-header check and the package tests; the sanitizer build of the host tests and their run under ASan +
# UBSan; the fuzz binary and every fuzz target. On 2 cores one chain's single-threaded stretches (configuring, its
# last big file, linking, a long test) leave a core the others use. Each step's output goes to
# build/test-logs/<step>.log; a failed step's last lines are printed.
chain_step() {  # chain_step LOG COMMAND...: runs it with its output in LOG, writes "exit-status seconds" to LOG.status
  local log="$1"; shift
  local t0 rc
  t0=$(date +%s)
  "$@" >"$log" 2>&1
  rc=$?
  echo "$rc $(($(date +%s) - t0))" >"$log.status"
  return "$rc"
}
collect() {  # collect NAME LOG [WHY-NOT-RUN]: records a chain step's row; prints the log's end when it failed
  local name="$1" log="$2" rc=1 dt=0
  if [ ! -f "$log.status" ]; then
    not_run "$name" "${3:-it did not run}"
    return 1
  fi
  read -r rc dt <"$log.status"
  if [ "$rc" -eq 0 ]; then
    rows+=("$(printf '  %-24s ok      %5ss' "$name" "$dt")")
  else
    rows+=("$(printf '  %-24s FAILED  %5ss  (exit %s)' "$name" "$dt" "$rc")")
    failed+=("$name")
    echo "== $name FAILED; the end of $log:"
    tail -n 120 "$log"
  fi
  return "$rc"
}
fuzz_seconds="${NERPIPE_FUZZ_SECONDS:-30}"
release_chain() {
  chain_step "$logs/build-release.log" build_release || return
  chain_step "$logs/single-header.log" python3 tools/amalgamate.py --check
  chain_step "$logs/ctest-release.log" ctest --preset ci -j "$jobs"
  chain_step "$logs/packaging.log" bash packaging/test-packaging.sh
}
sanitize_chain() {
  chain_step "$logs/build-sanitize.log" build_sanitize || return
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    chain_step "$logs/ctest-sanitize.log" ctest --preset sanitize -j "$jobs"
}
# libFuzzer under ASan + UBSan (jsonl tokenizer_json tokenizers safetensors spacy_model spacy_files): the seeds and
# NERPIPE_FUZZ_SECONDS (default 30) of new inputs per target, one target at a time beside the other chains.
fuzz_chain() {
  chain_step "$logs/build-fuzz.log" bash scripts/fuzz.sh build || return
  FUZZ_JOBS="${FUZZ_JOBS:-1}" chain_step "$logs/fuzz.log" bash scripts/fuzz.sh all "$fuzz_seconds"
}
echo "== release, sanitizer and fuzz chains (at once; logs in $logs/)"
rm -f "$logs"/*.status
release_chain &
sanitize_chain &
fuzz_chain &
t_chains=$(date +%s)
while [ -n "$(jobs -rp)" ]; do  # a line every two minutes, so that a long build is not mistaken for a hang
  sleep 5
  if (( ($(date +%s) - t_chains) % 120 < 5 )); then
    echo "   $(($(date +%s) - t_chains)) s: done: $(cd "$logs" && ls -- *.status 2>/dev/null | sed 's/\.log\.status//' | tr '\n' ' ')"
  fi
done
wait
collect "build (release)" "$logs/build-release.log"
collect "single header" "$logs/single-header.log" "the release build failed"
collect "tests (release)" "$logs/ctest-release.log" "the release build failed"
collect "packaging" "$logs/packaging.log" "the release build failed"
collect "build (sanitizers)" "$logs/build-sanitize.log"
collect "tests (ASan + UBSan)" "$logs/ctest-sanitize.log" "the sanitizer build failed"
collect "build (fuzz)" "$logs/build-fuzz.log"
collect "fuzz (${fuzz_seconds} s per target)" "$logs/fuzz.log" "the fuzz binary did not build"
[ -f "$logs/fuzz.log" ] && grep -E '^  [a-z_]+ +(ok|FAILED)' "$logs/fuzz.log"

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
