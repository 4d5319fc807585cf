#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# BERT on one GPU, for a machine with an NVIDIA GPU, the CUDA toolkit, CMake and a C++ compiler:
#   1. unless NERPIPE_DEPS_PREFIX is set: when .debs/*.deb exist, unpack them with dpkg -x into
#      /tmp/nerpipe-deps (once) and use that as NERPIPE_DEPS_PREFIX;
#   2. configure + build nerpipe_cuda_tests and nerpipe_cuda_bench for sm_90 (scripts/gpu-env.sh);
#   3. the [gpu] tests (the bf16 parity tables are printed by the test as warnings);
#   4. the end-to-end BERT-base benchmark (bf16, then fp32);
# then prints a short table. Logs go to $OUT when set (else <build>/logs). Budget: ~4 minutes on 16 cores.
# Knobs: those of gpu-env.sh, TEST_TIMEOUT_S (90), BERT_TIMEOUT_S (100), NERPIPE_BERT_DOCS (20000, bf16),
# NERPIPE_BERT_DOCS_FP32 (4000), NERPIPE_BERT_CORPUS (JSONL; default: build-bert/data/ewt.jsonl when
# present, else the shared EWT dev split, else the fixture documents).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
t_start=$(date +%s)

if [ -z "${NERPIPE_DEPS_PREFIX:-}" ] && [ -d .debs ] && ls .debs/*.deb >/dev/null 2>&1; then
  deps=/tmp/nerpipe-deps
  if [ ! -f "$deps/.unpacked" ]; then
    mkdir -p "$deps"
    for d in .debs/*.deb; do dpkg -x "$d" "$deps" || exit 1; done
    touch "$deps/.unpacked"
  fi
  export NERPIPE_DEPS_PREFIX="$deps"
fi
# shellcheck source=scripts/gpu-env.sh
. scripts/gpu-env.sh

if [ -z "${NERPIPE_BERT_CORPUS:-}" ] && [ -f build-bert/data/ewt.jsonl ]; then
  export NERPIPE_BERT_CORPUS="$PWD/build-bert/data/ewt.jsonl"
fi

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
  if [ "$rc" -ne 0 ]; then state="FAILED (rc $rc)"; status_all=1; tail -n 40 "$log" >&2; fi
  rows+=("$(printf '%-10s %-16s %5ss  %s' "$name" "$state" "$dt" "$(basename "$log")")")
  return "$rc"
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader || true; } \
  >"$logs/gpu.txt" 2>&1
nvcc --version >>"$logs/gpu.txt" 2>&1 || true

step configure "$logs/configure.log" cmake -S . -B "$build" "${cmake_args[@]}" || { printf '%s\n' "${rows[@]}"; exit 1; }
step build "$logs/build.log" cmake --build "$build" -j "$jobs" --target nerpipe_cuda_tests nerpipe_cuda_bench \
  || { printf '%s\n' "${rows[@]}"; exit 1; }

test_bin="$(find "$build" -name nerpipe_cuda_tests -type f -perm -u+x | head -n 1)"
bench_bin="$(find "$build" -name nerpipe_cuda_bench -type f -perm -u+x | head -n 1)"
step tests "$logs/gpu_tests.log" timeout "${TEST_TIMEOUT_S:-90}" "$test_bin" --require-devices 1 "[gpu]"
step bert "$logs/bert_e2e.log" timeout "${BERT_TIMEOUT_S:-100}" "$bench_bin" --benchmark_filter='bm_bert_base_e2e' \
  --benchmark_out="$logs/bert_e2e.json" --benchmark_out_format=json

echo
echo "GPU: $(head -n 1 "$logs/gpu.txt")"
echo "step       status           time  log (in $logs)"
printf '%s\n' "${rows[@]}"
echo
echo "-- [gpu] tests: $(grep -E '^(All tests passed|test cases:)' "$logs/gpu_tests.log" | tail -n 1)"
# The parity figures: the WARN blocks of tests/cuda/hf_bf16.cu (bf16) and hf_model.cu (fp32).
awk '$0 == "warning:" && prev ~ /(hf_bf16|hf_model)\.cu:[0-9]+:/ {f = 1; prev = $0; next}
     f && /^$/ {f = 0} f {print "  " $0} {prev = $0}' \
  "$logs/gpu_tests.log" || true
echo "-- BERT-base end to end (random weights, EWT text):"
grep '^BERT-E2E' "$logs/bert_e2e.log" | sed 's/^/   /' || echo "   (no result; see bert_e2e.log)"
echo "total $(( $(date +%s) - t_start ))s"
exit "$status_all"
