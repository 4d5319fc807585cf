#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# GPU check, for a machine with an NVIDIA GPU, the CUDA toolkit, CMake and a C++ compiler:
#   1. configure + build the CUDA targets for sm_90 (nerpipe_cuda_tests, nerpipe_cuda_bench);
#   2. ctest -L gpu;
#   3. compute-sanitizer memcheck on the CUDA test binary (minus [api_errors]: tests that provoke CUDA
#      API errors on purpose, which the sanitizer would report);
#   4. the CUDA benchmarks (JSON + console);
# then prints a short table. Logs go to $OUT when set (else <build>/logs).
#
# Dependencies come from the system, or from Debian packages unpacked with `dpkg -x` into
# $NERPIPE_DEPS_PREFIX (simdjson, openblas, catch2, benchmark, utf8proc, pcre2, msgpack, CLI11).
# Knobs: NERPIPE_GPU_BUILD_DIR, NERPIPE_JOBS, NERPIPE_GPU_TARGETS, MEMCHECK_TIMEOUT_S, BENCH_TIMEOUT_S,
# BENCH_MIN_TIME, CMAKE_CUDA_ARCHITECTURES.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# Build dir, logs, jobs and the CUDA build's CMake arguments (system deps or $NERPIPE_DEPS_PREFIX).
# shellcheck source=scripts/gpu-env.sh
source scripts/gpu-env.sh
targets="${NERPIPE_GPU_TARGETS:-nerpipe_cuda_tests nerpipe_cuda_bench}"

declare -a rows
status_all=0
step() {  # step <name> <log> <command...>: runs, times, records a table row
  local name="$1" log="$2"; shift 2
  local t0 rc
  t0=$(date +%s)
  echo "== $name" >&2
  "$@" >"$log" 2>&1
  rc=$?
  local dt=$(( $(date +%s) - t0 ))
  local state="ok"
  if [ "$rc" -ne 0 ]; then state="FAILED (rc $rc)"; status_all=1; tail -n 30 "$log" >&2; fi
  rows+=("$(printf '%-12s %-16s %5ss  %s' "$name" "$state" "$dt" "$(basename "$log")")")
  return "$rc"
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader || true; } \
  >"$logs/gpu.txt" 2>&1
nvcc --version >>"$logs/gpu.txt" 2>&1 || true

step configure "$logs/configure.log" cmake -S . -B "$build" "${cmake_args[@]}" || { printf '%s\n' "${rows[@]}"; exit 1; }
# shellcheck disable=SC2086
step build "$logs/build.log" cmake --build "$build" -j "$jobs" --target $targets || { printf '%s\n' "${rows[@]}"; exit 1; }
step ctest "$logs/ctest.log" ctest --test-dir "$build" -L gpu --output-on-failure

test_bin="$(find "$build" -name nerpipe_cuda_tests -type f -perm -u+x | head -n 1)"
if command -v compute-sanitizer >/dev/null && [ -n "$test_bin" ]; then
  step memcheck "$logs/memcheck.log" timeout "${MEMCHECK_TIMEOUT_S:-240}" compute-sanitizer --tool memcheck \
    --leak-check no --error-exitcode 86 "$test_bin" --require-devices 1 "~[api_errors]"
else
  rows+=("$(printf '%-12s %-16s' memcheck 'not run (no compute-sanitizer or test binary)')")
fi

bench_bin="$(find "$build" -name nerpipe_cuda_bench -type f -perm -u+x | head -n 1)"
if [ -n "$bench_bin" ]; then
  step bench "$logs/cuda_bench.log" timeout "${BENCH_TIMEOUT_S:-200}" "$bench_bin" \
    --benchmark_min_time="${BENCH_MIN_TIME:-0.1}" --benchmark_out="$logs/cuda_bench.json" \
    --benchmark_out_format=json
fi

echo
echo "GPU: $(head -n 1 "$logs/gpu.txt")"
echo "step         status           time  log (in $logs)"
printf '%s\n' "${rows[@]}"
if [ -f "$logs/cuda_bench.json" ] && command -v python3 >/dev/null; then
  echo
  python3 - "$logs/cuda_bench.json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
print(f"{'benchmark':<62} {'us/call':>10} {'rate':>14}")
for b in data.get("benchmarks", []):
    if b.get("error_occurred"):
        print(f"{b['name']:<62} {'error: ' + b.get('error_message', '')}")
        continue
    rate = next(((k, b[k]) for k in ("TFLOP/s", "GB/s") if k in b), None)
    us = b.get("us/call", float("nan"))
    print(f"{b['name']:<62} {us:>10.1f} {('%.1f %s' % (rate[1], rate[0])) if rate else '':>14}")
PY
fi
exit "$status_all"
