#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The one GPU script: on a machine with an NVIDIA GPU and nothing but the CUDA toolkit, CMake and a C++
# compiler, in one go (about 10 minutes on an H100 host with 16 cores):
#   1. configure + build nerpipe_cuda_tests and nerpipe_cuda_bench for sm_90 (CMAKE_CUDA_ARCHITECTURES);
#   2. the [gpu] tests: every op against the CPU policy, and the CPU-vs-GPU parity checks (HF fp32 and
#      bf16 on the fixtures, spaCy sm/md on every EWT document) whose tables the tests print as warnings;
#   3. compute-sanitizer memcheck (all GPU tests but [api_errors], which provoke CUDA errors on purpose, and
#      the EWT-scale spaCy and trained-model runs) and racecheck (the kernels that share memory between threads);
#   4. the GPU benchmarks: ops (GEMM, attention, LayerNorm, GELU), BERT-base end to end (in memory, with
#      stage times; and JSONL in -> entities out through round_robin with 1-4 replicas on the GPU),
#      spaCy sm/md end to end;
# then prints a short table and the figures. Logs (and the benchmarks' JSON) go to $OUT when set, else
# <build>/logs.
#
# Inputs a registry-less machine lacks come from .gpu/ (scripts/gpu-pack.sh, carried with the tree):
# Debian packages unpacked with `dpkg -x` into /tmp/nerpipe-deps (or set NERPIPE_DEPS_PREFIX) and the spaCy
# models (NERPIPE_SPACY_MODEL / NERPIPE_SPACY_MD_MODEL, else models/, else .gpu/models). The EWT text is in
# the tree (tests/data).
# Knobs: those of gpu-env.sh, TEST_TIMEOUT_S, MEMCHECK_TIMEOUT_S, RACECHECK_TIMEOUT_S, BENCH_TIMEOUT_S,
# BENCH_MIN_TIME, NERPIPE_BERT_DOCS, NERPIPE_BERT_DOCS_FP32, SKIP_SANITIZERS=1, SKIP_BENCH=1.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
t_start=$(date +%s)

if [ -d .gpu ]; then
  if [ -z "${NERPIPE_DEPS_PREFIX:-}" ] && ls .gpu/debs/*.deb >/dev/null 2>&1; then
    deps=/tmp/nerpipe-deps
    if [ ! -f "$deps/.unpacked" ]; then
      mkdir -p "$deps"
      for d in .gpu/debs/*.deb; do dpkg -x "$d" "$deps" || exit 1; done
      touch "$deps/.unpacked"
    fi
    export NERPIPE_DEPS_PREFIX="$deps"
  fi
  if [ -f .gpu/models.tar.xz ] && [ ! -d .gpu/models ]; then
    mkdir -p .gpu/models && tar -C .gpu/models -xJf .gpu/models.tar.xz
  fi
fi
for size in sm md; do
  var=NERPIPE_SPACY_MODEL
  [ "$size" = md ] && var=NERPIPE_SPACY_MD_MODEL
  if [ -z "${!var:-}" ]; then
    for cand in "models/en_core_web_${size}-3.8.0" ".gpu/models/en_core_web_${size}-3.8.0"; do
      if [ -f "$cand/meta.json" ]; then export "$var=$PWD/$cand"; break; fi
    done
  fi
done

# shellcheck source=scripts/gpu-env.sh
source scripts/gpu-env.sh
targets="${NERPIPE_GPU_TARGETS:-nerpipe_cuda_tests nerpipe_cuda_bench}"

# The BERT benchmarks' text: every EWT document (dev + train).
if [ -z "${NERPIPE_BERT_CORPUS:-}" ]; then
  cat tests/data/ewt/dev.jsonl tests/data/ewt/train.jsonl > "$build/ewt-all.jsonl" 2>/dev/null &&
    export NERPIPE_BERT_CORPUS="$(cd "$build" && pwd)/ewt-all.jsonl"
fi
# OpenBLAS picks its slow generic kernel on some virtual machines; the CPU oracle then dominates the tests.
if grep -q avx512f /proc/cpuinfo 2>/dev/null; then export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-SkylakeX}"; fi

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

test_bin="$(find "$build" -name nerpipe_cuda_tests -type f -perm -u+x | head -n 1)"
bench_bin="$(find "$build" -name nerpipe_cuda_bench -type f -perm -u+x | head -n 1)"
step tests "$logs/gpu_tests.log" timeout "${TEST_TIMEOUT_S:-240}" "$test_bin" --require-devices 1 "[gpu]"

if [ "${SKIP_SANITIZERS:-0}" != 1 ] && command -v compute-sanitizer >/dev/null; then
  step memcheck "$logs/memcheck.log" timeout "${MEMCHECK_TIMEOUT_S:-240}" compute-sanitizer --tool memcheck \
    --leak-check no --error-exitcode 86 "$test_bin" --require-devices 1 "[gpu]~[api_errors]~[trained]~spacy_ner*"
  step racecheck "$logs/racecheck.log" timeout "${RACECHECK_TIMEOUT_S:-180}" compute-sanitizer --tool racecheck \
    --racecheck-report all --error-exitcode 87 "$test_bin" --require-devices 1 \
    "[attention],[layer_norm],[softmax],[argmax],[spacy]~spacy_ner*"
else
  rows+=("$(printf '%-12s %-16s' sanitizers 'not run (SKIP_SANITIZERS or no compute-sanitizer)')")
fi

if [ "${SKIP_BENCH:-0}" != 1 ]; then
  step ops_bench "$logs/cuda_ops.log" timeout "${BENCH_TIMEOUT_S:-200}" "$bench_bin" \
    --benchmark_filter='bm_(gemm|attention|layer_norm|gelu)' --benchmark_min_time="${BENCH_MIN_TIME:-0.1}" \
    --benchmark_out="$logs/cuda_ops.json" --benchmark_out_format=json
  step bert "$logs/bert.log" timeout "${BENCH_TIMEOUT_S:-200}" "$bench_bin" --benchmark_filter='bm_bert_base_' \
    --benchmark_out="$logs/bert.json" --benchmark_out_format=json
  step spacy "$logs/spacy.log" timeout "${BENCH_TIMEOUT_S:-200}" "$bench_bin" --benchmark_filter='bm_spacy_gpu' \
    --benchmark_out="$logs/spacy.json" --benchmark_out_format=json
fi

echo
echo "GPU: $(head -n 1 "$logs/gpu.txt")"
echo "step         status           time  log (in $logs)"
printf '%s\n' "${rows[@]}"
echo
echo "-- [gpu] tests: $(grep -E '^(All tests passed|test cases:)' "$logs/gpu_tests.log" | tail -n 1)"
for s in memcheck racecheck; do
  [ -f "$logs/$s.log" ] && echo "-- $s: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$logs/$s.log" | tail -n 1)"
done
# The parity tables: the warning blocks the parity tests print (HF bf16 / fp32, spaCy).
echo "-- CPU vs GPU parity:"
awk '$0 == "warning:" && prev ~ /(hf_bf16|hf_model|spacy_gpu)\.cu:[0-9]+:/ {f = 1; prev = $0; next}
     f && /^$/ {f = 0} f {print "  " $0} {prev = $0}' "$logs/gpu_tests.log" || true
if [ -f "$logs/bert.log" ]; then
  echo "-- BERT-base (random weights, EWT text):"
  grep -E '^BERT-(E2E|JSONL)' "$logs/bert.log" | sed 's/^/   /' || echo "   (no result; see bert.log)"
fi
if [ -f "$logs/spacy.log" ]; then
  echo "-- spaCy on the GPU:"
  grep -E '^SPACY-GPU' "$logs/spacy.log" | sed 's/^/   /' || echo "   (no result; see spacy.log)"
fi
if [ -f "$logs/cuda_ops.json" ] && command -v python3 >/dev/null; then
  echo "-- ops:"
  python3 - "$logs/cuda_ops.json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
print(f"   {'benchmark':<62} {'us/call':>10} {'rate':>14}")
for b in data.get("benchmarks", []):
    if b.get("error_occurred"):
        print(f"   {b['name']:<62} {'error: ' + b.get('error_message', '')}")
        continue
    rate = next(((k, b[k]) for k in ("TFLOP/s", "GB/s") if k in b), None)
    us = b.get("us/call", float("nan"))
    print(f"   {b['name']:<62} {us:>10.1f} {('%.1f %s' % (rate[1], rate[0])) if rate else '':>14}")
PY
fi
echo "total $(( $(date +%s) - t_start ))s"
exit "$status_all"
